//! Pure, lossless conversion of `LocustTest` between `locust.io/v1` and `locust.io/v2`.
//!
//! The field mapping is the one of the requirements (§4.4): v1's flat fields move
//! under `master`, `worker`, `testFiles` and `scheduling` in v2, and every field v1
//! lacks gets its default when coming from v1.
//!
//! Both directions are total and the round trips are the identity:
//! `v1_to_v2(v2_to_v1(x)) == x` and `v2_to_v1(v1_to_v2(y)) == y` (for a `y` that does
//! not carry the annotation below). Like Cluster API's conversion-data annotation,
//! when a v2 spec cannot be expressed in v1 (`v1_spec_to_v2(v2_spec_to_v1(s)) != s`),
//! the whole v2 spec is stored as compact JSON in the [`V2_SPEC_ANNOTATION`]
//! annotation of the v1 object. Converting back to v2 consumes that annotation: the
//! stored spec is restored and, for every field group v1 can express, the restored
//! value is kept when its v1 rendering equals the v1 object's current value, and
//! replaced by the value converted from v1 otherwise. Edits made through v1 therefore
//! win, and nothing v1 cannot see is lost.
//!
//! Metadata is copied unchanged apart from that annotation (a conversion webhook may
//! only change labels and annotations); status is the same type in both versions and
//! is copied.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{KIND, v1, v2};

/// Annotation of a v1 object holding the full v2 spec (compact JSON) when the v2
/// spec has fields v1 cannot express. Never present on a v2 object.
pub const V2_SPEC_ANNOTATION: &str = "locust.io/v2-spec";

/// `apiVersion` of the legacy API.
pub const V1_API_VERSION: &str = "locust.io/v1";

/// `apiVersion` of the current, stored API.
pub const V2_API_VERSION: &str = "locust.io/v2";

/// Node selector operator used for v1's `label: value` affinity entries.
const OPERATOR_IN: &str = "In";

/// v2 `master.autostart` when coming from v1 (v1 always started automatically).
const DEFAULT_AUTOSTART: bool = true;

/// The result of a conversion: the converted object and the non-fatal problems met
/// on the way (for logs; they never contain field values).
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion<T> {
    /// The converted object.
    pub object: T,
    /// Human-readable warnings, e.g. an unparseable [`V2_SPEC_ANNOTATION`] that was ignored.
    pub warnings: Vec<String>,
}

/// A served version of the `LocustTest` API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `locust.io/v1` (deprecated).
    V1,
    /// `locust.io/v2` (stored).
    V2,
}

impl ApiVersion {
    /// Parses a full `apiVersion` (`locust.io/v1` or `locust.io/v2`).
    pub fn parse(api_version: &str) -> Option<Self> {
        match api_version {
            V1_API_VERSION => Some(ApiVersion::V1),
            V2_API_VERSION => Some(ApiVersion::V2),
            _ => None,
        }
    }

    /// The full `apiVersion` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => V1_API_VERSION,
            ApiVersion::V2 => V2_API_VERSION,
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`convert_value`] could not convert an object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The object has no string `apiVersion`.
    #[error("object has no string apiVersion")]
    MissingApiVersion,

    /// The object's `apiVersion` is not a served LocustTest version.
    #[error("unknown apiVersion {api_version:?}: expected {V1_API_VERSION} or {V2_API_VERSION}")]
    UnknownVersion {
        /// The object's `apiVersion`.
        api_version: String,
    },

    /// The requested `apiVersion` is not a served LocustTest version.
    #[error(
        "unknown desired apiVersion {api_version:?}: expected {V1_API_VERSION} or {V2_API_VERSION}"
    )]
    UnknownDesiredVersion {
        /// The requested `apiVersion`.
        api_version: String,
    },

    /// The object is not a `LocustTest`.
    #[error("kind {} is not {KIND}", describe_kind(found))]
    WrongKind {
        /// The object's `kind`, if it has a string one.
        found: Option<String>,
    },

    /// The object does not deserialize as a LocustTest of its `apiVersion`.
    #[error("invalid {api_version} {KIND}: {}{message}", field_prefix(field))]
    InvalidObject {
        /// The object's `apiVersion`.
        api_version: &'static str,
        /// Path of the offending field (`spec.worker.replicas`), when known.
        field: Option<String>,
        /// What is wrong, without the offending value.
        message: String,
    },

    /// The converted object could not be serialised.
    #[error("cannot serialise the converted {KIND}: {message}")]
    Serialize {
        /// The serializer's message.
        message: String,
    },
}

