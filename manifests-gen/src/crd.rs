//! The bundle's CustomResourceDefinition: the operator's CRD with a webhook
//! conversion strategy.
//!
//! Under OLM the conversion webhook is declared in the CSV
//! (`webhookdefinitions` of type `ConversionWebhook`); at install time OLM
//! rewrites the CRD's `spec.conversion` to point at the Service it creates
//! (`<deploymentName>-service` in the install namespace, port
//! `containerPort`) and injects the CA bundle. The API server's validation
//! still requires a client config whenever the strategy is `Webhook`, so the
//! bundle carries the one OLM produces for an install into the suggested
//! namespace.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use locust_operator::crd::{ConversionTarget, set_webhook_conversion};
use serde_json::Value;

use crate::Error;
use crate::deployment::{CONVERSION_PATH, webhook_port, webhook_service_name};

/// The CRD as shipped in the bundle: `locust_operator::crd::try_crd()` (v2
/// stored, v1 deprecated, CEL rules, printer columns) plus the conversion.
pub fn bundle_crd() -> Result<CustomResourceDefinition, Error> {
    let mut crd = locust_operator::crd::try_crd().map_err(|e| Error::Crd(e.to_string()))?;
    set_webhook_conversion(
        &mut crd,
        ConversionTarget::Service {
            namespace: crate::SUGGESTED_NAMESPACE.to_owned(),
            name: webhook_service_name(),
            path: CONVERSION_PATH.to_owned(),
            port: i32::from(webhook_port()),
        },
        None,
    );
    Ok(crd)
}

/// The LocustSchedule CRD as shipped (`locust_operator::crd::try_schedule_crd()`:
/// one version, `v1alpha1`, so no conversion).
pub fn bundle_schedule_crd() -> Result<CustomResourceDefinition, Error> {
    locust_operator::crd::try_schedule_crd().map_err(|e| Error::Crd(e.to_string()))
}

/// The CRD as a JSON value (what goes into the YAML file and the catalog).
pub fn bundle_crd_value() -> Result<Value, Error> {
    Ok(serde_json::to_value(bundle_crd()?)?)
}

/// The `openAPIV3Schema` of `version`, as JSON.
pub fn version_schema(crd: &CustomResourceDefinition, version: &str) -> Result<Value, Error> {
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .ok_or_else(|| Error::Crd(format!("no version {version}")))?;
    let schema = v
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .ok_or_else(|| Error::Crd(format!("version {version} has no openAPIV3Schema")))?;
    Ok(serde_json::to_value(schema)?)
}

/// The schema node at `root.a.b.c` (dots separate properties).
pub fn schema_at<'a>(schema: &'a Value, root: &str, path: &str) -> Option<&'a Value> {
    let mut node = schema.get("properties")?.get(root)?;
    for part in path.split('.') {
        node = node.get("properties")?.get(part)?;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_is_webhook_with_review_v1() {
        let crd = bundle_crd().unwrap();
        let conv = crd.spec.conversion.as_ref().unwrap();
        assert_eq!(conv.strategy, "Webhook");
        let webhook = conv.webhook.as_ref().unwrap();
        assert_eq!(webhook.conversion_review_versions, vec!["v1".to_owned()]);
        let service = webhook
            .client_config
            .as_ref()
            .unwrap()
            .service
            .as_ref()
            .unwrap();
        assert_eq!(service.name, "locust-k8s-operator-service");
        assert_eq!(service.namespace, crate::SUGGESTED_NAMESPACE);
        assert_eq!(service.path.as_deref(), Some("/convert"));
        assert_eq!(service.port, Some(9443));
        assert!(webhook.client_config.as_ref().unwrap().ca_bundle.is_none());
    }

    #[test]
    fn v2_is_stored_and_v1_deprecated() {
        let crd = bundle_crd().unwrap();
        let names: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.storage, v.deprecated))
            .collect();
        assert!(names.contains(&("v2", true, None)) || names.contains(&("v2", true, Some(false))));
        assert!(
            names
                .iter()
                .any(|(n, s, d)| *n == "v1" && !*s && *d == Some(true))
        );
    }

    #[test]
    fn schema_lookup() {
        let crd = bundle_crd().unwrap();
        let s = version_schema(&crd, "v2").unwrap();
        assert!(schema_at(&s, "spec", "worker.replicas").is_some());
        assert!(schema_at(&s, "spec", "worker.nope").is_none());
        assert!(schema_at(&s, "status", "phase").is_some());
    }
}
