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

pub mod template;
pub mod values;

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
    /// Template condition (none: always) and whether the defaults meet it.
    cond: Option<(&'static str, bool)>,
    markers: Markers,
    object: Value,
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
                    "priorityClassName": m.with_values("priorityClassName", "priorityClassName", at(values, "priorityClassName")),
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
    Doc {
        file: "serviceaccount.yaml",
        cond: Some((".Values.serviceAccount.create", true)),
        object: json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta, "automountServiceAccountToken": true}),
        markers: m,
    }
}

fn rbac_docs(version: &Version) -> Result<Vec<Doc>, Error> {
    let mut docs = Vec::new();
    // The operator's own rules, and those of its self-managed certificate
    // (kept even with cert-manager: get/patch on two named objects).
    let mut m = Markers::default();
    let secret = suffixed(&mut m, "webhook-cert");
    let vwc = fullname(&mut m);
    let certs = locust_operator::rbac::self_managed_cert_rules(&secret, &vwc);
    let mut cluster = serde_json::to_value(locust_operator::rbac::cluster_rules())?;
    let mut namespaced = serde_json::to_value(locust_operator::rbac::namespaced_rules())?;
    if let (Some(c), Some(n)) = (cluster.as_array_mut(), namespaced.as_array_mut()) {
        c.extend(
            serde_json::to_value(&certs.cluster)?
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        n.extend(
            serde_json::to_value(&certs.namespaced)?
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name, false);
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": cluster});
    docs.push(Doc {
        file: "clusterrole.yaml",
        cond: None,
        markers: m,
        object: role,
    });

    let mut m = Markers::default();
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name.clone(), false);
    let (sa, ns) = (service_account(&mut m), namespace(&mut m));
    docs.push(Doc {
        file: "clusterrolebinding.yaml",
        cond: None,
        object: json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        }),
        markers: m,
    });

    let mut m = Markers::default();
    let secret = suffixed(&mut m, "webhook-cert");
    let vwc = fullname(&mut m);
    let certs = locust_operator::rbac::self_managed_cert_rules(&secret, &vwc);
    let mut rules = serde_json::to_value(locust_operator::rbac::namespaced_rules())?;
    if let Some(r) = rules.as_array_mut() {
        r.extend(
            serde_json::to_value(&certs.namespaced)?
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name, true);
    docs.push(Doc {
        file: "role.yaml",
        cond: None,
        object: json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules}),
        markers: m,
    });

    let mut m = Markers::default();
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name.clone(), true);
    let (sa, ns) = (service_account(&mut m), namespace(&mut m));
    docs.push(Doc {
        file: "rolebinding.yaml",
        cond: None,
        object: json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        }),
        markers: m,
    });
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
    Doc {
        file: "webhook-service.yaml",
        cond: None,
        object: json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {
                "selector": selector,
                "ports": [{"name": "webhook-server", "port": 443, "protocol": "TCP", "targetPort": port}],
            },
        }),
        markers: m,
    }
}

/// The `annotations` of the CRD (`keep`: the default of `crds.keep`, for
/// `helm.sh/resource-policy`)
/// and of the webhook configuration: cert-manager's CA injection from the
/// Certificate when it issues the serving certificate.
fn inject_ca(m: &mut Markers, keep: Option<bool>) -> Value {
    let cert = suffixed(m, "webhook-cert");
    let inject = format!("cert-manager.io/inject-ca-from: {{{{ .Release.Namespace }}}}/{cert}");
    let helm = if keep.is_some() {
        vec![
            format!("{{{{- if or .Values.crds.keep ({CERT_MANAGER}) }}}}"),
            "annotations:".to_owned(),
            "  {{- if .Values.crds.keep }}".to_owned(),
            "  helm.sh/resource-policy: keep".to_owned(),
            "  {{- end }}".to_owned(),
            format!("  {{{{- if {CERT_MANAGER} }}}}"),
            format!("  {inject}"),
            "  {{- end }}".to_owned(),
            "{{- end }}".to_owned(),
        ]
    } else {
        vec![
            format!("{{{{- if {CERT_MANAGER} }}}}"),
            "annotations:".to_owned(),
            format!("  {inject}"),
            "{{- end }}".to_owned(),
        ]
    };
    let concrete = if keep == Some(true) {
        vec![
            "annotations:".to_owned(),
            "  helm.sh/resource-policy: keep".to_owned(),
        ]
    } else {
        Vec::new()
    };
    m.lines(helm, concrete)
}

