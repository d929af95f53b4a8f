//! `LocustSchedule` (issue #16), the offline slice: the API type and its CRD,
//! the names and objects of the tests a schedule creates, its validation (in
//! Rust and as CEL, which must agree), and the `validate` and `render` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube::core::cel::{CompiledSchema, compile_schema};
use locust_operator::api::schedule::{ConcurrencyPolicy, LocustSchedule};
use locust_operator::api::v2;
use locust_operator::crd::{self, SCHEDULE_VERSION, schema_at};
use locust_operator::schedule::runs::{SCHEDULED_MINUTES_DIGITS, scheduled_time_of};
use locust_operator::schedule::{
    MAX_SCHEDULE_NAME_LENGTH, RunError, SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION, Timestamp,
    next_test, test_for, test_name,
};
use locust_operator::validation::{MAX_TEST_NAME_LENGTH, validate_schedule, validate_value};
use locust_operator::yaml;
use proptest::prelude::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_locust-k8s-operator");

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/locustschedule.yaml")
}

fn sample() -> Value {
    let text = std::fs::read_to_string(sample_path()).unwrap();
    yaml::from_str(&text).unwrap()
}

fn edit(mut v: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut v);
    v
}

fn schema() -> &'static JSONSchemaProps {
    static SCHEMA: LazyLock<JSONSchemaProps> = LazyLock::new(|| {
        crd::version_schema(&crd::try_schedule_crd().unwrap(), SCHEDULE_VERSION)
            .cloned()
            .unwrap()
    });
    &SCHEMA
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

// --- The CRD ----------------------------------------------------------------------

#[test]
fn the_crd_is_namespaced_v1alpha1_with_cronjob_like_columns() {
    let crd = crd::try_schedule_crd().unwrap();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("locustschedules.locust.io")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "LocustSchedule");
    assert_eq!(
        crd.spec.names.list_kind.as_deref(),
        Some("LocustScheduleList")
    );
    assert_eq!(crd.spec.versions.len(), 1);
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, SCHEDULE_VERSION);
    assert!(version.served && version.storage);
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<(&str, &str, &str)> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .filter(|c| c.priority.unwrap_or(0) == 0)
        .map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("Schedule", "string", ".spec.schedule"),
            ("Suspend", "boolean", ".spec.suspend"),
            ("Active", "integer", ".status.activeCount"),
            ("Last Schedule", "date", ".status.lastScheduleTime"),
            ("Last Result", "string", ".status.lastResult"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
    );
    // The LocustTest CRD is unchanged by the new kind.
    assert_eq!(crd::try_crd().unwrap().spec.names.kind, "LocustTest");
}

#[test]
fn the_schema_has_the_fields_their_defaults_and_bounds() {
    let spec = schema_at(schema(), &["spec"]).unwrap();
    let required: Vec<&str> = spec.required.iter().flatten().map(String::as_str).collect();
    assert_eq!(required, ["schedule", "template"]);
    let policy = schema_at(spec, &["concurrencyPolicy"]).unwrap();
    assert_eq!(policy.default.as_ref().unwrap().0, json!("Forbid"));
    let values: Vec<Value> = policy.enum_.iter().flatten().map(|v| v.0.clone()).collect();
    assert_eq!(values, [json!("Allow"), json!("Forbid"), json!("Replace")]);
    for (field, default) in [
        ("suspend", Some(json!(false))),
        ("successfulTestsHistoryLimit", Some(json!(3))),
        ("failedTestsHistoryLimit", Some(json!(1))),
        ("startingDeadlineSeconds", None),
        ("timeZone", None),
    ] {
        let s = schema_at(spec, &[field]).unwrap_or_else(|| panic!("no {field}"));
        assert_eq!(s.default.as_ref().map(|d| d.0.clone()), default, "{field}");
        assert!(s.description.is_some(), "{field} has no description");
    }
    for field in [
        "startingDeadlineSeconds",
        "successfulTestsHistoryLimit",
        "failedTestsHistoryLimit",
    ] {
        assert_eq!(
            schema_at(spec, &[field]).unwrap().minimum,
            Some(0.0),
            "{field}"
        );
    }
    // The template's spec is the whole LocustTest v2 spec, with its bounds.
    let template_spec = schema_at(spec, &["template", "spec"]).unwrap();
    let test_crd = crd::try_crd().unwrap();
    let test_spec = schema_at(crd::version_schema(&test_crd, "v2").unwrap(), &["spec"]).unwrap();
    let keys = |s: &JSONSchemaProps| {
        s.properties
            .as_ref()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(template_spec), keys(test_spec));
    assert_eq!(
        schema_at(template_spec, &["volumes"]).unwrap().max_items,
        Some(crd::MAX_VOLUMES)
    );
    for status in [
        "lastScheduleTime",
        "nextScheduleTime",
        "active",
        "activeCount",
        "lastSuccessfulTest",
        "lastFailedTest",
        "lastResult",
        "conditions",
        "observedGeneration",
    ] {
        assert!(
            schema_at(schema(), &["status", status]).is_some(),
            "status.{status}"
        );
    }
    let name = schema_at(schema(), &["metadata", "name"]).unwrap();
    assert!(
        name.description
            .as_deref()
            .unwrap()
            .contains("At most 47 characters"),
        "{name:?}"
    );
}

