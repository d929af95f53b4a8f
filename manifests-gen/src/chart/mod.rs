//! The Helm chart (`charts/locust-k8s-operator/`) and the plain manifest
//! (`install.yaml`) for clusters without OLM, from the same types as the
//! bundle: RBAC from `locust_operator::rbac`, the CRD from
//! `locust_operator::crd`, ports, probes and flags from the operator's
//! configuration and the CSV's Deployment ([`crate::csv::deployment_spec`]),
//! the values from [`values::Values`].
//!
//! Certificates: the operator manages its own webhook serving certificate
//! and the `caBundle`s of the CRD and the validating webhook configuration
//! (`--webhook-cert-mode=self-managed`, docs/webhook-certificates.md), so a
//! bare cluster needs nothing else; with `webhook.certManager.enabled`,
//! cert-manager issues it instead.
//!
//! The CRD is a template, not a file under `crds/`: Helm never upgrades
//! what is under `crds/`, and a new release may change the schema and the
//! conversion. It carries `helm.sh/resource-policy: keep` (value
//! `crds.keep`), so `helm uninstall` leaves it, and with it every LocustTest.

mod files;
mod optional;
pub mod template;
pub mod values;
mod values_files;

#[cfg(test)]
mod tests;

use self::files::{chart_yaml, helpers_tpl, notes};
use self::optional::{cert_manager_docs, metrics_docs, otel_docs};
use self::values_files::{chart_readme, values_doc, values_yaml};

use std::collections::BTreeMap;

use locust_operator::config::OperatorConfig;
use locust_operator::crd::{ConversionTarget, set_webhook_conversion};
use semver::Version;
use serde_json::{Value, json};

use self::template::{Markers, at, empty, helper, keyed_lines, when};
use crate::Error;
use crate::deployment::{CONTAINER_NAME, CONVERSION_PATH, SELECTOR_LABEL, VALIDATION_PATH};

/// Name of the chart (and the release name `install.yaml` stands for).
pub const CHART_NAME: &str = "locust-k8s-operator";
/// Directory of the chart.
pub const CHART_DIR: &str = "charts/locust-k8s-operator";
/// The plain manifest.
pub const INSTALL_PATH: &str = "install.yaml";
/// The values reference (generated).
pub const VALUES_DOC_PATH: &str = "docs/chart-values.md";
/// Namespace of `install.yaml`.
pub const INSTALL_NAMESPACE: &str = crate::SUGGESTED_NAMESPACE;

