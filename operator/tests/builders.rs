//! Tests of the pure resource builders: from a LocustTest and the operator configuration to
//! the master Job, the worker Job and the master Service.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use locust_operator::api::LocustTest;
use locust_operator::config::OperatorConfig;
use locust_operator::resources::command::{
    ContainerCommand, MASTER_COMMAND_FIELD, WORKER_COMMAND_FIELD,
};
use locust_operator::resources::labels::{
    LABEL_APP, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_LEGACY_MANAGED_BY, LABEL_MANAGED_BY,
    LABEL_NAME, LABEL_PART_OF, LABEL_TEST_NAME, LABEL_TEST_POD_NAME,
};
use locust_operator::resources::names::short_hash;
use locust_operator::resources::{
    Children, CommandError, MANAGED_BY_SELECTOR, ResourceError, Role, SPEC_HASH_ANNOTATION,
    build_children, is_reserved_volume_name, master_args, master_container_command,
    owner_reference, selector_labels, service_name, spec_hash, worker_args,
    worker_container_command,
};

/// A minimal test: defaults everywhere.
const MINIMAL: &str = r#"
apiVersion: locust.io/v2
kind: LocustTest
metadata:
  name: demo
  namespace: load
  uid: 0f8a7c2e-1111-2222-3333-444455556666
spec:
  image: locustio/locust:2.43.1
  master:
    command: locust -f /lotest/src/locustfile.py
  worker:
    command: locust -f /lotest/src/locustfile.py
    replicas: 3
"#;

/// A test using every feature.
const FULL: &str = r#"
apiVersion: locust.io/v2
kind: LocustTest
metadata:
  name: full
  namespace: perf
  uid: 11111111-2222-3333-4444-555555555555
spec:
  image: registry.example/locust:custom
  imagePullPolicy: Always
  imagePullSecrets:
    - name: regcred
  master:
    command: "locust -f '/lotest/src/my test.py' --tags \"a b\""
    labels:
      team: platform
      app.kubernetes.io/name: not-locust
      performance-test-name: spoofed
    annotations:
      prometheus.io/scrape: "true"
    autostart: false
    autoquit:
      enabled: true
      timeout: 30
    extraArgs: ["--loglevel", "DEBUG"]
    resources:
      requests:
        memory: 2Gi
      limits:
        nvidia.com/gpu: "1"
  worker:
    command: "--locustfile /lotest/src/locustfile.py"
    replicas: 7
    labels:
      role: load
    extraArgs: ["--processes", "2"]
    resources:
      limits:
        cpu: 100m
  testFiles:
    configMapRef: my-tests
    libConfigMapRef: my-lib
    srcMountPath: /tests
  scheduling:
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions:
                - key: workload
                  operator: In
                  values: [perf]
    tolerations:
      - key: dedicated
        operator: Equal
        value: locust
        effect: NoSchedule
    nodeSelector:
      kubernetes.io/arch: amd64
    runtimeClassName: gvisor
  env:
    configMapRefs:
      - name: test-config
        prefix: TEST_
      - name: more-config
        prefix: ""
    secretRefs:
      - name: api-credentials
    variables:
      - name: B_VAR
        value: b
      - name: A_VAR
        valueFrom:
          secretKeyRef:
            name: api-credentials
            key: token
      - name: OTEL_EXPORTER_OTLP_ENDPOINT
        value: http://user-choice:4318
    secretMounts:
      - name: tls-certs
        mountPath: /etc/locust/certs
      - name: writable
        mountPath: /etc/locust/rw
        readOnly: false
  volumes:
    - name: results
      persistentVolumeClaim:
        claimName: results-pvc
    - name: shared
      emptyDir: {}
    - name: master-only
      emptyDir: {}
    - name: unused
      emptyDir: {}
  volumeMounts:
    - name: results
      mountPath: /results
    - name: shared
      mountPath: /shared
      target: worker
    - name: master-only
      mountPath: /master
      target: master
      readOnly: true
  security:
    podSecurityContext:
      runAsNonRoot: true
      runAsUser: 4242
      fsGroup: 4242
    containerSecurityContext:
      readOnlyRootFilesystem: true
  observability:
    openTelemetry:
      enabled: true
      endpoint: otel-collector.monitoring:4317
      insecure: true
      extraEnvVars:
        Z_LAST: z
        OTEL_TRACES_EXPORTER: console
        OTEL_RESOURCE_ATTRIBUTES: service.name=locust
