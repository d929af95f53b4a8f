//! YAML for the generator: reading goes through the operator's helpers
//! ([`locust_operator::yaml`], re-exported here) so that both crates read the
//! same way; writing the generated files is this module's own small,
//! deterministic emitter for JSON values (below).
//!
//! The manifests are read by Go tools (OLM, opm, operator-sdk) through
//! `sigs.k8s.io/yaml`, whose parser still follows YAML 1.1 in places (`on`,
//! `yes`, `n` are booleans there). This emitter therefore writes a string as a
//! plain scalar only when it is unambiguous under both YAML 1.1 and 1.2, and
//! double-quotes everything else. Multi-line strings become literal blocks
//! (`|` / `|-`) when that keeps them byte-exact, else double-quoted.
//!
//! Layout follows `kubectl`: two-space indentation, sequences at the same
//! indentation as their key, object keys in the value's own order (sorted for
//! `serde_json::Map`).

use serde_json::{Map, Value};

pub use locust_operator::yaml::{Error, describe, documents, from_str};

/// Renders `value` as one YAML document (no `---` marker), ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => emit_mapping(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => emit_sequence(&mut out, items, 0, false),
        Value::String(s) => {
            // Never a literal block at column 0, where a `---` line would end the document.
            out.push_str(&scalar_string(s));
            out.push('\n');
        }
        other => {
            emit_inline_value(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes the entries of `map` at `indent`. With `inline_first`, the caller
/// already wrote the indentation of the first line (after a `- `).
fn emit_mapping(out: &mut String, map: &Map<String, Value>, indent: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        out.push_str(&scalar_string(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_mapping(out, inner, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                emit_sequence(out, items, indent, false);
            }
            other => {
                out.push(' ');
                emit_inline_value(out, other, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes the items of `items` at `indent` (`- item`).
fn emit_sequence(out: &mut String, items: &[Value], indent: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => emit_mapping(out, inner, indent + 2, true),
            Value::Array(inner) if !inner.is_empty() => emit_sequence(out, inner, indent + 2, true),
            other => {
                emit_inline_value(out, other, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// A value that starts on the current line: a scalar, `{}`, `[]` or the
/// header of a literal block whose lines are indented by `block_indent`.
fn emit_inline_value(out: &mut String, value: &Value, block_indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            if literal_block_ok(s) {
                emit_literal_block(out, s, block_indent);
            } else {
                out.push_str(&scalar_string(s));
            }
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// `|` (one trailing newline) or `|-` (none); the final newline of the last
/// line is written by the caller.
fn emit_literal_block(out: &mut String, s: &str, indent: usize) {
    let (body, header) = match s.strip_suffix('\n') {
        Some(body) => (body, "|"),
        None => (s, "|-"),
    };
    out.push_str(header);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
    }
}

/// Whether `s` can be written as a literal block and read back unchanged.
fn literal_block_ok(s: &str) -> bool {
    if !s.contains('\n') || s.starts_with('\n') || s.starts_with(' ') || s.ends_with("\n\n") {
        return false;
    }
    if s.chars().any(|c| c != '\n' && needs_escape(c)) || s.contains('\t') {
        return false;
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    body.split('\n').all(|line| !line.ends_with(' '))
}

/// A string as a single-line scalar: plain when unambiguous, else double-quoted.
pub fn scalar_string(s: &str) -> String {
    if plain_ok(s) {
        s.to_owned()
    } else {
        double_quoted(s)
    }
}

/// YAML 1.1 words that `sigs.k8s.io/yaml` reads as booleans or null.
const YAML11_RESERVED: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

/// Conservative rule for plain scalars: starts with a letter or `/`, contains only
/// letters, digits, space and `_-./,()'+=@`, `:` only when followed by a
/// non-space, no leading/trailing space, and is no YAML 1.1 keyword.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if YAML11_RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
        b' ' | b'_' | b'-' | b'.' | b'/' | b',' | b'(' | b')' | b'\'' | b'+' | b'=' | b'@' => true,
        b':' => bytes.get(i + 1).is_some_and(|n| *n != b' '),
        _ => false,
    })
}

/// Characters that may not appear raw in a YAML scalar (or that YAML 1.1
/// treats as line breaks).
fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// A double-quoted YAML scalar (a JSON string literal is one too, but this
/// also escapes the characters YAML 1.1 treats as line breaks).
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders several documents, each introduced by `---`.
pub fn to_yaml_stream(values: &[Value]) -> String {
    let mut out = String::new();
    for v in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn roundtrip(v: &Value) -> Value {
        let text = to_yaml(v);
        from_str(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    #[test]
    fn layout_is_kubectl_like() {
        let v = json!({
            "kind": "Thing",
            "spec": {"list": [{"a": 1, "b": "two"}, "x", [], {}], "empty": {}, "none": []},
            "z": true
        });
        assert_eq!(
            to_yaml(&v),
            "kind: Thing\nspec:\n  empty: {}\n  list:\n  - a: 1\n    b: two\n  - x\n  - []\n  - {}\n  none: []\nz: true\n"
        );
        assert_eq!(roundtrip(&v), v);
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "on", "Off", "y", "N", "yes", "NO", "true", "null", "~", "", "1", "1.0", "0755",
            "2.0.0", "1e3", "-x", "a: b", "a #b", " a", "a ", ":x", "x:",
        ] {
            let out = scalar_string(s);
            assert!(out.starts_with('"'), "{s:?} must be quoted, got {out}");
            let back: String = from_str(&out).unwrap();
            assert_eq!(back, s);
        }
        for s in [
            "Always",
            "locust.io",
            "https://github.com/x",
            "image/svg+xml",
            "Developer Tools",
            "kind",
        ] {
            assert_eq!(scalar_string(s), s);
        }
    }

    #[test]
    fn multiline_strings_are_literal_blocks() {
        let v = json!({"d": "# Title\n\nline two\n", "e": "no newline\nat end", "k": [ "a\nb" ]});
        let text = to_yaml(&v);
        assert_eq!(
            text,
            "d: |\n  # Title\n\n  line two\ne: |-\n  no newline\n  at end\nk:\n- |-\n  a\n  b\n"
        );
        assert_eq!(roundtrip(&v), v);
        // Not representable as a literal block: falls back to double quotes.
        for s in ["x\n\n", " lead\nx", "trail \nx", "tab\t\nx", "\nx"] {
            let v = json!({ "s": s });
            assert!(!to_yaml(&v).contains('|'), "{s:?}");
            assert_eq!(roundtrip(&v), v);
        }
    }

    #[test]
    fn yaml11_line_breaks_are_escaped() {
        let s = "a\u{2028}b\u{85}c\u{1}";
        assert_eq!(double_quoted(s), "\"a\\u2028b\\u0085c\\u0001\"");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
            "[a-z \\n:#'\"-]{0,16}".prop_map(Value::String),
            prop::sample::select(vec!["on", "yes", "null", "1.5", "a\nb\n", "  x", "-", "@x"])
                .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9 :./-]{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_value_roundtrips(v in arb_json()) {
            prop_assert_eq!(roundtrip(&v), v);
        }
    }
}