/// A template of the chart.
struct Doc {
    /// File under `templates/`.
    file: &'static str,
    /// Template text before the object (checks of the values).
    prelude: &'static str,
    /// Template condition (none: always) and whether the defaults meet it.
    cond: Option<(&'static str, bool)>,
    markers: Markers,
    object: Value,
}

impl Doc {
    /// The template `file` of `object` (its markers in `markers`, taken
    /// last: building `object` fills them), rendered when `cond` holds
    /// (none: always; the bool: whether the defaults meet it, i.e. whether
    /// `install.yaml` has it).
    fn new(
        file: &'static str,
        cond: Option<(&'static str, bool)>,
        object: Value,
        markers: Markers,
    ) -> Self {
        Self {
            file,
            prelude: "",
            cond,
            markers,
            object,
        }
    }
}

fn fullname(m: &mut Markers) -> String {
    m.inline(
        format!("{{{{ include \"{}\" . }}}}", helper("fullname")),
        CHART_NAME,
    )
}

fn suffixed(m: &mut Markers, suffix: &str) -> String {
    m.inline(
        format!(
            "{{{{ printf \"%s-{suffix}\" (include \"{}\" .) | trunc 63 | trimSuffix \"-\" }}}}",
            helper("fullname")
        ),
        format!("{CHART_NAME}-{suffix}"),
    )
}

fn namespace(m: &mut Markers) -> String {
    m.inline("{{ .Release.Namespace }}", INSTALL_NAMESPACE)
}

fn service_account(m: &mut Markers) -> String {
    m.inline(
        format!("{{{{ include \"{}\" . }}}}", helper("serviceAccountName")),
        CHART_NAME,
    )
}

/// The labels every object carries, as `install.yaml` has them.
fn labels(version: &Version) -> Value {
    json!({
        SELECTOR_LABEL.0: SELECTOR_LABEL.1,
        "app.kubernetes.io/instance": CHART_NAME,
        "app.kubernetes.io/version": version.to_string(),
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": format!("{CHART_NAME}-{version}"),
    })
}

fn selector_labels() -> Value {
    json!({SELECTOR_LABEL.0: SELECTOR_LABEL.1, "app.kubernetes.io/instance": CHART_NAME})
}

/// `metadata` with the chart's labels, a name and (namespaced) the release namespace.
fn metadata(m: &mut Markers, version: &Version, name: String, namespaced: bool) -> Value {
    let labels = m.include_with_values("labels", "labels", None, &labels(version));
    let mut meta = json!({"name": name, "labels": labels});
    if namespaced {
        meta["namespace"] = Value::String(namespace(m));
    }
    meta
}

/// One operator flag per `locustPods` resource value: `--pod-*` always (an
/// absent value is passed empty: none), `--master-*`/`--worker-*` only when
/// set (else the operator falls back to `--pod-*`).
pub const POD_RESOURCE_FLAGS: [(&str, &str, bool); 3] = [
    ("resources", "pod", true),
    ("masterResources", "master", false),
    ("workerResources", "worker", false),
];
/// The `requests`/`limits` keys and their flag words.
pub const RESOURCE_KINDS: [(&str, &str); 2] = [("requests", "request"), ("limits", "limit")];
/// The resource keys and their flag words.
pub const RESOURCE_NAMES: [(&str, &str); 3] = [
    ("cpu", "cpu"),
    ("memory", "memory"),
    ("ephemeralStorage", "ephemeral-storage"),
];

/// Every flag the chart passes from `locustPods`, with its values path.
pub fn locust_pod_flags() -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    for (key, role, always) in POD_RESOURCE_FLAGS {
        for (kind, word) in RESOURCE_KINDS {
            for (name, flag_word) in RESOURCE_NAMES {
                out.push((
                    format!("--{role}-{flag_word}-{word}"),
                    key.to_owned(),
                    format!("{kind}.{name}"),
                    always,
                ));
            }
        }
    }
    out
}

/// The container arguments: template lines and default lines.
fn args(values: &Value) -> (Vec<String>, Vec<String>) {
    let cfg = OperatorConfig::default();
    let mut helm = vec![
        "- --leader-elect={{ .Values.leaderElection.enabled }}".to_owned(),
        format!(
            "- --health-probe-bind-address={}",
            cfg.health_probe_bind_address
        ),
        "- --metrics-bind-address=0.0.0.0:{{ .Values.metrics.port }}".to_owned(),
        "- --metrics-secure={{ .Values.metrics.secure }}".to_owned(),
        "- --webhook-port={{ .Values.webhook.port }}".to_owned(),
        format!("- --webhook-cert-dir={}", cfg.webhook_cert_dir.display()),
        format!("{{{{- if {CERT_MANAGER} }}}}"),
        "- --webhook-cert-mode=directory".to_owned(),
        "{{- else }}".to_owned(),
        "- --webhook-cert-mode=self-managed".to_owned(),
        format!(
            "- --webhook-cert-secret={{{{ include \"{}\" . }}}}",
            helper("certSecretName")
        ),
        format!(
            "- --webhook-service-name={{{{ include \"{}\" . }}}}",
            helper("webhookServiceName")
        ),
        format!(
            "- --webhook-configuration-name={{{{ if .Values.webhook.enabled }}}}{{{{ include \"{}\" . }}}}{{{{ end }}}}",
            helper("fullname")
        ),
        "{{- end }}".to_owned(),
    ];
    let lp = at(values, "locustPods");
    let mut concrete = vec![
        format!("- --leader-elect={}", at(values, "leaderElection.enabled")),
        format!(
            "- --health-probe-bind-address={}",
            cfg.health_probe_bind_address
        ),
        format!(
            "- --metrics-bind-address=0.0.0.0:{}",
            at(values, "metrics.port")
        ),
        format!("- --metrics-secure={}", at(values, "metrics.secure")),
        format!("- --webhook-port={}", at(values, "webhook.port")),
        format!("- --webhook-cert-dir={}", cfg.webhook_cert_dir.display()),
        "- --webhook-cert-mode=self-managed".to_owned(),
        format!("- --webhook-cert-secret={CHART_NAME}-webhook-cert"),
        format!("- --webhook-service-name={CHART_NAME}-webhook"),
        format!("- --webhook-configuration-name={CHART_NAME}"),
    ];
    for (flag, key, path, always) in locust_pod_flags() {
        let (kind, name) = path.split_once('.').unwrap_or((&path, ""));
        let value = at(lp, &format!("{key}.{path}"));
        if always {
            helm.push(format!(
                "- --{flag}={{{{ dig \"{kind}\" \"{name}\" \"\" .Values.locustPods.{key} }}}}",
                flag = flag.trim_start_matches("--")
            ));
            concrete.push(format!("- {flag}={}", value.as_str().unwrap_or("")));
        } else {
            helm.push(format!(
                "{{{{- if hasKey ((.Values.locustPods.{key}).{kind} | default dict) \"{name}\" }}}}"
            ));
            helm.push(format!(
                "- {flag}={{{{ index .Values.locustPods.{key}.{kind} \"{name}\" }}}}"
            ));
            helm.push("{{- end }}".to_owned());
            if let Some(v) = value.as_str() {
                concrete.push(format!("- {flag}={v}"));
            }
        }
    }
    helm.extend([
        "{{- with .Values.locustPods.runtimeClassName }}".to_owned(),
        "- --default-runtime-class-name={{ . }}".to_owned(),
        "{{- end }}".to_owned(),
        "{{- if ne (toString .Values.locustPods.ttlSecondsAfterFinished) \"\" }}".to_owned(),
        "- --job-ttl-seconds-after-finished={{ int64 .Values.locustPods.ttlSecondsAfterFinished }}"
            .to_owned(),
        "{{- end }}".to_owned(),
    ]);
    if let Some(rc) = lp.get("runtimeClassName").and_then(Value::as_str)
        && !rc.is_empty()
    {
        concrete.push(format!("- --default-runtime-class-name={rc}"));
    }
    match lp.get("ttlSecondsAfterFinished") {
        Some(Value::Number(n)) => concrete.push(format!("- --job-ttl-seconds-after-finished={n}")),
        Some(Value::String(s)) if !s.is_empty() => {
            concrete.push(format!("- --job-ttl-seconds-after-finished={s}"))
        }
        _ => {}
    }
    (helm, concrete)
}

/// cert-manager issues the serving certificate.
const CERT_MANAGER: &str = "and .Values.webhook.enabled .Values.webhook.certManager.enabled";

fn deployment(values: &Value, version: &Version) -> Result<Doc, Error> {
    let mut m = Markers::default();
    let base = serde_json::to_value(crate::csv::deployment_spec("image"))?;
    let cfg = OperatorConfig::default();
    let container = base["template"]["spec"]["containers"][0].clone();
    let (args_helm, args_concrete) = args(values);
    let env = vec![
        container["env"][0].clone(),
        m.lines(
            vec![
                "{{- with .Values.extraEnv }}".to_owned(),
                "{{- toYaml . | nindent {IND} }}".to_owned(),
                "{{- end }}".to_owned(),
            ],
            Vec::new(),
        ),
    ];
    let cert_volume = "webhook-certs";
    let image = m.inline(
        format!("{{{{ include \"{}\" . }}}}", helper("image")),
        format!("{}:{version}", crate::OPERATOR_IMAGE_REPO),
    );
    let pull_policy = m.lines(
        vec![
            "{{- with .Values.image.pullPolicy }}".to_owned(),
            "imagePullPolicy: {{ . }}".to_owned(),
            "{{- end }}".to_owned(),
        ],
        keyed_lines("imagePullPolicy", at(values, "image.pullPolicy")),
    );
    let ports = json!([
        {"name": "webhook-server", "containerPort": m.inline("{{ .Values.webhook.port }}", at(values, "webhook.port").to_string()), "protocol": "TCP"},
        {"name": crate::monitoring::PORT_NAME, "containerPort": m.inline("{{ .Values.metrics.port }}", at(values, "metrics.port").to_string()), "protocol": "TCP"},
        container["ports"][2].clone(),
    ]);
    let container = json!({
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": [m.lines(args_helm, args_concrete)],
        "env": env,
        "ports": ports,
        "livenessProbe": container["livenessProbe"],
        "readinessProbe": container["readinessProbe"],
        "resources": m.with_values("resources", "resources", at(values, "resources")),
        "securityContext": m.with_values("securityContext", "containerSecurityContext", at(values, "containerSecurityContext")),
        "volumeMounts": [{"name": cert_volume, "mountPath": cfg.webhook_cert_dir.display().to_string(), "readOnly": m.inline(format!("{{{{ if {CERT_MANAGER} }}}}true{{{{ else }}}}false{{{{ end }}}}"), "false")}],
    });
    let cert_secret = m.inline(
        format!("{{{{ include \"{}\" . }}}}", helper("certSecretName")),
        format!("{CHART_NAME}-webhook-cert"),
    );
    let volume = m.lines(
        vec![
            format!("- name: {cert_volume}"),
            format!("{{{{- if {CERT_MANAGER} }}}}"),
            "  secret:".to_owned(),
            format!("    secretName: {cert_secret}"),
            "{{- else }}".to_owned(),
            "  emptyDir: {}".to_owned(),
            "{{- end }}".to_owned(),
        ],
        vec![
            format!("- name: {cert_volume}"),
            "  emptyDir: {}".to_owned(),
        ],
    );
    let default_affinity = base["template"]["spec"]["affinity"].clone();
    let affinity = m.lines(
        vec![
            "affinity:".to_owned(),
            "{{- if .Values.affinity }}".to_owned(),
            "  {{- toYaml .Values.affinity | nindent {IND2} }}".to_owned(),
            "{{- else }}".to_owned(),
            format!(
                "  {{{{- include \"{}\" . | nindent {{IND2}} }}}}",
                helper("defaultAffinity")
            ),
            "{{- end }}".to_owned(),
        ],
        keyed_lines("affinity", &default_affinity),
    );
    let pull_secrets = m.lines(
        vec![
            "{{- with .Values.image.pullSecrets }}".to_owned(),
            "imagePullSecrets:".to_owned(),
            "{{- range . }}".to_owned(),
            "  - name: {{ . }}".to_owned(),
            "{{- end }}".to_owned(),
            "{{- end }}".to_owned(),
        ],
        Vec::new(),
    );
    let sa = service_account(&mut m);
    let pod_labels = m.include_with_values(
        "labels",
        "selectorLabels",
        Some("podLabels"),
        &selector_labels(),
    );
    let selector = m.include_with_values("matchLabels", "selectorLabels", None, &selector_labels());
    let spread_selector =
        m.include_with_values("matchLabels", "selectorLabels", None, &selector_labels());
    let name = fullname(&mut m);
    let object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&mut m, version, name, true),
        "spec": {
            "replicas": m.inline("{{ .Values.replicaCount }}", at(values, "replicaCount").to_string()),
            "selector": {"matchLabels": selector},
            "strategy": base["strategy"],
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": m.include_with_values("annotations", "podAnnotations", Some("podAnnotations"), &json!({"kubectl.kubernetes.io/default-container": CONTAINER_NAME})),
                },
                "spec": {
                    "serviceAccountName": sa,
                    "imagePullSecrets": pull_secrets,
                    "securityContext": m.with_values("securityContext", "podSecurityContext", at(values, "podSecurityContext")),
                    "priorityClassName": m.lines(
                        vec!["{{- with .Values.priorityClassName }}".to_owned(), "priorityClassName: {{ . }}".to_owned(), "{{- end }}".to_owned()],
                        keyed_lines("priorityClassName", at(values, "priorityClassName")),
                    ),
                    "affinity": affinity,
                    "nodeSelector": m.with_values("nodeSelector", "nodeSelector", at(values, "nodeSelector")),
                    "tolerations": m.with_values("tolerations", "tolerations", at(values, "tolerations")),
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": spread_selector},
                    }],
                    "terminationGracePeriodSeconds": m.inline("{{ .Values.terminationGracePeriodSeconds }}", at(values, "terminationGracePeriodSeconds").to_string()),
                    "containers": [container],
                    "volumes": [volume],
                },
            },
        },
    });
    Ok(Doc {
        prelude: "{{- include \"locust-k8s-operator.checks\" . }}\n",
        file: "deployment.yaml",
        cond: None,
        markers: m,
        object,
    })
}

