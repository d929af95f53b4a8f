//! Property tests on bad input (issue #7): whatever a user, the API server or a
//! Locust master sends, the operator never panics, every rejection names a
//! field of the schema and says what is wrong, and what is accepted is usable.
//!
//! Inputs are arbitrary JSON values and strings, and the repository's real
//! inputs (samples, admission corpus, Locust statistics fixtures) mutated at
//! random. Covered:
//! - validation (`validate_value`, `validate`): no panic, well-formed
//!   violations, and an object the validator accepts can be built into the
//!   master/worker Jobs and Service; mount paths conflict exactly when a
//!   reference (path components) says so, in Rust and in the CRD's CEL;
//! - conversion: the round trips of *untyped* objects (extra fields, nulls,
//!   arbitrary `locust.io/v2-spec` annotations); the typed round trips are
//!   `tests/conversion/round_trips.rs`'s;
//! - command splitting: no panic, `join` then split is the identity, accepted
//!   commands are closed (nothing appended on a new line changes their words),
//!   and the validator accepts exactly the commands the builder can split;
//! - the statistics parsers: no panic, only finite numbers;
//! - the webhook handlers (`admission_review`, `convert_review`, pure functions
//!   of the request body): no panic, the uid is echoed, denials name fields.
//!
//! Each property runs [`CASES`] cases from a fresh random seed (proptest's
//! default; a failure prints the minimal input, and `PROPTEST_RNG_SEED`
//! replays a run); the whole file takes a few seconds in a debug build.
//!
//! Layout: the seeds, the schema lookups and the strategies here; one module
//! per input: `validation`, `conversion`, `commands`, `stats_parsers`,
//! `webhook`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use locust_operator::api::{v1, v2};
use locust_operator::config::OperatorConfig;
use locust_operator::conversion::{
    V1_API_VERSION, V2_API_VERSION, V2_SPEC_ANNOTATION, convert_value, convert_value_with_warnings,
    v1_to_v2, v2_to_v1,
};
use locust_operator::resources::command::{
    CommandError, MASTER_COMMAND_FIELD, WORKER_COMMAND_FIELD,
};
use locust_operator::resources::{
    ContainerCommand, build_children, master_args, master_container_command, split_command,
    worker_args,
};
use locust_operator::stats::{self, MasterStats, RowStats};
use locust_operator::validation::{Violation, validate, validate_value};
use locust_operator::webhook::handlers::{admission_review, convert_review};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};
use untrusted::{
    admission_body, canonical, check_conversion_error, with_identity, without_empty_annotations,
    without_null_fields,
};

/// Cases per property (`PROPTEST_CASES` overrides it, for a longer search).
const CASES: u32 = 512;

fn config() -> ProptestConfig {
    proptest_config::config(CASES)
}

// ---------------------------------------------------------------------------
// The repository's real inputs
// ---------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    locust_operator::yaml::documents(&text)
        .unwrap()
        .into_iter()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("LocustTest"))
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every `LocustTest` of the samples and of the valid and invalid corpus.
static SEEDS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut files = yaml_files(&root().join("samples"));
    files.extend(yaml_files(&root().join("tests/corpus/valid")));
    files.extend(yaml_files(&root().join("tests/corpus/invalid")));
    let seeds: Vec<Value> = files.iter().flat_map(|f| yaml_docs(f)).collect();
    assert!(seeds.len() >= 50, "only {} seed objects", seeds.len());
    seeds
});

/// The seeds that are valid (samples and valid corpus).
static VALID_SEEDS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let valid: Vec<Value> = SEEDS
        .iter()
        .filter(|s| validate_value(s).is_empty())
        .cloned()
        .collect();
    assert!(valid.len() >= 12, "only {} valid seeds", valid.len());
    valid
});

fn seeds_of(api_version: &str) -> Vec<Value> {
    SEEDS
        .iter()
        .filter(|s| s["apiVersion"] == api_version)
        .cloned()
        .collect()
}

