//! Property tests on bad input (issue #7): whatever a user, the API server or a
//! Locust master sends, the operator never panics, every rejection names a
//! field of the schema and says what is wrong, and what is accepted is usable.
//!
//! Inputs are arbitrary JSON values and strings, and the repository's real
//! inputs (samples, admission corpus, Locust statistics fixtures) mutated at
//! random. Covered:
//! - validation (`validate_value`, `validate`): no panic, well-formed
//!   violations, and an object the validator accepts can be built into the
//!   master/worker Jobs and Service;
//! - conversion: the round trips of *untyped* objects (extra fields, nulls,
//!   arbitrary `locust.io/v2-spec` annotations); the typed round trips are
//!   `tests/conversion.rs`'s;
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

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use locust_operator::api::{v1, v2};
use locust_operator::config::OperatorConfig;
use locust_operator::conversion::{
    ConversionError, V1_API_VERSION, V2_API_VERSION, V2_SPEC_ANNOTATION, convert_value,
    convert_value_with_warnings, v1_to_v2, v2_to_v1,
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
use serde::Deserialize;
use serde_json::{Value, json};

/// Cases per property (`PROPTEST_CASES` overrides it, for a longer search).
const CASES: u32 = 512;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        // Failing cases are reported in the test output; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The repository's real inputs
// ---------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
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
        crd.spec
            .versions
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.schema.clone())
            .and_then(|s| s.open_api_v3_schema)
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

/// The uid, name and namespace the API server gives an object (it rejects or
/// generates a missing name), so that it can be built into children.
fn with_identity(mut value: Value) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert("name".into(), json!("t"));
        }
        meta.insert("namespace".into(), json!("load"));
        meta.insert("uid".into(), json!("0b0e5c1e-1f33-4c38-9a51-6c2f5f0d0001"));
    }
    value
}

/// The object as the API server stores it, for decoding: fields set to `null`
/// are dropped when not nullable (as `validate_value` mirrors) and decode as
/// absent when nullable.
fn without_null_fields(mut value: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut value);
    value
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

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any JSON at all: no panic, and every violation is well formed.
    #[test]
    fn validate_value_never_panics_on_arbitrary_json(value in arb_json()) {
        let violations = validate_value(&value);
        prop_assert!(!violations.is_empty() || value.is_object(), "a non-object accepted");
        check_violations(&value, &violations)?;
    }

    /// Arbitrary JSON under a LocustTest's `apiVersion` and `kind`, so that the
    /// schema walk and the rules see it.
    #[test]
    fn validate_value_names_fields_of_arbitrary_locust_tests(
        v1_api in any::<bool>(),
        metadata in arb_json(),
        spec in arb_json(),
        extra in btree_map(key(), arb_json(), 0..3),
    ) {
        let api_version = if v1_api { V1_API_VERSION } else { V2_API_VERSION };
        let mut value = json!({"apiVersion": api_version, "kind": "LocustTest", "metadata": metadata, "spec": spec});
        if let Some(map) = value.as_object_mut() {
            for (k, v) in extra {
                map.entry(k).or_insert(v);
            }
        }
        check_violations(&value, &validate_value(&value))?;
    }

    /// Real objects, mutated: violations are well formed; an accepted v2
    /// object is accepted by the typed validator too and can be built.
    #[test]
    fn mutated_locust_tests_are_rejected_with_fields_or_buildable(value in mutated(&SEEDS)) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if violations.is_empty() && value["apiVersion"] == V2_API_VERSION {
            let stored = with_identity(without_null_fields(value.clone()));
            let test: v2::LocustTest = serde_json::from_value(stored)
                .map_err(|e| TestCaseError::fail(format!("accepted but undecodable: {e}")))?;
            prop_assert_eq!(validate(&test), vec![]);
            check_accepted_is_buildable(&test)?;
        }
    }

    /// Only valid objects, mutated once: most stay decodable, so the rules run.
    #[test]
    fn valid_objects_mutated_once_keep_the_verdicts_consistent(
        value in mutated(&VALID_SEEDS).prop_filter("the unmutated seeds are tested elsewhere", |v| !VALID_SEEDS.contains(v)),
    ) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if value["apiVersion"] == V2_API_VERSION
            && let Ok(test) = serde_json::from_value::<v2::LocustTest>(value.clone())
        {
            let typed = validate(&test);
            // Typed validation (the webhook's) sees the object after decoding, with
            // unknown fields dropped and defaults applied: it can only find fewer
            // problems, never new ones.
            for v in &typed {
                prop_assert!(violations.contains(v), "typed-only violation {v:?}; untyped: {violations:?}");
            }
            if typed.is_empty() {
                let test = serde_json::from_value(with_identity(value.clone()))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_accepted_is_buildable(&test)?;
            }
        }
    }
}

