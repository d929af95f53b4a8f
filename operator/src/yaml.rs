//! Every YAML read and write of the crate (the CLI, the tests, the fuzz
//! targets), through `serde-saphyr` with one set of options. Why this crate
//! and these options: `docs/architecture.md`, section "YAML".
//!
//! Reading follows what `kubectl` sends to the API server
//! (`sigs.k8s.io/yaml`, YAML 1.1 scalars): `yes`/`no`/`on`/`off`/`y`/`n` are
//! booleans, `0644` is octal (420), `1_000` is 1000, merge keys (`<<`) are
//! expanded, and a key given twice is an error. Writing quotes every string
//! that a YAML 1.1 reader would take for something else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use serde_saphyr::{Error, SerializeError};

fn options() -> serde_saphyr::Options {
    // `0644` as Kubernetes reads it (octal) instead of the decimal float 644.0.
    serde_saphyr::options! { legacy_octal_numbers: true }
}

/// The one document of `text` as `T` (an empty text is `null`).
pub fn from_str<'de, T: Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// The documents of a `---`-separated stream, without the empty ones (no
/// content, only comments, or `null`).
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    serde_saphyr::from_multiple_with_options(text, options())
}

/// `value` as one YAML document (no `---` marker), ending in a newline.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, SerializeError> {
    serde_saphyr::to_string(value)
}

/// `error` for a person: the message with its line and column, then the
/// offending lines of `source` (a file name, or `<stdin>`).
pub fn describe(error: &Error, source: &str) -> String {
    let rendered = error.render_with_options(serde_saphyr::render_options! {
        source_name: Some(source),
    });
    // The callers add their own `error: `.
    rendered
        .strip_prefix("error: ")
        .map(str::to_owned)
        .unwrap_or(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn scalars_are_read_as_kubectl_reads_them() {
        let v: Value =
            from_str("a: yes\nb: off\nc: 0644\nd: 1_000\ne: 0o17\nf: '0644'\ng: ~\n").unwrap();
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": 420, "d": 1000, "e": 15, "f": "0644", "g": null})
        );
        let typed: BTreeMap<String, i32> = from_str("defaultMode: 0644\n").unwrap();
        assert_eq!(typed["defaultMode"], 420);
        // A key read as a string stays the string it was written as.
        let on: Value = from_str("on: push\n").unwrap();
        assert_eq!(on, json!({"on": "push"}));
    }

    #[test]
    fn merge_keys_expand_and_duplicate_keys_are_errors() {
        let v: Value = from_str("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n").unwrap();
        assert_eq!(v["c"], json!({"b": 1, "d": 2}));
        let e = from_str::<Value>("kind: LocustTest\nkind: Other\n").unwrap_err();
        let text = describe(&e, "t.yaml");
        assert!(text.contains("duplicate mapping key: kind"), "{text}");
        assert!(text.contains("t.yaml:2:1"), "{text}");
    }

    #[test]
    fn documents_skip_empty_ones() {
        let text = "# header\n---\na: 1\n---\n---\n# only a comment\n---\n~\n---\nb: 2\n...\n";
        assert_eq!(
            documents(text).unwrap(),
            vec![json!({"a": 1}), json!({"b": 2})]
        );
        assert!(documents("").unwrap().is_empty());
        assert!(from_str::<Value>("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn errors_name_the_source_line_and_column() {
        let e = documents("a: 1\n---\nmetadata:\n  name: \"demo\nspec: {}\n").unwrap_err();
        let text = describe(&e, "test.yaml");
        assert!(
            text.starts_with("line 5 column 1: "),
            "one `error: ` prefix, added by the caller: {text}"
        );
        assert!(text.contains("--> test.yaml:5:1"), "{text}");
        assert!(text.contains("4 |   name: \"demo"), "{text}");
    }

    #[test]
    fn ambiguous_strings_are_quoted_and_read_back() {
        let words = [
            "yes",
            "on",
            "N",
            "0755",
            "1_000",
            "1e3",
            "~",
            "null",
            "",
            "2001-12-14",
            "12:30",
            "<<",
            "=",
            "true",
            "3.0",
            "a: b",
            "#x",
        ];
        let value = json!({ "words": words, "long": "a ".repeat(60), "ml": "a\nb\n", "e": {} });
        let text = to_string(&value).unwrap();
        for w in words.iter().filter(|w| !w.is_empty()) {
            assert!(
                !text.contains(&format!("- {w}\n")),
                "{w:?} unquoted:\n{text}"
            );
        }
        assert_eq!(from_str::<Value>(&text).unwrap(), value);
    }
}