"#;

fn test_from(yaml: &str) -> LocustTest {
    locust_operator::yaml::from_str(yaml).unwrap()
}

fn minimal() -> LocustTest {
    test_from(MINIMAL)
}

fn full() -> LocustTest {
    test_from(FULL)
}

fn build(test: &LocustTest) -> Children {
    build_children(test, &OperatorConfig::default()).unwrap()
}

fn template(job: &Job) -> &PodTemplateSpec {
    &job.spec.as_ref().unwrap().template
}

fn pod(job: &Job) -> &PodSpec {
    template(job).spec.as_ref().unwrap()
}

fn container(job: &Job) -> &Container {
    let containers = &pod(job).containers;
    assert_eq!(containers.len(), 1, "exactly one container, no sidecar");
    &containers[0]
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn env_names(c: &Container) -> Vec<&str> {
    c.env.iter().flatten().map(|v| v.name.as_str()).collect()
}

fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
    c.env.iter().flatten().find(|v| v.name == name)
}

// ---------------------------------------------------------------- command lines

#[test]
fn master_command_line_defaults() {
    let t = minimal();
    assert_eq!(
        master_args(&t.spec).unwrap(),
        strings(&[
            "locust",
            "-f",
            "/lotest/src/locustfile.py",
            "--master",
            "--master-port=5557",
            "--expect-workers=3",
            "--autostart",
            "--autoquit",
            "60",
            "--enable-rebalancing",
            "--only-summary",
        ])
    );
}

#[test]
fn master_command_line_with_otel_no_autostart_and_extra_args() {
    let t = full();
    assert_eq!(
        master_args(&t.spec).unwrap(),
        strings(&[
            "locust",
            "-f",
            "/lotest/src/my test.py",
            "--tags",
            "a b",
            "--otel",
            "--master",
            "--master-port=5557",
            "--expect-workers=7",
            "--autoquit",
            "30",
            "--enable-rebalancing",
            "--only-summary",
            "--loglevel",
            "DEBUG",
        ])
    );
}

#[test]
fn autoquit_disabled_drops_both_tokens() {
    let mut t = minimal();
    t.spec.master.autoquit.enabled = false;
    t.spec.master.autostart = false;
    let args = master_args(&t.spec).unwrap();
    assert_eq!(
        args[args.len() - 3..],
        [
            "--expect-workers=3",
            "--enable-rebalancing",
            "--only-summary"
        ]
    );
    assert!(
        !args
            .iter()
            .any(|a| a == "--autoquit" || a == "60" || a == "--autostart")
    );
}

#[test]
fn worker_command_line() {
    let t = minimal();
    assert_eq!(
        worker_args(&t.spec, "demo-master").unwrap(),
        strings(&[
            "locust",
            "-f",
            "/lotest/src/locustfile.py",
            "--worker",
            "--master-host=demo-master",
            "--master-port=5557",
        ])
    );
    let t = full();
    assert_eq!(
        worker_args(&t.spec, "full-master").unwrap(),
        strings(&[
            "--locustfile",
            "/lotest/src/locustfile.py",
            "--otel",
            "--worker",
            "--master-host=full-master",
            "--master-port=5557",
            "--processes",
            "2",
        ])
    );
}

