//! The Helm chart `charts/locust-k8s-operator` renders what it promises, with
//! the pinned `helm` (`<tools>/bin/helm`, built by `olm-tests/tools/build.sh`;
//! without it the tests skip, and fail with `CI` or `LOCUST_REQUIRE_TOOLS`
//! set). No cluster: `helm lint` and `helm template` only, with helm's
//! cache, config and data homes in a temporary directory.
//!
//! - `chart_lints_strict`: `helm lint --strict` passes with the defaults,
//!   with every variant of [`VARIANTS`] and with every file in
//!   `tests/chart_values/`.
//! - `default_render_is_install_yaml`: `helm template` with the defaults
//!   (release `locust-k8s-operator`, namespace `locust-operator`) gives the
//!   objects of `install.yaml` without its Namespace, compared as parsed
//!   objects keyed by (kind, name); a difference names the object and path.
//! - `schema_rejects_bad_values`: unknown keys, mistyped values and the
//!   upstream switches this operator cannot honour fail `helm template` with
//!   a message naming the key.
//! - `upstream_v2_values_render_as_documented`:
//!   `tests/chart_values/upstream-v2.yaml` (a values file of the upstream Go
//!   operator's chart 2.x) lands where each value belongs.
//! - `webhook_disabled`, `cert_manager`, `service_monitor`,
//!   `metrics_disabled`, `crds_not_kept`, `single_replica_has_no_pdb`,
//!   `existing_service_account`, `empty_pod_cpu_limit`: one variant each.
//! - `every_operator_flag_parses`: the operator container's args of every
//!   render are accepted by the operator's own CLI parser and pass
//!   `OperatorConfig::validate` (every other render is checked the same way).
//! - `diff_names_the_object_path`: the golden comparison's report.
//! - `pdb_keeps_max_unavailable_zero_and_ignores_null_min_available` and
//!   `values_the_operator_rejects_fail_the_render`: a `0` stays `0`, a `null`
//!   is unset, and values the operator would refuse at start-up (not a
//!   quantity, not a RuntimeClass name, two servers on one port) fail the
//!   render instead.

use std::path::PathBuf;
use std::process::Output;

use clap::Parser;
use locust_operator::api::CRD_NAME;
use locust_operator::config::OperatorConfig;
use olm_tests::operator::workspace_root;
use serde_json::{Value, json};

use olm_tests::helm::CHART;
const RELEASE: &str = "locust-k8s-operator";
const NAMESPACE: &str = "locust-operator";
/// Names of the default release's objects (the release name contains the
/// chart name, so it is the full name).
const WEBHOOK_SVC: &str = "locust-k8s-operator-webhook";
const METRICS_SVC: &str = "locust-k8s-operator-metrics";
const METRICS_READER: &str = "locust-k8s-operator-metrics-reader";
const UPSTREAM_V2: &str = "olm-tests/tests/chart_values/upstream-v2.yaml";
/// The upstream chart's exporter sidecar image, in `upstream-v2.yaml` only.
const EXPORTER_IMAGE: &str = "containersol/locust_exporter";

/// Valid `--set` variants: each is linted, rendered and its operator args parsed.
const VARIANTS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    ("webhook disabled", &["--set", "webhook.enabled=false"]),
    (
        "cert-manager",
        &["--set", "webhook.certManager.enabled=true"],
    ),
    (
        "cert-manager without webhook",
        &[
            "--set",
            "webhook.enabled=false",
            "--set",
            "webhook.certManager.enabled=true",
        ],
    ),
    (
        "service monitor",
        &["--set", "metrics.serviceMonitor.enabled=true"],
    ),
    (
        "metrics disabled",
        &[
            "--set",
            "metrics.enabled=false",
            "--set",
            "metrics.serviceMonitor.enabled=true",
        ],
    ),
    ("crds not kept", &["--set", "crds.keep=false"]),
    ("one replica", &["--set", "replicaCount=1"]),
    (
        "existing service account",
        &[
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=sa1",
        ],
    ),
    (
        "no pod cpu limit",
        &["--set", "locustPods.resources.limits.cpu="],
    ),
    (
        "pod cpu limit null",
        &["--set", "locustPods.resources.limits.cpu=null"],
    ),
    (
        "every role resource",
        &[
            "--set",
            "locustPods.masterResources.requests.cpu=500m,locustPods.masterResources.requests.memory=256Mi,locustPods.masterResources.requests.ephemeralStorage=30M",
            "--set",
            "locustPods.masterResources.limits.cpu=2,locustPods.masterResources.limits.memory=2Gi,locustPods.masterResources.limits.ephemeralStorage=50M",
            "--set",
            "locustPods.workerResources.requests.cpu=200m,locustPods.workerResources.requests.memory=100Mi,locustPods.workerResources.requests.ephemeralStorage=10M",
            "--set",
            "locustPods.workerResources.limits.cpu=800m,locustPods.workerResources.limits.memory=1Gi,locustPods.workerResources.limits.ephemeralStorage=20M",
        ],
    ),
    (
        "ttl and runtime class",
        &[
            "--set-string",
            "locustPods.ttlSecondsAfterFinished=600",
            "--set",
            "locustPods.runtimeClassName=kata",
        ],
    ),
    (
        "no leader election, plain metrics",
        &[
            "--set",
            "leaderElection.enabled=false",
            "--set",
            "metrics.secure=false,metrics.port=9090,webhook.port=10250",
        ],
    ),
];

