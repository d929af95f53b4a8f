//! v1 ↔ v2 conversion of `LocustTest`: the §4.4 field mapping, the affinity
//! shapes, the lossless round trips (property tests), edits made through v1,
//! and the JSON entry point used by the webhook and the CLI.

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

fn minimal_v2_spec() -> v2::LocustTestSpec {
    v2::LocustTestSpec {
        image: "locustio/locust:2.43.1".into(),
        image_pull_policy: None,
        image_pull_secrets: Vec::new(),
        master: v2::MasterSpec {
            command: "--locustfile /lotest/src/demo.py".into(),
            resources: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            autostart: true,
            autoquit: v2::AutoquitSpec::default(),
            extra_args: Vec::new(),
        },
        worker: v2::WorkerSpec {
            command: "--locustfile /lotest/src/demo.py".into(),
            replicas: 2,
            resources: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            extra_args: Vec::new(),
            processes_per_pod: None,
        },
        test_files: None,
        scheduling: None,
        env: None,
        volumes: Vec::new(),
        volume_mounts: Vec::new(),
        security: None,
        observability: None,
        thresholds: None,
        output: None,
        web_ui: None,
    }
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

// ---------------------------------------------------------------------------
// §4.4 field mapping, row by row
// ---------------------------------------------------------------------------

#[test]
fn v1_to_v2_maps_every_row_of_the_table() {
    let v1obj = full_v1();
    let converted = v1_to_v2(&v1obj);
    assert!(converted.warnings.is_empty());
    let v2obj = converted.object;
    let s = &v2obj.spec;

    assert_eq!(
        s.master.command, v1obj.spec.master_command_seed,
        "masterCommandSeed → master.command"
    );
    assert_eq!(
        s.worker.command, v1obj.spec.worker_command_seed,
        "workerCommandSeed → worker.command"
    );
    assert_eq!(s.worker.replicas, 5, "workerReplicas → worker.replicas");
    assert_eq!(s.image, "locustio/locust:2.43.1", "image");
    assert_eq!(
        s.image_pull_policy,
        Some(v2::ImagePullPolicy::Always),
        "imagePullPolicy"
    );
    assert_eq!(
        s.image_pull_secrets,
        vec![
            LocalObjectReference {
                name: "regcred".into()
            },
            LocalObjectReference {
                name: "other".into()
            }
        ],
        "imagePullSecrets: names → LocalObjectReference"
    );
    let files = s.test_files.as_ref().unwrap();
    assert_eq!(
        files.config_map_ref.as_deref(),
        Some("demo-files"),
        "configMap → testFiles.configMapRef"
    );
    assert_eq!(
        files.lib_config_map_ref.as_deref(),
        Some("demo-lib"),
        "libConfigMap → testFiles.libConfigMapRef"
    );
    assert_eq!(
        s.master.labels,
        map(&[("role", "master")]),
        "labels.master → master.labels"
    );
    assert_eq!(
        s.worker.labels,
        map(&[("role", "worker")]),
        "labels.worker → worker.labels"
    );
    assert_eq!(
        s.master.annotations,
        map(&[("note", "m")]),
        "annotations.master → master.annotations"
    );
    assert_eq!(
        s.worker.annotations,
        map(&[("note", "w")]),
        "annotations.worker → worker.annotations"
    );
    let scheduling = s.scheduling.as_ref().unwrap();
    assert_eq!(
        scheduling.affinity,
        Some(one_term_affinity(vec![
            requirement("disk", "In", &["ssd"]),
            requirement("zone", "In", &["eu-1"]),
        ])),
        "affinity → scheduling.affinity (one term, keys sorted)"
    );
    assert_eq!(
        scheduling.tolerations,
        vec![toleration("dedicated")],
        "tolerations → scheduling.tolerations"
    );

    // v2-only fields take their defaults.
    assert_eq!(
        s.master.resources, None,
        "master.resources: operator defaults"
    );
    assert_eq!(
        s.worker.resources, None,
        "worker.resources: operator defaults"
    );
    assert!(s.master.autostart, "master.autostart: true");
    assert_eq!(
        s.master.autoquit,
        v2::AutoquitSpec {
            enabled: true,
            timeout: 60
        },
        "master.autoquit: {{enabled: true, timeout: 60}}"
    );
    assert!(s.master.extra_args.is_empty(), "master.extraArgs: empty");
    assert!(s.worker.extra_args.is_empty(), "worker.extraArgs: empty");
    assert_eq!(
        files.src_mount_path, "/lotest/src",
        "testFiles.srcMountPath"
    );
    assert_eq!(
        files.lib_mount_path, "/opt/locust/lib",
        "testFiles.libMountPath"
    );
    assert!(
        scheduling.node_selector.is_empty(),
        "scheduling.nodeSelector: empty"
    );
    assert_eq!(
        scheduling.runtime_class_name, None,
        "scheduling.runtimeClassName"
    );
    assert_eq!(s.env, None, "env: empty");
    assert!(s.volumes.is_empty(), "volumes: empty");
    assert!(s.volume_mounts.is_empty(), "volumeMounts: empty");
    assert_eq!(s.security, None, "security: operator defaults");
    assert_eq!(s.observability, None, "observability: OTel disabled");

    // Metadata and status are copied.
    assert_eq!(v2obj.metadata, v1obj.metadata);
    assert_eq!(v2obj.status, v1obj.status);
}

#[test]
fn v2_to_v1_maps_every_row_of_the_table() {
    let mut v2obj = v1_to_v2(&full_v1()).object;
    v2obj.spec.worker.replicas = 9;
    v2obj.spec.master.command = "locust -f /x.py".into();
    v2obj.spec.worker.command = "locust -f /y.py".into();
    let converted = v2_to_v1(&v2obj);
    assert!(converted.warnings.is_empty());
    let v1obj = converted.object;
    let s = &v1obj.spec;
    assert_eq!(s.master_command_seed, "locust -f /x.py");
    assert_eq!(s.worker_command_seed, "locust -f /y.py");
    assert_eq!(s.worker_replicas, 9);
    assert_eq!(s.image, "locustio/locust:2.43.1");
    assert_eq!(s.image_pull_policy, Some(v2::ImagePullPolicy::Always));
    assert_eq!(
        s.image_pull_secrets,
        vec!["regcred".to_owned(), "other".to_owned()]
    );
    assert_eq!(s.config_map.as_deref(), Some("demo-files"));
    assert_eq!(s.lib_config_map.as_deref(), Some("demo-lib"));
    assert_eq!(s.labels.master, map(&[("role", "master")]));
    assert_eq!(s.labels.worker, map(&[("role", "worker")]));
    assert_eq!(s.annotations.master, map(&[("note", "m")]));
    assert_eq!(s.annotations.worker, map(&[("note", "w")]));
    assert_eq!(
        s.affinity.node_affinity.required,
        map(&[("zone", "eu-1"), ("disk", "ssd")])
    );
    assert_eq!(s.tolerations, vec![toleration("dedicated")]);
    // Nothing was lost, so no annotation; metadata and status are copied.
    assert!(!has_v2_annotation(&v1obj.metadata));
    assert_eq!(v1obj.metadata, v2obj.metadata);
    assert_eq!(v1obj.status, v2obj.status);
}

#[test]
fn minimal_v1_gets_no_optional_v2_groups() {
    let spec = v1::LocustTestSpec {
        master_command_seed: "--locustfile /a.py".into(),
        worker_command_seed: "--locustfile /a.py".into(),
        worker_replicas: 1,
        image: "locustio/locust".into(),
        image_pull_policy: None,
        image_pull_secrets: Vec::new(),
        config_map: None,
        lib_config_map: None,
        labels: v1::RoleMaps::default(),
        annotations: v1::RoleMaps::default(),
        affinity: v1::AffinityV1::default(),
        tolerations: Vec::new(),
    };
    let v2obj = v1_to_v2(&v1::LocustTest::new("min", spec.clone())).object;
    assert_eq!(v2obj.spec.test_files, None);
    assert_eq!(v2obj.spec.scheduling, None);
    assert_eq!(v2_to_v1(&v2obj).object.spec, spec);
}

#[test]
fn only_lib_config_map_gives_test_files_with_default_paths() {
    let mut obj = full_v1();
    obj.spec.config_map = None;
    let files = v1_to_v2(&obj).object.spec.test_files.unwrap();
    assert_eq!(
        files,
        v2::TestFilesSpec {
            config_map_ref: None,
            lib_config_map_ref: Some("demo-lib".into()),
            ..v2::TestFilesSpec::default()
        }
    );
}

// ---------------------------------------------------------------------------
// Affinity
// ---------------------------------------------------------------------------

#[test]
fn simple_v1_affinity_is_one_term_and_back() {
    let mut obj = full_v1();
    obj.spec.tolerations.clear();
    obj.spec.affinity.node_affinity.required = map(&[("c", "3"), ("a", "1"), ("b", "2")]);
    let v2obj = v1_to_v2(&obj).object;
    let scheduling = v2obj.spec.scheduling.clone().unwrap();
    assert_eq!(
        scheduling.affinity,
        Some(one_term_affinity(vec![
            requirement("a", "In", &["1"]),
            requirement("b", "In", &["2"]),
            requirement("c", "In", &["3"]),
        ]))
    );
    assert!(scheduling.tolerations.is_empty());
    let back = v2_to_v1(&v2obj).object;
    assert!(!has_v2_annotation(&back.metadata));
    assert_eq!(back, obj);
}

#[test]
fn v2_one_term_affinity_in_any_order_renders_as_v1_map() {
    let mut spec = minimal_v2_spec();
    spec.scheduling = Some(v2::SchedulingSpec {
        affinity: Some(one_term_affinity(vec![
            requirement("zone", "In", &["eu-1"]),
            requirement("disk", "In", &["ssd"]),
        ])),
        ..v2::SchedulingSpec::default()
    });
    let obj = v2::LocustTest::new("order", spec);
    let down = v2_to_v1(&obj).object;
    assert_eq!(
        down.spec.affinity.node_affinity.required,
        map(&[("zone", "eu-1"), ("disk", "ssd")])
    );
    // The unsorted order is a difference v1 cannot carry: the annotation keeps it.
    assert!(has_v2_annotation(&down.metadata));
    assert_eq!(v1_to_v2(&down).object, obj);
}

#[test]
fn rich_affinity_survives_v2_to_v1_to_v2() {
    let mut spec = minimal_v2_spec();
    spec.scheduling = Some(v2::SchedulingSpec {
        affinity: Some(rich_affinity()),
        ..v2::SchedulingSpec::default()
    });
    let obj = v2::LocustTest::new("rich-affinity", spec);
    assert!(!fits_v1(&obj.spec));
    let down = v2_to_v1(&obj);
    assert!(down.warnings.is_empty());
    assert!(has_v2_annotation(&down.object.metadata));
    // Two required terms (OR) have no v1 form: v1 shows no affinity at all.
    assert!(down.object.spec.affinity.is_empty());
    let up = v1_to_v2(&down.object);
    assert!(up.warnings.is_empty());
    assert_eq!(up.object, obj);
    assert!(!has_v2_annotation(&up.object.metadata));
}

#[test]
fn each_rich_affinity_shape_survives() {
    let pod_term = PodAffinityTerm {
        topology_key: "topology.kubernetes.io/zone".into(),
        namespaces: Some(vec!["load".into()]),
        ..PodAffinityTerm::default()
    };
    let shapes = vec![
        one_term_affinity(vec![requirement("zone", "NotIn", &["eu-1"])]),
        one_term_affinity(vec![requirement("zone", "In", &["eu-1", "eu-2"])]),
        one_term_affinity(vec![requirement("zone", "Exists", &[])]),
        Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![pod_term.clone()]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Affinity::default()
        },
        Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![pod_term]),
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Affinity::default()
        },
        Affinity::default(),
    ];
    for affinity in shapes {
        let mut spec = minimal_v2_spec();
        spec.scheduling = Some(v2::SchedulingSpec {
            affinity: Some(affinity.clone()),
            ..v2::SchedulingSpec::default()
        });
        let obj = v2::LocustTest::new("shape", spec);
        let down = v2_to_v1(&obj).object;
        assert!(has_v2_annotation(&down.metadata), "{affinity:?}");
        assert!(down.spec.affinity.is_empty(), "{affinity:?}");
        assert_eq!(v1_to_v2(&down).object, obj, "{affinity:?}");
    }
}