#[test]
fn seed_form_replaces_the_entrypoint_and_option_form_keeps_it() {
    let t = full();
    // Master: `locust -f ...` replaces the entrypoint.
    let m = master_container_command(&t.spec).unwrap();
    assert_eq!(m.command, Some(strings(&["locust"])));
    assert_eq!(m.args.first().map(String::as_str), Some("-f"));
    // Worker: `--locustfile ...` is only arguments to the image's entrypoint.
    let w = worker_container_command(&t.spec, "full-master").unwrap();
    assert_eq!(w.command, None);
    assert_eq!(w.args.first().map(String::as_str), Some("--locustfile"));

    let children = build(&t);
    let mc = container(&children.master_job);
    assert_eq!(mc.command, m.command);
    assert_eq!(mc.args.as_ref(), Some(&m.args));
    let wc = container(&children.worker_job);
    assert_eq!(wc.command, None);
    assert_eq!(wc.args.as_ref(), Some(&w.args));

    assert_eq!(
        ContainerCommand::from_tokens(strings(&["/bin/run", "x"])),
        ContainerCommand {
            command: Some(strings(&["/bin/run"])),
            args: strings(&["x"]),
        }
    );
}

#[test]
fn bad_commands_are_reported_with_their_field() {
    let mut t = minimal();
    t.spec.master.command = "locust -f 'unterminated".to_owned();
    assert_eq!(
        master_args(&t.spec),
        Err(CommandError::Unbalanced {
            field: MASTER_COMMAND_FIELD
        })
    );
    let err = build_children(&t, &OperatorConfig::default()).unwrap_err();
    assert_eq!(err.reason(), "InvalidCommand");
    assert!(
        err.to_string().starts_with("spec.master.command: "),
        "{err}"
    );

    let mut t = minimal();
    t.spec.worker.command = "   ".to_owned();
    assert_eq!(
        worker_args(&t.spec, "x"),
        Err(CommandError::Empty {
            field: WORKER_COMMAND_FIELD
        })
    );
    let err = build_children(&t, &OperatorConfig::default()).unwrap_err();
    assert_eq!(
        err,
        ResourceError::Command(CommandError::Empty {
            field: "spec.worker.command"
        })
    );
    assert_eq!(err.reason(), "EmptyCommand");

    let mut t = minimal();
    t.spec.worker.command = r#"locust -f "x"#.to_owned();
    assert_eq!(
        worker_args(&t.spec, "x").unwrap_err().field(),
        "spec.worker.command"
    );
}

// ---------------------------------------------------------------- names and labels

#[test]
fn child_names_and_worker_master_host() {
    let c = build(&minimal());
    assert_eq!(c.master_job.metadata.name.as_deref(), Some("demo-master"));
    assert_eq!(c.worker_job.metadata.name.as_deref(), Some("demo-worker"));
    assert_eq!(c.service.metadata.name.as_deref(), Some("demo-master"));
    for meta in [
        &c.master_job.metadata,
        &c.worker_job.metadata,
        &c.service.metadata,
    ] {
        assert_eq!(meta.namespace.as_deref(), Some("load"));
    }
    assert!(
        container(&c.worker_job)
            .args
            .iter()
            .flatten()
            .any(|a| a == "--master-host=demo-master")
    );
}

#[test]
fn dotted_test_names_get_valid_children() {
    let mut t = minimal();
    t.metadata.name = Some("team.checkout".to_owned());
    let c = build(&t);
    let hash = short_hash("team.checkout");
    let master = format!("team-checkout-{hash}-master");
    assert_eq!(c.master_job.metadata.name.as_deref(), Some(master.as_str()));
    assert_eq!(c.service.metadata.name.as_deref(), Some(master.as_str()));
    assert_eq!(service_name("team.checkout"), master);
    assert_eq!(
        c.worker_job.metadata.name.as_deref(),
        Some(format!("team-checkout-{hash}-worker").as_str())
    );
    let labels = template(&c.worker_job)
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(labels[LABEL_INSTANCE], "team.checkout");
    assert_eq!(labels[LABEL_TEST_NAME], "team.checkout");
    assert_eq!(
        labels[LABEL_TEST_POD_NAME],
        format!("team-checkout-{hash}-worker")
    );
    let host = format!("--master-host={master}");
    assert!(
        container(&c.worker_job)
            .args
            .iter()
            .flatten()
            .any(|a| *a == host)
    );
}