#[test]
fn the_template_spec_carries_the_locusttest_rules() {
    let rules = |s: &JSONSchemaProps| -> Vec<String> {
        s.x_kubernetes_validations
            .iter()
            .flatten()
            .map(|r| r.rule.clone())
            .collect()
    };
    let test_crd = crd::try_crd().unwrap();
    let v2 = crd::version_schema(&test_crd, "v2").unwrap();
    for path in [&["spec"][..], &["spec", "volumes"], &["spec", "image"]] {
        let mut in_template = vec!["spec", "template"];
        in_template.extend(path);
        let ours = rules(schema_at(schema(), &in_template).unwrap());
        assert_eq!(ours, rules(schema_at(v2, path).unwrap()), "{path:?}");
        assert!(!ours.is_empty(), "{path:?}");
    }
    assert_eq!(
        rules(schema()),
        ["!has(self.metadata.name) || size(self.metadata.name) <= 47"]
    );
}

// --- Round trip -------------------------------------------------------------------

#[test]
fn the_sample_round_trips_and_takes_the_defaults() {
    let value = sample();
    let schedule: LocustSchedule = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(schedule.spec.concurrency_policy, ConcurrencyPolicy::Forbid);
    let written = serde_json::to_value(&schedule).unwrap();
    assert_eq!(
        serde_json::from_value::<LocustSchedule>(written).unwrap(),
        schedule
    );
    assert_eq!(schedule.spec.template.metadata.labels["team"], "shop");
    let text = yaml::to_string(&schedule).unwrap();
    assert_eq!(yaml::from_str::<LocustSchedule>(&text).unwrap(), schedule);

    let minimal = edit(value, |v| {
        let spec = v["spec"].as_object_mut().unwrap();
        for field in [
            "concurrencyPolicy",
            "successfulTestsHistoryLimit",
            "failedTestsHistoryLimit",
            "timeZone",
        ] {
            spec.remove(field);
        }
    });
    let s: LocustSchedule = serde_json::from_value(minimal).unwrap();
    assert_eq!(s.spec.concurrency_policy, ConcurrencyPolicy::Forbid);
    assert!(!s.spec.suspend);
    assert_eq!(s.spec.successful_tests_history_limit, 3);
    assert_eq!(s.spec.failed_tests_history_limit, 1);
    assert_eq!(s.spec.starting_deadline_seconds, None);
    assert_eq!(s.spec.time_zone, None);
}

// --- Validation -------------------------------------------------------------------

/// `field: message` of every violation `validate_value` finds; when they
/// are all rule violations (the schema checks need the untyped object), the
/// typed validator finds the same.
fn messages(v: &Value) -> Vec<String> {
    let violations = validate_value(v);
    let untyped: Vec<String> = violations.iter().map(ToString::to_string).collect();
    if violations.iter().all(|x| x.rule.is_some()) {
        let s: LocustSchedule = serde_json::from_value(v.clone()).unwrap();
        let typed: Vec<String> = validate_schedule(&s)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(typed, untyped, "typed and untyped disagree on {v}");
    }
    untyped
}