// --- helm ------------------------------------------------------------------

/// The shared runner (`olm_tests::helm`) with this file's chart, release
/// and namespace; a failure to run helm at all fails the test.
struct Helm(olm_tests::helm::Helm);

impl Helm {
    fn new(test: &str) -> Option<Self> {
        olm_tests::helm::Helm::new(test).map(Self)
    }

    fn values_file(&self, name: &str, text: &str) -> String {
        self.0
            .values_file(name, text)
            .expect("writing a values file")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.0.run(args).expect("running helm")
    }

    /// `helm template <release> <chart> -n <namespace> <args>`: the stdout,
    /// or the stderr when helm fails.
    fn template_in(&self, release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
        self.0
            .template(CHART, release, namespace, args)
            .expect("running helm")
    }

    /// The objects `helm template` renders (release [`RELEASE`] in
    /// [`NAMESPACE`] unless given), after checking the operator's args.
    fn render_in(&self, what: &str, release: &str, namespace: &str, args: &[&str]) -> Vec<Value> {
        let text = self
            .template_in(release, namespace, args)
            .unwrap_or_else(|e| panic!("{what}: helm template {args:?} failed: {e}"));
        let docs = olm_tests::yaml::documents(&text).unwrap_or_else(|e| {
            panic!(
                "{what}: the render does not parse: {}\n{text}",
                olm_tests::yaml::describe(&e, "helm template")
            )
        });
        operator_configs(what, &docs);
        docs
    }

    fn render(&self, what: &str, args: &[&str]) -> Vec<Value> {
        self.render_in(what, RELEASE, NAMESPACE, args)
    }

    /// The stderr of a `helm template` that must fail.
    fn render_fails(&self, what: &str, args: &[&str]) -> String {
        match self.template_in(RELEASE, NAMESPACE, args) {
            Ok(text) => panic!("{what}: helm template {args:?} succeeded:\n{text}"),
            Err(stderr) => stderr,
        }
    }
}

use olm_tests::objects::{
    all_of, array, assert_none_of, by_key, find, find_opt, kind, listing, name, one_of, str_of,
};

/// The operator's container (named `operator`) of a Deployment, if it has one.
fn operator_container(deployment: &Value) -> Option<&Value> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "operator")
}

/// The one Deployment running the operator.
fn operator_deployment(docs: &[Value]) -> &Value {
    let found: Vec<&Value> = all_of(docs, "Deployment")
        .into_iter()
        .filter(|d| operator_container(d).is_some())
        .collect();
    match found.as_slice() {
        [one] => one,
        other => panic!(
            "expected one operator Deployment, found {}: {}",
            other.len(),
            listing(docs)
        ),
    }
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn operator_args(docs: &[Value]) -> Vec<String> {
    let c = operator_container(operator_deployment(docs)).unwrap();
    array(&c["args"], "the operator's args")
        .iter()
        .map(|a| str_of(a, "an arg").to_owned())
        .collect()
}

/// The value of `--<flag>=<value>` in `args` (`None` when absent).
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    let mut values = args.iter().filter_map(|a| a.strip_prefix(&prefix));
    let value = values.next();
    assert!(values.next().is_none(), "--{name} given twice: {args:?}");
    value
}

fn has_arg(args: &[String], arg: &str) {
    assert!(args.iter().any(|a| a == arg), "no {arg} in {args:#?}");
}

/// Whether `selector` (matchLabels) selects an object with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

// --- the operator's CLI ----------------------------------------------------

#[derive(Parser, Debug)]
#[command(name = "locust-k8s-operator")]
struct Cli {
    #[command(flatten)]
    config: OperatorConfig,
}