fn describe_kind(kind: &Option<String>) -> String {
    kind.as_deref()
        .map_or_else(|| "(missing)".to_owned(), |kind| format!("{kind:?}"))
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_deref()
        .map_or_else(String::new, |field| format!("{field}: "))
}

impl ConversionError {
    /// CamelCase reason for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            ConversionError::MissingApiVersion => "MissingApiVersion",
            ConversionError::UnknownVersion { .. } => "UnknownVersion",
            ConversionError::UnknownDesiredVersion { .. } => "UnknownDesiredVersion",
            ConversionError::WrongKind { .. } => "WrongKind",
            ConversionError::InvalidObject { .. } => "InvalidObject",
            ConversionError::Serialize { .. } => "SerializationFailed",
        }
    }
}

/// Converts a v1 object to v2.
///
/// A [`V2_SPEC_ANNOTATION`] annotation is consumed: the stored v2 spec is restored and
/// merged with the v1 fields (see the module docs). An unparseable annotation is
/// ignored with a warning and the object is converted from its v1 fields alone.
pub fn v1_to_v2(obj: &v1::LocustTest) -> Conversion<v2::LocustTest> {
    let mut warnings = Vec::new();
    let mut metadata = obj.metadata.clone();
    let spec = match take_v2_spec_annotation(&mut metadata) {
        None => v1_spec_to_v2(&obj.spec),
        Some(raw) => match parse_stored_spec(&raw) {
            Ok(stored) => merge_v1_into(stored, &obj.spec),
            Err(problem) => {
                warnings.push(format!(
                    "ignored annotation {V2_SPEC_ANNOTATION}: not a valid {V2_API_VERSION} \
                     spec ({problem}); fields only {V2_API_VERSION} can express were reset \
                     to their defaults"
                ));
                v1_spec_to_v2(&obj.spec)
            }
        },
    };
    Conversion {
        object: v2::LocustTest {
            metadata,
            spec,
            status: obj.status.clone(),
        },
        warnings,
    }
}

/// Converts a v2 object to v1.
///
/// When v1 cannot express the v2 spec, the full v2 spec is stored in the
/// [`V2_SPEC_ANNOTATION`] annotation so that [`v1_to_v2`] gives the object back.
/// A stale copy of that annotation on the v2 object is dropped with a warning.
pub fn v2_to_v1(obj: &v2::LocustTest) -> Conversion<v1::LocustTest> {
    let mut warnings = Vec::new();
    let mut metadata = obj.metadata.clone();
    if take_v2_spec_annotation(&mut metadata).is_some() {
        warnings.push(format!(
            "dropped annotation {V2_SPEC_ANNOTATION} found on a {V2_API_VERSION} object: \
             it is written by the conversion to {V1_API_VERSION} only"
        ));
    }
    let spec = v2_spec_to_v1(&obj.spec);
    if v1_spec_to_v2(&spec) != obj.spec {
        match serde_json::to_string(&obj.spec) {
            Ok(json) => {
                metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(V2_SPEC_ANNOTATION.to_owned(), json);
            }
            Err(err) => warnings.push(format!(
                "could not store the {V2_API_VERSION} spec in annotation {V2_SPEC_ANNOTATION} \
                 ({}); fields only {V2_API_VERSION} can express are lost",
                describe_serde_error(&err.to_string())
            )),
        }
    }
    Conversion {
        object: v1::LocustTest {
            metadata,
            spec,
            status: obj.status.clone(),
        },
        warnings,
    }
}