/// The v1 seeds, and the valid v2 seeds converted to v1 (those v1 cannot
/// express carry the v2-spec annotation).
static V1_SEEDS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let mut seeds = seeds_of(V1_API_VERSION);
    seeds.extend(
        VALID_SEEDS
            .iter()
            .filter(|s| s["apiVersion"] == V2_API_VERSION)
            .map(|s| convert_value(s.clone(), V1_API_VERSION).unwrap()),
    );
    seeds
});
static V2_SEEDS: LazyLock<Vec<Value>> = LazyLock::new(|| seeds_of(V2_API_VERSION));

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures").join(name)).unwrap()
}

const JSON_FIXTURES: [&str; 4] = [
    "stats-2.20.0-running.json",
    "stats-2.20.0-stopped.json",
    "stats-2.47.0-running.json",
    "stats-2.47.0-stopped.json",
];
const CSV_FIXTURES: [&str; 2] = ["stats-2.20.0-stopped.csv", "stats-2.47.0-stopped.csv"];

// ---------------------------------------------------------------------------
// The CRD schema, to check that violations name real fields
// ---------------------------------------------------------------------------

static SCHEMAS: LazyLock<(JSONSchemaProps, JSONSchemaProps)> = LazyLock::new(|| {
    let crd = locust_operator::crd::crd();
    let find = |name: &str| {
        locust_operator::crd::version_schema(&crd, name)
            .cloned()
            .unwrap()
    };
    (find("v2"), find("v1"))
});

fn schema_for(api_version: &str) -> &'static JSONSchemaProps {
    if api_version == V1_API_VERSION {
        &SCHEMAS.1
    } else {
        &SCHEMAS.0
    }
}

#[derive(Debug, PartialEq)]
enum Segment<'a> {
    /// `.name`
    Property(&'a str),
    /// `[0]` or `[key]`
    Bracket(&'a str),
}

/// Splits `spec.volumes[0].name` / `spec.master.labels[a.b/c]` into segments.
fn segments(field: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            out.push(Segment::Bracket(&inner[..end]));
            rest = &inner[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            out.push(Segment::Property(&r[..end]));
            rest = &r[end..];
        }
    }
    Some(out)
}