#[test]
fn simple_required_part_of_a_rich_affinity_is_shown_in_v1() {
    let mut affinity = one_term_affinity(vec![requirement("zone", "In", &["eu-1"])]);
    affinity.pod_anti_affinity = rich_affinity().pod_anti_affinity;
    let mut spec = minimal_v2_spec();
    spec.scheduling = Some(v2::SchedulingSpec {
        affinity: Some(affinity),
        ..v2::SchedulingSpec::default()
    });
    let obj = v2::LocustTest::new("partial", spec);
    let down = v2_to_v1(&obj).object;
    assert_eq!(
        down.spec.affinity.node_affinity.required,
        map(&[("zone", "eu-1")])
    );
    assert!(has_v2_annotation(&down.metadata));
    assert_eq!(v1_to_v2(&down).object, obj);

    // Changing the affinity through v1 replaces the whole affinity with the v1 one.
    let mut edited = down.clone();
    edited.spec.affinity.node_affinity.required = map(&[("zone", "eu-2")]);
    let up = v1_to_v2(&edited).object;
    assert_eq!(
        up.spec.scheduling.unwrap().affinity,
        Some(one_term_affinity(vec![requirement(
            "zone",
            "In",
            &["eu-2"]
        )]))
    );
}

// ---------------------------------------------------------------------------
// Annotation handling
// ---------------------------------------------------------------------------

#[test]
fn rich_v2_round_trips_through_the_annotation() {
    let obj = rich_v2();
    let down = v2_to_v1(&obj);
    assert!(down.warnings.is_empty());
    let annotation = &down.object.metadata.annotations.as_ref().unwrap()[V2_SPEC_ANNOTATION];
    assert!(!annotation.contains('\n'), "compact JSON");
    let stored: v2::LocustTestSpec = serde_json::from_str(annotation).unwrap();
    assert_eq!(stored, obj.spec);
    let up = v1_to_v2(&down.object);
    assert!(up.warnings.is_empty());
    assert_eq!(up.object, obj);
    assert_eq!(
        up.object.metadata.annotations, None,
        "the annotation never reaches v2"
    );
}