/// The plain §4.4 mapping of a v1 spec to v2, every v2-only field at its default.
pub fn v1_spec_to_v2(spec: &v1::LocustTestSpec) -> v2::LocustTestSpec {
    v2::LocustTestSpec {
        image: spec.image.clone(),
        image_pull_policy: spec.image_pull_policy,
        image_pull_secrets: pull_secrets_from_v1(&spec.image_pull_secrets),
        master: v2::MasterSpec {
            command: spec.master_command_seed.clone(),
            resources: None,
            labels: spec.labels.master.clone(),
            annotations: spec.annotations.master.clone(),
            autostart: DEFAULT_AUTOSTART,
            autoquit: v2::AutoquitSpec::default(),
            extra_args: Vec::new(),
        },
        worker: v2::WorkerSpec {
            command: spec.worker_command_seed.clone(),
            replicas: spec.worker_replicas,
            resources: None,
            labels: spec.labels.worker.clone(),
            annotations: spec.annotations.worker.clone(),
            extra_args: Vec::new(),
            processes_per_pod: None,
        },
        test_files: test_files_from_v1(&spec.config_map, &spec.lib_config_map),
        scheduling: scheduling_from_v1(&spec.affinity, &spec.tolerations),
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

/// The plain §4.4 mapping of a v2 spec to v1, dropping what v1 cannot express.
///
/// v2 affinity is rendered in v1 only when its required node affinity is exactly one
/// term made of `In` expressions with a single value each (one per key) and no
/// `matchFields`; any other required node affinity renders as no affinity. Preferred
/// terms and pod (anti-)affinity have no v1 form.
pub fn v2_spec_to_v1(spec: &v2::LocustTestSpec) -> v1::LocustTestSpec {
    let scheduling = spec.scheduling.as_ref();
    let test_files = spec.test_files.as_ref();
    v1::LocustTestSpec {
        master_command_seed: spec.master.command.clone(),
        worker_command_seed: spec.worker.command.clone(),
        worker_replicas: spec.worker.replicas,
        image: spec.image.clone(),
        image_pull_policy: spec.image_pull_policy,
        image_pull_secrets: spec
            .image_pull_secrets
            .iter()
            .map(|secret| secret.name.clone())
            .collect(),
        config_map: test_files.and_then(|t| t.config_map_ref.clone()),
        lib_config_map: test_files.and_then(|t| t.lib_config_map_ref.clone()),
        labels: v1::RoleMaps {
            master: spec.master.labels.clone(),
            worker: spec.worker.labels.clone(),
        },
        annotations: v1::RoleMaps {
            master: spec.master.annotations.clone(),
            worker: spec.worker.annotations.clone(),
        },
        affinity: affinity_to_v1(scheduling.and_then(|s| s.affinity.as_ref())),
        tolerations: scheduling
            .map(|s| s.tolerations.clone())
            .unwrap_or_default(),
    }
}

/// Whether v1 can express this v2 spec exactly, i.e. a v2 → v1 conversion needs no
/// [`V2_SPEC_ANNOTATION`].
pub fn fits_v1(spec: &v2::LocustTestSpec) -> bool {
    v1_spec_to_v2(&v2_spec_to_v1(spec)) == *spec
}

/// Converts a JSON `LocustTest` to `desired_api_version`, for the conversion webhook
/// and the CLI. An object already at the desired version is returned unchanged.
/// Warnings (see [`convert_value_with_warnings`]) are logged.
pub fn convert_value(obj: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let converted = convert_value_with_warnings(obj, desired_api_version)?;
    for warning in &converted.warnings {
        tracing::warn!(%warning, "LocustTest conversion");
    }
    Ok(converted.object)
}

/// [`convert_value`], returning the warnings instead of logging them.
pub fn convert_value_with_warnings(
    obj: Value,
    desired_api_version: &str,
) -> Result<Conversion<Value>, ConversionError> {
    let source = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or(ConversionError::MissingApiVersion)?;
    let source = ApiVersion::parse(source).ok_or_else(|| ConversionError::UnknownVersion {
        api_version: source.to_owned(),
    })?;
    let desired = ApiVersion::parse(desired_api_version).ok_or_else(|| {
        ConversionError::UnknownDesiredVersion {
            api_version: desired_api_version.to_owned(),
        }
    })?;
    match obj.get("kind").and_then(Value::as_str) {
        Some(KIND) => {}
        other => {
            return Err(ConversionError::WrongKind {
                found: other.map(str::to_owned),
            });
        }
    }
    if source == desired {
        return Ok(Conversion {
            object: obj,
            warnings: Vec::new(),
        });
    }
    match source {
        ApiVersion::V1 => {
            let typed: v1::LocustTest = deserialize_object(obj, source)?;
            serialize_conversion(v1_to_v2(&typed))
        }
        ApiVersion::V2 => {
            let typed: v2::LocustTest = deserialize_object(obj, source)?;
            serialize_conversion(v2_to_v1(&typed))
        }
    }
}

fn deserialize_object<T: DeserializeOwned>(
    obj: Value,
    version: ApiVersion,
) -> Result<T, ConversionError> {
    serde_path_to_error::deserialize(obj).map_err(|err| {
        let path = err.path().to_string();
        ConversionError::InvalidObject {
            api_version: version.as_str(),
            field: (path != ".").then_some(path),
            message: describe_serde_error(&err.into_inner().to_string()),
        }
    })
}

fn serialize_conversion<T: serde::Serialize>(
    converted: Conversion<T>,
) -> Result<Conversion<Value>, ConversionError> {
    let object =
        serde_json::to_value(&converted.object).map_err(|err| ConversionError::Serialize {
            message: describe_serde_error(&err.to_string()),
        })?;
    Ok(Conversion {
        object,
        warnings: converted.warnings,
    })
}

/// Removes [`V2_SPEC_ANNOTATION`] from `metadata`, dropping the annotation map when it
/// becomes empty (the API server does not keep empty maps either).
fn take_v2_spec_annotation(metadata: &mut ObjectMeta) -> Option<String> {
    let annotations = metadata.annotations.as_mut()?;
    let value = annotations.remove(V2_SPEC_ANNOTATION)?;
    if annotations.is_empty() {
        metadata.annotations = None;
    }
    Some(value)
}

fn parse_stored_spec(raw: &str) -> Result<v2::LocustTestSpec, String> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let spec: v2::LocustTestSpec =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
            let path = err.path().to_string();
            let message = describe_serde_error(&err.into_inner().to_string());
            if path == "." {
                message
            } else {
                format!("{path}: {message}")
            }
        })?;
    deserializer
        .end()
        .map_err(|err| describe_serde_error(&err.to_string()))?;
    Ok(spec)
}

