//! The migration guide (`docs/migration.md`) stays true to the code:
//! - every kind of migration warning (`migration::DifferenceKind::ALL`) has its
//!   section, which the warning links to, and no section is stale;
//! - every operator flag and `LOCUST_*` variable it names exists in the CLI, and the
//!   settings tables name only operator flags in their last column;
//! - every `locust_test_*` and `locust_operator_*` series it names is exported;
//! - its status tables map to this operator's condition types, condition reasons,
//!   Event reasons and phases, and name every one of them;
//! - its links resolve (anchors included), and README.md and docs/install.md link it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{Args, Command};
use locust_operator::api::{Phase, condition_reason, condition_type, event_reason};
use locust_operator::config::OperatorConfig;
use locust_operator::metrics::Metrics;
use locust_operator::migration::{DifferenceKind, MIGRATION_GUIDE};
use locust_operator::test_metrics::families;

/// Flags the guide names that are not the operator's: Locust's, kubectl's and
/// helm's, the CLI subcommands' own, and the Go operator's.
const NOT_OPERATOR_FLAGS: &[&str] = &[
    // Locust (the command line the operator builds, commands in tests).
    "--autoquit",
    "--enable-rebalancing",
    "--host",
    "--locustfile",
    "--only-summary",
    "--otel",
    "--tags",
    // kubectl.
    "--all",
    "--for",
    "--type",
    "--server-side",
    // The CLI's `convert --to`.
    "--to",
    // The Go operator's flags.
    "--enable-webhooks",
    "--webhook-cert-path",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn guide() -> String {
    read(MIGRATION_GUIDE)
}

/// The part of `text` under the heading line `heading`, up to the next heading of
/// the same or a higher level (lines of fenced code are not headings).
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{MIGRATION_GUIDE} has no heading {heading:?}"));
    let body = &text[start + heading.len() + 2..];
    let level = heading.split(' ').next().unwrap_or_default().len();
    let mut fenced = false;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if !fenced && (1..=level).contains(&hashes) && line[hashes..].starts_with(' ') {
            return &body[..offset];
        }
        offset += line.len();
    }
    body
}

/// The cells of every Markdown table row of `text`, header rows included,
/// separator rows left out.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|---"))
        .map(|l| {
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            inner.split('|').map(str::trim).collect()
        })
        .collect()
}

/// The backquoted spans of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Whether a span is a CamelCase identifier, as reasons and phases are.
fn is_identifier(span: &str) -> bool {
    span.starts_with(|c: char| c.is_ascii_uppercase())
        && span.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The words of `text` starting with `prefix` at a word boundary, made of
/// characters `word` accepts.
fn words<'a>(text: &'a str, prefix: &str, word: impl Fn(char) -> bool) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            continue;
        }
        let len = text[at + prefix.len()..]
            .find(|c: char| !word(c))
            .unwrap_or(text.len() - at - prefix.len());
        if len > 0 {
            out.insert(&text[at..at + prefix.len() + len]);
        }
    }
    out
}

/// The `--flag` tokens of `text`.
fn flags(text: &str) -> BTreeSet<&str> {
    words(text, "--", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .into_iter()
    .filter(|f| f[2..].starts_with(|c: char| c.is_ascii_lowercase()))
    .collect()
}

/// The operator's long flags and environment variables.
fn operator_cli() -> (BTreeSet<String>, BTreeSet<String>) {
    let cmd = OperatorConfig::augment_args(Command::new("locust-k8s-operator"));
    let mut longs = BTreeSet::new();
    let mut envs = BTreeSet::new();
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            longs.insert(format!("--{long}"));
        }
        if let Some(env) = arg.get_env() {
            envs.insert(env.to_string_lossy().into_owned());
        }
    }
    assert!(longs.len() > 20, "found only {} flags", longs.len());
    (longs, envs)
}

/// GitHub's anchor of a heading: lowercase, punctuation but `-` and `_` removed,
/// spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of every heading of a Markdown text (outside fenced code).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(slug(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_warning_kind_has_its_section_and_no_section_is_stale() {
    let text = guide();
    let warnings = section(&text, "## Checking manifests: `validate`");
    let documented: BTreeSet<&str> = warnings
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .collect();
    let kinds: BTreeSet<&str> = DifferenceKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        documented, kinds,
        "{MIGRATION_GUIDE}: the warnings' sections (### `kind`) differ from DifferenceKind::ALL"
    );
    // The anchor each warning ends with is its section's.
    let anchors = anchors(&text);
    for kind in kinds {
        assert!(anchors.contains(kind), "no anchor #{kind}");
    }
}

