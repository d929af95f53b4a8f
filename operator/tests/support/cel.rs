//! A generated CRD's CEL rules evaluated client-side by kube's CEL evaluator,
//! for comparing them with their Rust mirrors.

use kube::core::cel::{CompiledSchema, Validator};
use serde_json::Value;

/// `(field, message)` of every CEL rule of `compiled` that rejects `v`.
pub fn cel_errors(compiled: &CompiledSchema, v: &Value) -> Vec<(String, String)> {
    match Validator::new().validate_compiled(compiled, v, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            // kube's evaluator keeps the leading dot of a root rule's fieldPath;
            // the API server reports `metadata.name`.
            .map(|e| {
                (
                    e.field_path.trim_start_matches('.').to_owned(),
                    e.message.clone(),
                )
            })
            .collect(),
    }
}