/// Applies the v1 fields to a restored v2 spec: each field group keeps its restored
/// value when that value renders in v1 as the v1 object's current value, and takes
/// the value converted from v1 otherwise.
fn merge_v1_into(mut spec: v2::LocustTestSpec, current: &v1::LocustTestSpec) -> v2::LocustTestSpec {
    let rendered = v2_spec_to_v1(&spec);

    if rendered.master_command_seed != current.master_command_seed {
        spec.master.command.clone_from(&current.master_command_seed);
    }
    if rendered.worker_command_seed != current.worker_command_seed {
        spec.worker.command.clone_from(&current.worker_command_seed);
    }
    if rendered.worker_replicas != current.worker_replicas {
        spec.worker.replicas = current.worker_replicas;
    }
    if rendered.image != current.image {
        spec.image.clone_from(&current.image);
    }
    if rendered.image_pull_policy != current.image_pull_policy {
        spec.image_pull_policy = current.image_pull_policy;
    }
    if rendered.image_pull_secrets != current.image_pull_secrets {
        spec.image_pull_secrets = pull_secrets_from_v1(&current.image_pull_secrets);
    }
    if rendered.labels.master != current.labels.master {
        spec.master.labels.clone_from(&current.labels.master);
    }
    if rendered.labels.worker != current.labels.worker {
        spec.worker.labels.clone_from(&current.labels.worker);
    }
    if rendered.annotations.master != current.annotations.master {
        spec.master
            .annotations
            .clone_from(&current.annotations.master);
    }
    if rendered.annotations.worker != current.annotations.worker {
        spec.worker
            .annotations
            .clone_from(&current.annotations.worker);
    }

    if rendered.config_map != current.config_map {
        edit_section(&mut spec.test_files, |files| {
            files.config_map_ref = current.config_map.clone();
        });
    }
    if rendered.lib_config_map != current.lib_config_map {
        edit_section(&mut spec.test_files, |files| {
            files.lib_config_map_ref = current.lib_config_map.clone();
        });
    }
    if rendered.affinity != current.affinity {
        edit_section(&mut spec.scheduling, |scheduling| {
            scheduling.affinity = affinity_from_v1(&current.affinity);
        });
    }
    if rendered.tolerations != current.tolerations {
        edit_section(&mut spec.scheduling, |scheduling| {
            scheduling.tolerations = current.tolerations.clone();
        });
    }

    spec
}

