//! Reading rendered Kubernetes objects (JSON documents, e.g. what `helm
//! template` printed) in tests: by kind and name, failing with a listing of
//! what there is when an object is missing or doubled.

use std::collections::BTreeMap;

use serde_json::Value;

/// `v` as a string.
pub fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// The `kind`.
pub fn kind(doc: &Value) -> &str {
    str_of(&doc["kind"], "kind")
}

/// The `metadata.name`.
pub fn name(doc: &Value) -> &str {
    str_of(&doc["metadata"]["name"], "metadata.name")
}

/// `kind/name` of every object, for messages.
pub fn listing(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("{}/{}", kind(d), name(d)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The objects keyed by (kind, name); a key given twice fails.
pub fn by_key(what: &str, docs: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut map = BTreeMap::new();
    for d in docs {
        let key = (kind(d).to_owned(), name(d).to_owned());
        if map.insert(key.clone(), d.clone()).is_some() {
            panic!("{what}: {}/{} is rendered twice", key.0, key.1);
        }
    }
    map
}

/// The object `k/n`, if rendered.
pub fn find_opt<'a>(docs: &'a [Value], k: &str, n: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == k && name(d) == n)
}

/// The object `k/n`.
pub fn find<'a>(docs: &'a [Value], k: &str, n: &str) -> &'a Value {
    find_opt(docs, k, n)
        .unwrap_or_else(|| panic!("no {k}/{n} among the rendered objects: {}", listing(docs)))
}

/// Every object of kind `k`.
pub fn all_of<'a>(docs: &'a [Value], k: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind(d) == k).collect()
}

/// No object of kind `k` is among `docs`.
pub fn assert_none_of(docs: &[Value], k: &str) {
    assert!(
        all_of(docs, k).is_empty(),
        "expected no {k}: {}",
        listing(docs)
    );
}

/// The only object of kind `k`.
pub fn one_of<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    match all_of(docs, k).as_slice() {
        [one] => one,
        other => panic!("expected one {k}, found {}: {}", other.len(), listing(docs)),
    }
}

/// `v` as a list.
pub fn array<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not a list: {v}"))
}
