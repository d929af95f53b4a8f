//! The components' command lines and configuration files.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::process::ProcessSpec;
use super::{
    AUDIT_LOG, ClusterOptions, Component, ControlPlane, KWOK_NODE_ANNOTATION,
    KWOK_NODE_ANNOTATION_VALUE, Layout, Ports, SERVICE_ACCOUNT_ISSUER, Throughput, network,
};
use crate::tools::Tools;

const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");

/// What the command lines are made from.
pub(super) struct ComponentInputs<'a> {
    pub(super) options: &'a ClusterOptions,
    pub(super) tools: &'a Tools,
    pub(super) layout: &'a Layout,
    pub(super) ports: Ports,
    pub(super) kcm_kubeconfig: &'a Path,
    pub(super) scheduler_config: &'a Path,
    pub(super) scheduler_kubeconfig: &'a Path,
    pub(super) kwok_kubeconfig: &'a Path,
    pub(super) kwok_config: &'a Path,
    pub(super) kwok_home: &'a Path,
    pub(super) audit_policy: Option<&'a Path>,
}

/// The kube-scheduler configuration file.
pub(super) fn scheduler_config_yaml(
    kubeconfig: &Path,
    throughput: Option<Throughput>,
) -> Result<String> {
    let mut connection = serde_json::json!({ "kubeconfig": kubeconfig });
    if let Some(t) = throughput {
        connection["qps"] = t.kube_api_qps.into();
        connection["burst"] = t.kube_api_burst.into();
    }
    Ok(crate::yaml::to_string(&serde_json::json!({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": connection,
        "leaderElection": { "leaderElect": false },
    }))?)
}

/// kwok's configuration: the Stages, plus a `KwokConfiguration` with more
/// workers when `throughput` is set (kwok's command-line flags still win).
pub(super) fn kwok_config_yaml(throughput: Option<Throughput>) -> Result<String> {
    let mut text = KWOK_STAGES.to_owned();
    if let Some(t) = throughput {
        let options = crate::yaml::to_string(&serde_json::json!({
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            // A configuration file is not defaulted: every default of
            // kwok v0.8.0 (SetObjectDefaults_KwokConfiguration) is spelled
            // out; the command-line flags set the rest.
            "options": {
                "podPlayStageParallelism": t.kwok_parallelism,
                "podsOnNodeSyncParallelism": t.kwok_parallelism,
                "nodePlayStageParallelism": 4,
                "nodeLeaseParallelism": 4,
                "enableDebuggingHandlers": true,
                "enableContentionProfiling": false,
                "enableProfilingHandler": true,
                "enablePodsOnNodeSyncListPager": true,
                "enablePodsOnNodeSyncStreamWatch": false,
            },
        }))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("---\n");
        text.push_str(&options);
    }
    Ok(text)
}

fn flag(name: &str, value: impl AsRef<std::ffi::OsStr>) -> OsString {
    let mut arg = OsString::from(format!("--{name}="));
    arg.push(value.as_ref());
    arg
}

/// Command lines of every component.
/// The binary `component` runs from: the oldest supported control plane has
/// a directory of its own; etcd and kwok are the same for both.
fn program(tools: &Tools, control_plane: ControlPlane, component: Component) -> PathBuf {
    match (control_plane, component) {
        (
            ControlPlane::OldestSupported,
            Component::Apiserver | Component::ControllerManager | Component::Scheduler,
        ) => tools.min_kube_bin(component.name()),
        _ => tools.bin(component.name()),
    }
}

