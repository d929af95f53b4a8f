//! Mount paths: the conflict rule, pair by pair, in every place it applies

use locust_operator::validation::rules::{
    MOUNT_PATH_CONFLICT_MESSAGE, is_clean_absolute_path, mount_paths_conflict,
};

use super::*;
use crate::mount_path_reference::reference_conflict;

/// The ids of the rules reporting a mount path conflict, by the field they report.
const TEST_FILES: &str = "test-files-mount-path-conflict";
const SECRETS: &str = "secret-mount-path-conflict";
const VOLUMES: &str = "volume-mount-path-conflict";

/// Paths that are equal, nested, lookalikes (`/a` and `/ab`) and siblings of one
/// another, with and without a trailing slash, and the root. (A doubled slash,
/// `.` or `..` is rejected by the paths' own rules: [`CLEAN_PATHS`].)
const PATHS: &[&str] = &[
    "/", "/a", "/a/", "/ab", "/a/b", "/a/b/", "/a/bc", "/ab/c", "/b", "/.a", "/a/..b",
];

/// Mount paths and whether they are absolute and written plainly (no empty,
/// `.` or `..` part), which the containment rule relies on.
const CLEAN_PATHS: &[(&str, bool)] = &[
    ("/", true),
    ("/a", true),
    ("/a/", true),
    ("/a/b", true),
    ("/.a", true),
    ("/a/..b", true),
    ("/a/b.", true),
    ("/a/...", true),
    ("", false),
    ("a", false),
    ("./a", false),
    ("//", false),
    ("/a//", false),
    ("/a//b", false),
    ("/.", false),
    ("/./", false),
    ("/a/.", false),
    ("/a/./b", false),
    ("/..", false),
    ("/a/../", false),
    ("/a/../b", false),
];

/// The typed and untyped Rust validators and the CRD's CEL all report exactly
/// rule `id` (at its field, with its message) on `doc`, or nothing.
fn assert_reported_by(doc: &Value, id: Option<&str>, what: &str) {
    let want: Vec<Violation> = id
        .map(|id| {
            let r = RULES.iter().find(|r| r.id == id).unwrap();
            Violation {
                field: r.field.to_owned(),
                message: r.message.to_owned(),
                rule: Some(r.id),
            }
        })
        .into_iter()
        .collect();
    assert_eq!(typed_violations(doc), want, "{what} (typed)");
    assert_eq!(validate_value(doc), want, "{what} (untyped)");
    let cel_want: Vec<(String, String)> = want
        .iter()
        .map(|v| (v.field.clone(), v.message.clone()))
        .collect();
    assert_eq!(cel_violations(doc), cel_want, "{what} (CEL)");
}

fn secret(path: &str) -> Value {
    json!({"name": "s", "mountPath": path})
}

fn volume_mount(path: &str, target: &str) -> Value {
    json!({"name": "data", "mountPath": path, "target": target})
}