#[test]
fn v1_edit_after_lossy_down_conversion_keeps_edit_and_v2_only_fields() {
    let obj = rich_v2();
    let mut down = v2_to_v1(&obj).object;
    down.spec.worker_replicas = 42;
    down.spec.image = "locustio/locust:2.44.0".into();
    down.spec
        .labels
        .worker
        .insert("edited".into(), "yes".into());
    let up = v1_to_v2(&down);
    assert!(up.warnings.is_empty());
    let mut expected = obj.clone();
    expected.spec.worker.replicas = 42;
    expected.spec.image = "locustio/locust:2.44.0".into();
    expected
        .spec
        .worker
        .labels
        .insert("edited".into(), "yes".into());
    assert_eq!(up.object, expected);
    assert!(!has_v2_annotation(&up.object.metadata));
}

#[test]
fn v1_edit_removing_config_map_keeps_v2_mount_paths() {
    let obj = rich_v2();
    let mut down = v2_to_v1(&obj).object;
    down.spec.config_map = None;
    let up = v1_to_v2(&down).object;
    let files = up.spec.test_files.unwrap();
    assert_eq!(files.config_map_ref, None);
    assert_eq!(files.src_mount_path, "/custom/src");
}

#[test]
fn v1_edit_emptying_scheduling_drops_the_group() {
    let mut spec = minimal_v2_spec();
    spec.master.autostart = false; // lossy: forces the annotation
    spec.scheduling = Some(v2::SchedulingSpec {
        tolerations: vec![toleration("a")],
        ..v2::SchedulingSpec::default()
    });
    let obj = v2::LocustTest::new("s", spec);
    let mut down = v2_to_v1(&obj).object;
    assert!(has_v2_annotation(&down.metadata));
    down.spec.tolerations.clear();
    let up = v1_to_v2(&down).object;
    assert_eq!(up.spec.scheduling, None);
    assert!(!up.spec.master.autostart);
}

#[test]
fn invalid_annotation_is_ignored_with_a_warning() {
    let valid = serde_json::to_string(&minimal_v2_spec()).unwrap();
    for (raw, hint) in [
        ("not json".to_owned(), "line 1"),
        (r#"{"image": "x"}"#.to_owned(), "missing field `master`"),
        (
            r#"{"image": "s3cr3t-value", "master": {"command": "c", "autostart": "s3cr3t-value"}}"#
                .to_owned(),
            "master.autostart",
        ),
        (format!("{valid} trailing"), "trailing"),
        (String::new(), "EOF"),
    ] {
        let mut obj = full_v1();
        obj.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(V2_SPEC_ANNOTATION.into(), raw.clone());
        let converted = v1_to_v2(&obj);
        assert_eq!(converted.warnings.len(), 1, "{raw}");
        let warning = &converted.warnings[0];
        assert!(warning.contains(V2_SPEC_ANNOTATION), "{warning}");
        assert!(warning.contains(hint), "{warning} should mention {hint}");
        assert!(!warning.contains("s3cr3t-value"), "{warning} leaks a value");
        assert!(!has_v2_annotation(&converted.object.metadata));
        assert_eq!(converted.object, v1_to_v2(&full_v1()).object, "{raw}");
    }
}

#[test]
fn stale_annotation_on_a_v2_object_is_dropped() {
    let mut stale_spec = minimal_v2_spec();
    stale_spec.worker.replicas = 77;
    stale_spec.master.autostart = false;
    let stale = serde_json::to_string(&stale_spec).unwrap();

    // Expressible in v1: the stale annotation is simply removed.
    let mut obj = v1_to_v2(&full_v1()).object;
    obj.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(V2_SPEC_ANNOTATION.into(), stale.clone());
    let down = v2_to_v1(&obj);
    assert_eq!(down.warnings.len(), 1);
    assert!(!has_v2_annotation(&down.object.metadata));
    assert_eq!(down.object, full_v1());

    // Not expressible: the annotation holds the current spec, not the stale one.
    let mut obj = rich_v2();
    obj.metadata.annotations = Some(BTreeMap::from([(V2_SPEC_ANNOTATION.to_owned(), stale)]));
    let down = v2_to_v1(&obj);
    assert_eq!(down.warnings.len(), 1);
    let up = v1_to_v2(&down.object).object;
    assert_eq!(up.spec, obj.spec);
    assert_eq!(up.metadata.annotations, None);
}

#[test]
fn empty_annotation_map_of_a_lossy_v2_object_normalises_to_none() {
    // Kubernetes does not distinguish an empty annotation map from none (JSON
    // omitempty); after a trip through the annotation the map is absent.
    let mut obj = rich_v2();
    obj.metadata.annotations = Some(BTreeMap::new());
    let up = v1_to_v2(&v2_to_v1(&obj).object).object;
    assert_eq!(up.metadata.annotations, None);
    assert_eq!(up.spec, obj.spec);
    // When nothing needs storing the empty map is kept as it is.
    let mut simple = v2::LocustTest::new("s", minimal_v2_spec());
    simple.metadata.annotations = Some(BTreeMap::new());
    assert_eq!(v1_to_v2(&v2_to_v1(&simple).object).object, simple);
}

// ---------------------------------------------------------------------------
// convert_value
// ---------------------------------------------------------------------------

const V1_YAML: &str = r#"
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: demo
  namespace: load
  labels:
    team: perf
spec:
  masterCommandSeed: --locustfile /lotest/src/demo.py --host https://example.com --users 100
  workerCommandSeed: --locustfile /lotest/src/demo.py
  workerReplicas: 3
  image: locustio/locust:2.43.1
  imagePullPolicy: IfNotPresent
  imagePullSecrets: [regcred]
  configMap: demo-files
  labels:
    worker:
      tier: load
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        zone: eu-1
  tolerations:
    - key: dedicated
      operator: Equal
      value: locust
      effect: NoSchedule
"#;

const V2_JSON: &str = r#"{
  "apiVersion": "locust.io/v2",
  "kind": "LocustTest",
  "metadata": {"name": "rich", "namespace": "load", "uid": "1234", "generation": 2},
  "spec": {
    "image": "locustio/locust:2.43.1",
    "master": {
      "command": "--locustfile /lotest/src/demo.py",
      "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}},
      "autostart": false,
      "autoquit": {"enabled": true, "timeout": 30},
      "extraArgs": ["--run-time", "2m"]
    },
    "worker": {"command": "--locustfile /lotest/src/demo.py", "replicas": 4},
    "testFiles": {"configMapRef": "demo-files"},
    "scheduling": {
      "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}
      ]}},
      "nodeSelector": {"kubernetes.io/os": "linux"}
    },
    "env": {
      "secretRefs": [{"name": "creds"}],
      "variables": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    },
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    "volumeMounts": [{"name": "data", "mountPath": "/data", "target": "worker"}],
    "observability": {"openTelemetry": {"enabled": true, "endpoint": "otel:4317"}}
  },
  "status": {"phase": "Running", "expectedWorkers": 4, "connectedWorkers": 4}
}"#;

