//! The builders' answer to each behaviour of the Go operator a migrating team
//! relies on (docs/migration.md, "Defaults and behaviours"): one test per
//! decision, adopted or not.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use locust_operator::api::LocustTest;
use locust_operator::config::OperatorConfig;
use locust_operator::resources::labels::{
    LABEL_APP, LABEL_TEST_NAME, OPERATOR_LABEL_KEYS, POD_LOOKUP_LABEL_KEYS,
};
use locust_operator::resources::{Children, Role, build_children, selector_labels};
use serde_json::{Value, json};

/// The test `shop`, its spec's top-level fields replaced by those of `spec`.
const SHOP: &str = r#"{"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": "shop", "namespace": "perf", "uid": "u-1"}, "spec": {"image": "locustio/locust:2.43.1", "master": {"command": "--locustfile /lotest/src/l.py"}, "worker": {"command": "--locustfile /lotest/src/l.py", "replicas": 2}}}"#;

fn test(spec: Value) -> LocustTest {
    let mut doc: Value = serde_json::from_str(SHOP).unwrap();
    let fields = spec.as_object().cloned().unwrap_or_default();
    doc["spec"].as_object_mut().unwrap().extend(fields);
    serde_json::from_value(doc).unwrap()
}

fn build(t: &LocustTest, cfg: &OperatorConfig) -> Children {
    build_children(t, cfg).unwrap()
}

/// The labels of a Job's pods.
fn labels_of(job: &Job) -> BTreeMap<String, String> {
    template(job).metadata.clone().unwrap().labels.unwrap()
}

fn template(job: &Job) -> &PodTemplateSpec {
    &job.spec.as_ref().unwrap().template
}

fn pod(job: &Job) -> &PodSpec {
    template(job).spec.as_ref().unwrap()
}

fn container(job: &Job) -> &Container {
    &pod(job).containers[0]
}

fn resources(job: &Job) -> Value {
    serde_json::to_value(container(job).resources.as_ref().unwrap()).unwrap()
}

fn jobs(c: &Children) -> [&Job; 2] {
    [&c.master_job, &c.worker_job]
}