/// Edits the optional v2 section `slot` with `edit`, creating it when absent and
/// dropping it again when the edit leaves it empty.
fn edit_section<S: Default + PartialEq>(slot: &mut Option<S>, edit: impl FnOnce(&mut S)) {
    let section = slot.get_or_insert_with(S::default);
    edit(section);
    if *section == S::default() {
        *slot = None;
    }
}

fn pull_secrets_from_v1(names: &[String]) -> Vec<LocalObjectReference> {
    names
        .iter()
        .map(|name| LocalObjectReference { name: name.clone() })
        .collect()
}

fn test_files_from_v1(
    config_map: &Option<String>,
    lib_config_map: &Option<String>,
) -> Option<v2::TestFilesSpec> {
    if config_map.is_none() && lib_config_map.is_none() {
        return None;
    }
    Some(v2::TestFilesSpec {
        config_map_ref: config_map.clone(),
        lib_config_map_ref: lib_config_map.clone(),
        ..v2::TestFilesSpec::default()
    })
}

fn scheduling_from_v1(
    affinity: &v1::AffinityV1,
    tolerations: &[k8s_openapi::api::core::v1::Toleration],
) -> Option<v2::SchedulingSpec> {
    let affinity = affinity_from_v1(affinity);
    if affinity.is_none() && tolerations.is_empty() {
        return None;
    }
    Some(v2::SchedulingSpec {
        affinity,
        tolerations: tolerations.to_vec(),
        ..v2::SchedulingSpec::default()
    })
}

/// v1 `label: value` node affinity as one required node selector term with, per key in
/// sorted order, `{key, operator: In, values: [value]}`. No entries → no affinity.
fn affinity_from_v1(affinity: &v1::AffinityV1) -> Option<Affinity> {
    let required = &affinity.node_affinity.required;
    if required.is_empty() {
        return None;
    }
    let match_expressions = required
        .iter()
        .map(|(key, value)| NodeSelectorRequirement {
            key: key.clone(),
            operator: OPERATOR_IN.to_owned(),
            values: Some(vec![value.clone()]),
        })
        .collect();
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(match_expressions),
                    match_fields: None,
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        pod_affinity: None,
        pod_anti_affinity: None,
    })
}

/// The v1 view of a v2 affinity: see [`v2_spec_to_v1`].
fn affinity_to_v1(affinity: Option<&Affinity>) -> v1::AffinityV1 {
    let required = affinity
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .and_then(simple_node_selector)
        .unwrap_or_default();
    v1::AffinityV1 {
        node_affinity: v1::NodeAffinityV1 { required },
    }
}