fn v1_yaml_value() -> Value {
    serde_yaml::from_str(V1_YAML).unwrap()
}

#[test]
fn convert_value_v1_yaml_to_v2() {
    let v2value = convert_value(v1_yaml_value(), V2_API_VERSION).unwrap();
    assert_eq!(v2value["apiVersion"], "locust.io/v2");
    assert_eq!(v2value["kind"], "LocustTest");
    assert_eq!(v2value["metadata"]["name"], "demo");
    assert_eq!(v2value["metadata"]["labels"], json!({"team": "perf"}));
    let spec = &v2value["spec"];
    assert_eq!(
        spec["master"]["command"],
        "--locustfile /lotest/src/demo.py --host https://example.com --users 100"
    );
    assert_eq!(spec["master"]["autostart"], true);
    assert_eq!(
        spec["master"]["autoquit"],
        json!({"enabled": true, "timeout": 60})
    );
    assert_eq!(spec["worker"]["replicas"], 3);
    assert_eq!(spec["worker"]["labels"], json!({"tier": "load"}));
    assert_eq!(spec["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
    assert_eq!(
        spec["testFiles"],
        json!({"configMapRef": "demo-files", "srcMountPath": "/lotest/src", "libMountPath": "/opt/locust/lib"})
    );
    assert_eq!(
        spec["scheduling"]["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["eu-1"]}]}
        ]}}})
    );
    assert_eq!(spec["scheduling"]["tolerations"][0]["value"], "locust");
    assert!(v2value["metadata"].get("annotations").is_none());

    // And back: the same v1 document, normalised by the typed model.
    let back = convert_value(v2value, V1_API_VERSION).unwrap();
    let original: v1::LocustTest = serde_json::from_value(v1_yaml_value()).unwrap();
    assert_eq!(back, serde_json::to_value(&original).unwrap());
    assert!(back["metadata"].get("annotations").is_none());
}

#[test]
fn convert_value_v2_json_to_v1_and_back() {
    let original: Value = serde_json::from_str(V2_JSON).unwrap();
    let v1value = convert_value(original.clone(), V1_API_VERSION).unwrap();
    assert_eq!(v1value["apiVersion"], "locust.io/v1");
    assert_eq!(v1value["spec"]["workerReplicas"], 4);
    assert_eq!(v1value["spec"]["configMap"], "demo-files");
    assert_eq!(v1value["status"]["phase"], "Running");
    let stored = v1value["metadata"]["annotations"][V2_SPEC_ANNOTATION]
        .as_str()
        .unwrap();
    assert!(stored.contains("podAntiAffinity"));

    let v2value = convert_value(v1value, V2_API_VERSION).unwrap();
    let typed: v2::LocustTest = serde_json::from_value(original).unwrap();
    assert_eq!(v2value, serde_json::to_value(&typed).unwrap());
    assert_eq!(v2value["spec"]["master"]["autostart"], false);
    assert_eq!(v2value["spec"]["volumeMounts"][0]["target"], "worker");
}

#[test]
fn convert_value_same_version_is_a_no_op() {
    let mut value = v1_yaml_value();
    value["spec"]["someFieldTheModelDoesNotKnow"] = json!({"kept": [1, 2, 3]});
    value["spec"]
        .as_object_mut()
        .unwrap()
        .remove("workerReplicas");
    let same = convert_value_with_warnings(value.clone(), V1_API_VERSION).unwrap();
    assert_eq!(same.object, value);
    assert!(same.warnings.is_empty());
    assert_eq!(
        serde_json::to_string(&same.object).unwrap(),
        serde_json::to_string(&value).unwrap()
    );

    let v2value: Value = serde_json::from_str(V2_JSON).unwrap();
    assert_eq!(
        convert_value(v2value.clone(), V2_API_VERSION).unwrap(),
        v2value
    );
}

#[test]
fn convert_value_rejects_unknown_versions() {
    let mut value = v1_yaml_value();
    value["apiVersion"] = json!("locust.io/v3");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(
        err,
        ConversionError::UnknownVersion {
            api_version: "locust.io/v3".into()
        }
    );
    assert_eq!(err.reason(), "UnknownVersion");
    assert!(err.to_string().contains("locust.io/v3"));

    let err = convert_value(v1_yaml_value(), "locust.io/v1beta1").unwrap_err();
    assert_eq!(err.reason(), "UnknownDesiredVersion");
    assert!(err.to_string().contains("locust.io/v1beta1"));

    // An unknown desired version is an error even for a same-version request.
    let mut value = v1_yaml_value();
    value["apiVersion"] = json!("example.com/v1");
    let err = convert_value(value, "example.com/v1").unwrap_err();
    assert_eq!(err.reason(), "UnknownVersion");

    let mut value = v1_yaml_value();
    value.as_object_mut().unwrap().remove("apiVersion");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err, ConversionError::MissingApiVersion);
    assert_eq!(err.reason(), "MissingApiVersion");
}

#[test]
fn convert_value_rejects_other_kinds() {
    let mut value = v1_yaml_value();
    value["kind"] = json!("ConfigMap");
    let err = convert_value(value.clone(), V2_API_VERSION).unwrap_err();
    assert_eq!(
        err,
        ConversionError::WrongKind {
            found: Some("ConfigMap".into())
        }
    );
    assert_eq!(err.reason(), "WrongKind");
    assert!(err.to_string().contains("ConfigMap"));
    // Even when no conversion would be needed.
    assert!(convert_value(value, V1_API_VERSION).is_err());

    let mut value = v1_yaml_value();
    value.as_object_mut().unwrap().remove("kind");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err, ConversionError::WrongKind { found: None });
}

#[test]
fn convert_value_names_the_bad_field() {
    let mut value = v1_yaml_value();
    value["spec"].as_object_mut().unwrap().remove("image");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    assert_eq!(err.reason(), "InvalidObject");
    let message = err.to_string();
    assert!(message.contains("`image`"), "{message}");
    assert!(message.contains("locust.io/v1"), "{message}");

    let mut value = v1_yaml_value();
    value["spec"]["workerReplicas"] = json!("hunter2");
    let err = convert_value(value, V2_API_VERSION).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("spec.workerReplicas"), "{message}");
    assert!(!message.contains("hunter2"), "{message} leaks the value");
    match err {
        ConversionError::InvalidObject { field, .. } => {
            assert_eq!(field.as_deref(), Some("spec.workerReplicas"))
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut value: Value = serde_json::from_str(V2_JSON).unwrap();
    value["spec"]["env"]["variables"][0]["value"] = json!(12345);
    let err = convert_value(value, V1_API_VERSION).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("spec.env.variables[0].value"), "{message}");
    assert!(!message.contains("12345"), "{message} leaks the value");

    let err = convert_value(
        json!({"apiVersion": "locust.io/v2", "kind": "LocustTest"}),
        V1_API_VERSION,
    )
    .unwrap_err();
    assert!(err.to_string().contains("`metadata`"), "{err}");
}