/// The schema node a field path leads to, if every step exists in the schema.
fn resolve<'s>(schema: &'s JSONSchemaProps, segs: &[Segment<'_>]) -> Option<&'s JSONSchemaProps> {
    let mut node = schema;
    for seg in segs {
        node = match seg {
            Segment::Property(name) => node.properties.as_ref()?.get(*name)?,
            Segment::Bracket(key) => match (&node.items, &node.additional_properties) {
                (Some(JSONSchemaPropsOrArray::Schema(items)), _)
                    if key.parse::<usize>().is_ok() =>
                {
                    items
                }
                (_, Some(JSONSchemaPropsOrBool::Schema(values))) => values,
                _ => return None,
            },
        };
    }
    Some(node)
}

const UNKNOWN_FIELD: &str = "unknown field";
/// Root fields of every object, outside the CRD's own schema.
const TYPE_META: [&str; 2] = ["apiVersion", "kind"];
/// Fields of `metadata` (ObjectMeta).
const OBJECT_META: [&str; 15] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// A violation is well formed when its message is not blank and its field is a
/// path of the schema (for an unknown field: the field's parent is, and the
/// field is not one of its properties).
fn check_violation(input: &Value, v: &Violation) -> Result<(), TestCaseError> {
    let api_version = input
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(V2_API_VERSION);
    prop_assert!(!v.message.trim().is_empty(), "blank message: {v:?}");
    // An unknown field named "" is the only one shown as "" (checked below).
    prop_assert!(
        !v.field.is_empty() || v.message.starts_with(UNKNOWN_FIELD),
        "no field: {v:?}"
    );
    let segs = segments(&v.field);
    prop_assert!(
        segs.is_some() || v.message.starts_with(UNKNOWN_FIELD),
        "unparseable field path: {v:?}"
    );
    let segs = segs.unwrap_or_default();
    let schema = schema_for(api_version);
    if TYPE_META.contains(&v.field.as_str()) {
        return Ok(());
    }
    if let [Segment::Property("metadata"), rest @ ..] = segs.as_slice() {
        // The API server checks metadata itself; the CRD schema only adds `name`.
        let known = match rest.first() {
            None => true,
            Some(Segment::Property(name)) => OBJECT_META.contains(name),
            Some(Segment::Bracket(_)) => false,
        };
        prop_assert!(known, "not a metadata field: {v:?}");
        return Ok(());
    }
    if v.message.starts_with(UNKNOWN_FIELD) {
        // Like the API server's, the path is `<parent>.<key>` with the key as
        // written, dots included: for some split, the parent is a field of the
        // schema, the input has the key there, and the schema does not.
        let splits = std::iter::once(("", v.field.as_str())).chain(
            v.field
                .match_indices('.')
                .map(|(at, _)| (&v.field[..at], &v.field[at + 1..])),
        );
        let unknown_under_a_field = splits.into_iter().any(|(parent, key)| {
            let Some(segs) = segments(parent) else {
                return false;
            };
            let in_input = lookup(input, &segs)
                .and_then(Value::as_object)
                .is_some_and(|o| o.contains_key(key));
            let in_schema = resolve(schema, &segs)
                .and_then(|p| p.properties.as_ref())
                .map(|props| props.contains_key(key));
            in_input && in_schema == Some(false)
        });
        prop_assert!(
            unknown_under_a_field,
            "not an unknown field of a known object: {v:?}"
        );
    } else {
        prop_assert!(
            resolve(schema, &segs).is_some(),
            "field is not in the {api_version} schema: {v:?}"
        );
    }
    Ok(())
}

fn check_violations(value: &Value, violations: &[Violation]) -> Result<(), TestCaseError> {
    for v in violations {
        check_violation(value, v)?;
    }
    Ok(())
}

/// The node of a JSON document a field path leads to.
fn lookup<'v>(value: &'v Value, segs: &[Segment<'_>]) -> Option<&'v Value> {
    let mut node = value;
    for seg in segs {
        node = match (seg, node) {
            (Segment::Property(name), Value::Object(map)) => map.get(*name)?,
            (Segment::Bracket(key), Value::Object(map)) => map.get(*key)?,
            (Segment::Bracket(index), Value::Array(items)) => {
                items.get(index.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(node)
}

#[test]
fn field_paths_resolve_in_the_schema() {
    let v2 = schema_for(V2_API_VERSION);
    let v1 = schema_for(V1_API_VERSION);
    for field in [
        "metadata.name",
        "spec.worker.replicas",
        "spec.volumes[0].name",
        "spec.master.labels[app.kubernetes.io/name]",
        "spec.env.secretMounts[3].mountPath",
    ] {
        assert!(resolve(v2, &segments(field).unwrap()).is_some(), "{field}");
    }
    assert!(resolve(v1, &segments("spec.masterCommandSeed").unwrap()).is_some());
    for field in [
        "spec.workers",
        "spec.volumes.name",
        "spec.worker.replicas[0]",
        "spec.masterCommandSeed",
    ] {
        assert!(resolve(v2, &segments(field).unwrap()).is_none(), "{field}");
    }
    assert_eq!(segments("a..b"), None);
    assert_eq!(segments("a[0"), None);
    let input = json!({
        "apiVersion": V2_API_VERSION,
        "top": 1,
        "spec": {"image": "x", "replicas": 1, "a.b": 1, ".": 1, "master": {"x[y": 1}},
    });
    let unknown = |field: &str| Violation {
        field: field.into(),
        message: format!("{UNKNOWN_FIELD}; remove it"),
        rule: None,
    };
    for field in [
        "top",
        "spec.replicas",
        "spec.a.b",
        "spec..",
        "spec.master.x[y",
    ] {
        assert!(check_violation(&input, &unknown(field)).is_ok(), "{field}");
    }
    // Not in the input, or a field the schema knows.
    for field in ["spec.nope", "spec.a", "spec.image", "spec", "nope.x"] {
        assert!(check_violation(&input, &unknown(field)).is_err(), "{field}");
    }
    let misplaced = Violation {
        field: "spec.nope".into(),
        message: "Required value".into(),
        rule: None,
    };
    assert!(check_violation(&input, &misplaced).is_err());
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Strings that tend to break parsers and validators.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "", " ", "\t\n", "\\", "'", "\"", "#", "-", "--", "/", "//", "~/x", "..",
            "C:\\results", "/results", "/results/", "/results/r.html", "/lotest/src",
            "/opt/locust/lib", "locust-src", "locust-lib", "locust-secret-0", "results",
            "worker", "master", "both", "Always", "Never", "IfNotPresent", "grpc",
            "http/protobuf", "locust.io/v1", "locust.io/v2", "LocustTest", "0", "-1",
            "1e309", "NaN", "true", "null", "{}", "[]", "\u{0}", "\u{feff}", "é",
            "locust -f x.py \\", "--locustfile x.py 'a", "a\"b", "# c", "1Gi", "500m",
            "2026-01-01T00:00:00Z", "not-a-time", V2_SPEC_ANNOTATION,
        ])
        .prop_map(str::to_owned),
        2 => "[ -~]{0,24}",
        1 => "\\PC{0,12}",
        1 => "[a-z]{60,70}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(2),
            json!(256),
            json!(257),
            json!(500),
            json!(501),
            json!(i32::MAX),
            json!(i64::from(i32::MAX) + 1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.5),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(-1e-300),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Object keys: the API's own names, more often than not, or short strings.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "apiVersion", "kind", "metadata", "name", "namespace", "uid", "annotations",
            "labels", "spec", "status", "image", "imagePullPolicy", "imagePullSecrets",
            "master", "worker", "command", "replicas", "processesPerPod", "extraArgs",
            "autostart", "autoquit", "enabled", "timeout", "resources", "testFiles",
            "configMapRef", "libConfigMapRef", "srcMountPath", "libMountPath", "env",
            "secretMounts", "secretRefs", "configMapRefs", "mountPath", "volumes",
            "volumeMounts", "target", "emptyDir", "observability", "openTelemetry",
            "endpoint", "protocol", "output", "htmlReport", "jsonFile", "csv", "path",
            "prefix", "thresholds", "webUI", "basePath", "scheduling", "affinity",
            "tolerations", "nodeSelector", "masterCommandSeed", "workerCommandSeed",
            "workerReplicas", "configMap", "libConfigMap", "phase", "conditions",
            "request", "uid", "object", "oldObject", "operation", "objects",
            "desiredAPIVersion", "group", "version", V2_SPEC_ANNOTATION,
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_./-]{0,10}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        tricky_string().prop_map(Value::String),
    ]
}

/// Arbitrary JSON, up to 4 levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An edit at the node a [`Mutation`]'s path leads to.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Value),
    Remove,
    Insert(String, Value),
    Push(Value),
}

/// A random edit of a JSON document: `path` picks a child at each level
/// (index modulo the number of children) until a leaf or its end.
#[derive(Clone, Debug)]
struct Mutation {
    path: Vec<usize>,
    edit: Edit,
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => Just(json!({})),
        1 => Just(json!([])),
        2 => arb_json(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let edit = prop_oneof![
        4 => small_value().prop_map(Edit::Replace),
        2 => Just(Edit::Remove),
        2 => (key(), small_value()).prop_map(|(k, v)| Edit::Insert(k, v)),
        1 => small_value().prop_map(Edit::Push),
    ];
    (vec(any::<usize>(), 0..7), edit).prop_map(|(path, edit)| Mutation { path, edit })
}

/// Applies `edit` at the end of `path`; returns whether `node` must be removed.
fn apply_at(node: &mut Value, path: &[usize], edit: &Edit) -> bool {
    if let Some((&i, rest)) = path.split_first() {
        match node {
            Value::Object(map) if !map.is_empty() => {
                let k = map.keys().nth(i % map.len()).cloned().unwrap_or_default();
                if map
                    .get_mut(&k)
                    .is_some_and(|child| apply_at(child, rest, edit))
                {
                    map.remove(&k);
                }
                return false;
            }
            Value::Array(items) if !items.is_empty() => {
                let idx = i % items.len();
                if apply_at(&mut items[idx], rest, edit) {
                    items.remove(idx);
                }
                return false;
            }
            _ => {}
        }
    }
    match edit {
        Edit::Replace(v) => *node = v.clone(),
        Edit::Remove => return true,
        Edit::Insert(k, v) => match node {
            Value::Object(map) => {
                map.insert(k.clone(), v.clone());
            }
            _ => *node = json!({ k.clone(): v.clone() }),
        },
        Edit::Push(v) => match node {
            Value::Array(items) => items.push(v.clone()),
            _ => *node = json!([v.clone()]),
        },
    }
    false
}

fn mutate(mut value: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        if apply_at(&mut value, &m.path, &m.edit) {
            value = Value::Null;
        }
    }
    value
}

/// A seed from `seeds`, mutated 0 to 3 times.
fn mutated(seeds: &'static [Value]) -> impl Strategy<Value = Value> {
    (0..seeds.len(), vec(mutation(), 0..4)).prop_map(move |(i, ms)| mutate(seeds[i].clone(), &ms))
}

/// Command lines: shell syntax-heavy ASCII, arbitrary Unicode, or real commands.
fn command_line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z \\\\'\"#\n\t=-]{0,16}",
        1 => "\\PC{0,16}",
        1 => tricky_string(),
        1 => (prop::sample::select(vec![
            "locust -f /lotest/src/locustfile.py",
            "--locustfile /lotest/src/locustfile.py --host http://shop:8080",
            "locust --tags \"checkout flow\" -f x.py",
        ]), "[ \\\\'\"#\n]{0,3}")
            .prop_map(|(base, tail)| format!("{base}{tail}")),
    ]
}

