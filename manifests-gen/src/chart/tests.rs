use clap::Parser;
use locust_operator::config::WebhookCertMode;
use serde_json::json;

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
    let names = |kind: &str| -> Vec<Value> {
        let rules = find(&docs, kind, CHART_NAME)["rules"].clone();
        let rules = rules.as_array().cloned().unwrap_or_default();
        rules
            .into_iter()
            .map(|r| r["resourceNames"].clone())
            .collect()
    };
    assert!(names("Role").contains(&json!([cfg.webhook_cert_secret])));
    assert!(names("ClusterRole").contains(&json!([cfg.webhook_configuration_name])));
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
fn the_schema_closes_the_charts_own_objects_and_checks_quantities() {
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
    // The upstream switches are booleans here; the chart's `checks`
    // template fails the render with the replacement's name.
    assert_eq!(
        defs["LocustPods"]["properties"]["affinityInjection"]["type"],
        "boolean"
    );
    let quantity = &defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["anyOf"];
    assert_eq!(quantity[0]["pattern"], values::QUANTITY_PATTERN);
    assert_eq!(quantity[1]["type"], "number");
}

#[test]
fn the_values_reference_names_what_each_switch_switches() {
    let schema = values::schema().unwrap();
    assert_eq!(
        schema["$defs"]["Toggle"]["properties"]["enabled"]["description"],
        values_files::TOGGLE_DOC
    );
    let doc = &render(&Version::new(3, 0, 0)).unwrap()[VALUES_DOC_PATH];
    assert!(
        doc.contains("| `leaderElection.enabled` | boolean | `true` | Leader election between the operator replicas. On or off. |"),
        "{doc}"
    );
}