#[test]
fn convert_value_reports_annotation_warnings() {
    let mut value = v1_yaml_value();
    value["metadata"]["annotations"] = json!({ V2_SPEC_ANNOTATION: "{broken" });
    let converted = convert_value_with_warnings(value.clone(), V2_API_VERSION).unwrap();
    assert_eq!(converted.warnings.len(), 1);
    assert!(converted.object["metadata"].get("annotations").is_none());
    // The plain entry point succeeds too (the warning is logged).
    assert_eq!(
        convert_value(value, V2_API_VERSION).unwrap(),
        converted.object
    );
}

// ---------------------------------------------------------------------------
// Property tests: arbitrary v1 and v2 objects round-trip exactly
// ---------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn label_key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9./-]{0,12}"
}

fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(label_key(), text(), 0..3)
}

fn quantity() -> impl Strategy<Value = Quantity> {
    prop_oneof!["[1-9][0-9]{0,3}m", "[1-9][0-9]{0,2}Mi", "[1-9]Gi", "[1-9]"].prop_map(Quantity)
}

fn pull_policy() -> impl Strategy<Value = v2::ImagePullPolicy> {
    prop_oneof![
        Just(v2::ImagePullPolicy::Always),
        Just(v2::ImagePullPolicy::IfNotPresent),
        Just(v2::ImagePullPolicy::Never),
    ]
}

fn arb_toleration() -> BoxedStrategy<Toleration> {
    (
        option::of(label_key()),
        option::of(prop_oneof![
            Just("Equal".to_owned()),
            Just("Exists".to_owned())
        ]),
        option::of(text()),
        option::of(prop_oneof![
            Just("NoSchedule".to_owned()),
            Just("NoExecute".to_owned())
        ]),
        option::of(any::<i64>()),
    )
        .prop_map(
            |(key, operator, value, effect, toleration_seconds)| Toleration {
                key,
                operator,
                value,
                effect,
                toleration_seconds,
            },
        )
        .boxed()
}

fn metadata(allow_empty_annotations: bool) -> BoxedStrategy<ObjectMeta> {
    let min_annotations = usize::from(!allow_empty_annotations);
    (
        option::of(name()),
        option::of(name()),
        option::of(string_map()),
        option::of(btree_map(label_key(), text(), min_annotations..3)),
        option::of("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{12}"),
        option::of(any::<i64>()),
        option::of("[0-9]{1,8}"),
    )
        .prop_map(
            |(name, namespace, labels, annotations, uid, generation, resource_version)| {
                ObjectMeta {
                    name,
                    namespace,
                    labels,
                    annotations,
                    uid,
                    generation,
                    resource_version,
                    ..ObjectMeta::default()
                }
            },
        )
        .prop_filter("the conversion annotation is the converter's own", |m| {
            !has_v2_annotation(m)
        })
        .boxed()
}

fn status() -> BoxedStrategy<Option<LocustTestStatus>> {
    let phase = prop_oneof![
        Just(Phase::Pending),
        Just(Phase::Running),
        Just(Phase::Succeeded),
        Just(Phase::Failed)
    ];
    let condition = (
        prop_oneof![
            Just("Ready"),
            Just("WorkersConnected"),
            Just("TestCompleted")
        ],
        prop_oneof![Just("True"), Just("False"), Just("Unknown")],
        0i64..2_000_000_000,
        text(),
    )
        .prop_map(|(type_, status, seconds, message)| Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: "Observed".to_owned(),
            message,
            observed_generation: Some(1),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap()),
        });
    let result = (
        option::of(0i64..1_000_000),
        option::of(0.0f64..1.0),
        option::of(text()),
    )
        .prop_map(|(total_requests, fail_ratio, state)| TestResult {
            total_requests,
            fail_ratio,
            state,
            ..TestResult::default()
        });
    option::of(
        (
            option::of(phase),
            option::of(any::<i64>()),
            option::of(0i32..500),
            option::of(0i32..500),
            option::of(result),
            vec(condition, 0..2),
        )
            .prop_map(
                |(
                    phase,
                    observed_generation,
                    expected_workers,
                    connected_workers,
                    result,
                    conditions,
                )| {
                    LocustTestStatus {
                        phase,
                        observed_generation,
                        expected_workers,
                        connected_workers,
                        result,
                        conditions,
                        ..LocustTestStatus::default()
                    }
                },
            ),
    )
    .boxed()
}

fn role_maps() -> impl Strategy<Value = v1::RoleMaps> {
    (string_map(), string_map()).prop_map(|(master, worker)| v1::RoleMaps { master, worker })
}

prop_compose! {
    fn v1_spec()(
        master_command_seed in text(),
        worker_command_seed in text(),
        worker_replicas in any::<i32>(),
        image in text(),
        image_pull_policy in option::of(pull_policy()),
        image_pull_secrets in vec(name(), 0..3),
        config_map in option::of(name()),
        lib_config_map in option::of(name()),
        labels in role_maps(),
        annotations in role_maps(),
        required in btree_map(label_key(), text(), 0..3),
        tolerations in vec(arb_toleration(), 0..3),
    ) -> v1::LocustTestSpec {
        v1::LocustTestSpec {
            master_command_seed,
            worker_command_seed,
            worker_replicas,
            image,
            image_pull_policy,
            image_pull_secrets,
            config_map,
            lib_config_map,
            labels,
            annotations,
            affinity: v1::AffinityV1 { node_affinity: v1::NodeAffinityV1 { required } },
            tolerations,
        }
    }
}

fn v1_object() -> BoxedStrategy<v1::LocustTest> {
    (metadata(true), v1_spec(), status())
        .prop_map(|(metadata, spec, status)| v1::LocustTest {
            metadata,
            spec,
            status,
        })
        .boxed()
}

fn resources() -> BoxedStrategy<ResourceRequirements> {
    let resource = prop_oneof![
        Just("cpu".to_owned()),
        Just("memory".to_owned()),
        Just("ephemeral-storage".to_owned())
    ];
    (
        option::of(btree_map(resource.clone(), quantity(), 0..3)),
        option::of(btree_map(resource, quantity(), 0..3)),
    )
        .prop_map(|(limits, requests)| ResourceRequirements {
            claims: None,
            limits,
            requests,
        })
        .boxed()
}

prop_compose! {
    fn master_spec()(
        command in text(),
        resources in option::of(resources()),
        labels in string_map(),
        annotations in string_map(),
        autostart in any::<bool>(),
        enabled in any::<bool>(),
        timeout in any::<i32>(),
        extra_args in vec(text(), 0..3),
    ) -> v2::MasterSpec {
        v2::MasterSpec {
            command,
            resources,
            labels,
            annotations,
            autostart,
            autoquit: v2::AutoquitSpec { enabled, timeout },
            extra_args,
        }
    }
}

prop_compose! {
    fn worker_spec()(
        command in text(),
        replicas in any::<i32>(),
        resources in option::of(resources()),
        labels in string_map(),
        annotations in string_map(),
        extra_args in vec(text(), 0..3),
        processes_per_pod in option::of(1i32..64),
    ) -> v2::WorkerSpec {
        v2::WorkerSpec { command, replicas, resources, labels, annotations, extra_args, processes_per_pod }
    }
}