#[test]
fn operator_labels_win_over_user_labels() {
    let c = build(&full());
    let meta = template(&c.master_job).metadata.as_ref().unwrap();
    let labels = meta.labels.as_ref().unwrap();
    let expected: BTreeMap<String, String> = [
        (LABEL_NAME, "locust"),
        (LABEL_INSTANCE, "full"),
        (LABEL_COMPONENT, "master"),
        (LABEL_MANAGED_BY, "locust-k8s-operator"),
        (LABEL_PART_OF, "locust-k8s-operator"),
        (LABEL_TEST_NAME, "full"),
        (LABEL_TEST_POD_NAME, "full-master"),
        (LABEL_LEGACY_MANAGED_BY, "locust-k8s-operator"),
        (LABEL_APP, "full"),
        ("team", "platform"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(labels, &expected);
    assert_eq!(
        meta.annotations.as_ref().unwrap(),
        &BTreeMap::from([("prometheus.io/scrape".to_owned(), "true".to_owned())])
    );

    let worker_labels = template(&c.worker_job)
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(worker_labels[LABEL_COMPONENT], "worker");
    assert_eq!(worker_labels["role"], "load");
    assert!(
        !worker_labels.contains_key("team"),
        "master labels stay on the master"
    );

    // Child metadata carries the operator labels only, never the user's.
    let job_labels = c.master_job.metadata.labels.as_ref().unwrap();
    assert!(!job_labels.contains_key("team"));
    assert_eq!(job_labels[LABEL_NAME], "locust");
    assert_eq!(
        c.worker_job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
        "worker"
    );
    assert_eq!(
        c.service.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
        "master"
    );
    assert_eq!(
        MANAGED_BY_SELECTOR,
        format!("{LABEL_MANAGED_BY}=locust-k8s-operator")
    );
    for meta in [
        &c.master_job.metadata,
        &c.worker_job.metadata,
        &c.service.metadata,
    ] {
        assert_eq!(
            meta.labels.as_ref().unwrap()[LABEL_MANAGED_BY],
            "locust-k8s-operator"
        );
    }
}

#[test]
fn service_selects_the_master_pod() {
    let c = build(&minimal());
    let spec = c.service.spec.as_ref().unwrap();
    let selector = spec.selector.as_ref().unwrap();
    assert_eq!(selector, &selector_labels("demo", Role::Master));
    assert_eq!(selector.len(), 3);
    let master_labels = template(&c.master_job)
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    let worker_labels = template(&c.worker_job)
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert!(
        selector
            .iter()
            .all(|(k, v)| master_labels.get(k) == Some(v))
    );
    assert!(
        !selector
            .iter()
            .all(|(k, v)| worker_labels.get(k) == Some(v))
    );
}

// ---------------------------------------------------------------- service and jobs

#[test]
fn service_ports_and_type() {
    let c = build(&minimal());
    let spec = c.service.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    type PortSummary<'a> = (
        Option<&'a str>,
        i32,
        Option<&'a IntOrString>,
        Option<&'a str>,
    );
    let ports: Vec<PortSummary<'_>> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            (
                p.name.as_deref(),
                p.port,
                p.target_port.as_ref(),
                p.protocol.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            (
                Some("master-p1"),
                5557,
                Some(&IntOrString::Int(5557)),
                Some("TCP")
            ),
            (
                Some("master-p2"),
                5558,
                Some(&IntOrString::Int(5558)),
                Some("TCP")
            ),
            (
                Some("web"),
                8089,
                Some(&IntOrString::Int(8089)),
                Some("TCP")
            ),
        ]
    );
    let container_ports: Vec<i32> = container(&c.master_job)
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(container_ports, vec![5557, 5558, 8089]);
    assert_eq!(container(&c.worker_job).ports, None);
}