/// The validator's verdict holds for the builder: an accepted object becomes Jobs and a Service.
fn check_accepted_is_buildable(test: &v2::LocustTest) -> Result<(), TestCaseError> {
    let built = build_children(test, &OperatorConfig::default());
    prop_assert!(built.is_ok(), "accepted but not buildable: {built:?}");
    Ok(())
}

/// `n` values of `strategy`, from a fixed seed.
fn sample<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, n: usize) -> Vec<T> {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// The strategies are not vacuous: mutated objects reach every verdict and
/// both conversions, and command lines every outcome of the splitter.
#[test]
fn strategies_reach_every_verdict() {
    let objects = sample(mutated(&SEEDS), 512);
    let verdicts = objects.iter().map(validate_value);
    let (mut accepted, mut by_rule, mut by_schema) = (0, 0, 0);
    for v in verdicts {
        if v.is_empty() {
            accepted += 1;
        } else if v.iter().any(|v| v.rule.is_some()) {
            by_rule += 1;
        } else {
            by_schema += 1;
        }
    }
    assert!(
        accepted >= 20 && by_rule >= 100 && by_schema >= 100,
        "{accepted} accepted, {by_rule} by a rule, {by_schema} by the schema"
    );
    let converted = objects
        .iter()
        .filter(|o| {
            let other = if o["apiVersion"] == V1_API_VERSION {
                V2_API_VERSION
            } else {
                V1_API_VERSION
            };
            convert_value((*o).clone(), other).is_ok()
        })
        .count();
    assert!(converted >= 100, "{converted} of 512 converted");

    let commands = sample(command_line(), 512);
    let outcomes: Vec<_> = commands
        .iter()
        .map(|c| split_command(c, MASTER_COMMAND_FIELD).map_err(|e| e.reason()))
        .collect();
    let ok = outcomes.iter().filter(|o| o.is_ok()).count();
    let invalid = outcomes
        .iter()
        .filter(|o| **o == Err("InvalidCommand"))
        .count();
    let empty = outcomes
        .iter()
        .filter(|o| **o == Err("EmptyCommand"))
        .count();
    let backslash = commands
        .iter()
        .filter(|c| c.ends_with('\\') && split_command(c, MASTER_COMMAND_FIELD).is_err())
        .count();
    assert!(
        ok >= 150 && invalid >= 50 && empty >= 20 && backslash >= 10,
        "{ok} ok, {invalid} invalid, {empty} empty, {backslash} with a lone backslash"
    );
}

mod commands;
mod conversion;
#[path = "../support/mount_path_reference.rs"]
mod mount_path_reference;
#[path = "../support/proptest_config.rs"]
mod proptest_config;
mod stats_parsers;
#[path = "../support/untrusted.rs"]
mod untrusted;
mod validation;
mod webhook;