/// Found by the properties above: what fails only when decoding (outside or
/// beyond the CRD schema) used to be reported with an empty field.
#[test]
fn decoding_failures_name_the_field() {
    let base = VALID_SEEDS
        .iter()
        .find(|s| s["apiVersion"] == V2_API_VERSION)
        .unwrap();
    let cases: [(&str, Value, &str, &str); 6] = [
        ("/metadata", Value::Null, "metadata", "Required value"),
        (
            "/metadata",
            json!(["x"]),
            "metadata",
            "cannot decode the object: invalid type: sequence",
        ),
        (
            "/metadata/creationTimestamp",
            json!("yesterday"),
            "metadata.creationTimestamp",
            "cannot decode the object:",
        ),
        (
            "/spec/volumes",
            json!([{"name": "v", "secret": {"secretName": "s", "defaultMode": 1_i64 << 40}}]),
            "spec.volumes[0].secret.defaultMode",
            "cannot decode the object: invalid value: integer",
        ),
        // Map keys in brackets, as the schema checks write them (found with
        // an empty key, which used to give the path `metadata.annotations.`).
        (
            "/metadata/annotations",
            json!({"": null}),
            "metadata.annotations[]",
            "cannot decode the object: invalid type: null",
        ),
        (
            "/metadata/labels",
            json!({"app.kubernetes.io/name": 5}),
            "metadata.labels[app.kubernetes.io/name]",
            "cannot decode the object: invalid type: integer",
        ),
    ];
    for (pointer, bad, field, message) in cases {
        let mut value = base.clone();
        match value.pointer_mut(pointer) {
            Some(slot) => *slot = bad,
            None => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                value.pointer_mut(parent).unwrap()[key] = bad;
            }
        }
        let violations = validate_value(&value);
        assert!(
            violations
                .iter()
                .any(|v| v.field == field && v.message.starts_with(message)),
            "{pointer}: {violations:#?}"
        );
        check_violations(&value, &violations).unwrap();
    }
}

/// Found by the properties: the webhook decoded the object without pruning
/// nulls (denying `autoquit: null`, which the API server prunes and the CLI
/// accepts), and a typed `f64` showed as `-1.0` where the document said `-1`.
#[test]
fn the_webhook_decodes_like_the_cli() {
    let mut value = VALID_SEEDS
        .iter()
        .find(|s| s["apiVersion"] == V2_API_VERSION)
        .unwrap()
        .clone();
    value["spec"]["master"]["autoquit"] = Value::Null;
    assert_eq!(validate_value(&value), []);
    let body = serde_json::to_vec(&admission_body(&value, "CREATE", None)).unwrap();
    let review = admission_review(&body).unwrap();
    assert!(review.response.unwrap().allowed);

    value["spec"]["master"]
        .as_object_mut()
        .unwrap()
        .remove("autoquit");
    value["spec"]["thresholds"] = json!({"maxAverageResponseTime": -1});
    let field = "spec.thresholds.maxAverageResponseTime";
    let message = "must be greater than or equal to 0, got -1";
    let untyped = validate_value(&value);
    assert!(
        untyped
            .iter()
            .any(|v| v.field == field && v.message == message),
        "{untyped:#?}"
    );
    let typed: v2::LocustTest = serde_json::from_value(value).unwrap();
    let violations = validate(&typed);
    assert!(
        violations
            .iter()
            .any(|v| v.field == field && v.message == message),
        "{violations:#?}"
    );
}