#[test]
fn a_tests_resources_replace_the_defaults_so_leaving_out_the_cpu_limit_means_none() {
    let t = test(json!({
        "master": {"command": "--locustfile l.py", "resources": {"requests": {"memory": "2Gi"}, "limits": {"nvidia.com/gpu": "1"}}},
        "worker": {"command": "--locustfile l.py", "replicas": 2, "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}
        }}
    }));
    let cfg = OperatorConfig {
        worker_cpu_limit: Some("2".into()),
        pod_ephemeral_storage_request: Some("30M".into()),
        ..OperatorConfig::default()
    };
    let c = build(&t, &cfg);
    assert_eq!(
        resources(&c.master_job),
        json!({"requests": {"memory": "2Gi"}, "limits": {"nvidia.com/gpu": "1"}})
    );
    assert_eq!(
        resources(&c.worker_job),
        json!({"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}),
        "no CPU limit, neither the role's nor the unified one"
    );
}

#[test]
fn without_a_tests_resources_role_defaults_fall_back_key_by_key_to_the_unified_ones() {
    let cfg = OperatorConfig {
        master_cpu_request: Some("500m".into()),
        worker_memory_limit: Some("512Mi".into()),
        worker_ephemeral_storage_limit: Some("2Gi".into()),
        pod_ephemeral_storage_limit: Some("1Gi".into()),
        ..OperatorConfig::default()
    };
    // An empty block sets nothing: the defaults apply.
    let t = test(
        json!({"worker": {"command": "--locustfile l.py", "replicas": 2, "resources": {"limits": {}}}}),
    );
    let c = build(&t, &cfg);
    assert_eq!(
        resources(&c.master_job),
        json!({"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"cpu": "1000m", "memory": "1024Mi", "ephemeral-storage": "1Gi"}})
    );
    assert_eq!(
        resources(&c.worker_job),
        json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": "1000m", "memory": "512Mi", "ephemeral-storage": "2Gi"}})
    );
}

#[test]
fn no_ephemeral_storage_by_default_and_the_go_defaults_are_two_flags_away() {
    let c = build(&test(json!({})), &OperatorConfig::default());
    for job in jobs(&c) {
        let r = resources(job);
        assert!(r["requests"].get("ephemeral-storage").is_none(), "{r}");
        assert!(r["limits"].get("ephemeral-storage").is_none(), "{r}");
    }
    let go = OperatorConfig {
        pod_ephemeral_storage_request: Some("30M".into()),
        pod_ephemeral_storage_limit: Some("50M".into()),
        ..OperatorConfig::default()
    };
    let c = build(&test(json!({})), &go);
    for job in jobs(&c) {
        let r = resources(job);
        assert_eq!(r["requests"]["ephemeral-storage"], "30M");
        assert_eq!(r["limits"]["ephemeral-storage"], "50M");
    }
}

#[test]
fn an_empty_runtime_class_opts_out_of_the_operators_default() {
    let cfg = OperatorConfig {
        default_runtime_class_name: Some("gvisor".into()),
        ..OperatorConfig::default()
    };
    for (scheduling, want) in [
        (json!(null), Some("gvisor")),
        (json!({}), Some("gvisor")),
        (json!({"runtimeClassName": ""}), None),
        (json!({"runtimeClassName": "kata"}), Some("kata")),
    ] {
        let mut spec = json!({});
        if !scheduling.is_null() {
            spec["scheduling"] = scheduling.clone();
        }
        let c = build(&test(spec), &cfg);
        for job in jobs(&c) {
            assert_eq!(pod(job).runtime_class_name.as_deref(), want, "{scheduling}");
        }
    }
    // Without an operator default, "" and unset both mean none.
    let c = build(
        &test(json!({"scheduling": {"runtimeClassName": ""}})),
        &OperatorConfig::default(),
    );
    assert_eq!(pod(&c.worker_job).runtime_class_name, None);
}

#[test]
fn pods_and_jobs_carry_app_and_a_test_may_replace_it_on_its_pods() {
    let c = build(&test(json!({})), &OperatorConfig::default());
    for job in jobs(&c) {
        assert_eq!(job.metadata.labels.as_ref().unwrap()[LABEL_APP], "shop");
        assert_eq!(labels_of(job)[LABEL_APP], "shop");
    }
    assert_eq!(
        c.service.metadata.labels.as_ref().unwrap()[LABEL_APP],
        "shop"
    );
    let t =
        test(json!({"master": {"command": "--locustfile l.py", "labels": {"app": "checkout"}}}));
    let c = build(&t, &OperatorConfig::default());
    let labels = labels_of(&c.master_job);
    assert_eq!(labels[LABEL_APP], "checkout");
    assert_eq!(
        c.master_job.metadata.labels.as_ref().unwrap()[LABEL_APP],
        "shop"
    );
}

/// No user label can take the master out of its Service's selector or a pod out of
/// the operator's sight, whatever it sets.
#[test]
fn user_labels_never_break_the_service_selector_or_the_pod_lookup() {
    let hostile: BTreeMap<String, String> = OPERATOR_LABEL_KEYS
        .iter()
        .chain([&LABEL_APP])
        .map(|k| ((*k).to_owned(), "other-test".to_owned()))
        .collect();
    let t = test(json!({
        "master": {"command": "--locustfile l.py", "labels": hostile},
        "worker": {"command": "--locustfile l.py", "replicas": 2, "labels": hostile}
    }));
    let c = build(&t, &OperatorConfig::default());
    let untouched = build(&test(json!({})), &OperatorConfig::default());
    let selector = c.service.spec.as_ref().unwrap().selector.clone().unwrap();
    assert_eq!(selector, selector_labels("shop", Role::Master));
    for (job, plain) in jobs(&c).into_iter().zip(jobs(&untouched)) {
        let labels = labels_of(job);
        let plain = labels_of(plain);
        for key in POD_LOOKUP_LABEL_KEYS
            .iter()
            .chain(OPERATOR_LABEL_KEYS.iter())
        {
            assert_eq!(labels[*key], plain[*key], "{key}");
        }
        assert_eq!(labels[LABEL_TEST_NAME], "shop");
        assert_eq!(
            labels[LABEL_APP], "other-test",
            "only app is the test's to set"
        );
    }
    let master = labels_of(&c.master_job);
    for (k, v) in &selector {
        assert_eq!(&master[k], v, "the Service still selects the master");
    }
}

#[test]
fn the_master_gets_the_go_operators_rebalancing_and_summary_flags() {
    let c = build(&test(json!({})), &OperatorConfig::default());
    assert_eq!(
        container(&c.master_job).args.clone().unwrap(),
        [
            "--locustfile",
            "/lotest/src/l.py",
            "--master",
            "--master-port=5557",
            "--expect-workers=2",
            "--autostart",
            "--autoquit",
            "60",
            "--enable-rebalancing",
            "--only-summary",
        ]
    );
    let worker = container(&c.worker_job).args.clone().unwrap();
    assert!(
        !worker
            .iter()
            .any(|a| a == "--enable-rebalancing" || a == "--only-summary"),
        "{worker:?}"
    );
}

#[test]
fn the_pull_policy_is_left_to_kubernetes_unless_the_test_sets_one() {
    let c = build(
        &test(json!({"image": "locustio/locust:latest"})),
        &OperatorConfig::default(),
    );
    for job in jobs(&c) {
        assert_eq!(container(job).image_pull_policy, None);
    }
    let c = build(
        &test(json!({"imagePullPolicy": "IfNotPresent"})),
        &OperatorConfig::default(),
    );
    for job in jobs(&c) {
        assert_eq!(
            container(job).image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
    }
}

#[test]
fn affinity_and_tolerations_are_always_applied() {
    let t = test(json!({"scheduling": {
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"performance-test-name": "shop"}}, "topologyKey": "kubernetes.io/hostname"}}
        ]}},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    }}));
    let c = build(&t, &OperatorConfig::default());
    for job in jobs(&c) {
        let p = pod(job);
        assert!(p.affinity.as_ref().unwrap().pod_anti_affinity.is_some());
        assert_eq!(
            p.tolerations.as_ref().unwrap()[0].key.as_deref(),
            Some("dedicated")
        );
    }
}

#[test]
fn no_kafka_variables_are_injected_and_env_variables_replace_them() {
    let c = build(&test(json!({})), &OperatorConfig::default());
    for job in jobs(&c) {
        assert_eq!(container(job).env, None);
    }
    let t = test(json!({"env": {"variables": [
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": "kafka:9092"},
        {"name": "KAFKA_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "kafka", "key": "password"}}}
    ]}}));
    let c = build(&t, &OperatorConfig::default());
    let env = container(&c.worker_job).env.clone().unwrap();
    assert_eq!(env.len(), 2);
    assert_eq!(env[0].value.as_deref(), Some("kafka:9092"));
}