fn service_account_doc(version: &Version) -> Doc {
    let mut m = Markers::default();
    let name = service_account(&mut m);
    let mut meta = metadata(&mut m, version, name, true);
    meta["annotations"] = m.with_values("annotations", "serviceAccount.annotations", &empty());
    Doc::new(
        "serviceaccount.yaml",
        Some((".Values.serviceAccount.create", true)),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": true}),
        m,
    )
}

const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// The operator's `rules` followed by the `certificate` rules, as JSON.
fn rules<R: serde::Serialize>(rules: Vec<R>, certificate: &[R]) -> Result<Value, Error> {
    let all: Vec<&R> = rules.iter().chain(certificate).collect();
    Ok(serde_json::to_value(all)?)
}

/// The operator's RBAC: a ClusterRole and a Role (the operator's own rules
/// and those of its self-managed certificate, kept even with cert-manager:
/// get/patch on two named objects), each bound to the ServiceAccount.
fn rbac_docs(version: &Version) -> Result<Vec<Doc>, Error> {
    let mut docs = Vec::new();
    for (role_kind, namespaced, files) in [
        (
            "ClusterRole",
            false,
            ["clusterrole.yaml", "clusterrolebinding.yaml"],
        ),
        ("Role", true, ["role.yaml", "rolebinding.yaml"]),
    ] {
        let mut m = Markers::default();
        let secret = suffixed(&mut m, "webhook-cert");
        let vwc = fullname(&mut m);
        let certs = locust_operator::rbac::self_managed_cert_rules(&secret, &vwc);
        let rules = if namespaced {
            rules(locust_operator::rbac::namespaced_rules(), &certs.namespaced)?
        } else {
            rules(locust_operator::rbac::cluster_rules(), &certs.cluster)?
        };
        let name = fullname(&mut m);
        let meta = metadata(&mut m, version, name, namespaced);
        let role = json!({"apiVersion": RBAC_API_VERSION, "kind": role_kind, "metadata": meta, "rules": rules});
        docs.push(Doc::new(files[0], None, role, m));

        let mut m = Markers::default();
        let name = fullname(&mut m);
        let meta = metadata(&mut m, version, name.clone(), namespaced);
        let (sa, ns) = (service_account(&mut m), namespace(&mut m));
        let binding = json!({
            "apiVersion": RBAC_API_VERSION, "kind": format!("{role_kind}Binding"), "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        });
        docs.push(Doc::new(files[1], None, binding, m));
    }
    Ok(docs)
}

fn webhook_service(version: &Version, values: &Value) -> Doc {
    let mut m = Markers::default();
    let name = suffixed(&mut m, "webhook");
    let meta = metadata(&mut m, version, name, true);
    let selector = m.include_with_values("selector", "selectorLabels", None, &selector_labels());
    let port = m.inline(
        "{{ .Values.webhook.port }}",
        at(values, "webhook.port").to_string(),
    );
    Doc::new(
        "webhook-service.yaml",
        None,
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {
                "selector": selector,
                "ports": [{"name": "webhook-server", "port": 443, "protocol": "TCP", "targetPort": port}],
            },
        }),
        m,
    )
}