proptest! {
    #![proptest_config(config())]

    /// The webhook validates v1 requests as the v2 objects they convert to
    /// (matchPolicy Equivalent): what the v1 rules accept, the v2 rules accept.
    #[test]
    fn accepted_v1_objects_are_accepted_as_v2(value in mutated(&V1_SEEDS)) {
        let violations = validate_value(&value);
        check_violations(&value, &violations)?;
        if violations.is_empty() {
            let stored = with_identity(without_null_fields(value));
            let old: v1::LocustTest = serde_json::from_value(stored)
                .map_err(|e| TestCaseError::fail(format!("accepted but undecodable: {e}")))?;
            let new = v1_to_v2(&old).object;
            prop_assert_eq!(validate(&new), vec![]);
            check_accepted_is_buildable(&new)?;
        }
    }
}

#[test]
fn every_valid_seed_is_buildable() {
    for seed in VALID_SEEDS.iter() {
        if seed["apiVersion"] == V2_API_VERSION {
            let test: v2::LocustTest = serde_json::from_value(with_identity(seed.clone())).unwrap();
            build_children(&test, &OperatorConfig::default()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Conversion of untyped objects
// ---------------------------------------------------------------------------

fn has_annotation(value: &Value) -> bool {
    value["metadata"]["annotations"]
        .get(V2_SPEC_ANNOTATION)
        .is_some()
}

fn check_conversion_error(err: &ConversionError) -> Result<(), TestCaseError> {
    prop_assert!(!err.reason().is_empty());
    prop_assert!(!err.to_string().trim().is_empty());
    if let ConversionError::InvalidObject { field, message, .. } = err {
        // The field is named, or the message names the missing root field.
        prop_assert!(
            field.is_some() || message.contains("missing field"),
            "no field named: {err}"
        );
        prop_assert!(!message.trim().is_empty());
    }
    Ok(())
}

/// Kubernetes does not tell an empty annotation map from none (JSON
/// `omitempty`), and a trip through the v2-spec annotation drops it (see
/// `tests/conversion.rs`).
fn without_empty_annotations(mut value: Value) -> Value {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("annotations") == Some(&json!({}))
    {
        meta.remove("annotations");
    }
    value
}

/// Converts `value` to `other` and back; whatever decodes comes back as its
/// canonical (decoded, re-encoded) form.
fn check_json_round_trip(value: &Value, other: &str) -> Result<(), TestCaseError> {
    let Some(source) = value["apiVersion"].as_str().map(str::to_owned) else {
        prop_assert!(convert_value(value.clone(), other).is_err());
        return Ok(());
    };
    match convert_value_with_warnings(value.clone(), other) {
        Err(err) => check_conversion_error(&err)?,
        Ok(there) => {
            let back = convert_value_with_warnings(there.object.clone(), &source);
            prop_assert!(back.is_ok(), "converted, but not back: {back:?}");
            let back = back.map(|b| b.object).unwrap_or_default();
            prop_assert_eq!(&back["apiVersion"], &json!(source));
            prop_assert_eq!(&there.object["apiVersion"], &json!(other));
            if has_annotation(value) {
                // A stale or foreign annotation is consumed or dropped (with a
                // warning); the v1-visible spec still survives (see below).
                return Ok(());
            }
            prop_assert!(there.warnings.is_empty(), "{:?}", there.warnings);
            let canonical = if source == V1_API_VERSION {
                serde_json::from_value::<v1::LocustTest>(value.clone())
                    .and_then(serde_json::to_value)
            } else {
                serde_json::from_value::<v2::LocustTest>(value.clone())
                    .and_then(serde_json::to_value)
            };
            prop_assert!(
                canonical.is_ok(),
                "converted but undecodable: {canonical:?}"
            );
            prop_assert_eq!(
                without_empty_annotations(back),
                without_empty_annotations(canonical.unwrap_or_default())
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Mutated real objects (unknown fields, nulls, wrong types) convert both
    /// ways losslessly or are rejected naming a field.
    #[test]
    fn mutated_objects_round_trip_through_the_other_version(value in mutated(&SEEDS)) {
        let other = if value["apiVersion"] == V1_API_VERSION { V2_API_VERSION } else { V1_API_VERSION };
        check_json_round_trip(&value, other)?;
    }

    /// Any JSON at all: no panic, errors carry a reason and a message.
    #[test]
    fn convert_value_never_panics_on_arbitrary_json(value in arb_json(), to_v1 in any::<bool>()) {
        let desired = if to_v1 { V1_API_VERSION } else { V2_API_VERSION };
        if let Err(err) = convert_value(value, desired) {
            check_conversion_error(&err)?;
        }
    }

    /// A v1 object carrying any `locust.io/v2-spec` annotation (garbage, or the
    /// spec of another object): what v1 shows always wins, both ways.
    #[test]
    fn v1_fields_win_over_any_stored_v2_spec(
        v1_seed in 0..V1_SEEDS.len(),
        v2_seed in mutated(&V2_SEEDS),
        garbage in tricky_string(),
        use_garbage in any::<bool>(),
    ) {
        let mut value = V1_SEEDS[v1_seed].clone();
        let stored = if use_garbage { garbage } else { v2_seed["spec"].to_string() };
        value["metadata"]["annotations"] = json!({ V2_SPEC_ANNOTATION: stored, "team": "shop" });
        let obj: v1::LocustTest = serde_json::from_value(value).unwrap();
        let up = v1_to_v2(&obj).object;
        prop_assert!(up.metadata.annotations.as_ref().is_some_and(|a| !a.contains_key(V2_SPEC_ANNOTATION)));
        let down = v2_to_v1(&up).object;
        prop_assert_eq!(&down.spec, &obj.spec);
        prop_assert_eq!(&down.status, &obj.status);
        // And v2 → v1 → v2 from there is the identity (the typed property, on these inputs).
        prop_assert_eq!(v1_to_v2(&down).object, up);
    }
}

#[test]
fn seeds_cover_both_versions_and_convert() {
    assert!(!V1_SEEDS.is_empty() && V2_SEEDS.len() >= 40);
    for seed in VALID_SEEDS.iter() {
        let other = if seed["apiVersion"] == V1_API_VERSION {
            V2_API_VERSION
        } else {
            V1_API_VERSION
        };
        let there = convert_value(seed.clone(), other).unwrap();
        assert_eq!(
            convert_value(there, seed["apiVersion"].as_str().unwrap()).unwrap()["spec"],
            {
                let canonical: Value = if other == V2_API_VERSION {
                    serde_json::to_value(
                        serde_json::from_value::<v1::LocustTest>(seed.clone()).unwrap(),
                    )
                } else {
                    serde_json::to_value(
                        serde_json::from_value::<v2::LocustTest>(seed.clone()).unwrap(),
                    )
                }
                .unwrap();
                canonical["spec"].clone()
            }
        );
    }
}

// ---------------------------------------------------------------------------
// Command splitting
// ---------------------------------------------------------------------------

fn v2_with_commands(master: &str, worker: &str) -> v2::LocustTest {
    let mut value = with_identity(VALID_SEEDS[0].clone());
    if value["apiVersion"] != V2_API_VERSION {
        value = convert_value(value, V2_API_VERSION).unwrap();
    }
    value["spec"]["master"]["command"] = json!(master);
    value["spec"]["worker"]["command"] = json!(worker);
    serde_json::from_value(value).unwrap()
}

fn shell_rule_fails(test: &v2::LocustTest, field: &str) -> bool {
    validate(test)
        .iter()
        .any(|v| v.field == field && v.rule.is_some_and(|r| r.ends_with("-shell-syntax")))
}

proptest! {
    #![proptest_config(config())]

    /// No panic; success is a non-empty word list; failures name the field.
    #[test]
    fn split_command_never_panics(command in command_line()) {
        match split_command(&command, MASTER_COMMAND_FIELD) {
            Ok(words) => prop_assert!(!words.is_empty()),
            Err(err) => {
                prop_assert_eq!(err.field(), MASTER_COMMAND_FIELD);
                prop_assert!(!err.reason().is_empty());
                let shown = err.to_string();
                prop_assert!(shown.starts_with("spec.master.command: "), "{}", shown);
            }
        }
    }

    /// Joining words with shell quoting and splitting gives the words back,
    /// unless every word is blank by Unicode's definition (e.g. U+2028, `\r`,
    /// ""): such a command has no program, and the split rejects it.
    #[test]
    fn join_then_split_is_identity(words in vec("\\PC{0,8}|[a-z \\\\'\"#\n-]{0,6}", 1..6)) {
        let joined = shell_words::join(&words);
        let expected = if words.iter().all(|w| w.trim().is_empty()) {
            Err(CommandError::Empty { field: WORKER_COMMAND_FIELD })
        } else {
            Ok(words)
        };
        prop_assert_eq!(split_command(&joined, WORKER_COMMAND_FIELD), expected);
    }

    /// An accepted command is closed: more words on a new line are appended as
    /// they are, and the command's own words do not change (a trailing lone
    /// backslash would glue the next line on).
    #[test]
    fn accepted_commands_are_closed(command in command_line(), more in vec("[a-z-]{1,6}", 1..3)) {
        if let Ok(words) = split_command(&command, MASTER_COMMAND_FIELD) {
            let extended = format!("{command}\n{}", shell_words::join(&more));
            let mut expected = words;
            expected.extend(more);
            prop_assert_eq!(split_command(&extended, MASTER_COMMAND_FIELD), Ok(expected));
        }
    }

    /// The webhook rule accepts exactly the commands the builder can split, and
    /// the container's command + args are the split words followed by the
    /// operator's flags.
    #[test]
    fn validation_agrees_with_the_command_builder(master in command_line(), worker in command_line()) {
        let test = v2_with_commands(&master, &worker);
        for (command, field) in [(&master, MASTER_COMMAND_FIELD), (&worker, WORKER_COMMAND_FIELD)] {
            let blank = command.trim().is_empty();
            let splits = split_command(command, field).is_ok();
            prop_assert_eq!(shell_rule_fails(&test, field), !blank && !splits, "{:?}", command);
        }
        let accepted = validate(&test).is_empty();
        let master_words = master_args(&test.spec);
        let worker_words = worker_args(&test.spec, "t-master");
        prop_assert_eq!(accepted, master_words.is_ok() && worker_words.is_ok());
        if let Ok(words) = master_words {
            let split = split_command(&master, MASTER_COMMAND_FIELD).unwrap_or_default();
            prop_assert_eq!(&words[..split.len()], &split[..]);
            let built = master_container_command(&test.spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ContainerCommand { command, args } = built.clone();
            let mut all = command.clone().unwrap_or_default();
            all.extend(args.iter().cloned());
            prop_assert_eq!(&all, &words);
            prop_assert_eq!(ContainerCommand::from_tokens(words), built);
        }
        if accepted {
            check_accepted_is_buildable(&test)?;
        }
    }
}

#[test]
fn lone_trailing_backslash_is_rejected_by_the_webhook_rule_with_its_field() {
    let test = v2_with_commands("locust -f x.py \\", "locust -f x.py");
    let violations = validate(&test);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, MASTER_COMMAND_FIELD);
    assert!(
        violations[0].message.contains("lone backslash"),
        "{violations:?}"
    );
    let test = v2_with_commands("locust -f x.py \\\\", "locust -f 'x.py\\'");
    assert_eq!(validate(&test), vec![]);
}

// ---------------------------------------------------------------------------
// Statistics parsers
// ---------------------------------------------------------------------------

fn check_row(row: &RowStats) -> Result<(), TestCaseError> {
    for x in [
        row.avg_response_time,
        row.min_response_time,
        row.max_response_time,
        row.total_rps,
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(x.is_finite());
    }
    for (q, x) in &row.percentiles {
        prop_assert!(x.is_finite());
        let q: f64 = q
            .parse()
            .map_err(|_| TestCaseError::fail(format!("quantile key {q:?}")))?;
        prop_assert!((0.0..=1.0).contains(&q), "quantile {q}");
    }
    Ok(())
}

fn check_stats(stats: &MasterStats, csv: Option<&RowStats>) -> Result<(), TestCaseError> {
    for x in [stats.total_rps, stats.fail_ratio].into_iter().flatten() {
        prop_assert!(x.is_finite());
    }
    if let Some(row) = &stats.aggregated {
        check_row(row)?;
    }
    if let Some(row) = csv {
        check_row(row)?;
    }
    let live = stats.live();
    prop_assert_eq!(
        live.total_requests,
        stats.aggregated.as_ref().and_then(|a| a.num_requests)
    );
    let result = stats::final_result(stats, csv);
    // The result goes into status: every number must survive JSON.
    let json = serde_json::to_value(&result).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: locust_operator::api::status::TestResult =
        serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, result);
    Ok(())
}

/// Byte-level edits: overwrite, insert, delete, truncate.
#[derive(Clone, Debug)]
enum ByteEdit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                vec(any::<u8>(), 1..4),
                prop::sample::select(vec![
                    b"\"".to_vec(),
                    b",".to_vec(),
                    b"\n".to_vec(),
                    b"-".to_vec(),
                    b"1e999".to_vec(),
                    b"null".to_vec(),
                    b"NaN".to_vec(),
                    b"[".to_vec(),
                    b"}".to_vec(),
                    b"\xff".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            ByteEdit::Set(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = *b;
                }
            }
            ByteEdit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            ByteEdit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

static JSON_FIXTURE_VALUES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    JSON_FIXTURES
        .iter()
        .map(|f| serde_json::from_slice(&fixture(f)).unwrap())
        .collect()
});

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stats_parsers_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        if let Ok(stats) = stats::parse_requests_json(&bytes) {
            check_stats(&stats, None)?;
        }
        if let Ok(Some(row)) = stats::parse_requests_csv(&String::from_utf8_lossy(&bytes)) {
            check_row(&row)?;
        }
    }

    /// Real answers of Locust 2.20 and 2.47, damaged byte by byte.
    #[test]
    fn stats_parsers_survive_damaged_fixtures(
        json_i in 0..JSON_FIXTURES.len(),
        csv_i in 0..CSV_FIXTURES.len(),
        edits in vec(byte_edit(), 1..6),
    ) {
        let json = apply_bytes(fixture(JSON_FIXTURES[json_i]), &edits);
        let csv = apply_bytes(fixture(CSV_FIXTURES[csv_i]), &edits);
        let row = stats::parse_requests_csv(&String::from_utf8_lossy(&csv));
        let row = row.ok().flatten();
        if let Some(row) = &row {
            check_row(row)?;
        }
        if let Ok(stats) = stats::parse_requests_json(&json) {
            check_stats(&stats, row.as_ref())?;
        }
    }

    /// Real answers with fields removed, retyped or added: still parsed, with
    /// every number finite.
    #[test]
    fn stats_parser_survives_edited_fixture_json(
        i in 0..JSON_FIXTURES.len(),
        mutations in vec(mutation(), 1..5),
    ) {
        let value = mutate(JSON_FIXTURE_VALUES[i].clone(), &mutations);
        let body = serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match stats::parse_requests_json(&body) {
            Ok(stats) => check_stats(&stats, None)?,
            Err(err) => {
                prop_assert!(!value.is_object(), "an object rejected: {err}");
                prop_assert_eq!(err.reason(), "StatsUndecodable");
            }
        }
    }
}

#[test]
fn unedited_fixtures_parse_with_an_aggregated_row() {
    for f in JSON_FIXTURES {
        let stats = stats::parse_requests_json(&fixture(f)).unwrap();
        assert!(stats.aggregated.is_some(), "{f}");
    }
    for f in CSV_FIXTURES {
        let csv = String::from_utf8(fixture(f)).unwrap();
        assert!(stats::parse_requests_csv(&csv).unwrap().is_some(), "{f}");
    }
}

// ---------------------------------------------------------------------------
// Webhook request bodies
// ---------------------------------------------------------------------------

fn admission_body(object: &Value, operation: &str, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "locust.io", "version": "v2", "kind": "LocustTest"},
            "resource": {"group": "locust.io", "version": "v2", "resource": "locusttests"},
            "name": object["metadata"]["name"].as_str().unwrap_or_default(),
            "namespace": "load",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
        }
    })
}

