//! The operator Deployment's names, ports and webhook paths: what the CSV's
//! install strategy and webhook definitions say, and what the bundle's CRD
//! points its conversion webhook at (OLM names the webhook Service after the
//! Deployment).

use locust_operator::config::OperatorConfig;

/// Name of the operator Deployment (OLM names the webhook Service after it).
pub const DEPLOYMENT_NAME: &str = "locust-k8s-operator";
/// Service account the operator runs as.
pub const SERVICE_ACCOUNT: &str = "locust-k8s-operator";
/// Name of the operator container.
pub const CONTAINER_NAME: &str = "operator";
/// Replicas of the operator (one leads, one stands by and serves webhooks).
pub const REPLICAS: i32 = 2;
/// Label selecting the operator pods. Never change it: a Deployment's selector is immutable.
pub const SELECTOR_LABEL: (&str, &str) = ("app.kubernetes.io/name", "locust-k8s-operator");
/// Path of the conversion webhook.
pub const CONVERSION_PATH: &str = locust_operator::webhook::CONVERT_PATH;
/// Path of the validating webhook.
pub const VALIDATION_PATH: &str = locust_operator::webhook::VALIDATE_PATH;
/// Port of the webhook server: the operator's `--webhook-port` default.
pub fn webhook_port() -> u16 {
    OperatorConfig::default().webhook_port
}

/// Name of the Service OLM creates in front of the webhook deployment
/// (`<deploymentName>-service`), which is also the operator's
/// `--webhook-service-name` default for self-managed certificates.
pub fn webhook_service_name() -> String {
    format!("{DEPLOYMENT_NAME}-service")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_operator_default_service_name_is_the_one_olm_makes() {
        assert_eq!(
            super::webhook_service_name(),
            locust_operator::config::DEFAULT_WEBHOOK_SERVICE_NAME
        );
    }
}
