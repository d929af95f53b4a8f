//! Turning generated objects into Helm templates, and the same objects into
//! the plain manifest, from one description.
//!
//! An object is built as JSON from the operator's types, with *markers* in
//! the places the chart leaves to its values: an inline marker (a plain word
//! such as `HX3X`) stands for a template expression inside a scalar, a
//! block marker for whole lines (a `key:` with a values block under it, or
//! list items). [`Markers::helm`] replaces each marker by its template text;
//! [`Markers::concrete`] replaces it by what that template renders with the
//! default values for the release `locust-k8s-operator` in the install
//! namespace, which is what `install.yaml` holds. A test renders the chart
//! with `helm template` and compares it with `install.yaml`.

use serde_json::{Map, Value, json};

use crate::yaml::to_yaml;

/// A piece of a scalar: its template expression and its default rendering.
#[derive(Clone, Debug)]
struct Inline {
    helm: String,
    concrete: String,
}

/// Whole lines: the template lines at a given indentation, and the default
/// rendering's lines (relative to that indentation).
struct Block {
    helm: Box<dyn Fn(usize) -> Vec<String>>,
    concrete: Vec<String>,
}

/// The markers of one file.
#[derive(Default)]
pub struct Markers {
    inline: Vec<Inline>,
    blocks: Vec<Block>,
}

/// The chart's helper template names, prefixed.
pub fn helper(name: &str) -> String {
    format!("{}.{name}", super::CHART_NAME)
}

impl Markers {
    /// A scalar piece: `helm` (a template expression) where the chart renders
    /// it, `concrete` in `install.yaml`.
    pub fn inline(&mut self, helm: impl Into<String>, concrete: impl Into<String>) -> String {
        self.inline.push(Inline {
            helm: helm.into(),
            concrete: concrete.into(),
        });
        format!("HX{}X", self.inline.len() - 1)
    }

    fn block(&mut self, helm: Box<dyn Fn(usize) -> Vec<String>>, concrete: Vec<String>) -> Value {
        self.blocks.push(Block { helm, concrete });
        Value::String(format!("HBLOCK{}X", self.blocks.len() - 1))
    }

    /// `key:` with the values block at `.Values.<path>` under it, omitted
    /// when that is empty; `default` is its default value.
    pub fn with_values(&mut self, key: &str, path: &str, default: &Value) -> Value {
        let (key_h, path_h) = (key.to_owned(), path.to_owned());
        let helm = Box::new(move |ind: usize| {
            vec![
                format!("{{{{- with .Values.{path_h} }}}}"),
                format!("{key_h}:"),
                format!("  {{{{- toYaml . | nindent {} }}}}", ind + 2),
                "{{- end }}".to_owned(),
            ]
        });
        self.block(helm, keyed_lines(key, default))
    }

    /// `key:` with the map of helper template `include` (a map) merged with
    /// the values map at `.Values.<path>`; `concrete` is their default.
    pub fn include_with_values(
        &mut self,
        key: &str,
        include: &str,
        path: Option<&str>,
        concrete: &Value,
    ) -> Value {
        let (key_h, include_h, path_h) = (key.to_owned(), helper(include), path.map(str::to_owned));
        let helm = Box::new(move |ind: usize| {
            let mut lines = vec![
                format!("{key_h}:"),
                format!(
                    "  {{{{- include \"{include_h}\" . | nindent {} }}}}",
                    ind + 2
                ),
            ];
            if let Some(p) = &path_h {
                lines.push(format!(
                    "  {{{{- with .Values.{p} }}}}{{{{- toYaml . | nindent {} }}}}{{{{- end }}}}",
                    ind + 2
                ));
            }
            lines
        });
        self.block(helm, keyed_lines(key, concrete))
    }

    /// Lines that replace the marker's line: `helm` in the chart (`{IND}`
    /// and `{IND2}` there become the marker's indentation and that plus
    /// two, for `nindent`), `concrete` in `install.yaml`. Used for list
    /// items (`- --flag=…`) and optional keys.
    pub fn lines(&mut self, helm: Vec<String>, concrete: Vec<String>) -> Value {
        self.block(Box::new(move |_| helm.clone()), concrete)
    }

    /// The template text of `object`.
    pub fn helm(&self, object: &Value) -> String {
        self.replace(&to_yaml(object), true)
    }

    /// `object` as the default values render it.
    pub fn concrete(&self, object: &Value) -> String {
        self.replace(&to_yaml(object), false)
    }