fn validating_webhook(version: &Version) -> Doc {
    let mut m = Markers::default();
    let name = fullname(&mut m);
    let mut meta = metadata(&mut m, version, name, false);
    meta["HXANN"] = inject_ca(&mut m, None);
    let (svc, ns) = (suffixed(&mut m, "webhook"), namespace(&mut m));
    let webhook = serde_json::json!({
        "name": locust_operator::webhook::VALIDATING_WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": svc, "namespace": ns, "path": VALIDATION_PATH, "port": 443}},
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "timeoutSeconds": crate::csv::WEBHOOK_TIMEOUT_SECONDS,
        "rules": [{
            "apiGroups": [locust_operator::api::GROUP],
            "apiVersions": ["v2"],
            "resources": [locust_operator::api::PLURAL],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }],
    });
    Doc {
        file: "validatingwebhookconfiguration.yaml",
        cond: Some((".Values.webhook.enabled", true)),
        object: json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": meta,
            "webhooks": [webhook],
        }),
        markers: m,
    }
}

fn crd_doc(version: &Version, values: &Value) -> Result<Doc, Error> {
    let mut m = Markers::default();
    let mut crd = locust_operator::crd::try_crd().map_err(|e| Error::Crd(e.to_string()))?;
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
    let mut object = serde_json::to_value(&crd)?;
    let annotations = inject_ca(&mut m, at(values, "crds.keep").as_bool());
    let labels = m.include_with_values("labels", "labels", None, &labels(version));
    object["metadata"] = json!({
        "name": locust_operator::api::CRD_NAME,
        "labels": labels,
        "HXANN": annotations,
    });
    Ok(Doc {
        file: "crd.yaml",
        cond: None,
        markers: m,
        object,
    })
}

fn pdb(version: &Version) -> Doc {
    let mut m = Markers::default();
    let name = fullname(&mut m);
    let meta = metadata(&mut m, version, name, true);
    let budget = m.lines(
        vec![
            "{{- if hasKey .Values.podDisruptionBudget \"minAvailable\" }}".to_owned(),
            "minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}".to_owned(),
            "{{- else }}".to_owned(),
            "maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable | default 1 }}"
                .to_owned(),
            "{{- end }}".to_owned(),
        ],
        vec!["maxUnavailable: 1".to_owned()],
    );
    let selector = m.include_with_values("matchLabels", "selectorLabels", None, &selector_labels());
    Doc {
        file: "poddisruptionbudget.yaml",
        cond: Some((
            "and .Values.podDisruptionBudget.enabled (gt (int .Values.replicaCount) 1)",
            true,
        )),
        object: json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta,
            "spec": {"HXBUDGET": budget, "selector": {"matchLabels": selector}},
        }),
        markers: m,
    }
}

