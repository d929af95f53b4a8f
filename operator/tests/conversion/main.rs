//! v1 ↔ v2 conversion of `LocustTest`: the §4.4 field mapping, the affinity
//! shapes, the lossless round trips (property tests), edits made through v1,
//! and the JSON entry point used by the webhook and the CLI.
//!
//! Layout: the fixtures here; `mapping` (the table, row by row), `affinity`,
//! `annotation` (the `locust.io/v2-spec` annotation and edits through v1),
//! `convert_value` (the JSON entry point) and `round_trips` (the generators
//! and the property tests).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapKeySelector, ConfigMapVolumeSource, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, KeyToPath, LocalObjectReference, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PreferredSchedulingTerm, ResourceRequirements, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Toleration, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta, Time};
use locust_operator::api::status::TestResult;
use locust_operator::api::{LocustTestStatus, Phase, v1, v2};
use locust_operator::conversion::{
    ConversionError, V1_API_VERSION, V2_API_VERSION, V2_SPEC_ANNOTATION, convert_value,
    convert_value_with_warnings, fits_v1, v1_to_v2, v2_spec_to_v1, v2_to_v1,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn has_v2_annotation(metadata: &ObjectMeta) -> bool {
    metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(V2_SPEC_ANNOTATION))
}

fn toleration(key: &str) -> Toleration {
    Toleration {
        key: Some(key.to_owned()),
        operator: Some("Equal".to_owned()),
        value: Some("true".to_owned()),
        effect: Some("NoSchedule".to_owned()),
        toleration_seconds: None,
    }
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

/// The v2 affinity a v1 `label: value` map stands for, written out by hand.
fn one_term_affinity(expressions: Vec<NodeSelectorRequirement>) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(expressions),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        pod_affinity: None,
        pod_anti_affinity: None,
    }
}

fn full_v1() -> v1::LocustTest {
    let mut obj = v1::LocustTest::new(
        "demo",
        v1::LocustTestSpec {
            master_command_seed: "--locustfile /lotest/src/demo.py --host https://example.com"
                .into(),
            worker_command_seed: "--locustfile /lotest/src/demo.py".into(),
            worker_replicas: 5,
            image: "locustio/locust:2.43.1".into(),
            image_pull_policy: Some(v2::ImagePullPolicy::Always),
            image_pull_secrets: vec!["regcred".into(), "other".into()],
            config_map: Some("demo-files".into()),
            lib_config_map: Some("demo-lib".into()),
            labels: v1::RoleMaps {
                master: map(&[("role", "master")]),
                worker: map(&[("role", "worker")]),
            },
            annotations: v1::RoleMaps {
                master: map(&[("note", "m")]),
                worker: map(&[("note", "w")]),
            },
            affinity: v1::AffinityV1 {
                node_affinity: v1::NodeAffinityV1 {
                    required: map(&[("zone", "eu-1"), ("disk", "ssd")]),
                },
            },
            tolerations: vec![toleration("dedicated")],
        },
    );
    obj.metadata.namespace = Some("load".into());
    obj.metadata.uid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
    obj.metadata.generation = Some(3);
    obj.metadata.labels = Some(map(&[("team", "perf")]));
    obj.metadata.annotations = Some(map(&[("owner", "alice")]));
    obj.status = Some(LocustTestStatus {
        phase: Some(Phase::Running),
        observed_generation: Some(3),
        expected_workers: Some(5),
        connected_workers: Some(4),
        ..LocustTestStatus::default()
    });
    obj
}

/// The smallest v2 spec a user can write: every other field at its default.
fn minimal_v2_spec() -> v2::LocustTestSpec {
    serde_json::from_value(json!({
        "image": "locustio/locust:2.43.1",
        "master": {"command": "--locustfile /lotest/src/demo.py"},
        "worker": {"command": "--locustfile /lotest/src/demo.py", "replicas": 2},
    }))
    .unwrap()
}

fn rich_affinity() -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![
                    NodeSelectorTerm {
                        match_expressions: Some(vec![
                            requirement("zone", "In", &["eu-1", "eu-2"]),
                            requirement("arch", "NotIn", &["arm64"]),
                        ]),
                        match_fields: None,
                    },
                    NodeSelectorTerm {
                        match_expressions: Some(vec![requirement("pool", "In", &["load"])]),
                        match_fields: None,
                    },
                ],
            }),
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                PreferredSchedulingTerm {
                    weight: 50,
                    preference: NodeSelectorTerm {
                        match_expressions: Some(vec![requirement("disk", "In", &["ssd"])]),
                        match_fields: None,
                    },
                },
            ]),
        }),
        pod_affinity: None,
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: None,
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(map(&[("app", "locust")])),
                            match_expressions: None,
                        }),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
        }),
    }
}

/// A v2 test using many fields v1 cannot express.
fn rich_v2() -> v2::LocustTest {
    let mut spec = minimal_v2_spec();
    spec.master.resources = Some(ResourceRequirements {
        requests: Some(BTreeMap::from([(
            "cpu".to_owned(),
            Quantity("500m".into()),
        )])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("1Gi".into()),
        )])),
        claims: None,
    });
    spec.master.autostart = false;
    spec.master.autoquit = v2::AutoquitSpec {
        enabled: true,
        timeout: 120,
    };
    spec.master.extra_args = vec!["--run-time".into(), "5m".into()];
    spec.worker.extra_args = vec!["--processes".into(), "2".into()];
    spec.test_files = Some(v2::TestFilesSpec {
        config_map_ref: Some("demo-files".into()),
        lib_config_map_ref: None,
        src_mount_path: "/custom/src".into(),
        lib_mount_path: v2::DEFAULT_LIB_MOUNT_PATH.into(),
    });
    spec.scheduling = Some(v2::SchedulingSpec {
        affinity: Some(rich_affinity()),
        tolerations: vec![toleration("dedicated")],
        node_selector: map(&[("kubernetes.io/os", "linux")]),
        runtime_class_name: Some("gvisor".into()),
    });
    spec.env = Some(v2::EnvSpec {
        config_map_refs: vec![v2::EnvSourceRef {
            name: "settings".into(),
            prefix: Some("APP_".into()),
        }],
        secret_refs: vec![v2::EnvSourceRef {
            name: "creds".into(),
            prefix: None,
        }],
        variables: vec![EnvVar {
            name: "TOKEN".into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "creds".into(),
                    key: "token".into(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
        }],
        secret_mounts: vec![v2::SecretMount {
            name: "tls".into(),
            mount_path: "/etc/tls".into(),
            read_only: true,
        }],
    });
    spec.volumes = vec![Volume {
        name: "results".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: None,
            size_limit: Some(Quantity("1Gi".into())),
        }),
        ..Volume::default()
    }];
    spec.volume_mounts = vec![v2::TargetedVolumeMount {
        mount: VolumeMount {
            name: "results".into(),
            mount_path: "/results".into(),
            ..VolumeMount::default()
        },
        target: v2::MountTarget::Master,
    }];
    spec.observability = Some(v2::ObservabilitySpec {
        open_telemetry: Some(v2::OpenTelemetrySpec {
            enabled: true,
            endpoint: Some("otel-collector.monitoring:4317".into()),
            protocol: Some(v2::OtelProtocol::Grpc),
            insecure: Some(true),
            extra_env_vars: BTreeMap::new(),
        }),
    });
    let mut obj = v2::LocustTest::new("rich", spec);
    obj.metadata.namespace = Some("load".into());
    obj.metadata.generation = Some(1);
    obj
}

mod affinity;
mod annotation;
mod convert_value;
mod mapping;
mod round_trips;
