//! The user documentation stays true to the code: every operator flag and its
//! environment variable is documented, and every condition type, condition reason and
//! Event reason (the `ALL` lists of `locust_operator::api::vocabulary`) is in
//! the status lifecycle page.

use clap::{Args, Command};
use locust_operator::config::OperatorConfig;

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_flag_and_variable_is_documented() {
    let text = doc("configuration.md");
    let cmd = OperatorConfig::augment_args(Command::new("locust-k8s-operator"));
    let mut count = 0;
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        count += 1;
        assert!(
            text.contains(&format!("`--{long}`")),
            "docs/configuration.md lacks --{long}"
        );
        if let Some(env) = arg.get_env() {
            let env = env.to_string_lossy();
            assert!(
                text.contains(&format!("`{env}`")),
                "docs/configuration.md lacks {env}"
            );
        }
        if let Some(default) = arg.get_default_values().first() {
            let default = default.to_string_lossy();
            let row = text
                .lines()
                .find(|l| l.starts_with(&format!("| `--{long}`")))
                .unwrap_or_default();
            assert!(
                row.contains(&format!("`{default}`")),
                "--{long}: default {default} not documented: {row}"
            );
        }
    }
    assert!(count > 20, "found only {count} flags");
}

/// The part of `text` under the heading `heading`, up to the next heading of
/// the same level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &text[start + heading.len() + 2..];
    let level = heading.split(' ').next().unwrap_or_default();
    let end = body.find(&format!("\n{level} ")).unwrap_or(body.len());
    &body[..end]
}

/// Every value of `table` appears, in backquotes, in the first column
/// `column` (0-based) of a row of a Markdown table of `text`.
fn assert_documented(text: &str, page: &str, what: &str, table: &[&str], column: usize) {
    let cells: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(column + 1))
        .map(str::trim)
        .collect();
    assert!(!table.is_empty());
    for value in table {
        assert!(
            cells.contains(&format!("`{value}`").as_str()),
            "{page} lacks {what} {value}"
        );
    }
}

/// [`assert_documented`] for the table under `heading` in `docs/status.md`.
fn assert_in_status_md(heading: &str, what: &str, table: &[&str], column: usize) {
    let text = doc("status.md");
    assert_documented(
        section(&text, heading),
        "docs/status.md",
        what,
        table,
        column,
    );
}

#[test]
fn every_condition_type_and_reason_is_documented() {
    use locust_operator::api::{condition_reason, condition_type};
    let conditions = "## Conditions";
    assert_in_status_md(conditions, "condition type", condition_type::ALL, 0);
    assert_in_status_md(conditions, "condition reason", condition_reason::ALL, 2);
}

#[test]
fn every_schedule_condition_and_event_is_documented() {
    use locust_operator::api::{
        schedule_condition_reason, schedule_condition_type, schedule_event_reason,
    };
    let text = doc("schedules.md");
    let page = "docs/schedules.md";
    let conditions = section(&text, "## Conditions");
    assert_documented(
        conditions,
        page,
        "condition type",
        schedule_condition_type::ALL,
        0,
    );
    assert_documented(
        conditions,
        page,
        "condition reason",
        schedule_condition_reason::ALL,
        2,
    );
    let events = section(&text, "## Events");
    assert_documented(events, page, "Event reason", schedule_event_reason::ALL, 1);
}

#[test]
fn every_event_reason_is_documented() {
    use locust_operator::api::event_reason;
    assert_in_status_md("## Events", "Event reason", event_reason::ALL, 1);
}