fn metrics_docs(version: &Version, values: &Value) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut m = Markers::default();
    let name = suffixed(&mut m, "metrics");
    let mut meta = metadata(&mut m, version, name, true);
    meta["labels"] = m.include_with_values(
        "labels",
        "metricsLabels",
        None,
        &json!({"app.kubernetes.io/component": "metrics"})
            .as_object()
            .map(|extra| {
                let mut all = labels(version);
                if let Some(o) = all.as_object_mut() {
                    o.extend(extra.clone());
                }
                all
            })
            .unwrap_or_default(),
    );
    let selector = m.include_with_values("selector", "selectorLabels", None, &selector_labels());
    let port = m.inline(
        "{{ .Values.metrics.port }}",
        at(values, "metrics.port").to_string(),
    );
    docs.push(Doc {
        file: "metrics-service.yaml",
        cond: Some((".Values.metrics.enabled", true)),
        object: json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": selector, "ports": [{"name": crate::monitoring::PORT_NAME, "port": port, "protocol": "TCP", "targetPort": crate::monitoring::PORT_NAME}]},
        }),
        markers: m,
    });

    let mut m = Markers::default();
    let name = suffixed(&mut m, "metrics-reader");
    let meta = metadata(&mut m, version, name, false);
    docs.push(Doc {
        file: "metrics-reader-clusterrole.yaml",
        cond: Some((".Values.metrics.enabled", true)),
        object: json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta,
            "rules": locust_operator::rbac::metrics_reader_rules(),
        }),
        markers: m,
    });

    let mut m = Markers::default();
    let name = suffixed(&mut m, "metrics");
    let mut meta = metadata(&mut m, version, name, true);
    meta["labels"] = m.include_with_values(
        "labels",
        "metricsLabels",
        Some("metrics.serviceMonitor.labels"),
        &Value::Null,
    );
    let selector = m.include_with_values("matchLabels", "metricsLabels", None, &Value::Null);
    let mut endpoint = crate::monitoring::service_monitor()["spec"]["endpoints"][0].clone();
    endpoint["interval"] =
        Value::String(m.inline("{{ .Values.metrics.serviceMonitor.interval }}", "30s"));
    endpoint["scheme"] = Value::String(m.inline(
        "{{ if .Values.metrics.secure }}https{{ else }}http{{ end }}",
        "https",
    ));
    docs.push(Doc {
        file: "servicemonitor.yaml",
        cond: Some((
            "and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled",
            false,
        )),
        object: json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta,
            "spec": {"selector": {"matchLabels": selector}, "endpoints": [endpoint]},
        }),
        markers: m,
    });
    docs
}

fn cert_manager_docs(version: &Version) -> Vec<Doc> {
    let mut m = Markers::default();
    let name = suffixed(&mut m, "selfsigned");
    let meta = metadata(&mut m, version, name, true);
    let issuer = Doc {
        file: "certmanager-issuer.yaml",
        cond: Some((CERT_MANAGER, false)),
        object: json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta, "spec": {"selfSigned": {}}}),
        markers: m,
    };
    let mut m = Markers::default();
    let name = suffixed(&mut m, "webhook-cert");
    let meta = metadata(&mut m, version, name.clone(), true);
    let svc = suffixed(&mut m, "webhook");
    let ns = namespace(&mut m);
    let issuer_name = suffixed(&mut m, "selfsigned");
    let cert = Doc {
        file: "certmanager-certificate.yaml",
        cond: Some((CERT_MANAGER, false)),
        object: json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta,
            "spec": {
                "secretName": name,
                "dnsNames": [format!("{svc}.{ns}.svc"), format!("{svc}.{ns}.svc.cluster.local")],
                "issuerRef": {"kind": "Issuer", "name": issuer_name},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
        }),
        markers: m,
    };
    vec![issuer, cert]
}