/// The `annotations` of the CRD (`keep`: the default of `crds.keep`, for
/// `helm.sh/resource-policy`)
/// and of the webhook configuration: cert-manager's CA injection from the
/// Certificate when it issues the serving certificate.
fn inject_ca(m: &mut Markers, keep: Option<bool>) -> Value {
    let cert = suffixed(m, "webhook-cert");
    let inject = format!("cert-manager.io/inject-ca-from: {{{{ .Release.Namespace }}}}/{cert}");
    annotations(m, keep, Some(inject))
}

/// Annotations present under conditions: `helm.sh/resource-policy: keep`
/// with `crds.keep` (when `keep` is given: its default value decides the
/// concrete render) and `inject` (cert-manager's CA injection) with
/// cert-manager.
fn annotations(m: &mut Markers, keep: Option<bool>, inject: Option<String>) -> Value {
    const KEEP: &str = "helm.sh/resource-policy: keep";
    let helm = match (keep.is_some(), &inject) {
        (true, Some(inject)) => vec![
            format!("{{{{- if or .Values.crds.keep ({CERT_MANAGER}) }}}}"),
            "annotations:".to_owned(),
            "  {{- if .Values.crds.keep }}".to_owned(),
            format!("  {KEEP}"),
            "  {{- end }}".to_owned(),
            format!("  {{{{- if {CERT_MANAGER} }}}}"),
            format!("  {inject}"),
            "  {{- end }}".to_owned(),
            "{{- end }}".to_owned(),
        ],
        (false, Some(inject)) => annotation_when(CERT_MANAGER, inject),
        (true, None) => annotation_when(".Values.crds.keep", KEEP),
        (false, None) => Vec::new(),
    };
    let concrete = if keep == Some(true) {
        vec!["annotations:".to_owned(), format!("  {KEEP}")]
    } else {
        Vec::new()
    };
    m.lines(helm, concrete)
}