fn compiled() -> &'static CompiledSchema {
    static COMPILED: LazyLock<CompiledSchema> =
        LazyLock::new(|| compile_schema(&serde_json::to_value(schema()).unwrap()));
    &COMPILED
}

/// `(field, message)` of the CRD's CEL rules rejecting `v`.
fn cel(v: &Value) -> Vec<(String, String)> {
    support_cel::cel_errors(compiled(), v)
}

#[path = "support/cel.rs"]
mod support_cel;

#[test]
fn the_sample_is_valid_everywhere() {
    assert_eq!(messages(&sample()), Vec::<String>::new());
    assert_eq!(cel(&sample()), []);
}

#[test]
fn every_schedule_problem_has_a_field_and_a_clear_message() {
    type Case = (&'static str, fn(&mut Value), &'static str);
    let cases: &[Case] = &[
        (
            "bad cron",
            |v| v["spec"]["schedule"] = json!("61 * * * *"),
            "spec.schedule: not a valid cron schedule: minute: 61 is out of range 0-59",
        ),
        (
            "six fields",
            |v| v["spec"]["schedule"] = json!("0 0 2 * * *"),
            "spec.schedule: not a valid cron schedule: expected 5 fields (minute hour day-of-month month day-of-week), found 6: a seconds (or year) field is not supported",
        ),
        (
            "TZ= prefix",
            |v| v["spec"]["schedule"] = json!("TZ=Europe/Berlin 0 2 * * *"),
            "spec.schedule: not a valid cron schedule: \"TZ=Europe/Berlin\" in the schedule is not supported: set spec.timeZone to \"Europe/Berlin\" instead",
        ),
        (
            "unknown time zone",
            |v| v["spec"]["timeZone"] = json!("Europe/Atlantis"),
            "spec.timeZone: unknown time zone \"Europe/Atlantis\": name an IANA time zone such as \"Europe/Berlin\", or leave it unset for UTC",
        ),
        (
            "time zone in the wrong case",
            |v| v["spec"]["timeZone"] = json!("europe/berlin"),
            "spec.timeZone: unknown time zone \"europe/berlin\" (did you mean \"Europe/Berlin\"?): name an IANA time zone such as \"Europe/Berlin\", or leave it unset for UTC",
        ),
        (
            "Local",
            |v| v["spec"]["timeZone"] = json!("Local"),
            "spec.timeZone: time zone \"Local\" is not allowed: name an IANA time zone such as \"Europe/Berlin\" (or leave it unset for UTC)",
        ),
        (
            "unknown policy",
            |v| v["spec"]["concurrencyPolicy"] = json!("Queue"),
            "spec.concurrencyPolicy: Unsupported value: \"Queue\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ),
        (
            "negative successful limit",
            |v| v["spec"]["successfulTestsHistoryLimit"] = json!(-1),
            "spec.successfulTestsHistoryLimit: must be greater than or equal to 0, got -1",
        ),
        (
            "negative failed limit",
            |v| v["spec"]["failedTestsHistoryLimit"] = json!(-2),
            "spec.failedTestsHistoryLimit: must be greater than or equal to 0, got -2",
        ),
        (
            "negative deadline",
            |v| v["spec"]["startingDeadlineSeconds"] = json!(-10),
            "spec.startingDeadlineSeconds: must be greater than or equal to 0, got -10",
        ),
        (
            "name too long",
            |v| v["metadata"]["name"] = json!("n".repeat(48)),
            "metadata.name: metadata.name of a LocustSchedule must be at most 47 characters so that its tests, named <name>-<minutes since the epoch> (8 digits), are valid LocustTest names (at most 56); choose a shorter name",
        ),
        (
            "reserved label",
            |v| v["spec"]["template"]["metadata"]["labels"]["locust.io/schedule"] = json!("x"),
            "spec.template.metadata.labels: spec.template.metadata.labels must not set locust.io/schedule: the operator sets it to the schedule's name on every test it creates; remove the label",
        ),
        (
            "template: blank image (a CEL rule)",
            |v| v["spec"]["template"]["spec"]["image"] = json!(" "),
            "spec.template.spec.image: spec.image must not be empty; set the Locust container image, e.g. locustio/locust:2.43.1",
        ),
        (
            "template: mount of an unknown volume (a CEL rule)",
            |v| {
                v["spec"]["template"]["spec"]["volumeMounts"] =
                    json!([{"name": "results", "mountPath": "/results"}])
            },
            "spec.template.spec.volumeMounts: every spec.volumeMounts[].name must be the name of a volume in spec.volumes; add the volume to spec.volumes or correct the mount's name",
        ),
        (
            "template: unclosed quote (a webhook rule)",
            |v| v["spec"]["template"]["spec"]["master"]["command"] = json!("locust -f 'a.py"),
            "spec.template.spec.master.command: spec.master.command must split like a shell command line into at least one word; close every quote or escape it with a backslash, do not end it with a lone backslash (write \\\\ for a literal one), and do not start with '#' (which comments out the rest)",
        ),
        (
            "template: replicas out of range (the schema)",
            |v| v["spec"]["template"]["spec"]["worker"]["replicas"] = json!(0),
            "spec.template.spec.worker.replicas: must be between 1 and 500, got 0",
        ),
        (
            "template: unknown field (the schema)",
            |v| v["spec"]["template"]["spec"]["workerReplicas"] = json!(2),
            "spec.template.spec.workerReplicas: unknown field; remove it or correct its spelling",
        ),
        (
            "no template",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("template");
            },
            "spec.template: Required value",
        ),
    ];
    for (what, change, want) in cases {
        let v = edit(sample(), change);
        assert_eq!(messages(&v), [*want], "{what}");
    }
    // A cron expression CronJob accepts but that never comes is not rejected
    // (as CronJob): `render` says so.
    let v = edit(sample(), |v| v["spec"]["schedule"] = json!("0 0 30 2 *"));
    assert_eq!(messages(&v), Vec::<String>::new());
}