/// `base()` with the given test files, secret mounts and volume mounts (on one
/// emptyDir volume).
fn object(test_files: Value, secrets: &[Value], mounts: &[Value]) -> Value {
    edit(base(), |v| {
        if !test_files.is_null() {
            v["spec"]["testFiles"] = test_files;
        }
        if !secrets.is_empty() {
            v["spec"]["env"] = json!({"secretMounts": secrets});
        }
        if !mounts.is_empty() {
            v["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
            v["spec"]["volumeMounts"] = json!(mounts);
        }
    })
}

/// The places two paths `a` and `b` can meet: the object, and the rule that
/// must report them when they conflict (`None`: they never meet in a container).
fn placements(a: &str, b: &str) -> Vec<(String, Value, Option<&'static str>)> {
    let src = |p: &str| json!({"configMapRef": "tests", "srcMountPath": p});
    let lib = |p: &str| json!({"libConfigMapRef": "lib", "libMountPath": p});
    let mut out = vec![
        (
            "srcMountPath vs libMountPath".to_owned(),
            object(
                json!({"configMapRef": "t", "libConfigMapRef": "l", "srcMountPath": a, "libMountPath": b}),
                &[],
                &[],
            ),
            Some(TEST_FILES),
        ),
        (
            "srcMountPath vs secret".to_owned(),
            object(src(a), &[secret(b)], &[]),
            Some(SECRETS),
        ),
        (
            "libMountPath vs secret".to_owned(),
            object(lib(a), &[secret(b)], &[]),
            Some(SECRETS),
        ),
        (
            "secret vs secret".to_owned(),
            object(Value::Null, &[secret(a), secret(b)], &[]),
            Some(SECRETS),
        ),
        (
            "srcMountPath vs volume".to_owned(),
            object(src(a), &[], &[volume_mount(b, "worker")]),
            Some(VOLUMES),
        ),
        (
            "libMountPath vs volume".to_owned(),
            object(lib(a), &[], &[volume_mount(b, "master")]),
            Some(VOLUMES),
        ),
        (
            "volume vs secret".to_owned(),
            object(Value::Null, &[secret(b)], &[volume_mount(a, "both")]),
            Some(SECRETS),
        ),
        (
            "worker volume vs secret".to_owned(),
            object(Value::Null, &[secret(b)], &[volume_mount(a, "worker")]),
            Some(SECRETS),
        ),
        // The test-files paths are free while their ConfigMap is not set.
        (
            "unmounted srcMountPath vs secret".to_owned(),
            object(json!({"srcMountPath": a}), &[secret(b)], &[]),
            None,
        ),
        (
            "unmounted libMountPath vs volume".to_owned(),
            object(json!({"libMountPath": a}), &[], &[volume_mount(b, "both")]),
            None,
        ),
    ];
    for (ta, tb, shared) in [
        ("both", "both", true),
        ("both", "worker", true),
        ("master", "both", true),
        ("master", "master", true),
        ("worker", "worker", true),
        ("master", "worker", false),
        ("worker", "master", false),
    ] {
        out.push((
            format!("volume ({ta}) vs volume ({tb})"),
            object(
                Value::Null,
                &[],
                &[volume_mount(a, ta), volume_mount(b, tb)],
            ),
            shared.then_some(VOLUMES),
        ));
    }
    out
}

#[test]
fn the_rust_rule_is_the_reference_rule() {
    for a in PATHS {
        for b in PATHS {
            assert_eq!(
                mount_paths_conflict(a, b),
                reference_conflict(a, b),
                "{a:?} vs {b:?}"
            );
        }
    }
    // The examples.
    assert!(mount_paths_conflict("/a", "/a/b"));
    assert!(mount_paths_conflict("/a/b", "/a"));
    assert!(mount_paths_conflict("/a/", "/a"));
    assert!(mount_paths_conflict("/", "/lotest/src"));
    assert!(!mount_paths_conflict("/a", "/ab"));
    assert!(!mount_paths_conflict("/lotest/src", "/lotest/srcs"));
    assert!(!mount_paths_conflict("/lotest/src", "/lotest/lib"));
}

/// Every pair of [`PATHS`] in every placement: the typed and untyped Rust
/// validators and the CRD's CEL all report exactly the expected rule, at its
/// field, with the shared message — or nothing.
#[test]
fn cel_and_rust_agree_on_every_pair_in_every_placement() {
    let mut conflicts = 0;
    let mut accepted = 0;
    for a in PATHS {
        for b in PATHS {
            let conflict = reference_conflict(a, b);
            for (place, doc, rule) in placements(a, b) {
                let rule = rule.filter(|_| conflict);
                if rule.is_some() {
                    conflicts += 1;
                } else {
                    accepted += 1;
                }
                assert_reported_by(&doc, rule, &format!("{place}: {a:?} vs {b:?}"));
            }
        }
    }
    // Both verdicts are exercised in quantity.
    assert!(
        conflicts > 300 && accepted > 300,
        "{conflicts} / {accepted}"
    );
}

/// Several conflicts at once: each pair is reported once, by the rule of the
/// later field in the order test files, volume mounts, secret mounts.
#[test]
fn each_conflicting_pair_is_reported_once() {
    let doc = object(
        json!({"configMapRef": "t", "libConfigMapRef": "l", "srcMountPath": "/lotest", "libMountPath": "/lotest/lib/"}),
        &[secret("/etc/certs"), secret("/etc/certs/ca")],
        &[
            volume_mount("/data", "master"),
            volume_mount("/data/", "worker"),
            volume_mount("/data/cache", "both"),
        ],
    );
    let got: Vec<(String, Option<&str>)> = typed_violations(&doc)
        .into_iter()
        .map(|v| (v.field, v.rule))
        .collect();
    assert_eq!(
        got,
        [
            ("spec.volumeMounts".to_owned(), Some(VOLUMES)),
            ("spec.env.secretMounts".to_owned(), Some(SECRETS)),
            ("spec.testFiles.libMountPath".to_owned(), Some(TEST_FILES)),
        ]
    );
    assert_eq!(cel_violations(&doc).len(), 3, "{:?}", cel_violations(&doc));
    // Without the nested cache mount, /data on the master and /data/ on the
    // workers never meet.
    let doc = edit(doc, |v| {
        v["spec"]["volumeMounts"].as_array_mut().unwrap().pop();
    });
    let fields: Vec<String> = typed_violations(&doc)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        ["spec.env.secretMounts", "spec.testFiles.libMountPath"]
    );
    assert_eq!(cel_violations(&doc).len(), 2);
}

