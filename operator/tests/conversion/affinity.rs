//! Affinity

use super::*;

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