/// `annotations:` with one `line`, rendered when `condition` holds.
fn annotation_when(condition: &str, line: &str) -> Vec<String> {
    vec![
        format!("{{{{- if {condition} }}}}"),
        "annotations:".to_owned(),
        format!("  {line}"),
        "{{- end }}".to_owned(),
    ]
}

fn validating_webhook(version: &Version) -> Doc {
    let mut m = Markers::default();
    let name = fullname(&mut m);
    let mut meta = metadata(&mut m, version, name, false);
    meta["HXANN"] = inject_ca(&mut m, None);
    let (svc, ns) = (suffixed(&mut m, "webhook"), namespace(&mut m));
    let mut rules = crate::csv::validating_rules();
    for rule in &mut rules {
        rule["scope"] = json!("Namespaced");
    }
    let webhook = json!({
        "name": locust_operator::webhook::VALIDATING_WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": svc, "namespace": ns, "path": VALIDATION_PATH, "port": 443}},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "timeoutSeconds": crate::csv::WEBHOOK_TIMEOUT_SECONDS,
        "rules": rules,
    });
    Doc::new(
        "validatingwebhookconfiguration.yaml",
        Some((".Values.webhook.enabled", true)),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": meta,
            "webhooks": [webhook],
        }),
        m,
    )
}

