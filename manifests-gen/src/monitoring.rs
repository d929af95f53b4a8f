//! What a Prometheus needs to scrape the operator: the metrics Service and
//! the `locust-k8s-operator-metrics-reader` ClusterRole, both in the bundle,
//! and a ServiceMonitor written next to the docs
//! (`docs/monitoring/servicemonitor.yaml`), not into the bundle: OLM fails a
//! whole InstallPlan on an object whose kind the cluster does not serve, and
//! most Kubernetes clusters without the Prometheus Operator do not serve
//! `monitoring.coreos.com/v1` (operator-sdk issue 5410, jaeger-operator
//! issue 1683). OpenShift does; there, and wherever the Prometheus Operator
//! runs, `kubectl apply -n <operator namespace> -f` the file.

use locust_operator::config::OperatorConfig;
use locust_operator::metrics::METRICS_PATH;
use locust_operator::rbac::{METRICS_READER_ROLE, metrics_reader_rules};
use serde_json::{Value, json};

use crate::deployment::{DEPLOYMENT_NAME, SELECTOR_LABEL};

/// Name of the metrics Service (and of the ServiceMonitor).
pub fn service_name() -> String {
    format!("{DEPLOYMENT_NAME}-metrics")
}

/// Name of the metrics port, on the container and the Service.
pub const PORT_NAME: &str = "metrics";

/// Bundle path of the metrics Service.
pub const SERVICE_PATH: &str = "bundle/manifests/locust-k8s-operator-metrics_v1_service.yaml";
/// Bundle path of the metrics-reader ClusterRole.
pub const READER_ROLE_PATH: &str = "bundle/manifests/locust-k8s-operator-metrics-reader_rbac.authorization.k8s.io_v1_clusterrole.yaml";
/// Path of the ServiceMonitor (outside the bundle, see the module docs).
pub const SERVICE_MONITOR_PATH: &str = "docs/monitoring/servicemonitor.yaml";

/// Labels of the metrics Service, which the ServiceMonitor selects.
fn service_labels() -> Value {
    json!({
        SELECTOR_LABEL.0: SELECTOR_LABEL.1,
        "app.kubernetes.io/component": "metrics",
    })
}

/// The metrics Service: the `metrics` port of the operator pods (HTTPS with
/// the default `--metrics-secure`). Namespace-less: OLM creates it in the
/// install namespace.
pub fn service() -> Value {
    let port = OperatorConfig::default().metrics_bind_address.port();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name(), "labels": service_labels()},
        "spec": {
            "selector": {SELECTOR_LABEL.0: SELECTOR_LABEL.1},
            "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP", "targetPort": PORT_NAME}],
        },
    })
}

/// The ClusterRole to bind Prometheus's ServiceAccount to.
pub fn reader_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": METRICS_READER_ROLE},
        "rules": metrics_reader_rules(),
    })
}

/// The ServiceMonitor: HTTPS with Prometheus's ServiceAccount token,
/// skipping verification of the operator's self-signed certificate (give
/// the operator a certificate with `--metrics-cert-dir` and replace
/// `insecureSkipVerify` by a `ca` to verify it), keeping the series' own
/// `namespace` label (`honorLabels`).
pub fn service_monitor() -> Value {
    json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": service_name(), "labels": service_labels()},
        "spec": {
            "selector": {"matchLabels": service_labels()},
            "endpoints": [{
                "port": PORT_NAME,
                "scheme": "https",
                "path": METRICS_PATH,
                "interval": "30s",
                "honorLabels": true,
                "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
                "tlsConfig": {"insecureSkipVerify": true},
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitor_selects_the_service_and_its_port_the_container_port() {
        let svc = service();
        let mon = service_monitor();
        assert_eq!(
            mon["spec"]["selector"]["matchLabels"],
            svc["metadata"]["labels"]
        );
        assert_eq!(
            mon["spec"]["endpoints"][0]["port"],
            svc["spec"]["ports"][0]["name"]
        );
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], PORT_NAME);
        assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
        assert_eq!(mon["spec"]["endpoints"][0]["honorLabels"], true);
        assert_eq!(svc["spec"]["selector"][SELECTOR_LABEL.0], SELECTOR_LABEL.1);
        assert_eq!(reader_role()["rules"][0]["nonResourceURLs"][0], "/metrics");
    }
}
