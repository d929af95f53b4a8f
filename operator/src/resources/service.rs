//! The Service in front of the master.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Role;
use super::TestRef;
use super::command::{MASTER_PORT, MASTER_PORT_2, WEB_PORT};
use super::labels::selector_labels;
use super::names::service_name;
use super::pod::{MASTER_PORT_2_NAME, MASTER_PORT_NAME, WEB_PORT_NAME};

/// The ports of the master Service, in order: `master-p1` 5557, `master-p2` 5558, `web` 8089
/// (TCP, target port = port).
pub fn service_ports() -> Vec<ServicePort> {
    [
        (MASTER_PORT_NAME, MASTER_PORT),
        (MASTER_PORT_2_NAME, MASTER_PORT_2),
        (WEB_PORT_NAME, WEB_PORT),
    ]
    .into_iter()
    .map(|(name, port)| ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    })
    .collect()
}

/// The ClusterIP Service `<name>-master` selecting the master pod.
pub(super) fn build_service(test: &TestRef<'_>) -> Service {
    Service {
        metadata: test.child_metadata(service_name(test.name), Role::Master),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(test.name, Role::Master)),
            ports: Some(service_ports()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