fn otel_docs(version: &Version) -> Vec<Doc> {
    const COND: &str = ".Values.otelCollector.enabled";
    let otel_labels = json!({"app.kubernetes.io/name": "otel-collector", "app.kubernetes.io/instance": CHART_NAME});
    let mut docs = Vec::new();

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name, true);
    docs.push(Doc {
        file: "otel-collector-configmap.yaml",
        cond: Some((COND, false)),
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"HXCONF": m.lines(vec!["config.yaml: |".to_owned(), "  {{- .Values.otelCollector.config | nindent {IND2} }}".to_owned()], Vec::new())}}),
        markers: m,
    });

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name.clone(), true);
    let sel = m.include_with_values("matchLabels", "otelSelectorLabels", None, &otel_labels);
    let pod_labels = m.include_with_values("labels", "otelSelectorLabels", None, &otel_labels);
    docs.push(Doc {
        file: "otel-collector-deployment.yaml",
        cond: Some((COND, false)),
        object: json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {
                "replicas": m.inline("{{ .Values.otelCollector.replicas }}", "1"),
                "selector": {"matchLabels": sel},
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": {"checksum/config": m.inline("{{ .Values.otelCollector.config | sha256sum }}", "")}},
                    "spec": {
                        "securityContext": m.with_values("securityContext", "otelCollector.podSecurityContext", &Value::Null),
                        "containers": [{
                            "name": "otel-collector",
                            "image": m.inline("{{ .Values.otelCollector.image }}", ""),
                            "args": ["--config=/conf/config.yaml"],
                            "ports": [
                                {"name": "otlp-grpc", "containerPort": 4317, "protocol": "TCP"},
                                {"name": "otlp-http", "containerPort": 4318, "protocol": "TCP"},
                                {"name": "health", "containerPort": 13133, "protocol": "TCP"},
                            ],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "health"}},
                            "livenessProbe": {"httpGet": {"path": "/", "port": "health"}},
                            "resources": m.with_values("resources", "otelCollector.resources", &Value::Null),
                            "securityContext": m.with_values("securityContext", "otelCollector.containerSecurityContext", &Value::Null),
                            "volumeMounts": [{"name": "config", "mountPath": "/conf", "readOnly": true}],
                        }],
                        "volumes": [{"name": "config", "configMap": {"name": name}}],
                    },
                },
            },
        }),
        markers: m,
    });

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name, true);
    let sel = m.include_with_values("selector", "otelSelectorLabels", None, &otel_labels);
    docs.push(Doc {
        file: "otel-collector-service.yaml",
        cond: Some((COND, false)),
        object: json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": sel, "ports": [
                {"name": "otlp-grpc", "port": 4317, "protocol": "TCP", "targetPort": "otlp-grpc"},
                {"name": "otlp-http", "port": 4318, "protocol": "TCP", "targetPort": "otlp-http"},
            ]},
        }),
        markers: m,
    });
    docs
}

