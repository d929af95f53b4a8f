//! The admission corpus: `tests/corpus/invalid/*.yaml` are realistic mistakes,
//! each naming the violation it must produce in a leading `# expect:` line;
//! `tests/corpus/valid/*.yaml`, every `kind: LocustTest` example in the
//! documentation and the LocustTest samples must all be accepted. Checked here
//! through `validation::validate_value` and the `validate` CLI; through a real
//! API server (CEL alone, webhook alone) in `olm-tests/tests/e2e_corpus.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use locust_operator::validation::validate_value;
use serde_json::Value;

/// One invalid corpus file.
struct Invalid {
    path: PathBuf,
    /// `field: start of message`, or only the field for schema failures.
    expect: String,
    /// `yes`, `no` (webhook-only) or `schema`.
    cel: String,
    doc: Value,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn parse_docs(text: &str, what: &str) -> Vec<Value> {
    locust_operator::yaml::documents(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn header<'a>(text: &'a str, key: &str, path: &Path) -> &'a str {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .unwrap_or_else(|| panic!("{}: no `# {key}:` line", path.display()))
        .trim()
}

fn invalid_corpus() -> Vec<Invalid> {
    yaml_files(&root().join("tests/corpus/invalid"))
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let expect = header(&text, "expect", &path).to_owned();
            let cel = header(&text, "cel", &path).to_owned();
            assert!(
                matches!(cel.as_str(), "yes" | "no" | "schema"),
                "{}: cel must be yes, no or schema",
                path.display()
            );
            let mut docs = parse_docs(&text, &path.display().to_string());
            assert_eq!(docs.len(), 1, "{}: one document", path.display());
            Invalid {
                path,
                expect,
                cel,
                doc: docs.remove(0),
            }
        })
        .collect()
}

/// `kind: LocustTest` documents of the ```yaml blocks of README.md and docs/*.md.
fn doc_examples() -> Vec<(String, Value)> {
    let ws = root().join("..");
    let mut files = vec![ws.join("README.md")];
    files.extend(
        std::fs::read_dir(ws.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut block: Option<String> = None;
        for line in text.lines() {
            match block.as_mut() {
                None if line.trim_start().starts_with("```yaml") => block = Some(String::new()),
                None => {}
                Some(b) if line.trim_start().starts_with("```") => {
                    let what = file.display().to_string();
                    // Only blocks that show a LocustTest must parse.
                    let docs = if b.contains("kind: LocustTest") {
                        parse_docs(b, &what)
                    } else {
                        Vec::new()
                    };
                    for doc in docs {
                        if doc.get("kind").and_then(Value::as_str) == Some("LocustTest") {
                            out.push((what.clone(), doc));
                        }
                    }
                    block = None;
                }
                Some(b) => {
                    b.push_str(line);
                    b.push('\n');
                }
            }
        }
    }
    out
}

/// Valid corpus files, the LocustTest samples and the documentation examples.
fn valid_corpus() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files = yaml_files(&root().join("tests/corpus/valid"));
    files.extend(yaml_files(&root().join("samples")));
    for path in files {
        let what = path.display().to_string();
        for doc in parse_docs(&std::fs::read_to_string(&path).unwrap(), &what) {
            if doc.get("kind").and_then(Value::as_str) == Some("LocustTest") {
                out.push((what.clone(), doc));
            }
        }
    }
    out.extend(doc_examples());
    out
}

#[test]
fn corpus_is_large_enough_and_names_are_unique() {
    let invalid = invalid_corpus();
    assert!(invalid.len() >= 40, "{} invalid files", invalid.len());
    assert!(
        yaml_files(&root().join("tests/corpus/valid")).len() >= 10,
        "at least 10 valid files"
    );
    assert!(!doc_examples().is_empty(), "the docs show a LocustTest");
    let mut names = BTreeSet::new();
    for case in &invalid {
        let name = case.doc["metadata"]["name"].as_str().unwrap().to_owned();
        assert!(
            names.insert(name),
            "{}: duplicate name",
            case.path.display()
        );
    }
    // Every CEL rule and every webhook-only rule is exercised by the corpus.
    let all: Vec<String> = invalid
        .iter()
        .flat_map(|c| validate_value(&c.doc))
        .filter_map(|v| v.rule.map(str::to_owned))
        .collect();
    let rules = locust_operator::validation::RULES.iter().map(|r| r.id);
    let hooks = locust_operator::validation::WEBHOOK_RULES
        .iter()
        .map(|r| r.id);
    for id in rules.chain(hooks) {
        let n = all.iter().filter(|r| *r == id).count();
        assert!(n >= 2, "rule {id} is broken by only {n} corpus files");
    }
}