/// Parses the args of every operator container in `docs` with the
/// operator's own CLI and validates the result.
fn operator_configs(what: &str, docs: &[Value]) -> Vec<OperatorConfig> {
    let mut configs = Vec::new();
    for d in all_of(docs, "Deployment") {
        let Some(c) = operator_container(d) else {
            continue;
        };
        let args: Vec<&str> = array(&c["args"], "the operator's args")
            .iter()
            .map(|a| str_of(a, "an arg"))
            .collect();
        for a in &args {
            assert!(
                a.starts_with("--") && a.contains('='),
                "{what}: {a:?} is not a --flag=value (args {args:?})"
            );
        }
        let cli = Cli::try_parse_from(std::iter::once("locust-k8s-operator").chain(args.clone()))
            .unwrap_or_else(|e| {
                panic!(
                    "{what}: Deployment {} args are rejected by the operator's CLI: {e}\nargs: {args:#?}",
                    name(d)
                )
            });
        if let Err(e) = cli.config.validate() {
            panic!(
                "{what}: Deployment {} args fail OperatorConfig::validate: {e}\nargs: {args:#?}",
                name(d)
            );
        }
        configs.push(cli.config);
    }
    assert!(
        !configs.is_empty(),
        "{what}: no operator Deployment among {}",
        listing(docs)
    );
    configs
}

// --- comparing objects -----------------------------------------------------

/// Every path where `a` (the chart) and `b` (install.yaml) differ.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    olm_tests::helm::diff(path, a, b, ("the chart", "install.yaml"), out);
}

// --- tests -----------------------------------------------------------------

#[test]
fn chart_lints_strict() {
    let Some(helm) = Helm::new("chart_lints_strict") else {
        return;
    };
    let lint = |what: &str, extra: &[&str]| {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(extra);
        let out = helm.run(&args);
        assert!(
            out.status.success(),
            "helm lint --strict ({what}) exited with {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (what, args) in VARIANTS {
        lint(what, args);
    }
    let dir = workspace_root().join("olm-tests/tests/chart_values");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("upstream-v2.yaml")),
        "{files:?}"
    );
    for file in &files {
        let f = file.to_str().unwrap();
        lint(f, &["--values", f]);
    }
    // Lint checks the schema too: an invalid value fails it.
    let out = helm.run(&["lint", "--strict", CHART, "--set", "replicaCont=2"]);
    assert!(!out.status.success(), "lint accepted replicaCont=2");
}