/// Thresholds as users write them (a few decimals). Arbitrary 17-digit floats
/// do not survive serde_json's default (not correctly rounded) float parser.
fn thresholds() -> BoxedStrategy<v2::ThresholdsSpec> {
    let ms = || option::of((0u32..10_000_000).prop_map(|n| f64::from(n) / 100.0));
    (
        option::of((0u32..=1000).prop_map(|n| f64::from(n) / 1000.0)),
        ms(),
        ms(),
        ms(),
        ms(),
        ms(),
        ms(),
    )
        .prop_map(|(fr, avg, p50, p90, p95, p99, rps)| v2::ThresholdsSpec {
            max_fail_ratio: fr,
            max_average_response_time: avg,
            max_p50_response_time: p50,
            max_p90_response_time: p90,
            max_p95_response_time: p95,
            max_p99_response_time: p99,
            min_requests_per_second: rps,
        })
        .boxed()
}

fn file_output() -> BoxedStrategy<v2::FileOutput> {
    (any::<bool>(), option::of("/[a-z]{1,8}(/[a-z]{1,8})?"))
        .prop_map(|(enabled, path)| v2::FileOutput { enabled, path })
        .boxed()
}

fn output() -> BoxedStrategy<v2::OutputSpec> {
    (
        option::of(file_output()),
        option::of(file_output()),
        option::of((any::<bool>(), option::of("/[a-z]{1,8}/[a-z]{1,8}"))),
    )
        .prop_map(|(html_report, json_file, csv)| v2::OutputSpec {
            html_report,
            json_file,
            csv: csv.map(|(enabled, prefix)| v2::CsvOutput { enabled, prefix }),
        })
        .boxed()
}

fn web_ui() -> BoxedStrategy<v2::WebUiSpec> {
    option::of(text())
        .prop_map(|base_path| v2::WebUiSpec { base_path })
        .boxed()
}

fn test_files() -> BoxedStrategy<v2::TestFilesSpec> {
    let path = prop_oneof![
        Just(v2::DEFAULT_SRC_MOUNT_PATH.to_owned()),
        Just(v2::DEFAULT_LIB_MOUNT_PATH.to_owned()),
        "/[a-z]{1,8}"
    ];
    (option::of(name()), option::of(name()), path.clone(), path)
        .prop_map(
            |(config_map_ref, lib_config_map_ref, src_mount_path, lib_mount_path)| {
                v2::TestFilesSpec {
                    config_map_ref,
                    lib_config_map_ref,
                    src_mount_path,
                    lib_mount_path,
                }
            },
        )
        .boxed()
}

fn node_requirement() -> impl Strategy<Value = NodeSelectorRequirement> {
    let operator = prop_oneof![
        3 => Just("In"),
        1 => Just("NotIn"),
        1 => Just("Exists"),
        1 => Just("DoesNotExist"),
        1 => Just("Gt"),
    ];
    (label_key(), operator, option::of(vec(text(), 0..3))).prop_map(|(key, operator, values)| {
        NodeSelectorRequirement {
            key,
            operator: operator.to_owned(),
            values,
        }
    })
}

fn node_term() -> BoxedStrategy<NodeSelectorTerm> {
    (
        option::of(vec(node_requirement(), 0..3)),
        option::of(vec(node_requirement(), 0..2)),
    )
        .prop_map(|(match_expressions, match_fields)| NodeSelectorTerm {
            match_expressions,
            match_fields,
        })
        .boxed()
}

fn pod_affinity_term() -> BoxedStrategy<PodAffinityTerm> {
    (
        prop_oneof![Just("kubernetes.io/hostname".to_owned()), label_key()],
        option::of(string_map()),
        option::of(vec(name(), 0..2)),
    )
        .prop_map(|(topology_key, match_labels, namespaces)| PodAffinityTerm {
            topology_key,
            label_selector: match_labels.map(|m| LabelSelector {
                match_labels: Some(m),
                match_expressions: None,
            }),
            namespaces,
            ..PodAffinityTerm::default()
        })
        .boxed()
}

fn pod_terms() -> impl Strategy<
    Value = (
        Option<Vec<PodAffinityTerm>>,
        Option<Vec<WeightedPodAffinityTerm>>,
    ),
> {
    (
        option::of(vec(pod_affinity_term(), 0..2)),
        option::of(vec(
            (1i32..=100, pod_affinity_term()).prop_map(|(weight, pod_affinity_term)| {
                WeightedPodAffinityTerm {
                    weight,
                    pod_affinity_term,
                }
            }),
            0..2,
        )),
    )
}

/// The shape v1 produces (one term, sorted single-valued `In`), or anything richer.
fn affinity() -> BoxedStrategy<Affinity> {
    let simple = btree_map(label_key(), text(), 1..4).prop_map(|required| {
        one_term_affinity(
            required
                .into_iter()
                .map(|(key, value)| NodeSelectorRequirement {
                    key,
                    operator: "In".into(),
                    values: Some(vec![value]),
                })
                .collect(),
        )
    });
    let rich = (
        option::of((
            option::of(vec(node_term(), 0..3)),
            option::of(vec(
                (1i32..=100, node_term()).prop_map(|(weight, preference)| {
                    PreferredSchedulingTerm { weight, preference }
                }),
                0..3,
            )),
        )),
        option::of(pod_terms()),
        option::of(pod_terms()),
    )
        .prop_map(|(node, pod, anti)| Affinity {
            node_affinity: node.map(|(required, preferred)| NodeAffinity {
                required_during_scheduling_ignored_during_execution: required.map(
                    |node_selector_terms| NodeSelector {
                        node_selector_terms,
                    },
                ),
                preferred_during_scheduling_ignored_during_execution: preferred,
            }),
            pod_affinity: pod.map(|(required, preferred)| PodAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            }),
            pod_anti_affinity: anti.map(|(required, preferred)| PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: preferred,
            }),
        });
    prop_oneof![1 => simple, 2 => rich].boxed()
}

fn scheduling() -> BoxedStrategy<v2::SchedulingSpec> {
    (
        option::weighted(0.75, affinity()),
        vec(arb_toleration(), 0..3),
        string_map(),
        option::of(name()),
    )
        .prop_map(
            |(affinity, tolerations, node_selector, runtime_class_name)| v2::SchedulingSpec {
                affinity,
                tolerations,
                node_selector,
                runtime_class_name,
            },
        )
        .boxed()
}

fn env_var() -> BoxedStrategy<EnvVar> {
    let source = prop_oneof![
        (name(), name(), option::of(any::<bool>())).prop_map(|(name, key, optional)| {
            EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name,
                    key,
                    optional,
                }),
                ..EnvVarSource::default()
            }
        }),
        (name(), name(), option::of(any::<bool>())).prop_map(|(name, key, optional)| {
            EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name,
                    key,
                    optional,
                }),
                ..EnvVarSource::default()
            }
        }),
        (
            prop_oneof![Just("metadata.name"), Just("status.podIP")],
            option::of(Just("v1".to_owned()))
        )
            .prop_map(|(field_path, api_version)| EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: field_path.to_owned(),
                    api_version
                }),
                ..EnvVarSource::default()
            }),
    ];
    (
        "[A-Z][A-Z0-9_]{0,10}",
        option::of(text()),
        option::of(source),
    )
        .prop_map(|(name, value, value_from)| EnvVar {
            name,
            value,
            value_from,
        })
        .boxed()
}