fn conversion_body(objects: Vec<Value>, desired: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "0000-1111",
            "desiredAPIVersion": desired,
            "objects": objects,
        }
    })
}

/// An admission review answered: the uid echoed, a denial with a message, and
/// each cause of a 422 naming a field.
fn check_admission(body: &Value, bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(review) = admission_review(bytes) else {
        return Ok(());
    };
    let response = review.response;
    prop_assert!(response.is_some(), "no response");
    let Some(response) = response else {
        return Ok(());
    };
    if let Some(uid) = body["request"]["uid"].as_str() {
        prop_assert_eq!(&response.uid, uid);
    }
    if !response.allowed {
        prop_assert!(
            !response.result.message.trim().is_empty(),
            "denied without a message"
        );
        if let Some(details) = &response.result.details {
            for cause in &details.causes {
                // As in `check_violation`: only an unknown field named "" at
                // the root has an empty path (the API server writes it so too).
                prop_assert!(
                    (!cause.field.is_empty() || cause.message.starts_with(UNKNOWN_FIELD))
                        && !cause.message.trim().is_empty(),
                    "{cause:?}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_handlers_never_panic_on_arbitrary_bodies(bytes in vec(any::<u8>(), 0..256), value in arb_json()) {
        let json = serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for body in [&bytes, &json] {
            if let Err(err) = admission_review(body) {
                prop_assert!(!err.reason().is_empty() && !err.to_string().is_empty());
            }
            if let Err(err) = convert_review(body) {
                prop_assert!(!err.reason().is_empty() && !err.to_string().is_empty());
            }
        }
    }

    /// Reviews of real objects, with the object or the review itself mutated.
    #[test]
    fn admission_reviews_of_mutated_objects(
        object in mutated(&V2_SEEDS),
        update in any::<bool>(),
        review_mutations in vec(mutation(), 0..2),
    ) {
        let old = update.then(|| V2_SEEDS[0].clone());
        let body = admission_body(&object, if update { "UPDATE" } else { "CREATE" }, old.as_ref());
        let body = mutate(body, &review_mutations);
        let bytes = serde_json::to_vec(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_admission(&body, &bytes)?;
        // The API server calls the webhook only with objects that have their type
        // and metadata and pass the schema (it rejects the others itself).
        let violations = validate_value(&object);
        let as_sent = object["apiVersion"] == V2_API_VERSION
            && object["kind"] == "LocustTest"
            && object.get("metadata").is_some_and(Value::is_object)
            && violations.iter().all(|v| v.rule.is_some());
        if review_mutations.is_empty() && !update && as_sent {
            // An unmutated CREATE review of such an object: allowed exactly when
            // no rule (CEL or webhook-only) fails.
            let accepted = violations.is_empty();
            let review = admission_review(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(review.response.is_some_and(|r| r.allowed), accepted);
        }
    }

    #[test]
    fn conversion_reviews_of_mutated_objects(
        objects in vec(mutated(&SEEDS), 0..3),
        to_v1 in any::<bool>(),
        review_mutations in vec(mutation(), 0..2),
    ) {
        let desired = if to_v1 { V1_API_VERSION } else { V2_API_VERSION };
        let count = objects.len();
        let body = mutate(conversion_body(objects, desired), &review_mutations);
        let bytes = serde_json::to_vec(&body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Ok(review) = convert_review(&bytes) {
            let response = review.response;
            prop_assert!(response.is_some(), "no response");
            if let Some(response) = response {
                if let Some(uid) = body["request"]["uid"].as_str() {
                    prop_assert_eq!(&response.uid, uid);
                }
                if review_mutations.is_empty() && response.result.is_success() {
                    prop_assert_eq!(response.converted_objects.len(), count);
                    for o in &response.converted_objects {
                        prop_assert_eq!(&o["apiVersion"], &json!(desired));
                    }
                }
                if response.result.is_failure() {
                    prop_assert!(!response.result.message.trim().is_empty());
                }
            }
        }
    }
}
