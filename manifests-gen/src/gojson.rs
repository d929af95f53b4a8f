//! JSON exactly as Go's `encoding/json` writes an `unstructured.Unstructured`
//! object: compact, object keys sorted by bytes, `<`, `>`, `&`, U+2028 and
//! U+2029 escaped, short escapes for `\b \f \n \r \t`, other control
//! characters as lowercase `\u00xx`, and floats in Go's shortest form.
//!
//! `opm render` stores every bundle manifest this way (base64 of these bytes)
//! in the `olm.bundle.object` properties of a File-Based Catalog; the catalog
//! written here must match it byte for byte.

use serde_json::{Number, Value};

/// Encodes `value` like Go's `json.Marshal` of the equivalent `map[string]any`.
pub fn to_go_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if n.is_i64() || n.is_u64() {
        out.push_str(&n.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push_str(&go_float(f));
    } else {
        out.push_str(&n.to_string());
    }
}

/// Go's `floatEncoder` for float64: `'f'` format with the shortest
/// round-tripping digits, or `'e'` below 1e-6 / from 1e21 on, with the
/// exponent written as Go does (`e+21`, `e-7`).
pub fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        // Rust's Display is the shortest round-trip representation without an exponent.
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    match sci.split_once('e') {
        Some((mantissa, exp)) => match exp.strip_prefix('-') {
            Some(digits) => format!("{mantissa}e-{digits}"),
            None => format!("{mantissa}e+{exp:0>2}"),
        },
        None => sci,
    }
}

fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\0'..='\x1f' => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(HEX[b >> 4] as char);
                out.push(HEX[b & 0xf] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_sorted_compact_html_escaped() {
        let v = json!({"b": [1, true, null], "a": {"z": "<&>", "Y": "x\u{2028}"}, "B": 1.5});
        assert_eq!(
            to_go_json(&v),
            r#"{"B":1.5,"a":{"Y":"x\u2028","z":"\u003c\u0026\u003e"},"b":[1,true,null]}"#
        );
    }

    #[test]
    fn control_characters_as_go_writes_them() {
        let v = json!("\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é\"\\");
        assert_eq!(
            to_go_json(&v),
            "\"\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}é\\\"\\\\\""
        );
    }

    #[test]
    fn floats_in_go_format() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(-250.25), "-250.25");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e300), "1.5e+300");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(1.25e-10), "1.25e-10");
        assert_eq!(go_float(0.000001), "0.000001");
        assert_eq!(go_float(0.0), "0");
    }

    #[test]
    fn integers_stay_integers() {
        assert_eq!(
            to_go_json(&json!([0, -3, 9443, u64::MAX])),
            "[0,-3,9443,18446744073709551615]"
        );
    }
}