/// `label → value` when the selector is one term of single-valued `In` expressions
/// on distinct keys without `matchFields`; `None` when v1 cannot express it.
fn simple_node_selector(selector: &NodeSelector) -> Option<BTreeMap<String, String>> {
    let [term] = selector.node_selector_terms.as_slice() else {
        return None;
    };
    if term
        .match_fields
        .as_ref()
        .is_some_and(|fields| !fields.is_empty())
    {
        return None;
    }
    let mut required = BTreeMap::new();
    for requirement in term.match_expressions.iter().flatten() {
        if requirement.operator != OPERATOR_IN {
            return None;
        }
        let [value] = requirement.values.as_deref()? else {
            return None;
        };
        if required
            .insert(requirement.key.clone(), value.clone())
            .is_some()
        {
            return None;
        }
    }
    Some(required)
}

/// A serde error message without the offending value: `invalid type: string "s3cr3t",
/// expected i32` becomes `invalid type, expected i32` (values may be secrets).
fn describe_serde_error(message: &str) -> String {
    for kind in ["invalid type", "invalid value"] {
        if let Some(rest) = message
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix(": "))
            && let Some(at) = rest.rfind(", expected ")
        {
            return format!("{kind}{}", &rest[at..]);
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(key: &str, operator: &str, values: Option<&[&str]>) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: values.map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn selector(terms: Vec<Vec<NodeSelectorRequirement>>) -> NodeSelector {
        NodeSelector {
            node_selector_terms: terms
                .into_iter()
                .map(|expressions| NodeSelectorTerm {
                    match_expressions: Some(expressions),
                    match_fields: None,
                })
                .collect(),
        }
    }

    #[test]
    fn simple_selector_renders_as_map() {
        let sel = selector(vec![vec![
            requirement("zone", "In", Some(&["a"])),
            requirement("disk", "In", Some(&["ssd"])),
        ]]);
        let map = simple_node_selector(&sel).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["zone"], "a");
        assert_eq!(map["disk"], "ssd");
    }

    #[test]
    fn rich_selectors_have_no_v1_form() {
        let cases = [
            selector(vec![vec![requirement("zone", "NotIn", Some(&["a"]))]]),
            selector(vec![vec![requirement("zone", "In", Some(&["a", "b"]))]]),
            selector(vec![vec![requirement("zone", "In", None)]]),
            selector(vec![vec![requirement("zone", "Exists", None)]]),
            selector(vec![
                vec![requirement("zone", "In", Some(&["a"]))],
                vec![requirement("zone", "In", Some(&["b"]))],
            ]),
            selector(vec![vec![
                requirement("zone", "In", Some(&["a"])),
                requirement("zone", "In", Some(&["b"])),
            ]]),
            selector(vec![]),
            NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: None,
                    match_fields: Some(vec![requirement("metadata.name", "In", Some(&["n"]))]),
                }],
            },
        ];
        for case in &cases {
            assert_eq!(simple_node_selector(case), None, "{case:?}");
        }
    }

    #[test]
    fn serde_messages_lose_their_values() {
        assert_eq!(
            describe_serde_error(
                "invalid type: string \"s3cr3t, expected x\", expected i32 at line 1 column 9"
            ),
            "invalid type, expected i32 at line 1 column 9"
        );
        assert_eq!(
            describe_serde_error("invalid value: integer `-4`, expected u8"),
            "invalid value, expected u8"
        );
        assert_eq!(
            describe_serde_error("missing field `image`"),
            "missing field `image`"
        );
    }

    #[test]
    fn reasons_are_camel_case() {
        let errors = [
            ConversionError::MissingApiVersion,
            ConversionError::UnknownVersion {
                api_version: "x".into(),
            },
            ConversionError::UnknownDesiredVersion {
                api_version: "x".into(),
            },
            ConversionError::WrongKind { found: None },
            ConversionError::InvalidObject {
                api_version: V1_API_VERSION,
                field: None,
                message: "m".into(),
            },
            ConversionError::Serialize {
                message: "m".into(),
            },
        ];
        for error in &errors {
            let reason = error.reason();
            assert!(
                reason
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase()),
                "{reason}"
            );
            assert!(
                reason.chars().all(|c| c.is_ascii_alphanumeric()),
                "{reason}"
            );
        }
    }
}
