//! The chart's optional objects: metrics (Service, reader ClusterRole,
//! ServiceMonitor), cert-manager's Issuer and Certificate, and the
//! OpenTelemetry collector.

use semver::Version;
use serde_json::{Value, json};

use super::template::{Markers, at};
use super::{
    CERT_MANAGER, CHART_NAME, Doc, labels, metadata, namespace, selector_labels, suffixed,
};

/// The metadata of the metrics Service and the ServiceMonitor: named
/// `<fullname>-metrics`, labelled by the `metricsLabels` helper (plus the values
/// at `extra`, if any), which renders `concrete` with the default values.
fn metrics_metadata(
    m: &mut Markers,
    version: &Version,
    extra: Option<&str>,
    concrete: &Value,
) -> Value {
    let name = suffixed(m, "metrics");
    let mut meta = metadata(m, version, name, true);
    meta["labels"] = m.include_with_values("labels", "metricsLabels", extra, concrete);
    meta
}

pub(super) fn metrics_docs(version: &Version, values: &Value) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut m = Markers::default();
    let mut concrete_labels = labels(version);
    concrete_labels["app.kubernetes.io/component"] = json!("metrics");
    let meta = metrics_metadata(&mut m, version, None, &concrete_labels);
    let selector = m.include_with_values("selector", "selectorLabels", None, &selector_labels());
    let port = m.inline(
        "{{ .Values.metrics.port }}",
        at(values, "metrics.port").to_string(),
    );
    docs.push(Doc::new("metrics-service.yaml", Some((".Values.metrics.enabled", true)), json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": selector, "ports": [{"name": crate::monitoring::PORT_NAME, "port": port, "protocol": "TCP", "targetPort": crate::monitoring::PORT_NAME}]},
        }), m));

    let mut m = Markers::default();
    let name = suffixed(&mut m, "metrics-reader");
    let meta = metadata(&mut m, version, name, false);
    docs.push(Doc::new(
        "metrics-reader-clusterrole.yaml",
        Some((".Values.metrics.enabled", true)),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta,
            "rules": locust_operator::rbac::metrics_reader_rules(),
        }),
        m,
    ));

    let mut m = Markers::default();
    let meta = metrics_metadata(
        &mut m,
        version,
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
    docs.push(Doc::new(
        "servicemonitor.yaml",
        Some((
            "and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled",
            false,
        )),
        json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta,
            "spec": {"selector": {"matchLabels": selector}, "endpoints": [endpoint]},
        }),
        m,
    ));
    docs
}

pub(super) fn cert_manager_docs(version: &Version) -> Vec<Doc> {
    let mut m = Markers::default();
    let name = suffixed(&mut m, "selfsigned");
    let meta = metadata(&mut m, version, name, true);
    let issuer = Doc::new(
        "certmanager-issuer.yaml",
        Some((CERT_MANAGER, false)),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": meta, "spec": {"selfSigned": {}}}),
        m,
    );
    let mut m = Markers::default();
    let name = suffixed(&mut m, "webhook-cert");
    let meta = metadata(&mut m, version, name.clone(), true);
    let svc = suffixed(&mut m, "webhook");
    let ns = namespace(&mut m);
    let issuer_name = suffixed(&mut m, "selfsigned");
    let cert = Doc::new(
        "certmanager-certificate.yaml",
        Some((CERT_MANAGER, false)),
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta,
            "spec": {
                "secretName": name,
                "dnsNames": [format!("{svc}.{ns}.svc"), format!("{svc}.{ns}.svc.cluster.local")],
                "issuerRef": {"kind": "Issuer", "name": issuer_name},
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
        }),
        m,
    );
    vec![issuer, cert]
}

pub(super) fn otel_docs(version: &Version) -> Vec<Doc> {
    const COND: &str = ".Values.otelCollector.enabled";
    let otel_labels = json!({"app.kubernetes.io/name": "otel-collector", "app.kubernetes.io/instance": CHART_NAME});
    let mut docs = Vec::new();

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name, true);
    docs.push(Doc::new("otel-collector-configmap.yaml", Some((COND, false)), json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"HXCONF": m.lines(vec!["config.yaml: |".to_owned(), "  {{- .Values.otelCollector.config | nindent {IND2} }}".to_owned()], Vec::new())}}), m));

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name.clone(), true);
    let sel = m.include_with_values("matchLabels", "otelSelectorLabels", None, &otel_labels);
    let pod_labels = m.include_with_values("labels", "otelSelectorLabels", None, &otel_labels);
    docs.push(Doc::new("otel-collector-deployment.yaml", Some((COND, false)), json!({
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
        }), m));

    let mut m = Markers::default();
    let name = suffixed(&mut m, "otel-collector");
    let meta = metadata(&mut m, version, name, true);
    let sel = m.include_with_values("selector", "otelSelectorLabels", None, &otel_labels);
    docs.push(Doc::new(
        "otel-collector-service.yaml",
        Some((COND, false)),
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": sel, "ports": [
                {"name": "otlp-grpc", "port": 4317, "protocol": "TCP", "targetPort": "otlp-grpc"},
                {"name": "otlp-http", "port": 4318, "protocol": "TCP", "targetPort": "otlp-http"},
            ]},
        }),
        m,
    ));
    docs
}