#[test]
fn the_cel_rules_agree_with_the_rust_mirrors() {
    let name = edit(sample(), |v| v["metadata"]["name"] = json!("n".repeat(48)));
    let at_limit = edit(sample(), |v| v["metadata"]["name"] = json!("n".repeat(47)));
    let label = edit(sample(), |v| {
        v["spec"]["template"]["metadata"]["labels"]["locust.io/schedule"] = json!("x")
    });
    let image = edit(sample(), |v| {
        v["spec"]["template"]["spec"]["image"] = json!("")
    });
    let mount = edit(sample(), |v| {
        v["spec"]["template"]["spec"]["volumeMounts"] =
            json!([{"name": "results", "mountPath": "/results"}])
    });
    assert_eq!(cel(&at_limit), []);
    for v in [name, label, image, mount] {
        let rust: Vec<(String, String)> = validate_value(&v)
            .into_iter()
            .map(|x| (x.field, x.message))
            .collect();
        assert_eq!(cel(&v), rust, "{v}");
    }
}

#[test]
fn api_version_and_kind_are_checked_per_kind() {
    let v = edit(sample(), |v| v["apiVersion"] = json!("locust.io/v2"));
    assert_eq!(
        messages(&v),
        [
            r#"apiVersion: Unsupported value: "locust.io/v2": supported values: "locust.io/v1alpha1""#
        ]
    );
    let v = edit(sample(), |v| v["kind"] = json!("LocustTest"));
    assert_eq!(
        messages(&v)[0],
        r#"kind: Unsupported value: "LocustTest": supported values: "LocustSchedule""#
    );
    let v = edit(sample(), |v| {
        v["apiVersion"] = json!("locust.io/v1beta1");
        v["kind"] = json!("LocustRun");
    });
    assert_eq!(
        messages(&v),
        [
            r#"kind: Unsupported value: "LocustRun": the operator serves LocustTest (locust.io/v2, locust.io/v1) and LocustSchedule (locust.io/v1alpha1)"#
        ]
    );
}