fn env_source_ref() -> impl Strategy<Value = v2::EnvSourceRef> {
    (name(), option::of("[A-Z]{1,5}_")).prop_map(|(name, prefix)| v2::EnvSourceRef { name, prefix })
}

fn env() -> BoxedStrategy<v2::EnvSpec> {
    let secret_mount =
        (name(), "/[a-z]{1,8}", any::<bool>()).prop_map(|(name, mount_path, read_only)| {
            v2::SecretMount {
                name,
                mount_path,
                read_only,
            }
        });
    (
        vec(env_source_ref(), 0..2),
        vec(env_source_ref(), 0..2),
        vec(env_var(), 0..3),
        vec(secret_mount, 0..2),
    )
        .prop_map(
            |(config_map_refs, secret_refs, variables, secret_mounts)| v2::EnvSpec {
                config_map_refs,
                secret_refs,
                variables,
                secret_mounts,
            },
        )
        .boxed()
}

fn volume() -> BoxedStrategy<Volume> {
    let empty_dir = (
        option::of(Just("Memory".to_owned())),
        option::of(quantity()),
    )
        .prop_map(|(medium, size_limit)| Volume {
            empty_dir: Some(EmptyDirVolumeSource { medium, size_limit }),
            ..Volume::default()
        });
    let config_map = (
        name(),
        option::of(vec(
            (name(), "[a-z]{1,6}\\.py", option::of(0i32..=0o777)),
            0..2,
        )),
        option::of(0i32..=0o777),
        option::of(any::<bool>()),
    )
        .prop_map(|(name, items, default_mode, optional)| Volume {
            config_map: Some(ConfigMapVolumeSource {
                name,
                items: items.map(|items| {
                    items
                        .into_iter()
                        .map(|(key, path, mode)| KeyToPath { key, path, mode })
                        .collect()
                }),
                default_mode,
                optional,
            }),
            ..Volume::default()
        });
    let pvc = (name(), option::of(any::<bool>())).prop_map(|(claim_name, read_only)| Volume {
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name,
            read_only,
        }),
        ..Volume::default()
    });
    let secret =
        (option::of(name()), option::of(any::<bool>())).prop_map(|(secret_name, optional)| {
            Volume {
                secret: Some(SecretVolumeSource {
                    secret_name,
                    optional,
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            }
        });
    (name(), prop_oneof![empty_dir, config_map, pvc, secret])
        .prop_map(|(name, mut volume)| {
            volume.name = name;
            volume
        })
        .boxed()
}

fn volume_mount() -> BoxedStrategy<v2::TargetedVolumeMount> {
    let target = prop_oneof![
        Just(v2::MountTarget::Master),
        Just(v2::MountTarget::Worker),
        Just(v2::MountTarget::Both)
    ];
    (
        name(),
        "/[a-z]{1,8}",
        option::of(any::<bool>()),
        option::of(name()),
        target,
    )
        .prop_map(
            |(name, mount_path, read_only, sub_path, target)| v2::TargetedVolumeMount {
                mount: VolumeMount {
                    name,
                    mount_path,
                    read_only,
                    sub_path,
                    ..VolumeMount::default()
                },
                target,
            },
        )
        .boxed()
}

fn security() -> BoxedStrategy<v2::SecuritySpec> {
    let pod = (
        option::of(any::<i64>()),
        option::of(any::<bool>()),
        option::of(any::<i64>()),
    )
        .prop_map(
            |(run_as_user, run_as_non_root, fs_group)| PodSecurityContext {
                run_as_user,
                run_as_non_root,
                fs_group,
                ..PodSecurityContext::default()
            },
        );
    let container = (
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(vec(Just("ALL".to_owned()), 0..2)),
    )
        .prop_map(
            |(allow_privilege_escalation, read_only_root_filesystem, drop)| SecurityContext {
                allow_privilege_escalation,
                read_only_root_filesystem,
                capabilities: drop.map(|drop| Capabilities {
                    add: None,
                    drop: Some(drop),
                }),
                ..SecurityContext::default()
            },
        );
    (option::of(pod), option::of(container))
        .prop_map(
            |(pod_security_context, container_security_context)| v2::SecuritySpec {
                pod_security_context,
                container_security_context,
            },
        )
        .boxed()
}

fn observability() -> BoxedStrategy<v2::ObservabilitySpec> {
    let protocol = prop_oneof![
        Just(v2::OtelProtocol::Grpc),
        Just(v2::OtelProtocol::HttpProtobuf)
    ];
    option::of((
        any::<bool>(),
        option::of(text()),
        option::of(protocol),
        option::of(any::<bool>()),
        string_map(),
    ))
    .prop_map(|otel| v2::ObservabilitySpec {
        open_telemetry: otel.map(|(enabled, endpoint, protocol, insecure, extra_env_vars)| {
            v2::OpenTelemetrySpec {
                enabled,
                endpoint,
                protocol,
                insecure,
                extra_env_vars,
            }
        }),
    })
    .boxed()
}

prop_compose! {
    fn v2_spec()(
        image in text(),
        image_pull_policy in option::of(pull_policy()),
        secrets in vec(name(), 0..3),
        master in master_spec(),
        worker in worker_spec(),
        test_files in option::of(test_files()),
        scheduling in option::weighted(0.75, scheduling()),
        env in option::of(env()),
        volumes in vec(volume(), 0..3),
        volume_mounts in vec(volume_mount(), 0..3),
        extra in (option::of(security()), option::of(observability())),
        results in (option::of(thresholds()), option::of(output()), option::of(web_ui())),
    ) -> v2::LocustTestSpec {
        v2::LocustTestSpec {
            image,
            image_pull_policy,
            image_pull_secrets: secrets.into_iter().map(|name| LocalObjectReference { name }).collect(),
            master,
            worker,
            test_files,
            scheduling,
            env,
            volumes,
            volume_mounts,
            security: extra.0,
            observability: extra.1,
            thresholds: results.0,
            output: results.1,
            web_ui: results.2,
        }
    }
}

/// Arbitrary v2 specs, half of them the image of a v1 spec (no annotation needed).
fn any_v2_spec() -> BoxedStrategy<v2::LocustTestSpec> {
    prop_oneof![
        v2_spec(),
        v1_spec().prop_map(|spec| v1_to_v2(&v1::LocustTest::new("x", spec)).object.spec),
    ]
    .boxed()
}

fn v2_object() -> BoxedStrategy<v2::LocustTest> {
    (metadata(false), any_v2_spec(), status())
        .prop_map(|(metadata, spec, status)| v2::LocustTest {
            metadata,
            spec,
            status,
        })
        .boxed()
}

/// `rendered` with the groups selected by `mask` taken from `edit`.
fn apply_edits(
    rendered: &v1::LocustTestSpec,
    edit: &v1::LocustTestSpec,
    mask: u16,
) -> v1::LocustTestSpec {
    let on = |bit: u16| mask & (1 << bit) != 0;
    let mut out = rendered.clone();
    if on(0) {
        out.master_command_seed = edit.master_command_seed.clone();
    }
    if on(1) {
        out.worker_command_seed = edit.worker_command_seed.clone();
    }
    if on(2) {
        out.worker_replicas = edit.worker_replicas;
    }
    if on(3) {
        out.image = edit.image.clone();
    }
    if on(4) {
        out.image_pull_policy = edit.image_pull_policy;
    }
    if on(5) {
        out.image_pull_secrets = edit.image_pull_secrets.clone();
    }
    if on(6) {
        out.config_map = edit.config_map.clone();
    }
    if on(7) {
        out.lib_config_map = edit.lib_config_map.clone();
    }
    if on(8) {
        out.labels.master = edit.labels.master.clone();
    }
    if on(9) {
        out.labels.worker = edit.labels.worker.clone();
    }
    if on(10) {
        out.annotations.master = edit.annotations.master.clone();
    }
    if on(11) {
        out.annotations.worker = edit.annotations.worker.clone();
    }
    if on(12) {
        out.affinity = edit.affinity.clone();
    }
    if on(13) {
        out.tolerations = edit.tolerations.clone();
    }
    out
}

/// The generators are not vacuous: both kinds of v2 objects (expressible in v1 or
/// needing the annotation) and both kinds of affinity show up often.
#[test]
fn generators_cover_lossy_and_lossless_objects() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = v2_object();
    let (mut lossless, mut lossy, mut v1_affinity, mut rich_affinity) = (0, 0, 0, 0);
    for _ in 0..256 {
        let obj = strategy.new_tree(&mut runner).unwrap().current();
        if fits_v1(&obj.spec) {
            lossless += 1;
        } else {
            lossy += 1;
        }
        let affinity = obj
            .spec
            .scheduling
            .as_ref()
            .and_then(|s| s.affinity.as_ref());
        if affinity.is_some() {
            if v2_spec_to_v1(&obj.spec).affinity.is_empty() {
                rich_affinity += 1;
            } else {
                v1_affinity += 1;
            }
        }
    }
    assert!(
        lossless >= 50 && lossy >= 50,
        "{lossless} lossless, {lossy} lossy"
    );
    assert!(
        v1_affinity >= 20 && rich_affinity >= 20,
        "{v1_affinity} simple, {rich_affinity} rich"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v2_to_v1_to_v2_is_identity(obj in v2_object()) {
        let down = v2_to_v1(&obj);
        prop_assert!(down.warnings.is_empty(), "{:?}", down.warnings);
        prop_assert_eq!(has_v2_annotation(&down.object.metadata), !fits_v1(&obj.spec));
        prop_assert_eq!(&down.object.status, &obj.status);
        let up = v1_to_v2(&down.object);
        prop_assert!(up.warnings.is_empty(), "{:?}", up.warnings);
        prop_assert!(!has_v2_annotation(&up.object.metadata));
        prop_assert_eq!(&up.object, &obj);

        // Through JSON, as the webhook sees it.
        let value = serde_json::to_value(&obj).unwrap();
        let v1value = convert_value(value.clone(), V1_API_VERSION).unwrap();
        prop_assert_eq!(&v1value, &serde_json::to_value(&down.object).unwrap());
        prop_assert_eq!(convert_value(v1value, V2_API_VERSION).unwrap(), value);
    }

    #[test]
    fn v1_to_v2_to_v1_is_identity(obj in v1_object()) {
        let up = v1_to_v2(&obj);
        prop_assert!(up.warnings.is_empty(), "{:?}", up.warnings);
        prop_assert!(!has_v2_annotation(&up.object.metadata));
        prop_assert!(fits_v1(&up.object.spec));
        prop_assert_eq!(&up.object.metadata, &obj.metadata);
        prop_assert_eq!(&up.object.status, &obj.status);
        let down = v2_to_v1(&up.object);
        prop_assert!(down.warnings.is_empty(), "{:?}", down.warnings);
        prop_assert_eq!(&down.object, &obj);

        let value = serde_json::to_value(&obj).unwrap();
        let v2value = convert_value(value.clone(), V2_API_VERSION).unwrap();
        prop_assert_eq!(&v2value, &serde_json::to_value(&up.object).unwrap());
        prop_assert_eq!(convert_value(v2value, V1_API_VERSION).unwrap(), value);
    }

    #[test]
    fn edits_through_v1_win_and_v2_only_fields_survive(
        obj in v2_object(),
        edit in v1_spec(),
        mask in any::<u16>(),
    ) {
        let mut down = v2_to_v1(&obj).object;
        let rendered = down.spec.clone();
        down.spec = apply_edits(&rendered, &edit, mask);
        let up = v1_to_v2(&down);
        prop_assert!(up.warnings.is_empty());
        let up = up.object;
        prop_assert!(!has_v2_annotation(&up.metadata));

        // The v1 view of the result is exactly the edited v1 object.
        prop_assert_eq!(&v2_spec_to_v1(&up.spec), &down.spec);
        prop_assert_eq!(&v2_to_v1(&up).object.spec, &down.spec);

        // Fields v1 cannot see are untouched.
        prop_assert_eq!(&up.spec.env, &obj.spec.env);
        prop_assert_eq!(&up.spec.volumes, &obj.spec.volumes);
        prop_assert_eq!(&up.spec.volume_mounts, &obj.spec.volume_mounts);
        prop_assert_eq!(&up.spec.security, &obj.spec.security);
        prop_assert_eq!(&up.spec.observability, &obj.spec.observability);
        prop_assert_eq!(&up.spec.master.resources, &obj.spec.master.resources);
        prop_assert_eq!(up.spec.master.autostart, obj.spec.master.autostart);
        prop_assert_eq!(&up.spec.master.autoquit, &obj.spec.master.autoquit);
        prop_assert_eq!(&up.spec.master.extra_args, &obj.spec.master.extra_args);
        prop_assert_eq!(&up.spec.worker.resources, &obj.spec.worker.resources);
        prop_assert_eq!(&up.spec.worker.extra_args, &obj.spec.worker.extra_args);
        let paths = |s: &v2::LocustTestSpec| {
            let files = s.test_files.clone().unwrap_or_default();
            (files.src_mount_path, files.lib_mount_path)
        };
        prop_assert_eq!(paths(&up.spec), paths(&obj.spec));
        let placement = |s: &v2::LocustTestSpec| {
            let scheduling = s.scheduling.clone().unwrap_or_default();
            (scheduling.node_selector, scheduling.runtime_class_name)
        };
        prop_assert_eq!(placement(&up.spec), placement(&obj.spec));

        // Unedited groups keep their v2 value, including a rich affinity.
        let affinity = |s: &v2::LocustTestSpec| s.scheduling.as_ref().and_then(|s| s.affinity.clone());
        if down.spec.affinity == rendered.affinity {
            prop_assert_eq!(affinity(&up.spec), affinity(&obj.spec));
        }
        if down.spec.image_pull_secrets == rendered.image_pull_secrets {
            prop_assert_eq!(&up.spec.image_pull_secrets, &obj.spec.image_pull_secrets);
        }
        if down.spec == rendered {
            prop_assert_eq!(&up, &obj);
        }
        // Metadata and status are the v1 object's.
        prop_assert_eq!(&up.status, &obj.status);
        prop_assert_eq!(&up.metadata, &obj.metadata);
    }
}