/// The CRDs: LocustTest (with its conversion webhook, whose CA cert-manager
/// may inject) and LocustSchedule (one version: no conversion); both kept on
/// uninstall with `crds.keep`.
fn crd_docs(version: &Version, values: &Value) -> Result<Vec<Doc>, Error> {
    let keep = at(values, "crds.keep").as_bool();
    let crd_error = |e: locust_operator::crd::CrdError| Error::Crd(e.to_string());
    let mut m = Markers::default();
    let mut crd = locust_operator::crd::try_crd().map_err(crd_error)?;
    let (svc, ns) = (suffixed(&mut m, "webhook"), namespace(&mut m));
    set_webhook_conversion(
        &mut crd,
        ConversionTarget::Service {
            namespace: ns,
            name: svc,
            path: CONVERSION_PATH.to_owned(),
            port: 443,
        },
        None,
    );
    let ca_annotations = inject_ca(&mut m, keep);
    let tests = crd_doc(version, "crd.yaml", &crd, ca_annotations, m)?;
    let mut m = Markers::default();
    let schedules = locust_operator::crd::try_schedule_crd().map_err(crd_error)?;
    let keep_annotations = annotations(&mut m, keep, None);
    let schedules = crd_doc(
        version,
        "crd-locustschedules.yaml",
        &schedules,
        keep_annotations,
        m,
    )?;
    Ok(vec![tests, schedules])
}

/// The template `file` of `crd`, labelled, with `annotations`.
fn crd_doc(
    version: &Version,
    file: &'static str,
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    annotations: Value,
    mut m: Markers,
) -> Result<Doc, Error> {
    let mut object = serde_json::to_value(crd)?;
    let labels = m.include_with_values("labels", "labels", None, &labels(version));
    object["metadata"] = json!({
        "name": crd.metadata.name,
        "labels": labels,
        "HXANN": annotations,
    });
    Ok(Doc::new(file, None, object, m))
}