/// Every template, in the order `install.yaml` lists them.
fn docs(values: &Value, version: &Version) -> Result<Vec<Doc>, Error> {
    let mut docs = vec![crd_doc(version, values)?, service_account_doc(version)];
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

fn helpers_tpl() -> String {
    let c = CHART_NAME;
    let affinity = crate::yaml::to_yaml(
        &serde_json::to_value(crate::csv::deployment_spec("image"))
            .map(|v| v["template"]["spec"]["affinity"].clone())
            .unwrap_or_default(),
    );
    format!(
        r#"{{{{/* Generated by manifests-gen from the operator's Rust types; do not edit. */}}}}

{{{{/* The chart name, or nameOverride. */}}}}
{{{{- define "{c}.name" -}}}}
{{{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}}}
{{{{- end }}}}

{{{{/* Name of every object: fullnameOverride, else the release name when it
contains the chart name, else <release>-<chart>. */}}}}
{{{{- define "{c}.fullname" -}}}}
{{{{- if .Values.fullnameOverride }}}}
{{{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}}}
{{{{- else }}}}
{{{{- $name := default .Chart.Name .Values.nameOverride }}}}
{{{{- if contains $name .Release.Name }}}}
{{{{- .Release.Name | trunc 63 | trimSuffix "-" }}}}
{{{{- else }}}}
{{{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}}}
{{{{- end }}}}
{{{{- end }}}}
{{{{- end }}}}

{{{{- define "{c}.selectorLabels" -}}}}
app.kubernetes.io/instance: {{{{ .Release.Name }}}}
app.kubernetes.io/name: {{{{ include "{c}.name" . }}}}
{{{{- end }}}}

{{{{- define "{c}.labels" -}}}}
{{{{ include "{c}.selectorLabels" . }}}}
app.kubernetes.io/managed-by: {{{{ .Release.Service }}}}
app.kubernetes.io/version: {{{{ .Chart.AppVersion | quote }}}}
helm.sh/chart: {{{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}}}
{{{{- end }}}}

{{{{- define "{c}.metricsLabels" -}}}}
{{{{ include "{c}.labels" . }}}}
app.kubernetes.io/component: metrics
{{{{- end }}}}

{{{{- define "{c}.podAnnotations" -}}}}
kubectl.kubernetes.io/default-container: {CONTAINER_NAME}
{{{{- end }}}}

{{{{- define "{c}.otelSelectorLabels" -}}}}
app.kubernetes.io/instance: {{{{ .Release.Name }}}}
app.kubernetes.io/name: otel-collector
{{{{- end }}}}

{{{{- define "{c}.serviceAccountName" -}}}}
{{{{- if .Values.serviceAccount.create }}}}
{{{{- default (include "{c}.fullname" .) .Values.serviceAccount.name }}}}
{{{{- else }}}}
{{{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}}}
{{{{- end }}}}
{{{{- end }}}}

{{{{- define "{c}.webhookServiceName" -}}}}
{{{{- printf "%s-webhook" (include "{c}.fullname" .) | trunc 63 | trimSuffix "-" }}}}
{{{{- end }}}}

{{{{- define "{c}.certSecretName" -}}}}
{{{{- printf "%s-webhook-cert" (include "{c}.fullname" .) | trunc 63 | trimSuffix "-" }}}}
{{{{- end }}}}

{{{{- define "{c}.image" -}}}}
{{{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}}}
{{{{- end }}}}

{{{{/* Nodes of the image's architectures and OS. */}}}}
{{{{- define "{c}.defaultAffinity" -}}}}
{affinity}{{{{- end }}}}
"#
    )
}

fn notes() -> String {
    format!(
        r#"The Locust Kubernetes Operator {{{{ .Chart.AppVersion }}}} is installed in {{{{ .Release.Namespace }}}}.

  kubectl -n {{{{ .Release.Namespace }}}} rollout status deployment/{{{{ include "{c}.fullname" . }}}}

Then run a load test (a LocustTest in any namespace, with its locustfile in a ConfigMap):

  kubectl create configmap demo-locustfile --from-file=locustfile.py
  kubectl apply -f https://raw.githubusercontent.com/AbdelrhmanHamouda/locust-k8s-operator/main/operator/samples/locust_v2_locusttest.yaml
  kubectl get locusttests -w

{{{{- if .Values.metrics.enabled }}}}

Metrics: Service {{{{ include "{c}.fullname" . }}}}-metrics, port {{{{ .Values.metrics.port }}}} ({{{{ if .Values.metrics.secure }}}}HTTPS, a token bound to ClusterRole {{{{ include "{c}.fullname" . }}}}-metrics-reader{{{{ else }}}}plain HTTP{{{{ end }}}}).
{{{{- end }}}}
{{{{- if .Values.crds.keep }}}}

`helm uninstall` keeps the CRD {crd} and every LocustTest; delete the CRD to remove them.
{{{{- end }}}}
Docs: https://github.com/AbdelrhmanHamouda/locust-k8s-operator/blob/main/docs/install.md
"#,
        c = CHART_NAME,
        crd = locust_operator::api::CRD_NAME,
    )
}

fn chart_yaml(version: &Version) -> String {
    let chart = json!({
        "apiVersion": "v2",
        "name": CHART_NAME,
        "description": "Kubernetes operator for distributed Locust load tests: a LocustTest runs as a master Job, a worker Job and a Service, with results and thresholds in its status.",
        "type": "application",
        "version": version.to_string(),
        "appVersion": version.to_string(),
        "kubeVersion": format!(">={}-0", crate::csv::MIN_KUBE_VERSION),
        "home": crate::REPOSITORY,
        "sources": [crate::REPOSITORY],
        "keywords": ["locust", "load-testing", "performance", "operator"],
        "maintainers": [{"name": "Locust Kubernetes Operator maintainers", "url": crate::REPOSITORY}],
    });
    format!(
        "# Generated by manifests-gen from the operator's Rust types; do not edit.\n{}",
        crate::yaml::to_yaml(&chart)
    )
}

/// `values.yaml`: the defaults, each key preceded by its description.
fn values_yaml(schema: &Value, defaults: &Value) -> String {
    let mut out = String::from(
        "# Generated by manifests-gen from the chart's values type; do not edit.\n# Every value: docs/chart-values.md. Checked by values.schema.json.\n",
    );
    emit_values(&mut out, schema, schema, defaults, 0, true);
    out
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs").and_then(|d| d.get(name)))
            .unwrap_or(node),
        None => node,
    }
}