#[test]
fn every_flag_and_variable_the_guide_names_exists() {
    let text = guide();
    let (longs, envs) = operator_cli();
    for flag in flags(&text) {
        // `--pod-*`: a family of flags.
        if flag.ends_with('-') {
            assert!(
                longs.iter().any(|l| l.starts_with(flag)),
                "{MIGRATION_GUIDE} names the flags {flag}*, and the operator has none"
            );
            continue;
        }
        assert!(
            longs.contains(flag) || NOT_OPERATOR_FLAGS.contains(&flag),
            "{MIGRATION_GUIDE} names {flag}, which is not an operator flag (nor listed in NOT_OPERATOR_FLAGS)"
        );
    }
    for flag in NOT_OPERATOR_FLAGS {
        assert!(!longs.contains(*flag), "{flag} is an operator flag");
        assert!(
            flags(&text).contains(flag),
            "{flag} is not in the guide any more"
        );
    }
    let variables = words(&text, "LOCUST_", |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    });
    assert!(!variables.is_empty());
    for variable in variables {
        assert!(
            envs.contains(variable),
            "{MIGRATION_GUIDE} names {variable}, which the operator does not read"
        );
    }
    // What the settings tables offer in their last column are operator flags.
    let settings = section(&text, "## Operator settings and Helm values");
    let mut offered = 0;
    for row in rows(settings) {
        for flag in flags(row.last().copied().unwrap_or_default()) {
            assert!(
                longs.contains(flag),
                "the settings tables offer {flag}, which is not an operator flag"
            );
            offered += 1;
        }
    }
    assert!(offered > 25, "only {offered} flags in the settings tables");
}

#[test]
fn every_series_the_guide_names_is_exported() {
    let text = guide();
    let families: BTreeSet<&str> = families().into_iter().collect();
    let tests = words(&text, "locust_test_", |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    });
    assert!(tests.len() >= 8, "{tests:?}");
    for name in tests {
        // Counters are families without their `_total`; `locust_test_result_*` is a prefix.
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            families.contains(family) || families.iter().any(|f| f.starts_with(name)),
            "{MIGRATION_GUIDE} names {name}, which the operator does not export: {families:?}"
        );
    }
    let metrics = Metrics::new();
    metrics.reconcile_started().finish();
    metrics.reconcile_error("CreateFailed");
    metrics.webhook_request("/convert", true);
    let operator: BTreeSet<String> = metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    let named = words(&text, "locust_operator_", |c| {
        c.is_ascii_lowercase() || c == '_'
    });
    assert!(!named.is_empty());
    for name in named {
        assert!(
            operator.contains(name),
            "{MIGRATION_GUIDE} names {name}, which the operator does not export: {operator:?}"
        );
    }
}

/// Asserts that the identifiers of column `column` (from the right when
/// `from_right`) of the tables of `text` are all in `ours`, and name every one.
fn assert_maps_onto(text: &str, what: &str, column: usize, from_right: bool, ours: &[&str]) {
    let mut named = BTreeSet::new();
    for row in rows(text).into_iter().skip(1) {
        let index = if from_right {
            row.len().saturating_sub(1 + column)
        } else {
            column
        };
        let cell = row.get(index).copied().unwrap_or_default();
        for span in code_spans(cell).into_iter().filter(|s| is_identifier(s)) {
            assert!(
                ours.contains(&span),
                "{MIGRATION_GUIDE} gives {span} as this operator's {what}; it has {ours:?}"
            );
            named.insert(span);
        }
    }
    for value in ours {
        assert!(
            named.contains(value),
            "{MIGRATION_GUIDE} does not map the {what} {value}"
        );
    }
}

#[test]
fn the_status_tables_use_this_operators_vocabulary_and_name_all_of_it() {
    let text = guide();
    let conditions = section(&text, "### Conditions");
    assert_maps_onto(conditions, "condition type", 0, false, condition_type::ALL);
    assert_maps_onto(
        conditions,
        "condition reason",
        0,
        true,
        condition_reason::ALL,
    );
    assert_maps_onto(
        section(&text, "### Events"),
        "Event reason",
        0,
        true,
        event_reason::ALL,
    );

    let phases = ["Pending", "Running", "Succeeded", "Failed"];
    for phase in phases {
        assert!(
            serde_json::from_value::<Phase>(serde_json::json!(phase)).is_ok(),
            "{phase} is not a phase"
        );
    }
    let table = section(&text, "### Phases and fields");
    let listed: Vec<&str> = rows(table)
        .into_iter()
        .skip(1)
        .flat_map(|row| code_spans(row[0]))
        .filter(|s| is_identifier(s))
        .collect();
    for span in &listed {
        assert!(phases.contains(span), "{span} is not a phase");
    }
    for phase in phases {
        assert!(listed.contains(&phase), "the phases table lacks {phase}");
    }
}

#[test]
fn every_link_of_the_guide_resolves() {
    let text = guide();
    let own = anchors(&text);
    let mut checked = 0;
    for (at, _) in text.match_indices("](") {
        let rest = &text[at + 2..];
        let target = &rest[..rest.find(')').expect("a closed link")];
        if target.starts_with("http") {
            continue;
        }
        let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
        let anchors = if file.is_empty() {
            own.clone()
        } else {
            let relative = format!("docs/{file}");
            assert!(
                root().join(&relative).exists(),
                "{MIGRATION_GUIDE} links {target}: no file {relative}"
            );
            if file.ends_with(".md") {
                anchors(&read(&relative))
            } else {
                BTreeSet::new()
            }
        };
        assert!(
            anchor.is_empty() || anchors.contains(anchor),
            "{MIGRATION_GUIDE} links {target}: no heading with that anchor"
        );
        checked += 1;
    }
    assert!(checked > 20, "only {checked} links");
}

#[test]
fn the_readme_and_the_install_guide_link_the_migration_guide() {
    assert!(
        read("README.md").contains("(docs/migration.md)"),
        "README.md does not link docs/migration.md"
    );
    assert!(
        read("docs/install.md").contains("(migration.md"),
        "docs/install.md does not link migration.md"
    );
}
