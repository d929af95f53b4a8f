//! Property tests: arbitrary v1 and v2 objects round-trip exactly

use super::*;

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

/// Through JSON, as the webhook sees it: `obj` converts to `to` as
/// `converted`, and that converts back to `obj` in `back`.
fn json_round_trip(
    obj: &impl serde::Serialize,
    converted: &impl serde::Serialize,
    to: &str,
    back: &str,
) -> Result<(), TestCaseError> {
    let value = serde_json::to_value(obj).unwrap();
    let there = convert_value(value.clone(), to).unwrap();
    prop_assert_eq!(&there, &serde_json::to_value(converted).unwrap());
    prop_assert_eq!(convert_value(there, back).unwrap(), value);
    Ok(())
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
        json_round_trip(&obj, &down.object, V1_API_VERSION, V2_API_VERSION)?;
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

        json_round_trip(&obj, &up.object, V2_API_VERSION, V1_API_VERSION)?;
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