// --- The tests a schedule creates ----------------------------------------------------

fn sample_schedule() -> LocustSchedule {
    let mut s: LocustSchedule = serde_json::from_value(sample()).unwrap();
    s.metadata.namespace = Some("load".to_owned());
    s.metadata.uid = Some("5c1e7d2a-0000-4000-8000-000000000001".to_owned());
    s
}

#[test]
fn the_next_test_is_named_after_its_time_and_linked_to_its_schedule() {
    let schedule = sample_schedule();
    // Friday 2026-03-06 12:00 UTC: next is Monday 02:30 in Berlin (CET, UTC+1).
    let test = next_test(&schedule, at("2026-03-06T12:00:00Z")).unwrap();
    let due = at("2026-03-09T01:30:00Z");
    assert_eq!(test.metadata.name.as_deref(), Some("nightly-29550330"));
    assert_eq!(test.metadata.name, Some(test_name("nightly", due)));
    assert_eq!(test.metadata.namespace.as_deref(), Some("load"));
    let labels = test.metadata.labels.clone().unwrap();
    assert_eq!(labels[SCHEDULE_LABEL], "nightly");
    assert_eq!(labels["team"], "shop");
    let annotations = test.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations[SCHEDULED_TIME_ANNOTATION],
        "2026-03-09T01:30:00Z"
    );
    let owner = &test.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str()
        ),
        ("locust.io/v1alpha1", "LocustSchedule", "nightly")
    );
    assert_eq!(owner.uid, "5c1e7d2a-0000-4000-8000-000000000001");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert_eq!(test.spec, schedule.spec.template.spec);
    assert_eq!(test, test_for(&schedule, due).unwrap());
    // The created test is a valid LocustTest.
    assert_eq!(locust_operator::validation::validate(&test), []);
}

#[test]
fn a_test_cannot_be_built_without_a_time_or_an_identity() {
    let mut schedule = sample_schedule();
    schedule.spec.schedule = "0 0 30 2 *".to_owned();
    let err = next_test(&schedule, at("2026-03-06T12:00:00Z")).unwrap_err();
    assert_eq!(err.reason(), "NeverDue");
    assert!(
        err.to_string()
            .contains("names no time in the next 5 years"),
        "{err}"
    );
    schedule.spec.schedule = "@daily".to_owned();
    schedule.spec.time_zone = Some("Mars/Olympus".to_owned());
    let err = next_test(&schedule, at("2026-03-06T12:00:00Z")).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Invalid {
                field: "spec.timeZone",
                ..
            }
        ),
        "{err}"
    );
    schedule.spec.time_zone = None;
    schedule.metadata.uid = None;
    let err = next_test(&schedule, at("2026-03-06T12:00:00Z")).unwrap_err();
    assert_eq!(err, RunError::MissingMetadata { field: "uid" });
}

proptest! {
    /// Names are a function of the schedule's name and the scheduled minute,
    /// read back by `scheduled_time_of`, and within the LocustTest limit for
    /// every schedule name the schedule rule accepts, at every time from 1989 to 2160.
    #[test]
    fn test_names_are_deterministic_and_bounded(
        len in 1..=MAX_SCHEDULE_NAME_LENGTH,
        minute in 10_000_000i64..100_000_000,
        second in 0i64..60,
    ) {
        let name = "s".repeat(len);
        let scheduled = Timestamp::from_second(minute * 60 + second).unwrap();
        let test = test_name(&name, scheduled);
        prop_assert_eq!(&test, &test_name(&name, scheduled));
        prop_assert!(test.len() <= MAX_TEST_NAME_LENGTH, "{} > {}", test.len(), MAX_TEST_NAME_LENGTH);
        prop_assert_eq!(test.len(), len + 1 + SCHEDULED_MINUTES_DIGITS);
        prop_assert_eq!(
            scheduled_time_of(&name, &test),
            Some(Timestamp::from_second(minute * 60).unwrap())
        );
        let other = Timestamp::from_second((minute + 1) * 60).unwrap();
        prop_assert_ne!(test, test_name(&name, other));
    }
}

