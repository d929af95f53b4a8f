//! Command lines of the master and worker containers.
//!
//! Master: `<command> [--otel] --master --master-port=5557 --expect-workers=N [--autostart]
//! [--autoquit T] --enable-rebalancing --only-summary [--web-base-path=P] [--html=F]
//! [--json-file=F] [--csv=P] [extraArgs...]`
//! (N = replicas × processesPerPod). Worker: `<command> [--otel] --worker
//! --master-host=<service> --master-port=5557 [--processes=N] [extraArgs...]`.

use crate::api::LocustTestSpec;

/// Port the master listens on for workers (`--master-port`).
pub const MASTER_PORT: i32 = 5557;
/// Second master port (`--master-port` + 1), used by Locust's RPC.
pub const MASTER_PORT_2: i32 = 5558;
/// Port of the Locust web UI and REST API.
pub const WEB_PORT: i32 = 8089;

/// Flags every master gets after `--autoquit`, as from the Go operator: Locust redistributes
/// the users when a worker joins or leaves mid-run (so a worker pod the Job replaces takes
/// its share of the load instead of idling), and the console prints only the final summary
/// (which CI jobs read from the master's log; the live numbers are in the test's status).
pub const MASTER_FIXED_FLAGS: [&str; 2] = ["--enable-rebalancing", "--only-summary"];

/// Field path of the master command, for error messages.
pub const MASTER_COMMAND_FIELD: &str = "spec.master.command";
/// Field path of the worker command, for error messages.
pub const WORKER_COMMAND_FIELD: &str = "spec.worker.command";

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command has an unclosed quote.
    #[error("{field}: cannot be split into arguments (unbalanced quotes)")]
    Unbalanced {
        /// Field path of the command.
        field: &'static str,
    },
    /// The command has no words.
    #[error("{field}: must not be empty")]
    Empty {
        /// Field path of the command.
        field: &'static str,
    },
    /// The command ends with a backslash that escapes nothing (outside quotes).
    #[error(
        "{field}: ends with a lone backslash, which escapes nothing; remove it or write \\\\ for a literal backslash"
    )]
    TrailingBackslash {
        /// Field path of the command.
        field: &'static str,
    },
}

impl CommandError {
    /// CamelCase reason for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandError::Unbalanced { .. } | CommandError::TrailingBackslash { .. } => {
                "InvalidCommand"
            }
            CommandError::Empty { .. } => "EmptyCommand",
        }
    }

    /// Field path of the offending command.
    pub fn field(&self) -> &'static str {
        match self {
            CommandError::Unbalanced { field }
            | CommandError::Empty { field }
            | CommandError::TrailingBackslash { field } => field,
        }
    }
}

/// `command` and `args` of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCommand {
    /// Replaces the image entrypoint when set.
    pub command: Option<Vec<String>>,
    /// Arguments (to `command`, or to the image entrypoint when `command` is `None`).
    pub args: Vec<String>,
}

impl ContainerCommand {
    /// Splits a full command line: when the first word is an option (starts with `-`), the
    /// whole line is arguments to the image's `locust` entrypoint; otherwise the first word
    /// replaces the entrypoint and the rest are its arguments.
    pub fn from_tokens(mut tokens: Vec<String>) -> Self {
        if tokens.first().is_none_or(|t| t.starts_with('-')) {
            return Self {
                command: None,
                args: tokens,
            };
        }
        let args = tokens.split_off(1);
        Self {
            command: Some(tokens),
            args,
        }
    }
}

/// Splits `command` like a POSIX shell would (quotes and backslashes respected, no
/// expansion); errors name `field`.
///
/// Rejected: an unclosed quote, a command with no words (blank, or only a comment) or
/// only blank words (white space by Unicode's definition, as CEL's `trim()` and the
/// not-blank rule see it, e.g. `"\u{2028}"`, `"\r # x"` or `"' '"`) and
/// a command ending with a backslash outside quotes. `shell-words`, like `sh -c`, keeps
/// such a backslash as a literal character (`locust -f x.py \` would give the container
/// a last argument `\`), but it is almost always a line continuation cut short, e.g. a
/// command copied from a multi-line shell script. A complete line continuation
/// (backslash, newline) and a backslash inside quotes are accepted.
pub fn split_command(command: &str, field: &'static str) -> Result<Vec<String>, CommandError> {
    let words = shell_words::split(command).map_err(|_| CommandError::Unbalanced { field })?;
    // A shell splits on ASCII blanks only: "\u{2028}" or "\r" would be one word,
    // yet the not-blank rule (CEL `trim()`, Rust `str::trim`) calls such a word
    // blank. A command of blank words only has no program to run.
    if words.iter().all(|w| w.trim().is_empty()) {
        return Err(CommandError::Empty { field });
    }
    if ends_with_lone_backslash(command, &words) {
        return Err(CommandError::TrailingBackslash { field });
    }
    Ok(words)
}

