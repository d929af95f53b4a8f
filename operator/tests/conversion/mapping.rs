//! §4.4 field mapping, row by row

use super::*;

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
    for (role, labels, annotations, note) in [
        ("master", &s.master.labels, &s.master.annotations, "m"),
        ("worker", &s.worker.labels, &s.worker.annotations, "w"),
    ] {
        let (want_labels, want_annotations) = (map(&[("role", role)]), map(&[("note", note)]));
        assert_eq!(*labels, want_labels, "labels.{role} → {role}.labels");
        assert_eq!(
            *annotations, want_annotations,
            "annotations.{role} → {role}.annotations"
        );
    }
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