#[test]
fn job_shapes_and_pod_failure_policies() {
    let c = build(&minimal());
    let m = c.master_job.spec.as_ref().unwrap();
    assert_eq!(
        (m.parallelism, m.completions, m.backoff_limit),
        (Some(1), Some(1), Some(0))
    );
    let w = c.worker_job.spec.as_ref().unwrap();
    assert_eq!(
        (w.parallelism, w.completions, w.backoff_limit),
        (Some(3), None, Some(3))
    );
    for (job, action) in [(m, "FailJob"), (w, "Ignore")] {
        let rules = &job.pod_failure_policy.as_ref().unwrap().rules;
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action, action);
        let conds = rules[0].on_pod_conditions.as_ref().unwrap();
        assert_eq!(conds.len(), 1);
        assert_eq!(
            (conds[0].type_.as_str(), conds[0].status.as_str()),
            ("DisruptionTarget", "True")
        );
        assert_eq!(job.ttl_seconds_after_finished, None);
        assert_eq!(
            job.template
                .spec
                .as_ref()
                .unwrap()
                .restart_policy
                .as_deref(),
            Some("Never")
        );
        assert_eq!(
            job.selector, None,
            "the Job controller generates the selector"
        );
    }

    let cfg = OperatorConfig {
        job_ttl_seconds_after_finished: Some(600),
        ..OperatorConfig::default()
    };
    let c = build_children(&minimal(), &cfg).unwrap();
    for job in [&c.master_job, &c.worker_job] {
        assert_eq!(
            job.spec.as_ref().unwrap().ttl_seconds_after_finished,
            Some(600)
        );
    }
}

#[test]
fn owner_references_on_every_child() {
    let t = minimal();
    let c = build(&t);
    let owner = owner_reference(&t).unwrap();
    assert_eq!(owner.api_version, "locust.io/v2");
    assert_eq!(owner.kind, "LocustTest");
    assert_eq!(owner.name, "demo");
    assert_eq!(owner.uid, "0f8a7c2e-1111-2222-3333-444455556666");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    for meta in [
        &c.master_job.metadata,
        &c.worker_job.metadata,
        &c.service.metadata,
    ] {
        assert_eq!(
            meta.owner_references.as_deref(),
            Some(std::slice::from_ref(&owner))
        );
    }
}

#[test]
fn missing_metadata_is_an_error() {
    for field in ["name", "namespace", "uid"] {
        let mut t = minimal();
        match field {
            "name" => t.metadata.name = None,
            "namespace" => t.metadata.namespace = Some(String::new()),
            _ => t.metadata.uid = None,
        }
        let err = build_children(&t, &OperatorConfig::default()).unwrap_err();
        assert_eq!(err, ResourceError::MissingMetadata { field });
        assert_eq!(err.reason(), "MissingMetadata");
        assert_eq!(
            err.to_string(),
            format!("LocustTest has no metadata.{field}")
        );
    }
}

// ---------------------------------------------------------------- environment

#[test]
fn env_order_user_precedence_and_otel() {
    let c = build(&full());
    for job in [&c.master_job, &c.worker_job] {
        let ctr = container(job);
        assert_eq!(
            env_names(ctr),
            vec![
                "B_VAR",
                "A_VAR",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_METRICS_EXPORTER",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_INSECURE",
                "OTEL_RESOURCE_ATTRIBUTES",
                "OTEL_TRACES_EXPORTER",
                "Z_LAST",
            ]
        );
        let value = |n: &str| env_value(ctr, n).and_then(|v| v.value.as_deref());
        // The user's variable wins over the operator's.
        assert_eq!(
            value("OTEL_EXPORTER_OTLP_ENDPOINT"),
            Some("http://user-choice:4318")
        );
        // extraEnvVars wins over the operator's fixed OTel variables.
        assert_eq!(value("OTEL_TRACES_EXPORTER"), Some("console"));
        assert_eq!(value("OTEL_METRICS_EXPORTER"), Some("otlp"));
        assert_eq!(value("OTEL_EXPORTER_OTLP_PROTOCOL"), Some("grpc"));
        assert_eq!(value("OTEL_EXPORTER_OTLP_INSECURE"), Some("true"));
        assert!(env_value(ctr, "A_VAR").unwrap().value_from.is_some());

        let from = ctr.env_from.as_ref().unwrap();
        let summary: Vec<(Option<&str>, Option<&str>, Option<&str>)> = from
            .iter()
            .map(|s| {
                (
                    s.config_map_ref.as_ref().map(|r| r.name.as_str()),
                    s.secret_ref.as_ref().map(|r| r.name.as_str()),
                    s.prefix.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some("test-config"), None, Some("TEST_")),
                (Some("more-config"), None, None),
                (None, Some("api-credentials"), None),
            ]
        );
        assert!(!env_names(ctr).iter().any(|n| n.contains("KAFKA")));
    }
}