fn pdb(version: &Version) -> Doc {
    let mut m = Markers::default();
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name, true);
    let budget = m.lines(
        vec![
            // null means unset; 0 is a value.
            "{{- if not (kindIs \"invalid\" .Values.podDisruptionBudget.minAvailable) }}"
                .to_owned(),
            "minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}".to_owned(),
            "{{- else if not (kindIs \"invalid\" .Values.podDisruptionBudget.maxUnavailable) }}"
                .to_owned(),
            "maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}".to_owned(),
            "{{- else }}".to_owned(),
            "maxUnavailable: 1".to_owned(),
            "{{- end }}".to_owned(),
        ],
        vec!["maxUnavailable: 1".to_owned()],
    );
    let selector = m.include_with_values("matchLabels", "selectorLabels", None, &selector_labels());
    Doc::new(
        "poddisruptionbudget.yaml",
        Some((
            "and .Values.podDisruptionBudget.enabled (gt (int .Values.replicaCount) 1)",
            true,
        )),
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
            "spec": {"HXBUDGET": budget, "selector": {"matchLabels": selector}},
        }),
        m,
    )
}

/// Every template, in the order `install.yaml` lists them.
fn docs(values: &Value, version: &Version) -> Result<Vec<Doc>, Error> {
    let mut docs = crd_docs(version, values)?;
    docs.push(service_account_doc(version));
    docs.extend(rbac_docs(version)?);
    docs.push(webhook_service(version, values));
    docs.extend(metrics_docs(version, values));
    docs.push(deployment(values, version)?);
    docs.push(pdb(version));
    docs.push(validating_webhook(version));
    docs.extend(cert_manager_docs(version));
    docs.extend(otel_docs(version));
    Ok(docs)
}

/// Every file of the chart, keyed by path relative to the workspace, and
/// `install.yaml` and `docs/chart-values.md`.
pub fn render(version: &Version) -> Result<BTreeMap<String, String>, Error> {
    let defaults = values::defaults()?;
    let schema = values::schema()?;
    let mut files = BTreeMap::new();
    files.insert(format!("{CHART_DIR}/Chart.yaml"), chart_yaml(version));
    files.insert(
        format!("{CHART_DIR}/values.yaml"),
        values_yaml(&schema, &defaults),
    );
    files.insert(
        format!("{CHART_DIR}/values.schema.json"),
        format!("{}\n", serde_json::to_string_pretty(&schema)?),
    );
    files.insert(format!("{CHART_DIR}/templates/_helpers.tpl"), helpers_tpl());
    files.insert(format!("{CHART_DIR}/templates/NOTES.txt"), notes());
    files.insert(
        format!("{CHART_DIR}/README.md"),
        chart_readme(&schema, &defaults),
    );
    files.insert(
        format!("{CHART_DIR}/.helmignore"),
        "# Generated by manifests-gen; do not edit.\n.git/\n*.orig\n*~\n".to_owned(),
    );
    let header = "# Generated by manifests-gen from the operator's Rust types; do not edit.\n";
    let mut install = format!(
        "# The Locust Kubernetes Operator {version} for `kubectl apply --server-side -f install.yaml`:\n# the chart's default values, release {CHART_NAME} in namespace {INSTALL_NAMESPACE}.\n{header}---\n{}",
        crate::yaml::to_yaml(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INSTALL_NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
        )
    );
    for doc in docs(&defaults, version)? {
        let helm = doc.markers.helm(&doc.object);
        files.insert(
            format!("{CHART_DIR}/templates/{}", doc.file),
            format!(
                "{header}{}{}",
                doc.prelude,
                when(doc.cond.map(|c| c.0), helm)
            ),
        );
        if doc.cond.is_none_or(|c| c.1) {
            install.push_str("---\n");
            install.push_str(&doc.markers.concrete(&doc.object));
        }
    }
    files.insert(INSTALL_PATH.to_owned(), install);
    files.insert(VALUES_DOC_PATH.to_owned(), values_doc(&schema, &defaults));
    Ok(files)
}