#[test]
fn every_invalid_file_is_rejected_with_its_message() {
    for case in invalid_corpus() {
        let violations = validate_value(&case.doc);
        let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|s| s.starts_with(&case.expect)),
            "{}: expected a violation starting with {:?}, got {shown:#?}",
            case.path.display(),
            case.expect
        );
        let from_rule = violations.iter().any(|v| v.rule.is_some());
        match case.cel.as_str() {
            "schema" => assert!(
                violations.iter().any(|v| v.rule.is_none()),
                "{}: a schema failure",
                case.path.display()
            ),
            _ => assert!(from_rule, "{}: a rule failure", case.path.display()),
        }
    }
}

#[test]
fn webhook_only_files_pass_every_cel_rule() {
    for case in invalid_corpus().iter().filter(|c| c.cel == "no") {
        let violations = validate_value(&case.doc);
        assert!(
            violations.iter().all(|v| {
                locust_operator::validation::WEBHOOK_RULES
                    .iter()
                    .any(|w| Some(w.id) == v.rule)
            }),
            "{}: only webhook rules fail, got {violations:#?}",
            case.path.display()
        );
    }
}

#[test]
fn every_valid_object_is_accepted() {
    let valid = valid_corpus();
    assert!(valid.len() >= 12, "{} valid objects", valid.len());
    for (what, doc) in valid {
        let violations = validate_value(&doc);
        assert!(
            violations.is_empty(),
            "{what} ({}): {violations:#?}",
            doc["metadata"]["name"]
        );
    }
}

fn cli_validate(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_locust-k8s-operator"))
        .arg("validate")
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_cli_agrees() {
    for case in invalid_corpus() {
        let (code, stdout) = cli_validate(&case.path);
        assert_eq!(code, Some(1), "{}: {stdout}", case.path.display());
        let name = case.doc["metadata"]["name"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("{name}: {}", case.expect)),
            "{}: {stdout}",
            case.path.display()
        );
    }
    // The valid objects in one multi-document file.
    let valid = valid_corpus();
    let text: Vec<String> = valid
        .iter()
        .map(|(_, doc)| locust_operator::yaml::to_string(doc).unwrap())
        .collect();
    let (_dir, all) = temp_file("valid.yaml", &text.join("---\n"));
    let (code, stdout) = cli_validate(&all);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": valid")).count(),
        valid.len(),
        "{stdout}"
    );
}

/// `text` in a file `name` of a new temporary directory (removed when the
/// returned guard is dropped).
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// A test whose mounts nest in three places: `validate` prints one line per
/// field, each with the one mount path message, and exits 1.
#[test]
fn the_cli_prints_each_mount_conflict_with_the_shared_message() {
    use locust_operator::validation::rules::MOUNT_PATH_CONFLICT_MESSAGE;
    let (_dir, file) = temp_file(
        "test.yaml",
        r#"apiVersion: locust.io/v2
kind: LocustTest
metadata:
  name: nested
spec:
  image: locustio/locust:2.43.1
  master: {command: locust -f /lotest/src/locustfile.py}
  worker: {command: locust -f /lotest/src/locustfile.py, replicas: 1}
  testFiles: {configMapRef: tests, libConfigMapRef: lib, libMountPath: /lotest/src/lib}
  env:
    secretMounts: [{name: certs, mountPath: /lotest/}]
  volumes: [{name: data, emptyDir: {}}]
  volumeMounts: [{name: data, mountPath: /data, target: master}, {name: data, mountPath: /data/}]
"#,
    );
    let (code, stdout) = cli_validate(&file);
    assert_eq!(code, Some(1), "{stdout}");
    let want: String = [
        "spec.volumeMounts",
        "spec.env.secretMounts",
        "spec.testFiles.libMountPath",
    ]
    .iter()
    .map(|field| format!("nested: {field}: {MOUNT_PATH_CONFLICT_MESSAGE}\n"))
    .collect();
    assert_eq!(stdout, want);
}

#[test]
fn the_cli_shows_where_a_file_is_not_yaml() {
    let (_dir, file) = temp_file(
        "test.yaml",
        "apiVersion: locust.io/v2\nkind: LocustTest\nmetadata:\n  name: \"demo\nspec: {}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_locust-k8s-operator"))
        .args(["validate", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: line 5 column 1: invalid indentation in multiline quoted scalar\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(" --> {}:5:1\n", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("4 |   name: \"demo\n"), "{stderr}");
}
