//! Annotation handling

use super::*;

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