/// The chart's own objects (closed) are expanded key by key; everything
/// else is written as its value.
fn emit_values(
    out: &mut String,
    root: &Value,
    node: &Value,
    value: &Value,
    indent: usize,
    top: bool,
) {
    let node = resolve(root, node);
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    let pad = " ".repeat(indent);
    let mut first = true;
    for (key, sub) in props {
        let Some(v) = value.get(key) else { continue };
        let sub_r = resolve(root, sub);
        if top && !first {
            out.push('\n');
        }
        first = false;
        if let Some(d) = sub
            .get("description")
            .or_else(|| sub_r.get("description"))
            .and_then(Value::as_str)
        {
            for line in d.lines() {
                out.push_str(&format!("{pad}# {line}\n"));
            }
        }
        let closed = sub_r.get("additionalProperties") == Some(&Value::Bool(false))
            && sub_r.get("properties").is_some()
            && v.as_object().is_some_and(|o| !o.is_empty());
        if closed {
            out.push_str(&format!("{pad}{key}:\n"));
            emit_values(out, root, sub_r, v, indent + 2, false);
        } else {
            for line in keyed_or_empty(key, v) {
                out.push_str(&format!("{pad}{line}\n"));
            }
        }
    }
}

fn keyed_or_empty(key: &str, v: &Value) -> Vec<String> {
    match v {
        Value::Object(o) if o.is_empty() => vec![format!("{key}: {{}}")],
        Value::Array(a) if a.is_empty() => vec![format!("{key}: []")],
        Value::String(s) if s.is_empty() => vec![format!("{key}: \"\"")],
        _ => {
            let mut map = serde_json::Map::new();
            map.insert(key.to_owned(), v.clone());
            crate::yaml::to_yaml(&Value::Object(map))
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }
}

/// `docs/chart-values.md`: every value with its type, default and description.
fn values_doc(schema: &Value, defaults: &Value) -> String {
    let mut rows = Vec::new();
    collect_rows(&mut rows, schema, schema, defaults, "");
    let mut out = String::from(
        "<!-- Generated by manifests-gen from the chart's values type (manifests-gen/src/chart/values.rs); do not edit. -->\n# Helm chart values\n\nEvery value of `charts/locust-k8s-operator`, with its default. `values.schema.json` rejects any other key and any value of the wrong type; the upstream Go operator chart's keys are accepted with the same meaning (docs/install.md, \"From the upstream chart\").\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n",
    );
    for (key, ty, default, desc) in rows {
        out.push_str(&format!(
            "| `{key}` | {ty} | {default} | {} |\n",
            desc.replace('|', "\\|").replace('\n', " ")
        ));
    }
    out
}

fn type_name(root: &Value, node: &Value) -> String {
    let node = resolve(root, node);
    if let Some(t) = node.get("type") {
        return match t {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| *s != "null")
                .collect::<Vec<_>>()
                .join(" or "),
            _ => "any".to_owned(),
        };
    }
    if let Some(c) = node.get("const") {
        return format!("`{c}` only");
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(alts) = node.get(k).and_then(Value::as_array) {
            return alts
                .iter()
                .map(|a| type_name(root, a))
                .filter(|s| s != "null")
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    "object".to_owned()
}

fn collect_rows(
    rows: &mut Vec<(String, String, String, String)>,
    root: &Value,
    node: &Value,
    value: &Value,
    prefix: &str,
) {
    let node = resolve(root, node);
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let sub_r = resolve(root, sub);
        let v = value.get(key).cloned().unwrap_or(Value::Null);
        let desc = sub
            .get("description")
            .or_else(|| sub_r.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let closed = sub_r.get("additionalProperties") == Some(&Value::Bool(false))
            && sub_r.get("properties").is_some()
            && v.as_object().is_some_and(|o| !o.is_empty());
        if closed {
            collect_rows(rows, root, sub_r, &v, &path);
            continue;
        }
        let default = match &v {
            Value::Null => "—".to_owned(),
            Value::String(s) if s.contains('\n') => "(see values.yaml)".to_owned(),
            other => format!("`{}`", serde_json::to_string(other).unwrap_or_default()),
        };
        rows.push((path, type_name(root, sub), default, desc));
    }
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
            format!("{header}{}", when(doc.cond.map(|c| c.0), helm)),
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

#[cfg(test)]
mod tests {
    use clap::Parser;
    use locust_operator::config::WebhookCertMode;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: OperatorConfig,
    }

    fn install() -> Vec<Value> {
        let files = render(&Version::new(3, 0, 0)).unwrap();
        crate::yaml::documents(&files[INSTALL_PATH])
            .unwrap()
            .into_iter()
            .filter(|d| !d.is_null())
            .collect()
    }

    fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    #[test]
    fn install_yaml_runs_the_operator_with_flags_it_accepts_and_names_that_agree() {
        let docs = install();
        let deployment = find(&docs, "Deployment", CHART_NAME);
        let pod = &deployment["spec"]["template"]["spec"];
        let args: Vec<String> = pod["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let cfg = Cli::try_parse_from(std::iter::once("operator".to_owned()).chain(args.clone()))
            .unwrap_or_else(|e| panic!("{e}: {args:?}"))
            .config;
        cfg.validate().unwrap();
        // The chart's defaults are the operator's own.
        let defaults = OperatorConfig::default();
        assert_eq!(cfg.pod_cpu_request, defaults.pod_cpu_request);
        assert_eq!(cfg.pod_memory_limit, defaults.pod_memory_limit);
        assert_eq!(cfg.metrics_bind_address, defaults.metrics_bind_address);
        assert_eq!(cfg.metrics_secure, defaults.metrics_secure);
        assert_eq!(cfg.webhook_port, defaults.webhook_port);
        assert_eq!(cfg.webhook_cert_dir, defaults.webhook_cert_dir);
        // Self-managed certificates for the objects the manifest holds.
        assert_eq!(cfg.webhook_cert_mode, WebhookCertMode::SelfManaged);
        let service = find(&docs, "Service", &cfg.webhook_service_name);
        assert_eq!(
            service["spec"]["ports"][0]["targetPort"],
            json!(cfg.webhook_port)
        );
        assert_eq!(service["spec"]["selector"], selector_labels());
        let vwc = find(
            &docs,
            "ValidatingWebhookConfiguration",
            &cfg.webhook_configuration_name,
        );
        let crd = find(
            &docs,
            "CustomResourceDefinition",
            locust_operator::api::CRD_NAME,
        );
        let conversion = &crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"];
        for client in [conversion, &vwc["webhooks"][0]["clientConfig"]["service"]] {
            assert_eq!(client["name"], json!(cfg.webhook_service_name));
            assert_eq!(client["namespace"], INSTALL_NAMESPACE);
            assert_eq!(client["port"], service["spec"]["ports"][0]["port"]);
        }
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        // RBAC names the certificate Secret and the webhook configuration.
        let role = find(&docs, "Role", CHART_NAME);
        assert!(
            role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["resourceNames"] == json!([cfg.webhook_cert_secret]))
        );
        let cluster_role = find(&docs, "ClusterRole", CHART_NAME);
        assert!(
            cluster_role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["resourceNames"] == json!([cfg.webhook_configuration_name]))
        );
        // The pods run as the bound ServiceAccount, selected by their labels.
        let binding = find(&docs, "ClusterRoleBinding", CHART_NAME);
        assert_eq!(binding["subjects"][0]["name"], pod["serviceAccountName"]);
        assert_eq!(binding["subjects"][0]["namespace"], INSTALL_NAMESPACE);
        assert_eq!(
            deployment["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"]
        );
        // The serving certificate directory is writable (read-only root).
        let mount = &pod["containers"][0]["volumeMounts"][0];
        assert_eq!(mount["readOnly"], false);
        assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        // Every namespaced object is in the install namespace.
        for d in &docs {
            if let Some(ns) = d["metadata"].get("namespace") {
                assert_eq!(ns, INSTALL_NAMESPACE, "{}", d["kind"]);
            }
        }
    }

    #[test]
    fn every_locust_pod_flag_is_an_operator_flag() {
        let mut args = vec!["operator".to_owned()];
        for (flag, ..) in locust_pod_flags() {
            args.push(format!("{flag}=1"));
        }
        assert_eq!(args.len(), 19);
        let cfg = Cli::try_parse_from(args).unwrap().config;
        assert_eq!(cfg.worker_ephemeral_storage_limit.as_deref(), Some("1"));
        assert_eq!(cfg.master_cpu_request.as_deref(), Some("1"));
    }

    #[test]
    fn values_yaml_holds_the_defaults_and_reads_back_as_the_values_type() {
        let files = render(&Version::new(3, 0, 0)).unwrap();
        let text = &files[&format!("{CHART_DIR}/values.yaml")];
        let read: Value = crate::yaml::from_str(text).unwrap();
        assert_eq!(read, values::defaults().unwrap());
        let typed: values::Values = serde_json::from_value(read).unwrap();
        assert_eq!(typed, values::Values::default());
        assert!(text.contains("# Operator replicas."), "{text}");
    }

    #[test]
    fn an_upstream_values_file_reads_as_the_values_type_and_unknown_keys_do_not() {
        // The upstream Go operator chart's own values.yaml (v2.x), its keys as it spells them.
        let upstream = json!({
            "image": {"repository": "lotest/locust-k8s-operator", "tag": "", "pullPolicy": "IfNotPresent", "pullSecrets": []},
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "10m", "memory": "64Mi"}},
            "replicaCount": 2, "nameOverride": "", "fullnameOverride": "locust-operator", "extraEnv": [],
            "terminationGracePeriodSeconds": 10,
            "leaderElection": {"enabled": true},
            "podDisruptionBudget": {"enabled": true, "maxUnavailable": 1},
            "metrics": {"enabled": false, "port": 8080, "secure": false},
            "webhook": {"enabled": false, "port": 9443, "certManager": {"enabled": true}},
            "locustPods": {
                "resources": {"requests": {"cpu": "250m", "memory": "128Mi", "ephemeralStorage": "30M"}, "limits": {"cpu": "1000m", "memory": "1024Mi", "ephemeralStorage": "50M"}},
                "masterResources": {}, "workerResources": {},
                "affinityInjection": true, "tolerationsInjection": true, "ttlSecondsAfterFinished": "",
                "metricsExporter": {"image": "containersol/locust_exporter:v0.5.0", "port": 9646, "pullPolicy": "IfNotPresent"},
            },
            "otelCollector": {"enabled": false, "image": "otel/opentelemetry-collector-contrib:0.145.0", "replicas": 1, "config": "receivers: {}\n"},
            "serviceAccount": {"create": true, "name": "", "annotations": {}},
            "podAnnotations": {},
            "podSecurityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containerSecurityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
            "nodeSelector": {}, "tolerations": [], "affinity": {},
            "kafka": {"enabled": false, "bootstrapServers": "localhost:9092", "security": {"enabled": false}},
            "k8s": {"clusterRole": {"enabled": true}},
        });
        let typed: values::Values = serde_json::from_value(upstream.clone()).unwrap();
        assert_eq!(typed.fullname_override, "locust-operator");
        assert_eq!(
            typed
                .locust_pods
                .resources
                .limits
                .unwrap()
                .ephemeral_storage
                .unwrap()
                .0,
            "50M"
        );
        let mut unknown = upstream;
        unknown["locustPods"]["resourcez"] = json!({});
        assert!(serde_json::from_value::<values::Values>(unknown).is_err());
    }

    #[test]
    fn the_schema_closes_the_charts_own_objects_and_pins_the_upstream_switches() {
        let schema = values::schema().unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let defs = &schema["$defs"];
        for def in [
            "Image",
            "Metrics",
            "Webhook",
            "LocustPods",
            "PodResources",
            "Quantities",
            "OtelCollector",
        ] {
            assert_eq!(defs[def]["additionalProperties"], false, "{def}");
        }
        assert_eq!(
            defs["LocustPods"]["properties"]["affinityInjection"]["const"],
            true
        );
        assert_eq!(defs["Kafka"]["properties"]["enabled"]["const"], false);
    }
}