/// Whether `command` (which split into `words`) ends with a backslash that escapes
/// nothing. Such a backslash is the only construct whose words change when a newline
/// is appended: the pair then becomes a line continuation and the backslash vanishes.
/// After anything else a newline only ends the last word, or the comment.
fn ends_with_lone_backslash(command: &str, words: &[String]) -> bool {
    command.ends_with('\\')
        && shell_words::split(&format!("{command}\n"))
            .is_ok_and(|with_newline| with_newline != words)
}

fn otel_enabled(spec: &LocustTestSpec) -> bool {
    spec.observability
        .as_ref()
        .and_then(|o| o.open_telemetry.as_ref())
        .is_some_and(|o| o.enabled)
}

/// Worker processes the master waits for: `replicas × processesPerPod` (each Locust
/// process connects to the master as its own worker).
pub fn expected_worker_processes(spec: &LocustTestSpec) -> i64 {
    i64::from(spec.worker.replicas) * i64::from(spec.worker.processes_per_pod.unwrap_or(1).max(1))
}

/// The full master command line, as words.
pub fn master_args(spec: &LocustTestSpec) -> Result<Vec<String>, CommandError> {
    let mut words = split_command(&spec.master.command, MASTER_COMMAND_FIELD)?;
    if otel_enabled(spec) {
        words.push("--otel".to_owned());
    }
    words.push("--master".to_owned());
    words.push(format!("--master-port={MASTER_PORT}"));
    words.push(format!(
        "--expect-workers={}",
        expected_worker_processes(spec)
    ));
    if spec.master.autostart {
        words.push("--autostart".to_owned());
    }
    if spec.master.autoquit.enabled {
        words.push("--autoquit".to_owned());
        words.push(spec.master.autoquit.timeout.to_string());
    }
    words.extend(MASTER_FIXED_FLAGS.iter().map(|f| (*f).to_owned()));
    let base_path = spec.web_base_path();
    if !base_path.is_empty() {
        words.push(format!("--web-base-path={base_path}"));
    }
    if let Some(output) = &spec.output {
        if let Some(p) = output.html_report.as_ref().and_then(|f| f.active_path()) {
            words.push(format!("--html={p}"));
        }
        if let Some(p) = output.json_file.as_ref().and_then(|f| f.active_path()) {
            words.push(format!("--json-file={p}"));
        }
        if let Some(p) = output.csv.as_ref().and_then(|c| c.active_prefix()) {
            words.push(format!("--csv={p}"));
        }
    }
    words.extend(spec.master.extra_args.iter().cloned());
    Ok(words)
}

/// The full worker command line, as words; `master_host` is the master Service name.
pub fn worker_args(spec: &LocustTestSpec, master_host: &str) -> Result<Vec<String>, CommandError> {
    let mut words = split_command(&spec.worker.command, WORKER_COMMAND_FIELD)?;
    if otel_enabled(spec) {
        words.push("--otel".to_owned());
    }
    words.push("--worker".to_owned());
    words.push(format!("--master-host={master_host}"));
    words.push(format!("--master-port={MASTER_PORT}"));
    if let Some(n) = spec.worker.processes_per_pod {
        words.push(format!("--processes={n}"));
    }
    words.extend(spec.worker.extra_args.iter().cloned());
    Ok(words)
}

/// `command`/`args` of the master container.
pub fn master_container_command(spec: &LocustTestSpec) -> Result<ContainerCommand, CommandError> {
    master_args(spec).map(ContainerCommand::from_tokens)
}

