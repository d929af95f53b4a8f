//! Pod templates of the master and the workers: container, volumes, scheduling, security.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, PodSecurityContext, PodSpec,
    PodTemplateSpec, SeccompProfile, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Role;
use super::command::{ContainerCommand, MASTER_PORT, MASTER_PORT_2, WEB_PORT};
use super::env::{env_from, env_vars};
use super::labels::pod_labels;
use crate::api::LocustTestSpec;
use crate::config::OperatorConfig;

/// Name of the Locust container in the master pod.
pub const MASTER_CONTAINER_NAME: &str = "locust-master";
/// Name of the Locust container in each worker pod.
pub const WORKER_CONTAINER_NAME: &str = "locust-worker";

/// Volume holding `testFiles.configMapRef`.
pub const SRC_VOLUME_NAME: &str = "locust-src";
/// Volume holding `testFiles.libConfigMapRef`.
pub const LIB_VOLUME_NAME: &str = "locust-lib";
/// Prefix of the volumes of `env.secretMounts` (`locust-secret-<index>`).
pub const SECRET_VOLUME_PREFIX: &str = "locust-secret-";

/// Name of the master container port for workers (5557), also the Service port name.
pub const MASTER_PORT_NAME: &str = "master-p1";
/// Name of the second master port (5558).
pub const MASTER_PORT_2_NAME: &str = "master-p2";
/// Name of the web UI port (8089).
pub const WEB_PORT_NAME: &str = "web";

/// Whether `name` is a volume name the operator uses itself: `locust-src`, `locust-lib` or
/// `locust-secret-<digits>`. User volumes must not use these names.
pub fn is_reserved_volume_name(name: &str) -> bool {
    name == SRC_VOLUME_NAME
        || name == LIB_VOLUME_NAME
        || name
            .strip_prefix(SECRET_VOLUME_PREFIX)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Name of the volume of `env.secretMounts[index]`.
pub fn secret_volume_name(index: usize) -> String {
    format!("{SECRET_VOLUME_PREFIX}{index}")
}

/// Container name of a role.
pub fn container_name(role: Role) -> &'static str {
    match role {
        Role::Master => MASTER_CONTAINER_NAME,
        Role::Worker => WORKER_CONTAINER_NAME,
    }
}

fn mount_targets_role(target: crate::api::v2::MountTarget, role: Role) -> bool {
    match role {
        Role::Master => target.includes_master(),
        Role::Worker => target.includes_worker(),
    }
}