    fn replace(&self, yaml: &str, helm: bool) -> String {
        let mut out = String::new();
        for line in yaml.lines() {
            if let Some((indent, index)) = block_marker(line)
                && let Some(block) = self.blocks.get(index)
            {
                let lines = if helm {
                    (block.helm)(indent)
                        .into_iter()
                        .map(|l| {
                            l.replace("{IND2}", &(indent + 2).to_string())
                                .replace("{IND}", &indent.to_string())
                        })
                        .collect()
                } else {
                    block.concrete.clone()
                };
                for l in lines {
                    out.push_str(&" ".repeat(indent));
                    out.push_str(&self.replace_inline(&l, helm));
                    out.push('\n');
                }
                continue;
            }
            out.push_str(&self.replace_inline(line, helm));
            out.push('\n');
        }
        out
    }

    fn replace_inline(&self, line: &str, helm: bool) -> String {
        let mut line = line.to_owned();
        // Highest index first: HX1X must not match inside HX12X.
        for (i, piece) in self.inline.iter().enumerate().rev() {
            let marker = format!("HX{i}X");
            if line.contains(&marker) {
                let text = if helm { &piece.helm } else { &piece.concrete };
                line = line.replace(&marker, text);
            }
        }
        line
    }
}

/// `(indentation, block index)` of a line that is only a block marker, as
/// `key: HBLOCKnX` or `- HBLOCKnX`; the marker's line is replaced whole (the
/// block writes the key or the dash itself).
fn block_marker(line: &str) -> Option<(usize, usize)> {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let rest = rest
        .strip_prefix("- ")
        .unwrap_or_else(|| rest.split_once(": ").map_or(rest, |(_, value)| value));
    let index = rest.strip_prefix("HBLOCK")?.strip_suffix('X')?;
    index.parse().ok().map(|i| (indent, i))
}

/// `key: value` as YAML lines (none when `value` is empty or null).
pub fn keyed_lines(key: &str, value: &Value) -> Vec<String> {
    if is_empty(value) {
        return Vec::new();
    }
    let mut map = Map::new();
    map.insert(key.to_owned(), value.clone());
    to_yaml(&Value::Object(map))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What Helm's `with` treats as empty.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// Wraps a document's template text in `{{- if cond }}`.
pub fn when(cond: Option<&str>, text: String) -> String {
    match cond {
        Some(c) => format!("{{{{- if {c} }}}}\n{text}{{{{- end }}}}\n"),
        None => text,
    }
}

/// The value at dotted `path` of the default values.
pub fn at<'a>(values: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.')
        .try_fold(values, |v, k| v.get(k))
        .unwrap_or(&NULL)
}

/// An empty JSON object.
pub fn empty() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_template_text_or_default_text() {
        let mut m = Markers::default();
        let name = m.inline("{{ .Release.Name }}", "demo");
        let many: Vec<String> = (0..12)
            .map(|i| m.inline(format!("h{i}"), format!("c{i}")))
            .collect();
        let sel = m.with_values("nodeSelector", "nodeSelector", &json!({"disk": "ssd"}));
        let none = m.with_values("tolerations", "tolerations", &json!([]));
        let args = m.lines(vec!["- --a={{ .Values.a }}".into()], vec!["- --a=1".into()]);
        let obj = json!({
            "metadata": {"name": format!("{name}-x"), "labels": {"l": many[11].clone()}},
            "spec": {"nodeSelector": sel, "tolerations": none, "args": ["fixed", args]},
        });
        let helm = m.helm(&obj);
        assert!(helm.contains("name: {{ .Release.Name }}-x\n"), "{helm}");
        assert!(helm.contains("l: h11\n"), "{helm}");
        assert!(helm.contains("  {{- with .Values.nodeSelector }}\n  nodeSelector:\n    {{- toYaml . | nindent 4 }}\n  {{- end }}\n"), "{helm}");
        assert!(
            helm.contains("  - fixed\n  - --a={{ .Values.a }}\n"),
            "{helm}"
        );
        let concrete = m.concrete(&obj);
        assert!(concrete.contains("name: demo-x\n"), "{concrete}");
        assert!(concrete.contains("l: c11\n"), "{concrete}");
        assert!(
            concrete.contains("  nodeSelector:\n    disk: ssd\n"),
            "{concrete}"
        );
        assert!(!concrete.contains("tolerations"), "{concrete}");
        assert!(concrete.contains("  - fixed\n  - --a=1\n"), "{concrete}");
        assert!(!concrete.contains("HX") && !concrete.contains("HBLOCK"));
        assert!(!helm.contains("HX") && !helm.contains("HBLOCK"));
    }
}