/// `command`/`args` of the worker container.
pub fn worker_container_command(
    spec: &LocustTestSpec,
    master_host: &str,
) -> Result<ContainerCommand, CommandError> {
    worker_args(spec, master_host).map(ContainerCommand::from_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::v2::{CsvOutput, FileOutput, OutputSpec, WebUiSpec};

    fn spec() -> LocustTestSpec {
        serde_json::from_value(serde_json::json!({
            "image": "locustio/locust:2.47.0",
            "master": {"command": "locust -f /lotest/src/l.py", "autoquit": {"timeout": 30}},
            "worker": {"command": "locust -f /lotest/src/l.py", "replicas": 3},
        }))
        .unwrap()
    }

    #[test]
    fn results_flags_on_master_and_processes_on_workers() {
        let mut s = spec();
        s.worker.processes_per_pod = Some(4);
        s.web_ui = Some(WebUiSpec {
            base_path: Some("locust/".into()),
        });
        s.output = Some(OutputSpec {
            html_report: Some(FileOutput {
                enabled: true,
                path: Some("/results/r.html".into()),
            }),
            json_file: Some(FileOutput {
                enabled: false,
                path: Some("/results/s".into()),
            }),
            csv: Some(CsvOutput {
                enabled: true,
                prefix: Some("/results/run".into()),
            }),
        });
        let m = master_args(&s).unwrap();
        assert_eq!(
            m[3..],
            [
                "--master",
                "--master-port=5557",
                "--expect-workers=12",
                "--autostart",
                "--autoquit",
                "30",
                "--enable-rebalancing",
                "--only-summary",
                "--web-base-path=/locust",
                "--html=/results/r.html",
                "--csv=/results/run",
            ]
        );
        let w = worker_args(&s, "t-master").unwrap();
        assert_eq!(
            w[3..],
            [
                "--worker",
                "--master-host=t-master",
                "--master-port=5557",
                "--processes=4",
            ]
        );
    }

    #[test]
    fn lone_trailing_backslash_is_rejected_naming_the_field() {
        for command in [
            "locust -f x.py \\",
            "locust -f x.py\\",
            "\\",
            "locust 'a b' \\",
            "locust \\\\\\",
        ] {
            let err = split_command(command, MASTER_COMMAND_FIELD).unwrap_err();
            assert_eq!(
                err,
                CommandError::TrailingBackslash {
                    field: MASTER_COMMAND_FIELD
                },
                "{command:?}"
            );
            assert_eq!(err.reason(), "InvalidCommand");
            assert!(
                err.to_string()
                    .starts_with("spec.master.command: ends with a lone backslash"),
                "{err}"
            );
        }
    }

    #[test]
    fn escaped_quoted_and_continued_backslashes_are_accepted() {
        for (command, words) in [
            ("locust -f x.py \\\\", &["locust", "-f", "x.py", "\\"][..]),
            ("locust -f 'x.py\\'", &["locust", "-f", "x.py\\"]),
            ("locust -f \"x.py\\\\\"", &["locust", "-f", "x.py\\"]),
            ("locust \\\n  -f x.py", &["locust", "-f", "x.py"]),
            ("locust -f x.py \\\n", &["locust", "-f", "x.py"]),
            ("locust # a comment \\", &["locust"]),
        ] {
            assert_eq!(
                split_command(command, WORKER_COMMAND_FIELD).unwrap(),
                words,
                "{command:?}"
            );
        }
    }

    /// Found by the `validation_agrees_with_the_command_builder` property: a
    /// shell keeps Unicode-only white space as a word, the not-blank rule does not.
    #[test]
    fn unicode_blank_commands_are_empty_like_the_not_blank_rule() {
        for command in [
            "\u{2028}",
            " \u{2029}\t",
            "\u{a0}\u{3000}",
            "\u{85}",
            "\n \u{200a}",
        ] {
            assert!(command.trim().is_empty());
            assert_eq!(
                split_command(command, WORKER_COMMAND_FIELD),
                Err(CommandError::Empty {
                    field: WORKER_COMMAND_FIELD
                }),
                "{command:?}"
            );
        }
        // Blank words only, whatever the quoting or comments around them.
        for command in ["\r # a comment", "' '", "''", "\"\u{2028}\" ''"] {
            assert_eq!(
                split_command(command, WORKER_COMMAND_FIELD),
                Err(CommandError::Empty {
                    field: WORKER_COMMAND_FIELD
                }),
                "{command:?}"
            );
        }
        // Inside a command they stay part of a word, as in a shell.
        assert_eq!(
            split_command("locust \u{2028}x", WORKER_COMMAND_FIELD).unwrap(),
            ["locust", "\u{2028}x"]
        );
    }

    #[test]
    fn no_results_flags_by_default() {
        let m = master_args(&spec()).unwrap().join(" ");
        for flag in ["--web-base-path", "--html", "--json-file", "--csv"] {
            assert!(!m.contains(flag), "{m}");
        }
        assert!(m.contains("--expect-workers=3"));
        assert!(
            !worker_args(&spec(), "x")
                .unwrap()
                .join(" ")
                .contains("--processes")
        );
    }
}