// --- The CLI ----------------------------------------------------------------------

fn run_on(text: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A test, a schedule, a ConfigMap and an unknown kind of the operator's group.
fn mixed(schedule: &Value) -> String {
    let test = json!({
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": "once"},
        "spec": schedule["spec"]["template"]["spec"].clone(),
    });
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "files"}});
    [test, schedule.clone(), configmap]
        .iter()
        .map(|d| yaml::to_string(d).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn validate_reads_tests_and_schedules_from_one_file() {
    let (code, stdout, stderr) = run_on(&mixed(&sample()), &["validate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "once: valid\nnightly: valid\n");
    assert_eq!(
        stderr,
        "note: ConfigMap files: not a LocustTest or LocustSchedule, skipped\n"
    );

    let bad = edit(sample(), |v| {
        v["spec"]["schedule"] = json!("@every 5m");
        v["spec"]["timeZone"] = json!("Nowhere");
    });
    let unknown = "---\napiVersion: locust.io/v1alpha1\nkind: LocustRun\nmetadata:\n  name: what\n";
    let (code, stdout, stderr) = run_on(&(mixed(&bad) + unknown), &["validate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stdout,
        concat!(
            "once: valid\n",
            "nightly: spec.schedule: not a valid cron schedule: \"@every 5m\" is not supported: write the interval as five fields, e.g. \"*/10 * * * *\"\n",
            "nightly: spec.timeZone: unknown time zone \"Nowhere\": name an IANA time zone such as \"Europe/Berlin\", or leave it unset for UTC\n",
            "what: kind: Unsupported value: \"LocustRun\": supported values: \"LocustSchedule\"\n",
            "what: spec: Required value\n",
        )
    );
}

#[test]
fn render_shows_the_next_test_and_what_it_renders_to() {
    let before = Timestamp::now();
    let (code, stdout, stderr) = run_on(&mixed(&sample()), &["render"]);
    let after = Timestamp::now();
    assert_eq!(code, Some(0), "{stderr}");
    let docs = yaml::documents(&stdout).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "Job",
            "Job",
            "LocustTest",
            "Service",
            "Job",
            "Job"
        ]
    );
    let test: v2::LocustTest = serde_json::from_value(docs[3].clone()).unwrap();
    let name = test.metadata.name.clone().unwrap();
    let scheduled = scheduled_time_of("nightly", &name).unwrap();
    assert!(scheduled > before, "{name} is not after now");
    // Within a week: weekdays at 02:30 in Berlin.
    assert!(
        scheduled.as_second() - after.as_second() <= 7 * 24 * 3600,
        "{name}"
    );
    let mut schedule: LocustSchedule = serde_json::from_value(sample()).unwrap();
    schedule.metadata.namespace = Some("default".to_owned());
    schedule.metadata.uid = Some("00000000-0000-0000-0000-000000000000".to_owned());
    assert_eq!(test, test_for(&schedule, scheduled).unwrap());
    for (doc, child) in docs[4..].iter().zip(["master", "master", "worker"]) {
        assert_eq!(doc["metadata"]["name"], format!("{name}-{child}"));
    }

    let suspended = edit(sample(), |v| v["spec"]["suspend"] = json!(true));
    let (code, _, stderr) = run_on(&yaml::to_string(&suspended).unwrap(), &["render"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.starts_with("note: nightly is suspended"), "{stderr}");

    let never = edit(sample(), |v| v["spec"]["schedule"] = json!("0 0 30 2 *"));
    let (code, _, stderr) = run_on(&yaml::to_string(&never).unwrap(), &["render"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("nightly: spec.schedule \"0 0 30 2 *\" names no time"),
        "{stderr}"
    );
}

#[test]
fn convert_passes_schedules_over() {
    let (code, stdout, stderr) = run_on(&mixed(&sample()), &["convert", "--to", "v1"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("note: LocustSchedule nightly: not a LocustTest, skipped"),
        "{stderr}"
    );
    assert_eq!(stdout.matches("kind: LocustTest").count(), 1, "{stdout}");
}