/// Volumes of a role's pod, in order: `locust-src`, `locust-lib` (each only when its
/// ConfigMap is set), `locust-secret-<i>` for each `env.secretMounts[i]`, then the user
/// `volumes` that at least one of this role's `volumeMounts` uses (spec order).
pub fn volumes(spec: &LocustTestSpec, role: Role) -> Vec<Volume> {
    let mut out = Vec::new();
    if let Some(files) = spec.test_files.as_ref() {
        if let Some(cm) = files.config_map_ref.as_deref() {
            out.push(config_map_volume(SRC_VOLUME_NAME, cm));
        }
        if let Some(cm) = files.lib_config_map_ref.as_deref() {
            out.push(config_map_volume(LIB_VOLUME_NAME, cm));
        }
    }
    if let Some(env) = spec.env.as_ref() {
        for (i, sm) in env.secret_mounts.iter().enumerate() {
            out.push(Volume {
                name: secret_volume_name(i),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(sm.name.clone()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
        }
    }
    let used: BTreeSet<&str> = spec
        .volume_mounts
        .iter()
        .filter(|m| mount_targets_role(m.target, role))
        .map(|m| m.mount.name.as_str())
        .collect();
    out.extend(
        spec.volumes
            .iter()
            .filter(|v| used.contains(v.name.as_str()))
            .cloned(),
    );
    out
}

fn config_map_volume(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// Volume mounts of a role's container, in the order of [`volumes`]: the test files and
/// library (read-only), each secret mount (read-only unless `readOnly: false`), then the
/// user mounts that target this role, without their `target`.
pub fn volume_mounts(spec: &LocustTestSpec, role: Role) -> Vec<VolumeMount> {
    let mut out = Vec::new();
    if let Some(files) = spec.test_files.as_ref() {
        if files.config_map_ref.is_some() {
            out.push(mount(SRC_VOLUME_NAME, &files.src_mount_path, true));
        }
        if files.lib_config_map_ref.is_some() {
            out.push(mount(LIB_VOLUME_NAME, &files.lib_mount_path, true));
        }
    }
    if let Some(env) = spec.env.as_ref() {
        for (i, sm) in env.secret_mounts.iter().enumerate() {
            out.push(mount(&secret_volume_name(i), &sm.mount_path, sm.read_only));
        }
    }
    out.extend(
        spec.volume_mounts
            .iter()
            .filter(|m| mount_targets_role(m.target, role))
            .map(|m| m.mount.clone()),
    );
    out
}

/// The default pod security context: `runAsNonRoot: true` and the `RuntimeDefault` seccomp
/// profile (Pod Security `restricted`, OpenShift `restricted-v2`), plus `runAsUser` when
/// `--pod-run-as-user` is set.
pub fn default_pod_security_context(cfg: &OperatorConfig) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: cfg.pod_run_as_user,
        seccomp_profile: Some(runtime_default_seccomp()),
        ..PodSecurityContext::default()
    }
}

/// The default container security context: no privilege escalation, every capability
/// dropped, `runAsNonRoot: true`, `RuntimeDefault` seccomp. No fixed `runAsUser`.
pub fn default_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".to_owned()]),
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

fn container_ports(role: Role) -> Vec<ContainerPort> {
    match role {
        Role::Worker => Vec::new(),
        Role::Master => [
            (MASTER_PORT_NAME, MASTER_PORT),
            (MASTER_PORT_2_NAME, MASTER_PORT_2),
            (WEB_PORT_NAME, WEB_PORT),
        ]
        .into_iter()
        .map(|(name, port)| ContainerPort {
            name: Some(name.to_owned()),
            container_port: port,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        })
        .collect(),
    }
}

/// The pods' RuntimeClass: `scheduling.runtimeClassName` when the test names one, none when
/// it gives `""` (the test opts out of the operator's default), else the operator's
/// `--default-runtime-class-name`, if any.
pub fn runtime_class_name(spec: &LocustTestSpec, cfg: &OperatorConfig) -> Option<String> {
    match spec
        .scheduling
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
    {
        Some("") => None,
        Some(name) => Some(name.to_owned()),
        None => cfg.default_runtime_class().map(str::to_owned),
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// The pod template of a role. `command` is the role's container command
/// (see [`super::command`]).
pub fn pod_template(
    test_name: &str,
    spec: &LocustTestSpec,
    cfg: &OperatorConfig,
    role: Role,
    command: ContainerCommand,
) -> PodTemplateSpec {
    let (user_labels, user_annotations, cr_resources) = match role {
        Role::Master => (
            &spec.master.labels,
            &spec.master.annotations,
            spec.master.resources.as_ref(),
        ),
        Role::Worker => (
            &spec.worker.labels,
            &spec.worker.annotations,
            spec.worker.resources.as_ref(),
        ),
    };
    let security = spec.security.as_ref();
    let container = Container {
        name: container_name(role).to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        command: command.command,
        args: non_empty(command.args),
        env: non_empty(env_vars(spec)),
        env_from: non_empty(env_from(spec)),
        ports: non_empty(container_ports(role)),
        resources: Some(super::defaults::effective_resources(
            cfg,
            role,
            cr_resources,
        )),
        security_context: Some(
            security
                .and_then(|s| s.container_security_context.clone())
                .unwrap_or_else(default_container_security_context),
        ),
        volume_mounts: non_empty(volume_mounts(spec, role)),
        ..Container::default()
    };
    let scheduling = spec.scheduling.as_ref();
    let pod_spec = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".to_owned()),
        volumes: non_empty(volumes(spec, role)),
        affinity: scheduling.and_then(|s| s.affinity.clone()),
        tolerations: scheduling.and_then(|s| non_empty(s.tolerations.clone())),
        node_selector: scheduling
            .map(|s| s.node_selector.clone())
            .filter(|m| !m.is_empty()),
        runtime_class_name: runtime_class_name(spec, cfg),
        image_pull_secrets: non_empty(spec.image_pull_secrets.clone()),
        security_context: Some(
            security
                .and_then(|s| s.pod_security_context.clone())
                .unwrap_or_else(|| default_pod_security_context(cfg)),
        ),
        // Locust never talks to the Kubernetes API.
        automount_service_account_token: Some(false),
        // Service links would inject `<SERVICE>_PORT=tcp://...` variables; for a Service
        // named `locust-...` those look like Locust settings (`LOCUST_*`) and break parsing.
        enable_service_links: Some(false),
        ..PodSpec::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels(test_name, role, user_labels)),
            annotations: (!user_annotations.is_empty()).then(|| user_annotations.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_runtime_class_opts_out_of_the_default() {
        let cfg = OperatorConfig {
            default_runtime_class_name: Some("gvisor".into()),
            ..OperatorConfig::default()
        };
        let mut spec: LocustTestSpec = serde_json::from_value(serde_json::json!({
            "image": "locustio/locust:2.43.1",
            "master": {"command": "--locustfile l.py"},
            "worker": {"command": "--locustfile l.py", "replicas": 1}
        }))
        .unwrap();
        let mut runtime = |name: Option<&str>| {
            spec.scheduling = name.map(|n| crate::api::v2::SchedulingSpec {
                runtime_class_name: Some(n.to_owned()),
                ..Default::default()
            });
            runtime_class_name(&spec, &cfg)
        };
        assert_eq!(runtime(None).as_deref(), Some("gvisor"));
        assert_eq!(runtime(Some("kata")).as_deref(), Some("kata"));
        assert_eq!(runtime(Some("")), None);
    }
}