#[test]
fn the_mount_rules_share_one_message_and_one_conflict_expression() {
    let mount_rules: Vec<&Rule> = RULES
        .iter()
        .filter(|r| r.message == MOUNT_PATH_CONFLICT_MESSAGE)
        .collect();
    let ids: Vec<&str> = mount_rules.iter().map(|r| r.id).collect();
    assert_eq!(ids, [VOLUMES, SECRETS, TEST_FILES]);
    for r in mount_rules {
        // The shorter path contains the longer one; no string is built.
        assert!(r.cel.contains("(size("), "{}", r.id);
        assert!(r.cel.contains(".charAt(size("), "{}", r.id);
        assert!(!r.cel.contains(" + "), "{}: no concatenation", r.id);
        assert!(
            !r.cel.contains("mountPath =="),
            "{}: no bare equality",
            r.id
        );
        assert_eq!(r.reason, locust_operator::validation::CelReason::Invalid);
    }
    // No other rule says it.
    assert!(
        WEBHOOK_RULES
            .iter()
            .all(|r| r.message != MOUNT_PATH_CONFLICT_MESSAGE)
    );
}

/// Each mount path field accepts exactly the clean absolute paths, in Rust
/// (typed and untyped) and in CEL, with the field's own rule.
#[test]
fn mount_paths_are_absolute_and_plain_in_rust_and_cel() {
    for (path, clean) in CLEAN_PATHS {
        assert_eq!(is_clean_absolute_path(path), *clean, "{path:?}");
        for (id, doc) in [
            (
                "src-mount-path-absolute",
                object(json!({"configMapRef": "t", "srcMountPath": path}), &[], &[]),
            ),
            (
                "lib-mount-path-absolute",
                object(
                    json!({"libConfigMapRef": "l", "libMountPath": path}),
                    &[],
                    &[],
                ),
            ),
            (
                "secret-mount-paths-absolute",
                object(Value::Null, &[secret(path)], &[]),
            ),
            (
                "volume-mount-paths-absolute",
                object(Value::Null, &[], &[volume_mount(path, "both")]),
            ),
        ] {
            assert_reported_by(&doc, (!clean).then_some(id), &format!("{id}: {path:?}"));
        }
    }
}
