//! Command lines of the master and worker containers.
//!
//! Master: `<command> [--otel] --master --master-port=5557 --expect-workers=N [--autostart]
//! [--autoquit T] [extraArgs...]`. Worker: `<command> [--otel] --worker
//! --master-host=<service> --master-port=5557 [extraArgs...]`.

use crate::api::LocustTestSpec;

/// Port the master listens on for workers (`--master-port`).
pub const MASTER_PORT: i32 = 5557;
/// Second master port (`--master-port` + 1), used by Locust's RPC.
pub const MASTER_PORT_2: i32 = 5558;
/// Port of the Locust web UI and REST API.
pub const WEB_PORT: i32 = 8089;

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
}

impl CommandError {
    /// CamelCase reason for Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            CommandError::Unbalanced { .. } => "InvalidCommand",
            CommandError::Empty { .. } => "EmptyCommand",
        }
    }

    /// Field path of the offending command.
    pub fn field(&self) -> &'static str {
        match self {
            CommandError::Unbalanced { field } | CommandError::Empty { field } => field,
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
pub fn split_command(command: &str, field: &'static str) -> Result<Vec<String>, CommandError> {
    let words = shell_words::split(command).map_err(|_| CommandError::Unbalanced { field })?;
    if words.is_empty() {
        return Err(CommandError::Empty { field });
    }
    Ok(words)
}

fn otel_enabled(spec: &LocustTestSpec) -> bool {
    spec.observability
        .as_ref()
        .and_then(|o| o.open_telemetry.as_ref())
        .is_some_and(|o| o.enabled)
}

/// The full master command line, as words.
pub fn master_args(spec: &LocustTestSpec) -> Result<Vec<String>, CommandError> {
    let mut words = split_command(&spec.master.command, MASTER_COMMAND_FIELD)?;
    if otel_enabled(spec) {
        words.push("--otel".to_owned());
    }
    words.push("--master".to_owned());
    words.push(format!("--master-port={MASTER_PORT}"));
    words.push(format!("--expect-workers={}", spec.worker.replicas));
    if spec.master.autostart {
        words.push("--autostart".to_owned());
    }
    if spec.master.autoquit.enabled {
        words.push("--autoquit".to_owned());
        words.push(spec.master.autoquit.timeout.to_string());
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