#[test]
fn otel_defaults_when_enabled_without_extras() {
    let mut t = minimal();
    t.spec.observability = locust_operator::yaml::from_str(
        "openTelemetry: {enabled: true, endpoint: 'collector:4317', protocol: http/protobuf}",
    )
    .unwrap();
    let c = build(&t);
    let ctr = container(&c.master_job);
    assert_eq!(
        env_names(ctr),
        vec![
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ]
    );
    assert_eq!(
        env_value(ctr, "OTEL_EXPORTER_OTLP_PROTOCOL").and_then(|v| v.value.as_deref()),
        Some("http/protobuf")
    );
    assert!(master_args(&t.spec).unwrap().contains(&"--otel".to_owned()));
}

#[test]
fn no_env_without_otel_or_variables() {
    let mut t = minimal();
    t.spec.observability = locust_operator::yaml::from_str(
        "openTelemetry: {enabled: false, endpoint: 'collector:4317'}",
    )
    .unwrap();
    let c = build(&t);
    for job in [&c.master_job, &c.worker_job] {
        let ctr = container(job);
        assert_eq!(ctr.env, None);
        assert_eq!(ctr.env_from, None);
        assert!(!ctr.args.iter().flatten().any(|a| a == "--otel"));
    }
}

// ---------------------------------------------------------------- volumes

#[test]
fn volumes_only_on_the_roles_that_mount_them() {
    let c = build(&full());
    let names = |job: &Job| -> Vec<String> {
        pod(job)
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.clone())
            .collect()
    };
    assert_eq!(
        names(&c.master_job),
        strings(&[
            "locust-src",
            "locust-lib",
            "locust-secret-0",
            "locust-secret-1",
            "results",
            "master-only"
        ])
    );
    assert_eq!(
        names(&c.worker_job),
        strings(&[
            "locust-src",
            "locust-lib",
            "locust-secret-0",
            "locust-secret-1",
            "results",
            "shared"
        ])
    );

    let mounts = |job: &Job| -> Vec<(String, String, Option<bool>)> {
        container(job)
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| (m.name.clone(), m.mount_path.clone(), m.read_only))
            .collect()
    };
    let common = [
        ("locust-src", "/tests", Some(true)),
        ("locust-lib", "/opt/locust/lib", Some(true)),
        ("locust-secret-0", "/etc/locust/certs", Some(true)),
        ("locust-secret-1", "/etc/locust/rw", None),
        ("results", "/results", None),
    ];
    let expect = |extra: (&str, &str, Option<bool>)| -> Vec<(String, String, Option<bool>)> {
        common
            .iter()
            .copied()
            .chain(std::iter::once(extra))
            .map(|(n, p, r)| (n.to_owned(), p.to_owned(), r))
            .collect()
    };
    assert_eq!(
        mounts(&c.master_job),
        expect(("master-only", "/master", Some(true)))
    );
    assert_eq!(mounts(&c.worker_job), expect(("shared", "/shared", None)));

    let master_volumes = pod(&c.master_job).volumes.as_ref().unwrap();
    let src = master_volumes
        .iter()
        .find(|v| v.name == "locust-src")
        .unwrap();
    assert_eq!(src.config_map.as_ref().unwrap().name, "my-tests");
    let lib = master_volumes
        .iter()
        .find(|v| v.name == "locust-lib")
        .unwrap();
    assert_eq!(lib.config_map.as_ref().unwrap().name, "my-lib");
    let secret = master_volumes
        .iter()
        .find(|v| v.name == "locust-secret-1")
        .unwrap();
    assert_eq!(
        secret.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("writable")
    );
    let results = master_volumes.iter().find(|v| v.name == "results").unwrap();
    assert_eq!(
        results.persistent_volume_claim.as_ref().unwrap().claim_name,
        "results-pvc"
    );
}

