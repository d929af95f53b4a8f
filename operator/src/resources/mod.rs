//! Pure builders from a `LocustTest` and the operator configuration to the three children
//! of a test: the master Job, the worker Job and the master Service. No client and no I/O:
//! the same input always gives the same output.
//!
//! - [`names`]: child names (valid DNS-1035 labels for any test name) and hashes;
//! - [`command`]: the master and worker command lines;
//! - [`labels`]: labels, annotations, selectors and the spec hash;
//! - [`env`]: `env` and `envFrom` of the containers;
//! - [`pod`]: pod templates (volumes, mounts, scheduling, resources, security);
//! - [`defaults`]: the operator's resource defaults applied to a container;
//! - `job` and `service`: the objects themselves, built by [`build_children`].

pub mod command;
pub mod defaults;
pub mod env;
mod job;
pub mod labels;
pub mod names;
pub mod pod;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::{KIND, LocustTest};
use crate::config::OperatorConfig;

pub use command::{
    CommandError, ContainerCommand, MASTER_PORT, MASTER_PORT_2, WEB_PORT, master_args,
    master_container_command, split_command, worker_args, worker_container_command,
};
pub use job::{DISRUPTION_TARGET, pod_failure_policy};
pub use labels::{
    MANAGED_BY_SELECTOR, SPEC_HASH_ANNOTATION, operator_labels, selector_labels, spec_hash,
};
pub use names::{child_name, job_name, master_job_name, service_name, worker_job_name};
pub use pod::{is_reserved_volume_name, pod_template};
pub use service::service_ports;

pub use crate::role::Role;

/// API version written in the children's owner references.
pub const OWNER_API_VERSION: &str = crate::conversion::V2_API_VERSION;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The LocustTest lacks a metadata field the children need (name, namespace or uid).
    #[error("LocustTest has no metadata.{field}")]
    MissingMetadata {
        /// `name`, `namespace` or `uid`.
        field: &'static str,
    },
    /// A command cannot be split into arguments.
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl ResourceError {
    /// CamelCase reason for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ResourceError::MissingMetadata { .. } => "MissingMetadata",
            ResourceError::Command(e) => e.reason(),
        }
    }
}

/// The objects the operator creates for one test.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// ClusterIP Service `<name>-master` in front of the master pod.
    pub service: Service,
    /// Job `<name>-master` running the single master pod.
    pub master_job: Job,
    /// Job `<name>-worker` running `spec.worker.replicas` worker pods.
    pub worker_job: Job,
}

/// Identity of the test the children are built for.
pub(crate) struct TestRef<'a> {
    name: &'a str,
    namespace: &'a str,
    owner: OwnerReference,
    spec_hash: String,
}

impl<'a> TestRef<'a> {
    fn new(test: &'a LocustTest) -> Result<Self, ResourceError> {
        let meta = &test.metadata;
        let field = |v: &'a Option<String>, field: &'static str| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .ok_or(ResourceError::MissingMetadata { field })
        };
        let name = field(&meta.name, "name")?;
        let namespace = field(&meta.namespace, "namespace")?;
        let uid = field(&meta.uid, "uid")?;
        Ok(Self {
            name,
            namespace,
            owner: OwnerReference {
                api_version: OWNER_API_VERSION.to_owned(),
                kind: KIND.to_owned(),
                name: name.to_owned(),
                uid: uid.to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
            spec_hash: spec_hash(&test.spec),
        })
    }

    /// Metadata of a child: name, namespace, the role's operator labels, the spec-hash
    /// annotation and the controller owner reference.
    fn child_metadata(&self, name: String, role: Role) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(operator_labels(self.name, role)),
            annotations: Some(BTreeMap::from([(
                SPEC_HASH_ANNOTATION.to_owned(),
                self.spec_hash.clone(),
            )])),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// The controller owner reference every child carries (`locust.io/v2` LocustTest, with
/// `controller` and `blockOwnerDeletion`), so deleting the test deletes its children.
pub fn owner_reference(test: &LocustTest) -> Result<OwnerReference, ResourceError> {
    TestRef::new(test).map(|t| t.owner)
}

/// Builds the master Job, the worker Job and the master Service of `test`.
///
/// Fails when the test has no name, namespace or uid, or when a command cannot be split.
pub fn build_children(test: &LocustTest, cfg: &OperatorConfig) -> Result<Children, ResourceError> {
    let t = TestRef::new(test)?;
    let spec = &test.spec;
    let master_host = service_name(t.name);
    let master_command = master_container_command(spec)?;
    let worker_command = worker_container_command(spec, &master_host)?;
    let master_template = pod_template(t.name, spec, cfg, Role::Master, master_command);
    let worker_template = pod_template(t.name, spec, cfg, Role::Worker, worker_command);
    Ok(Children {
        service: service::build_service(&t),
        master_job: job::build_job(&t, spec, cfg, Role::Master, master_template),
        worker_job: job::build_job(&t, spec, cfg, Role::Worker, worker_template),
    })
}