pub(super) fn component_specs(inputs: &ComponentInputs<'_>) -> BTreeMap<Component, ProcessSpec> {
    let ComponentInputs {
        options,
        tools,
        layout,
        ports,
        ..
    } = inputs;
    let pki = &layout.pki;
    let etcd_client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let etcd_peer = format!("http://127.0.0.1:{}", ports.etcd_peer);

    let etcd = vec![
        flag("name", "local"),
        flag("data-dir", layout.root.join("etcd")),
        flag("listen-client-urls", &etcd_client),
        flag("advertise-client-urls", &etcd_client),
        flag("listen-peer-urls", &etcd_peer),
        flag("initial-advertise-peer-urls", &etcd_peer),
        flag("initial-cluster", format!("local={etcd_peer}")),
        flag("initial-cluster-state", "new"),
        flag("unsafe-no-fsync", "true"),
        flag("auto-compaction-retention", "1"),
        flag("quota-backend-bytes", (2u64 << 30).to_string()),
        flag("log-level", "warn"),
    ];

    let mut apiserver = vec![
        flag("etcd-servers", &etcd_client),
        // Every address of the cluster's own network namespace: 127.0.0.1
        // (the host's forwarder, processes in the namespace) and the node
        // address (pods, through the `kubernetes` Service, whose endpoint
        // is the advertised address).
        flag("bind-address", "0.0.0.0"),
        flag("advertise-address", network::NODE_IP.to_string()),
        flag("secure-port", ports.apiserver.to_string()),
        flag("tls-cert-file", &pki.apiserver_cert),
        flag("tls-private-key-file", &pki.apiserver_key),
        flag("client-ca-file", &pki.ca_cert),
        flag("authorization-mode", &options.authorization_mode),
        // PodSecurity is on by default; listed for clarity.
        flag(
            "enable-admission-plugins",
            "NodeRestriction,OwnerReferencesPermissionEnforcement,PodSecurity",
        ),
        flag("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        flag("api-audiences", SERVICE_ACCOUNT_ISSUER),
        flag("service-account-key-file", &pki.sa_pub),
        flag("service-account-signing-key-file", &pki.sa_key),
        flag("service-cluster-ip-range", network::SERVICE_CIDR),
        // `kubectl logs/exec` and the apiserver's health checks of the
        // real node's kubelet: by its IP, with a client certificate,
        // verifying the kubelet's serving certificate.
        flag("kubelet-preferred-address-types", "InternalIP"),
        flag("kubelet-client-certificate", &pki.kubelet_client_cert),
        flag("kubelet-client-key", &pki.kubelet_client_key),
        flag("kubelet-certificate-authority", &pki.ca_cert),
        flag("requestheader-client-ca-file", &pki.front_proxy_ca_cert),
        flag("requestheader-allowed-names", "front-proxy-client"),
        flag("requestheader-username-headers", "X-Remote-User"),
        flag("requestheader-group-headers", "X-Remote-Group"),
        flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        flag("proxy-client-cert-file", &pki.front_proxy_client_cert),
        flag("proxy-client-key-file", &pki.front_proxy_client_key),
        flag("profiling", "false"),
    ];
    if let Some(policy) = inputs.audit_policy {
        apiserver.extend([
            flag("audit-policy-file", policy),
            flag("audit-log-path", layout.logs.join(AUDIT_LOG)),
            flag("audit-log-format", "json"),
            flag("audit-log-mode", "blocking"),
            // lumberjack rotates at 100 MB unless told otherwise: never rotate.
            flag("audit-log-maxsize", "1000000"),
        ]);
    }
    apiserver.extend(options.extra_apiserver_args.iter().map(OsString::from));

    let secure_serving = |port: u16| {
        vec![
            flag("bind-address", "127.0.0.1"),
            flag("secure-port", port.to_string()),
            flag("tls-cert-file", &pki.components_cert),
            flag("tls-private-key-file", &pki.components_key),
            flag(
                "authorization-always-allow-paths",
                "/healthz,/readyz,/livez,/metrics",
            ),
        ]
    };

    let mut controller_manager = vec![
        flag("kubeconfig", inputs.kcm_kubeconfig),
        flag("authentication-kubeconfig", inputs.kcm_kubeconfig),
        flag("authorization-kubeconfig", inputs.kcm_kubeconfig),
        flag("leader-elect", "false"),
        flag("controllers", "*"),
        flag("use-service-account-credentials", "true"),
        flag("service-account-private-key-file", &pki.sa_key),
        flag("root-ca-file", &pki.ca_cert),
        flag("cluster-signing-cert-file", &pki.ca_cert),
        flag("cluster-signing-key-file", &pki.ca_key),
        flag("service-cluster-ip-range", network::SERVICE_CIDR),
        flag("cluster-name", &options.name),
        // Node health is checked every second (default 5 s), so a test that
        // stops kwok sees its nodes go NotReady sooner.
        flag("node-monitor-period", "1s"),
        flag("profiling", "false"),
    ];
    if let Some(t) = options.throughput {
        controller_manager.extend([
            flag("kube-api-qps", t.kube_api_qps.to_string()),
            flag("kube-api-burst", t.kube_api_burst.to_string()),
            flag("concurrent-job-syncs", t.concurrent_job_syncs.to_string()),
        ]);
    }
    controller_manager.extend(secure_serving(ports.controller_manager));
    controller_manager.extend(
        options
            .extra_controller_manager_args
            .iter()
            .map(OsString::from),
    );

    let mut scheduler = vec![
        flag("config", inputs.scheduler_config),
        flag("authentication-kubeconfig", inputs.scheduler_kubeconfig),
        flag("authorization-kubeconfig", inputs.scheduler_kubeconfig),
    ];
    scheduler.extend(secure_serving(ports.scheduler));

    let kwok = vec![
        flag("kubeconfig", inputs.kwok_kubeconfig),
        flag("config", inputs.kwok_config),
        flag("manage-all-nodes", "false"),
        flag(
            "manage-nodes-with-annotation-selector",
            format!("{KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}"),
        ),
        flag("node-lease-duration-seconds", "40"),
        flag("cidr", network::KWOK_POD_CIDR),
        flag("node-ip", "127.0.0.1"),
    ];

    [
        (Component::Etcd, etcd, vec![]),
        (Component::Apiserver, apiserver, vec![]),
        (Component::ControllerManager, controller_manager, vec![]),
        (Component::Scheduler, scheduler, vec![]),
        // kwok also reads ~/.kwok/kwok.yaml if present: give it a home of its own.
        (
            Component::Kwok,
            kwok,
            vec![(
                OsString::from("HOME"),
                inputs.kwok_home.as_os_str().to_owned(),
            )],
        ),
    ]
    .into_iter()
    .map(|(component, args, env)| {
        (
            component,
            ProcessSpec {
                name: component.name(),
                program: program(tools, options.control_plane, component),
                args,
                env,
                cwd: layout.root.clone(),
                log: layout.log(component),
            },
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cluster::{AuditOptions, pki};

    #[test]
    fn kwok_stages_leave_job_pods_running() {
        let names: Vec<String> = crate::yaml::documents(KWOK_STAGES)
            .unwrap()
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "node-initialize",
                "node-heartbeat-with-lease",
                "pod-ready",
                "pod-terminate-on-delete",
                "pod-delete"
            ]
        );
        assert!(KWOK_STAGES.contains(r#".metadata.annotations["kwok.x-k8s.io/status"]"#));
    }

    #[test]
    fn command_lines_carry_the_required_flags() {
        let dir = tempfile::tempdir().unwrap();
        let options = ClusterOptions::default();
        let tools_dir = dir.path().join("tools");
        let specs = specs_in(dir.path(), &options, None);
        let args = |c: Component| args_of(&specs, c);
        let etcd = args(Component::Etcd);
        assert!(etcd.contains(&"--unsafe-no-fsync=true".to_string()));
        assert!(etcd.contains(&"--listen-client-urls=http://127.0.0.1:1".to_string()));
        let api = args(Component::Apiserver);
        for expected in [
            "--bind-address=0.0.0.0",
            "--advertise-address=198.19.0.1",
            "--secure-port=3",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement,PodSecurity",
            "--service-cluster-ip-range=198.19.128.0/17",
            "--kubelet-preferred-address-types=InternalIP",
            "--etcd-servers=http://127.0.0.1:1",
        ] {
            assert!(
                api.contains(&expected.to_string()),
                "{expected} missing from {api:?}"
            );
        }
        assert!(
            api.iter()
                .any(|a| a.starts_with("--service-account-signing-key-file="))
        );
        let kcm = args(Component::ControllerManager);
        for expected in [
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--secure-port=4",
        ] {
            assert!(
                kcm.contains(&expected.to_string()),
                "{expected} missing from {kcm:?}"
            );
        }
        assert!(kcm.iter().any(|a| a.starts_with("--root-ca-file=")));
        assert!(
            kcm.iter()
                .any(|a| a.starts_with("--service-account-private-key-file="))
        );
        let kwok = args(Component::Kwok);
        assert!(kwok.contains(
            &"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake".to_string()
        ));
        assert_eq!(specs[&Component::Kwok].env[0].0, "HOME");
        assert_eq!(
            specs[&Component::Scheduler].program,
            tools_dir.join("bin/kube-scheduler")
        );
    }

    #[test]
    fn defaults_leave_rates_and_audit_alone() {
        let options = ClusterOptions::default();
        assert_eq!(options.throughput, None);
        assert_eq!(options.audit, None);
        let sched: serde_json::Value =
            crate::yaml::from_str(&scheduler_config_yaml(Path::new("/k/s"), None).unwrap())
                .unwrap();
        assert_eq!(
            sched["clientConnection"],
            serde_json::json!({ "kubeconfig": "/k/s" })
        );
        assert_eq!(kwok_config_yaml(None).unwrap(), KWOK_STAGES);
    }

    #[test]
    fn throughput_and_audit_reach_the_command_lines_and_configs() {
        let dir = tempfile::tempdir().unwrap();
        let options = ClusterOptions {
            throughput: Some(Throughput::high()),
            audit: Some(AuditOptions {
                policy: "apiVersion: audit.k8s.io/v1\nkind: Policy\n".into(),
            }),
            extra_apiserver_args: vec!["--v=1".into()],
            ..ClusterOptions::default()
        };
        let specs = specs_in(dir.path(), &options, Some(Path::new("/k/audit.yaml")));
        let args = |c: Component| args_of(&specs, c);
        let api = args(Component::Apiserver);
        let audit_log = format!(
            "--audit-log-path={}",
            dir.path().join("logs").join(AUDIT_LOG).display()
        );
        for expected in [
            "--audit-policy-file=/k/audit.yaml",
            audit_log.as_str(),
            "--audit-log-format=json",
            "--audit-log-mode=blocking",
        ] {
            assert!(api.contains(&expected.to_string()), "{expected}: {api:?}");
        }
        assert_eq!(
            api.last().map(String::as_str),
            Some("--v=1"),
            "extra args last"
        );
        let kcm = args(Component::ControllerManager);
        for expected in [
            "--kube-api-qps=5000",
            "--kube-api-burst=10000",
            "--concurrent-job-syncs=50",
        ] {
            assert!(kcm.contains(&expected.to_string()), "{expected}: {kcm:?}");
        }

        let sched: serde_json::Value = crate::yaml::from_str(
            &scheduler_config_yaml(Path::new("/k/s"), Some(Throughput::high())).unwrap(),
        )
        .unwrap();
        assert_eq!(sched["clientConnection"]["qps"], 5000);
        assert_eq!(sched["clientConnection"]["burst"], 10000);
        let kwok = kwok_config_yaml(Some(Throughput::high())).unwrap();
        let docs = crate::yaml::documents(&kwok).unwrap();
        let last = docs.last().unwrap();
        assert_eq!(last["kind"].as_str(), Some("KwokConfiguration"));
        assert_eq!(
            last["options"]["podPlayStageParallelism"].as_u64(),
            Some(16)
        );
        let stages = crate::yaml::documents(KWOK_STAGES).unwrap().len();
        assert_eq!(docs.len(), stages + 1, "the Stages and the configuration");
    }

    /// The specs for `options` in a scratch `dir`: a real PKI, fake tools
    /// in `dir/tools`, ports 1 to 5, kubeconfigs and configs under `/k`.
    fn specs_in(
        dir: &Path,
        options: &ClusterOptions,
        audit_policy: Option<&Path>,
    ) -> BTreeMap<Component, ProcessSpec> {
        let pki = pki::Pki::generate(None)
            .unwrap()
            .write(&dir.join("pki"))
            .unwrap();
        let layout = Layout {
            root: dir.into(),
            logs: dir.join("logs"),
            admin_kubeconfig: dir.join("admin.kubeconfig"),
            pki,
        };
        component_specs(&ComponentInputs {
            options,
            tools: &fake_tools(&dir.join("tools")),
            layout: &layout,
            ports: Ports {
                etcd_client: 1,
                etcd_peer: 2,
                apiserver: 3,
                controller_manager: 4,
                scheduler: 5,
            },
            kcm_kubeconfig: Path::new("/k/kcm"),
            scheduler_config: Path::new("/k/sched.yaml"),
            scheduler_kubeconfig: Path::new("/k/sched"),
            kwok_kubeconfig: Path::new("/k/kwok"),
            kwok_config: Path::new("/k/stages.yaml"),
            kwok_home: Path::new("/k/home"),
            audit_policy,
        })
    }

    #[test]
    fn the_oldest_control_plane_runs_from_kube_min() {
        let dir = tempfile::tempdir().unwrap();
        let tools = fake_tools(dir.path());
        for component in [
            Component::Apiserver,
            Component::ControllerManager,
            Component::Scheduler,
        ] {
            let name = component.name();
            assert_eq!(
                program(&tools, ControlPlane::OldestSupported, component),
                dir.path().join("kube-min").join(name)
            );
            assert_eq!(
                program(&tools, ControlPlane::Current, component),
                dir.path().join("bin").join(name)
            );
        }
        for component in [Component::Etcd, Component::Kwok] {
            assert_eq!(
                program(&tools, ControlPlane::OldestSupported, component),
                dir.path().join("bin").join(component.name())
            );
        }
    }

    /// The arguments of `c`'s command line, as strings.
    fn args_of(specs: &BTreeMap<Component, ProcessSpec>, c: Component) -> Vec<String> {
        specs[&c]
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn fake_tools(dir: &Path) -> Tools {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for name in crate::tools::CLUSTER_BINARIES {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o755)
                .open(dir.join("bin").join(name))
                .unwrap();
        }
        Tools::from_dir(dir).unwrap()
    }
}