#[test]
fn no_volumes_without_test_files_or_mounts() {
    let c = build(&minimal());
    for job in [&c.master_job, &c.worker_job] {
        assert_eq!(pod(job).volumes, None);
        assert_eq!(container(job).volume_mounts, None);
    }
    let mut t = minimal();
    t.spec.test_files = locust_operator::yaml::from_str("libConfigMapRef: only-lib").unwrap();
    let c = build(&t);
    let v = pod(&c.worker_job).volumes.as_ref().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].name, "locust-lib");
    let m = container(&c.worker_job).volume_mounts.as_ref().unwrap();
    assert_eq!(m[0].mount_path, "/opt/locust/lib");
}

#[test]
fn reserved_volume_names() {
    for reserved in [
        "locust-src",
        "locust-lib",
        "locust-secret-0",
        "locust-secret-17",
    ] {
        assert!(is_reserved_volume_name(reserved), "{reserved}");
    }
    for free in [
        "locust-secret-",
        "locust-secret-x",
        "locust-secret-1a",
        "locust-srcs",
        "results",
        "locust",
    ] {
        assert!(!is_reserved_volume_name(free), "{free}");
    }
}

// ---------------------------------------------------------------- scheduling and image

#[test]
fn scheduling_and_image_settings_on_both_pods() {
    let c = build(&full());
    for job in [&c.master_job, &c.worker_job] {
        let p = pod(job);
        assert!(p.affinity.as_ref().unwrap().node_affinity.is_some());
        assert_eq!(
            p.tolerations.as_ref().unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
        assert_eq!(
            p.node_selector.as_ref().unwrap()["kubernetes.io/arch"],
            "amd64"
        );
        assert_eq!(p.runtime_class_name.as_deref(), Some("gvisor"));
        assert_eq!(p.image_pull_secrets.as_ref().unwrap()[0].name, "regcred");
        let ctr = container(job);
        assert_eq!(ctr.image.as_deref(), Some("registry.example/locust:custom"));
        assert_eq!(ctr.image_pull_policy.as_deref(), Some("Always"));
    }

    let cfg = OperatorConfig {
        default_runtime_class_name: Some("kata".to_owned()),
        ..OperatorConfig::default()
    };
    let c = build_children(&minimal(), &cfg).unwrap();
    for job in [&c.master_job, &c.worker_job] {
        let p = pod(job);
        assert_eq!(p.runtime_class_name.as_deref(), Some("kata"));
        assert_eq!(
            (
                p.affinity.as_ref(),
                p.tolerations.as_ref(),
                p.node_selector.as_ref()
            ),
            (None, None, None)
        );
        assert_eq!(p.image_pull_secrets, None);
        assert_eq!(container(job).image_pull_policy, None);
    }
    let c = build_children(&full(), &cfg).unwrap();
    assert_eq!(
        pod(&c.master_job).runtime_class_name.as_deref(),
        Some("gvisor")
    );
    assert_eq!(pod(&build(&minimal()).master_job).runtime_class_name, None);
}

// Resources: tests/migration_builders.rs.

// ---------------------------------------------------------------- security

#[test]
fn secure_by_default() {
    let c = build(&minimal());
    for job in [&c.master_job, &c.worker_job] {
        let p = pod(job);
        let psc = p.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.run_as_user, None,
            "no fixed UID by default (OpenShift assigns one)"
        );
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        assert_eq!(p.automount_service_account_token, Some(false));
        assert_eq!(p.enable_service_links, Some(false));
        let csc = container(job).security_context.as_ref().unwrap();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.run_as_non_root, Some(true));
        assert_eq!(csc.run_as_user, None);
        assert_eq!(csc.privileged, None);
        assert_eq!(
            csc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let caps = csc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(caps.add, None);
    }
    let cfg = OperatorConfig {
        pod_run_as_user: Some(1000),
        ..OperatorConfig::default()
    };
    let c = build_children(&minimal(), &cfg).unwrap();
    assert_eq!(
        pod(&c.worker_job)
            .security_context
            .as_ref()
            .unwrap()
            .run_as_user,
        Some(1000)
    );
}