#[test]
fn default_render_is_install_yaml() {
    let Some(helm) = Helm::new("default_render_is_install_yaml") else {
        return;
    };
    let chart = by_key("helm template", &helm.render("defaults", &[]));
    let path = workspace_root().join("install.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let install = olm_tests::yaml::documents(&text)
        .unwrap_or_else(|e| panic!("{}", olm_tests::yaml::describe(&e, "install.yaml")));
    let namespaces: Vec<&Value> = install.iter().filter(|d| kind(d) == "Namespace").collect();
    assert_eq!(namespaces.len(), 1, "install.yaml: {}", listing(&install));
    assert_eq!(name(namespaces[0]), NAMESPACE);
    let install: Vec<Value> = install
        .into_iter()
        .filter(|d| kind(d) != "Namespace")
        .collect();
    let install = by_key("install.yaml", &install);

    let mut problems = Vec::new();
    for key in chart
        .keys()
        .chain(install.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (k, n) = key;
        match (chart.get(key), install.get(key)) {
            (Some(a), Some(b)) => diff(&format!("{k}/{n}"), a, b, &mut problems),
            (Some(_), None) => problems.push(format!("{k}/{n}: only in the chart")),
            (None, Some(_)) => problems.push(format!("{k}/{n}: only in install.yaml")),
            (None, None) => unreachable!(),
        }
    }
    assert!(
        problems.is_empty(),
        "helm template {RELEASE} {CHART} -n {NAMESPACE} differs from install.yaml (minus its Namespace) in {} place(s):\n{}",
        problems.len(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(chart.len() >= 12, "{:?}", chart.keys());
}

#[test]
fn schema_rejects_bad_values() {
    let Some(helm) = Helm::new("schema_rejects_bad_values") else {
        return;
    };
    // (what, values file text, substrings the error must contain)
    let files: &[(&str, &str, &[&str])] = &[
        (
            "unknown top-level key",
            "replicaCont: 2\n",
            &["replicaCont"],
        ),
        (
            "unknown nested key",
            "locustPods:\n  resourcez:\n    limits:\n      cpu: 1\n",
            &["/locustPods", "resourcez"],
        ),
        (
            "mistyped replicaCount",
            "replicaCount: two\n",
            &["/replicaCount"],
        ),
        // Upstream switches this operator has no behaviour for: the chart's
        // checks name the key and what to do instead.
        (
            "affinityInjection false",
            "locustPods:\n  affinityInjection: false\n",
            &[
                "locustPods.affinityInjection=false",
                "LocustTest's own affinity",
            ],
        ),
        (
            "tolerationsInjection false",
            "locustPods:\n  tolerationsInjection: false\n",
            &[
                "locustPods.tolerationsInjection=false",
                "LocustTest's own tolerations",
            ],
        ),
        (
            "clusterRole disabled",
            "k8s:\n  clusterRole:\n    enabled: false\n",
            &["k8s.clusterRole.enabled=false", "needs its ClusterRole"],
        ),
    ];
    for (i, (what, text, needles)) in files.iter().enumerate() {
        let f = helm.values_file(&format!("bad-{i}.yaml"), text);
        let err = helm.render_fails(what, &["--values", &f]);
        for n in *needles {
            assert!(
                err.contains(n),
                "{what}: the error does not name {n}:\n{err}"
            );
        }
    }
    let sets: &[(&str, &str, &[&str])] = &[
        (
            "metrics port out of range",
            "metrics.port=70000",
            &["/metrics/port"],
        ),
        (
            "kafka enabled",
            "kafka.enabled=true",
            &["kafka.enabled=true", "env.variables"],
        ),
        (
            "unknown pull policy",
            "image.pullPolicy=Sometimes",
            &["/image/pullPolicy", "Sometimes"],
        ),
        (
            "mistyped replicaCount (--set)",
            "replicaCount=two",
            &["/replicaCount"],
        ),
    ];
    for (what, set, needles) in sets {
        let err = helm.render_fails(what, &["--set", set]);
        for n in *needles {
            assert!(
                err.contains(n),
                "{what}: the error does not name {n}:\n{err}"
            );
        }
    }
}

#[test]
fn upstream_v2_values_render_as_documented() {
    let Some(helm) = Helm::new("upstream_v2_values_render_as_documented") else {
        return;
    };
    let file = workspace_root().join(UPSTREAM_V2);
    let text = std::fs::read_to_string(&file).unwrap();
    let v: Value = olm_tests::yaml::from_str(&text).unwrap();
    // A release name and namespace of the user's, to see what follows them.
    let (release, ns) = ("my-locust", "perf");
    let docs = helm.render_in(
        "upstream-v2.yaml",
        release,
        ns,
        &["--values", file.to_str().unwrap()],
    );
    let full = "locust-operator";
    assert_eq!(v["fullnameOverride"], full);

    // Every object is named after fullnameOverride (the CRD's name is fixed).
    for d in &docs {
        if kind(d) == "CustomResourceDefinition" {
            continue;
        }
        assert!(
            name(d).starts_with(full),
            "{}/{} is not named after {full}",
            kind(d),
            name(d)
        );
        if let Some(dns) = d["metadata"].get("namespace") {
            assert_eq!(dns, ns, "{}/{}", kind(d), name(d));
        }
    }
    let deployment = find(&docs, "Deployment", full);
    assert_eq!(operator_deployment(&docs), deployment);
    let webhook_svc = find(&docs, "Service", "locust-operator-webhook");
    let vwc = find(&docs, "ValidatingWebhookConfiguration", full);
    let cluster_role = find(&docs, "ClusterRole", full);
    find(&docs, "ClusterRole", "locust-operator-metrics-reader");
    find(&docs, "ClusterRoleBinding", full);
    let role = find(&docs, "Role", full);
    find(&docs, "RoleBinding", full);

    // The args.
    let args = operator_args(&docs);
    for a in [
        "--metrics-bind-address=0.0.0.0:8443",
        "--metrics-secure=false",
        "--leader-elect=true",
        "--webhook-port=9443",
        "--pod-cpu-request=300m",
        "--pod-memory-request=256Mi",
        "--pod-ephemeral-storage-request=30M",
        "--pod-cpu-limit=1500m",
        "--pod-memory-limit=2Gi",
        "--pod-ephemeral-storage-limit=80M",
        "--master-cpu-limit=2500m",
        "--job-ttl-seconds-after-finished=3600",
        "--default-runtime-class-name=gvisor",
        "--webhook-cert-mode=self-managed",
        "--webhook-configuration-name=locust-operator",
        "--webhook-service-name=locust-operator-webhook",
    ] {
        has_arg(&args, a);
    }
    assert!(
        !args.iter().any(|a| a.starts_with("--worker-")),
        "workerResources is {{}} yet: {args:#?}"
    );
    for a in [
        "cpu-request",
        "memory-request",
        "ephemeral-storage-request",
        "memory-limit",
        "ephemeral-storage-limit",
    ] {
        assert_eq!(flag(&args, &format!("master-{a}")), None, "{args:#?}");
    }
    // The names the operator patches and the RBAC that lets it.
    assert_eq!(flag(&args, "webhook-configuration-name"), Some(name(vwc)));
    assert_eq!(flag(&args, "webhook-service-name"), Some(name(webhook_svc)));
    let vwc_rule = array(&cluster_role["rules"], "rules")
        .iter()
        .find(|r| r["resources"] == json!(["validatingwebhookconfigurations"]))
        .expect("a ClusterRole rule for validatingwebhookconfigurations");
    assert_eq!(vwc_rule["resourceNames"], json!([full]));
    let secret = flag(&args, "webhook-cert-secret").expect("--webhook-cert-secret");
    assert!(
        array(&role["rules"], "rules")
            .iter()
            .any(|r| r["resources"] == json!(["secrets"]) && r["resourceNames"] == json!([secret])),
        "the Role does not name the cert Secret {secret}: {}",
        role["rules"]
    );

    // The pod.
    let pod = pod_spec(deployment);
    let c = operator_container(deployment).unwrap();
    assert_eq!(deployment["spec"]["replicas"], v["replicaCount"]);
    assert_eq!(
        c["image"],
        "registry.example.com/mirror/locust-k8s-operator:3.0.0"
    );
    assert_eq!(c["imagePullPolicy"], v["image"]["pullPolicy"]);
    assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
    let env = array(&c["env"], "env");
    for e in array(&v["extraEnv"], "extraEnv") {
        assert!(env.contains(e), "{e} not in {}", c["env"]);
    }
    for (k, val) in v["podAnnotations"].as_object().unwrap() {
        assert_eq!(
            &deployment["spec"]["template"]["metadata"]["annotations"][k], val,
            "pod annotation {k}"
        );
    }
    assert_eq!(pod["securityContext"], v["podSecurityContext"]);
    assert_eq!(c["securityContext"], v["containerSecurityContext"]);
    assert_eq!(pod["nodeSelector"], v["nodeSelector"]);
    assert_eq!(pod["tolerations"], v["tolerations"]);
    assert_eq!(pod["affinity"], v["affinity"]);
    assert_eq!(
        pod["terminationGracePeriodSeconds"],
        v["terminationGracePeriodSeconds"]
    );
    assert_eq!(c["resources"], v["resources"]);
    let ports = array(&c["ports"], "ports");
    assert!(
        ports.contains(&json!({"containerPort": 8443, "name": "metrics", "protocol": "TCP"})),
        "{}",
        c["ports"]
    );

    // The ServiceAccount.
    let sa_name = str_of(&v["serviceAccount"]["name"], "serviceAccount.name");
    let sa = find(&docs, "ServiceAccount", sa_name);
    assert_eq!(
        sa["metadata"]["annotations"],
        v["serviceAccount"]["annotations"]
    );
    assert_eq!(pod["serviceAccountName"], sa_name);
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(
            find(&docs, binding, full)["subjects"],
            json!([{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]),
            "{binding}"
        );
    }

    // PDB and metrics Service.
    let pdb = one_of(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 2);
    assert!(pdb["spec"].get("minAvailable").is_none(), "{pdb}");
    let metrics_svc = find(&docs, "Service", "locust-operator-metrics");
    assert_eq!(metrics_svc["spec"]["ports"][0]["port"], 8443);
    assert_eq!(metrics_svc["spec"]["ports"][0]["targetPort"], "metrics");

    // The OpenTelemetry collector.
    let otel = &v["otelCollector"];
    let config = str_of(&otel["config"], "otelCollector.config");
    let otel_name = "locust-operator-otel-collector";
    let otel_deploy = find(&docs, "Deployment", otel_name);
    let oc = &otel_deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(oc["image"], otel["image"]);
    assert_eq!(oc["resources"], otel["resources"]);
    assert_eq!(otel_deploy["spec"]["replicas"], otel["replicas"]);
    assert_eq!(
        otel_deploy["spec"]["template"]["metadata"]["annotations"]["checksum/config"],
        olm_tests::fixture::sha256_hex(config)
    );
    assert!(
        array(
            &otel_deploy["spec"]["template"]["spec"]["volumes"],
            "volumes"
        )
        .iter()
        .any(|vol| vol["configMap"]["name"] == otel_name),
        "{}",
        otel_deploy["spec"]["template"]["spec"]["volumes"]
    );
    let otel_svc = find(&docs, "Service", otel_name);
    assert!(
        selects(
            &otel_svc["spec"]["selector"],
            &otel_deploy["spec"]["template"]["metadata"]["labels"]
        ),
        "{otel_svc}"
    );
    assert!(
        !selects(
            &otel_svc["spec"]["selector"],
            &deployment["spec"]["template"]["metadata"]["labels"]
        ),
        "the collector Service selects the operator pods"
    );
    let cm = find(&docs, "ConfigMap", otel_name);
    assert_eq!(cm["data"]["config.yaml"], config);

    // The CRD converts through the webhook Service of this release.
    let crd = find(&docs, "CustomResourceDefinition", CRD_NAME);
    assert_eq!(
        crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"],
        json!({"name": "locust-operator-webhook", "namespace": ns, "path": "/convert", "port": 443})
    );
    assert_eq!(
        vwc["webhooks"][0]["clientConfig"]["service"]["name"],
        "locust-operator-webhook"
    );
    assert_eq!(
        vwc["webhooks"][0]["clientConfig"]["service"]["namespace"],
        ns
    );
    assert!(
        selects(
            &webhook_svc["spec"]["selector"],
            &deployment["spec"]["template"]["metadata"]["labels"]
        ),
        "{webhook_svc}"
    );

    // Accepted and ignored: the exporter sidecar and the (disabled) Kafka settings.
    for d in &docs {
        let s = serde_json::to_string(d).unwrap();
        for ignored in [EXPORTER_IMAGE, "kafka.example.com"] {
            assert!(
                !s.contains(ignored),
                "{}/{} mentions {ignored}",
                kind(d),
                name(d)
            );
        }
        assert!(
            !name(d).contains(release),
            "{}/{} is named after the release, not fullnameOverride",
            kind(d),
            name(d)
        );
    }
}

/// The chart rendered for `test` with `--set` of `settings` (comma
/// separated, as helm takes them), and the helm that did it; `None` when
/// the test is skipped (no tools).
fn render_set(test: &str, settings: &str) -> Option<(Helm, Vec<Value>)> {
    let helm = Helm::new(test)?;
    let docs = helm.render(settings, &["--set", settings]);
    Some((helm, docs))
}

#[test]
fn webhook_disabled() {
    let Some((helm, docs)) = render_set("webhook_disabled", "webhook.enabled=false") else {
        return;
    };
    assert_none_of(&docs, "ValidatingWebhookConfiguration");
    let args = operator_args(&docs);
    assert_eq!(
        flag(&args, "webhook-configuration-name"),
        Some(""),
        "{args:#?}"
    );
    assert_eq!(flag(&args, "webhook-cert-mode"), Some("self-managed"));
    // Conversion still needs the webhook server and its Service.
    let svc = find(&docs, "Service", WEBHOOK_SVC);
    let crd = find(&docs, "CustomResourceDefinition", CRD_NAME);
    assert_eq!(crd["spec"]["conversion"]["strategy"], "Webhook");
    assert_eq!(
        crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["name"],
        name(svc)
    );
    assert_eq!(flag(&args, "webhook-service-name"), Some(name(svc)));
    assert!(all_of(&docs, "Certificate").is_empty());
    assert!(all_of(&docs, "Issuer").is_empty());

    // cert-manager needs the validating webhook on: without it the operator manages its own.
    let docs = helm.render(
        "cert-manager without webhook",
        &[
            "--set",
            "webhook.enabled=false",
            "--set",
            "webhook.certManager.enabled=true",
        ],
    );
    assert_none_of(&docs, "Certificate");
    assert_eq!(
        flag(&operator_args(&docs), "webhook-cert-mode"),
        Some("self-managed")
    );
}

#[test]
fn cert_manager() {
    let Some((_, docs)) = render_set("cert_manager", "webhook.certManager.enabled=true") else {
        return;
    };
    let issuer = one_of(&docs, "Issuer");
    let cert = one_of(&docs, "Certificate");
    let svc = find(&docs, "Service", WEBHOOK_SVC);
    assert_eq!(cert["metadata"]["namespace"], NAMESPACE);
    assert_eq!(issuer["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    assert_eq!(cert["spec"]["issuerRef"]["kind"], "Issuer");
    let dns = array(&cert["spec"]["dnsNames"], "dnsNames");
    for n in [
        format!("{}.{NAMESPACE}.svc", name(svc)),
        format!("{}.{NAMESPACE}.svc.cluster.local", name(svc)),
    ] {
        assert!(
            dns.contains(&json!(n)),
            "{n} not in {}",
            cert["spec"]["dnsNames"]
        );
    }

    let args = operator_args(&docs);
    assert_eq!(
        flag(&args, "webhook-cert-mode"),
        Some("directory"),
        "{args:#?}"
    );
    let cert_dir = flag(&args, "webhook-cert-dir").expect("--webhook-cert-dir");
    let deployment = operator_deployment(&docs);
    let secret = str_of(&cert["spec"]["secretName"], "secretName");
    let volume = array(&pod_spec(deployment)["volumes"], "volumes")
        .iter()
        .find(|vol| vol["secret"]["secretName"] == secret)
        .unwrap_or_else(|| {
            panic!(
                "no Secret volume of {secret}: {}",
                pod_spec(deployment)["volumes"]
            )
        });
    let c = operator_container(deployment).unwrap();
    let mount = array(&c["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap_or_else(|| {
            panic!(
                "volume {} is not mounted: {}",
                volume["name"], c["volumeMounts"]
            )
        });
    assert_eq!(mount["readOnly"], true, "{mount}");
    assert_eq!(mount["mountPath"], cert_dir, "{mount}");

    let inject = format!("{NAMESPACE}/{}", name(cert));
    let crd = find(&docs, "CustomResourceDefinition", CRD_NAME);
    let vwc = one_of(&docs, "ValidatingWebhookConfiguration");
    for o in [crd, vwc] {
        assert_eq!(
            o["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            inject,
            "{}/{}",
            kind(o),
            name(o)
        );
    }
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
}

#[test]
fn service_monitor() {
    let Some((_, docs)) = render_set("service_monitor", "metrics.serviceMonitor.enabled=true")
    else {
        return;
    };
    let sm = one_of(&docs, "ServiceMonitor");
    let metrics = find(&docs, "Service", METRICS_SVC);
    assert_eq!(
        sm["metadata"]["namespace"],
        metrics["metadata"]["namespace"]
    );
    let selector = &sm["spec"]["selector"]["matchLabels"];
    assert!(
        selects(selector, &metrics["metadata"]["labels"]),
        "the ServiceMonitor's selector {selector} does not select the metrics Service's labels {}",
        metrics["metadata"]["labels"]
    );
    for svc in all_of(&docs, "Service") {
        if name(svc) != name(metrics) {
            assert!(
                !selects(selector, &svc["metadata"]["labels"]),
                "the ServiceMonitor also selects Service {}",
                name(svc)
            );
        }
    }
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["scheme"], "https", "{endpoint}");
    assert_eq!(endpoint["port"], metrics["spec"]["ports"][0]["name"]);
    assert_eq!(endpoint["path"], "/metrics");
}

#[test]
fn metrics_disabled() {
    let settings = "metrics.enabled=false,metrics.serviceMonitor.enabled=true";
    let Some((_, docs)) = render_set("metrics_disabled", settings) else {
        return;
    };
    assert!(
        find_opt(&docs, "Service", METRICS_SVC).is_none(),
        "{}",
        listing(&docs)
    );
    assert_none_of(&docs, "ServiceMonitor");
    assert!(
        find_opt(&docs, "ClusterRole", METRICS_READER).is_none(),
        "{}",
        listing(&docs)
    );
    find(&docs, "Service", WEBHOOK_SVC);
}

#[test]
fn crds_not_kept() {
    let Some((helm, docs)) = render_set("crds_not_kept", "crds.keep=false") else {
        return;
    };
    // Both CRDs follow crds.keep.
    let crds = all_of(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), 2, "{}", listing(&docs));
    for crd in crds {
        assert!(
            crd["metadata"]["annotations"]
                .get("helm.sh/resource-policy")
                .is_none(),
            "{}",
            crd["metadata"]
        );
    }
    let kept = helm.render("defaults", &[]);
    for crd in all_of(&kept, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
}

#[test]
fn single_replica_has_no_pdb() {
    let Some((helm, docs)) = render_set("single_replica_has_no_pdb", "replicaCount=1") else {
        return;
    };
    assert_none_of(&docs, "PodDisruptionBudget");
    assert_eq!(operator_deployment(&docs)["spec"]["replicas"], 1);
    let docs = helm.render("defaults", &[]);
    assert_eq!(
        one_of(&docs, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
}

#[test]
fn existing_service_account() {
    let Some(helm) = Helm::new("existing_service_account") else {
        return;
    };
    let err = helm.render_fails(
        "serviceAccount.create=false without a name",
        &["--set", "serviceAccount.create=false"],
    );
    assert!(err.contains("serviceAccount.name is required"), "{err}");
    let docs = helm.render(
        "existing service account",
        &[
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=sa1",
        ],
    );
    assert_eq!(
        pod_spec(operator_deployment(&docs))["serviceAccountName"],
        "sa1"
    );
    assert_none_of(&docs, "ServiceAccount");
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        assert_eq!(
            one_of(&docs, binding)["subjects"][0]["name"],
            "sa1",
            "{binding}"
        );
    }
}

#[test]
fn empty_pod_cpu_limit() {
    let Some(helm) = Helm::new("empty_pod_cpu_limit") else {
        return;
    };
    for (what, set) in [
        ("empty", "locustPods.resources.limits.cpu="),
        ("null", "locustPods.resources.limits.cpu=null"),
    ] {
        let docs = helm.render(what, &["--set", set]);
        let args = operator_args(&docs);
        assert_eq!(flag(&args, "pod-cpu-limit"), Some(""), "{what}: {args:#?}");
        assert_eq!(flag(&args, "pod-cpu-request"), Some("250m"), "{what}");
        assert_eq!(flag(&args, "pod-memory-limit"), Some("1024Mi"), "{what}");
        let config = operator_configs(what, &docs).remove(0);
        assert_eq!(config.pod_cpu_limit.as_deref(), Some(""), "{what}");
    }
    // The same from a values file.
    let f = helm.values_file(
        "no-cpu-limit.yaml",
        "locustPods:\n  resources:\n    limits:\n      cpu: \"\"\n",
    );
    let args = operator_args(&helm.render("values file", &["--values", &f]));
    assert_eq!(flag(&args, "pod-cpu-limit"), Some(""), "{args:#?}");
}

#[test]
fn every_operator_flag_parses() {
    let Some(helm) = Helm::new("every_operator_flag_parses") else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    let upstream = workspace_root().join(UPSTREAM_V2);
    let upstream_args = ["--values", upstream.to_str().unwrap()];
    let all = VARIANTS
        .iter()
        .copied()
        .chain([("upstream-v2.yaml", &upstream_args[..])]);
    for (what, args) in all {
        // `render` parses and validates the operator's args.
        let docs = helm.render(what, args);
        for a in operator_args(&docs) {
            seen.insert(a.split('=').next().unwrap().to_owned());
        }
    }
    // Every flag the chart can set was set by some variant.
    for f in [
        "--worker-ephemeral-storage-limit",
        "--master-memory-request",
        "--job-ttl-seconds-after-finished",
        "--default-runtime-class-name",
        "--webhook-cert-secret",
        "--leader-elect",
    ] {
        assert!(seen.contains(f), "{f} not in {seen:?}");
    }
    let templates = std::fs::read_to_string(
        workspace_root()
            .join(CHART)
            .join("templates/deployment.yaml"),
    )
    .unwrap();
    for line in templates.lines() {
        if let Some(rest) = line.trim().strip_prefix("- --") {
            let f = format!("--{}", rest.split('=').next().unwrap());
            assert!(
                seen.contains(&f),
                "no variant renders {f} (template line {line:?})"
            );
        }
    }
}

#[test]
fn diff_names_the_object_path() {
    let a = json!({"spec": {"args": ["--a=1", "--b=2"], "x": 1}, "only": true});
    let b = json!({"spec": {"args": ["--a=1", "--b=3"], "x": 1}, "other": 0});
    let mut out = Vec::new();
    diff("Deployment/d", &a, &b, &mut out);
    assert_eq!(
        out,
        [
            "Deployment/d.only: only in the chart: true",
            "Deployment/d.other: only in install.yaml: 0",
            "Deployment/d.spec.args[1]: the chart \"--b=2\" != install.yaml \"--b=3\"",
        ]
    );
}

/// `podDisruptionBudget.maxUnavailable: 0` stays 0 (not the default 1), and
/// `minAvailable: null` (which the schema allows) means unset.
#[test]
fn pdb_keeps_max_unavailable_zero_and_ignores_null_min_available() {
    let Some(helm) = Helm::new("pdb_keeps_max_unavailable_zero_and_ignores_null_min_available")
    else {
        return;
    };
    let docs = helm.render(
        "maxUnavailable 0",
        &["--set", "podDisruptionBudget.maxUnavailable=0"],
    );
    let spec = &one_of(&docs, "PodDisruptionBudget")["spec"];
    let f = helm.values_file(
        "min-available-null.yaml",
        "podDisruptionBudget:\n  minAvailable: null\n",
    );
    let docs = helm.render("minAvailable null", &["--values", &f]);
    let null_spec = &one_of(&docs, "PodDisruptionBudget")["spec"];
    assert!(
        spec["maxUnavailable"] == 0
            && null_spec["maxUnavailable"] == 1
            && null_spec.get("minAvailable").is_none(),
        "maxUnavailable=0 rendered spec {spec}; minAvailable: null rendered spec {null_spec}"
    );
}

/// Values the operator would refuse at start-up (its
/// `OperatorConfig::validate`) or cannot run with (two servers on one port)
/// fail the render, by the schema or the chart's checks.
#[test]
fn values_the_operator_rejects_fail_the_render() {
    let Some(helm) = Helm::new("values_the_operator_rejects_fail_the_render") else {
        return;
    };
    let mut accepted = Vec::new();
    for set in [
        "locustPods.resources.limits.cpu=lots",
        "locustPods.runtimeClassName=Not_A_Name",
        "metrics.port=8081",
        "webhook.port=8080",
    ] {
        let Ok(text) = helm.template_in(RELEASE, NAMESPACE, &["--set", set]) else {
            continue;
        };
        let docs = olm_tests::yaml::documents(&text).unwrap();
        let c = operator_container(operator_deployment(&docs)).unwrap();
        let args: Vec<&str> = array(&c["args"], "args")
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let operator = match Cli::try_parse_from(std::iter::once("locust-k8s-operator").chain(args))
        {
            Err(e) => format!("CLI error: {e}"),
            Ok(cli) => match cli.config.validate() {
                Err(e) => format!("validate: {e}"),
                Ok(()) => "validate passes; ports: ".to_owned() + &c["ports"].to_string(),
            },
        };
        accepted.push(format!("--set {set}: rendered; the operator: {operator}"));
    }
    assert!(
        accepted.is_empty(),
        "helm template accepts:\n{}",
        accepted.join("\n")
    );
}
