//! Environment of the Locust containers.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMapEnvSource, EnvFromSource, EnvVar, SecretEnvSource};

use crate::api::LocustTestSpec;
use crate::api::v2::OpenTelemetrySpec;

/// `envFrom` of the Locust containers: every `env.configMapRefs` entry, then every
/// `env.secretRefs` entry, in spec order, each with its prefix (an empty prefix is
/// omitted). On a duplicate key Kubernetes uses the later source, so Secrets win over
/// ConfigMaps.
pub fn env_from(spec: &LocustTestSpec) -> Vec<EnvFromSource> {
    let Some(env) = spec.env.as_ref() else {
        return Vec::new();
    };
    let prefix = |p: &Option<String>| p.clone().filter(|p| !p.is_empty());
    let config_maps = env.config_map_refs.iter().map(|r| EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: r.name.clone(),
            optional: None,
        }),
        prefix: prefix(&r.prefix),
        secret_ref: None,
    });
    let secrets = env.secret_refs.iter().map(|r| EnvFromSource {
        config_map_ref: None,
        prefix: prefix(&r.prefix),
        secret_ref: Some(SecretEnvSource {
            name: r.name.clone(),
            optional: None,
        }),
    });
    config_maps.chain(secrets).collect()
}

fn literal(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// The OpenTelemetry variables of an enabled `observability.openTelemetry`, in this order:
/// `OTEL_TRACES_EXPORTER=otlp`, `OTEL_METRICS_EXPORTER=otlp`, `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (when set), `OTEL_EXPORTER_OTLP_PROTOCOL` (default `grpc`), `OTEL_EXPORTER_OTLP_INSECURE`
/// (when set), then `extraEnvVars` sorted by name. An `extraEnvVars` entry replaces the
/// operator's variable of the same name (it is the user's more specific choice). Empty when
/// OpenTelemetry is disabled.
pub fn otel_env(spec: &LocustTestSpec) -> Vec<EnvVar> {
    let Some(otel) = spec
        .observability
        .as_ref()
        .and_then(|o| o.open_telemetry.as_ref())
        .filter(|o| o.enabled)
    else {
        return Vec::new();
    };
    let mut vars = operator_otel_vars(otel);
    vars.retain(|v| !otel.extra_env_vars.contains_key(&v.name));
    vars.extend(
        otel.extra_env_vars
            .iter()
            .map(|(name, value)| literal(name, value.clone())),
    );
    vars
}

fn operator_otel_vars(otel: &OpenTelemetrySpec) -> Vec<EnvVar> {
    let mut vars = vec![
        literal("OTEL_TRACES_EXPORTER", "otlp"),
        literal("OTEL_METRICS_EXPORTER", "otlp"),
    ];
    if let Some(endpoint) = otel.endpoint.as_deref().filter(|e| !e.is_empty()) {
        vars.push(literal("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint));
    }
    vars.push(literal(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        otel.protocol.unwrap_or_default().as_str(),
    ));
    if let Some(insecure) = otel.insecure {
        vars.push(literal("OTEL_EXPORTER_OTLP_INSECURE", insecure.to_string()));
    }
    vars
}

/// `env` of the Locust containers: `env.variables` exactly as given (order kept), then the
/// OpenTelemetry variables of [`otel_env`].
///
/// Precedence on a name conflict: a variable in `env.variables` wins over the operator's
/// (OpenTelemetry) variable of the same name, which is then left out, so the container
/// sees exactly one definition, the user's. User variables come first so that
/// `extraEnvVars` values may refer to them with `$(NAME)` (e.g. a pod name taken from the
/// downward API in `OTEL_RESOURCE_ATTRIBUTES`).
pub fn env_vars(spec: &LocustTestSpec) -> Vec<EnvVar> {
    let user: &[EnvVar] = spec.env.as_ref().map_or(&[], |e| &e.variables);
    let user_names: BTreeSet<&str> = user.iter().map(|v| v.name.as_str()).collect();
    let mut vars = user.to_vec();
    vars.extend(
        otel_env(spec)
            .into_iter()
            .filter(|v| !user_names.contains(v.name.as_str())),
    );
    vars
}