#[test]
fn security_contexts_from_the_spec_replace_the_defaults() {
    let c = build(&full());
    for job in [&c.master_job, &c.worker_job] {
        let psc = pod(job).security_context.as_ref().unwrap();
        assert_eq!((psc.run_as_user, psc.fs_group), (Some(4242), Some(4242)));
        assert_eq!(psc.seccomp_profile, None, "replaced, not merged");
        let csc = container(job).security_context.as_ref().unwrap();
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.capabilities, None, "replaced, not merged");
        assert_eq!(pod(job).automount_service_account_token, Some(false));
    }
}

// ---------------------------------------------------------------- spec hash and determinism

#[test]
fn spec_hash_is_stable_and_sensitive() {
    let a = full();
    let b = full();
    let h = spec_hash(&a.spec);
    assert_eq!(h.len(), 16);
    assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(h, spec_hash(&b.spec));
    // Metadata is not part of the spec.
    let mut renamed = full();
    renamed.metadata.name = Some("other".to_owned());
    assert_eq!(h, spec_hash(&renamed.spec));

    let mut changed = full();
    changed.spec.worker.replicas += 1;
    assert_ne!(h, spec_hash(&changed.spec));
    let mut changed = full();
    changed.spec.master.extra_args.push("--x".to_owned());
    assert_ne!(h, spec_hash(&changed.spec));
    let mut changed = full();
    changed
        .spec
        .master
        .labels
        .insert("new".to_owned(), "label".to_owned());
    assert_ne!(h, spec_hash(&changed.spec));

    // Defaults written out explicitly hash like defaults left out.
    let explicit_yaml = MINIMAL.replace(
        "    command: locust -f /lotest/src/locustfile.py\n  worker:",
        "    command: locust -f /lotest/src/locustfile.py\n    autostart: true\n    autoquit: {enabled: true, timeout: 60}\n  worker:",
    );
    assert_ne!(explicit_yaml, MINIMAL);
    let explicit = test_from(&explicit_yaml);
    assert_eq!(spec_hash(&explicit.spec), spec_hash(&minimal().spec));

    let c = build(&a);
    for meta in [
        &c.master_job.metadata,
        &c.worker_job.metadata,
        &c.service.metadata,
    ] {
        assert_eq!(meta.annotations.as_ref().unwrap()[SPEC_HASH_ANNOTATION], h);
    }
}

#[test]
fn output_is_deterministic() {
    let cfg = OperatorConfig::default();
    let first = build_children(&full(), &cfg).unwrap();
    let second = build_children(&full(), &cfg).unwrap();
    assert_eq!(first, second);
    for (a, b) in [
        (
            serde_json::to_string(&first.master_job),
            serde_json::to_string(&second.master_job),
        ),
        (
            serde_json::to_string(&first.worker_job),
            serde_json::to_string(&second.worker_job),
        ),
        (
            serde_json::to_string(&first.service),
            serde_json::to_string(&second.service),
        ),
    ] {
        assert_eq!(a.unwrap(), b.unwrap());
    }
}
