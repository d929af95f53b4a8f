//! Real Locust for the tests: the pinned version (`olm-tests/locust-requirements.txt`)
//! installed by `olm-tests/locust-setup.sh` into a venv under
//! `~/.cache/locust-k8s-operator/locust-<version>/`, a small HTTP target, and
//! master/worker processes started with EXACTLY the command line and
//! environment of the operator's rendered Jobs.
//!
//! Host mapping (the only changes to the rendered command lines, all appended
//! or substituted, never removed):
//! - the worker's `--master-host=<service>` is replaced by the master's
//!   loopback address (there is no cluster DNS here);
//! - the master gets `--master-bind-host=<ip> --web-host=<ip>` appended so it
//!   listens on one loopback address only instead of every interface;
//! - the image entrypoint (`locust`) is the venv's `locust`, and a command that
//!   names `locust` itself runs the venv's `locust`.
//!
//! Every process gets stdin from `/dev/null` and is killed (by its own pid)
//! when its handle drops.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Container;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::tools::tools_required;

/// The requirements file pinning Locust.
pub const REQUIREMENTS: &str = include_str!("../locust-requirements.txt");

/// The pinned Locust version (from [`REQUIREMENTS`]).
pub fn locust_version() -> &'static str {
    REQUIREMENTS
        .lines()
        .find_map(|l| l.trim().strip_prefix("locust=="))
        .map(str::trim)
        .unwrap_or("unknown")
}

/// Path of `olm-tests/locust-setup.sh`.
pub fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("locust-setup.sh")
}

/// Installs (or finds) the pinned Locust and returns the venv's `bin` directory.
/// `Ok(None)` means "skip": the install failed and tools are not required
/// (`CI`/`LOCUST_REQUIRE_TOOLS` unset); when they are required it is an error.
pub async fn ensure_locust() -> Result<Option<PathBuf>> {
    let out = Command::new("bash")
        .arg(setup_script())
        .stdin(Stdio::null())
        .output()
        .await;
    let failure = match out {
        Ok(o) if o.status.success() => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            if let Some(bin) = stdout.lines().last().map(str::trim).map(PathBuf::from)
                && bin.join("locust").exists()
            {
                return Ok(Some(bin));
            }
            format!("locust-setup.sh printed no bin directory: {stdout}")
        }
        Ok(o) => format!(
            "locust-setup.sh failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("cannot run locust-setup.sh: {e}"),
    };
    if tools_required() {
        bail!(
            "Locust {} is required but unavailable: {failure}",
            locust_version()
        );
    }
    eprintln!("SKIP: Locust {} unavailable: {failure}", locust_version());
    Ok(None)
}

/// A locustfile requesting `/` of the target in a loop (50 ms between requests).
pub const LOCUSTFILE: &str = r#"from locust import HttpUser, task, constant


class User(HttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/")
"#;

/// A small HTTP/1.1 server on 127.0.0.1 answering `200 ok`, or `500` for
/// every `fail_every`-th request when set.
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests served so far.
    pub served: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Target {
    /// Starts the server.
    pub async fn start(fail_every: Option<u64>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut filled = 0;
                    loop {
                        let Ok(n) = sock.read(&mut buf[filled..]).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        filled += n;
                        // One request per read burst is enough for GETs without bodies.
                        while let Some(end) =
                            buf[..filled].windows(4).position(|w| w == b"\r\n\r\n")
                        {
                            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                            let fail = fail_every.is_some_and(|k| k > 0 && n.is_multiple_of(k));
                            let answer: &[u8] = if fail {
                                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"
                            } else {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                            };
                            if sock.write_all(answer).await.is_err() {
                                return;
                            }
                            buf.copy_within(end + 4..filled, 0);
                            filled -= end + 4;
                        }
                        if filled == buf.len() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, served, task })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The command line and literal environment of a Job's first container.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedCommand {
    /// Container `command` (None = image entrypoint `locust`).
    pub command: Option<Vec<String>>,
    /// Container `args`.
    pub args: Vec<String>,
    /// Literal environment variables (`valueFrom` ones are not resolvable here).
    pub env: BTreeMap<String, String>,
}

/// Reads the Locust container of a rendered Job.
pub fn rendered_command(job: &Job) -> Result<RenderedCommand> {
    let c: &Container = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .context("Job has no container")?;
    Ok(RenderedCommand {
        command: c.command.clone(),
        args: c.args.clone().unwrap_or_default(),
        env: c
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect(),
    })
}

/// A running Locust process.
pub struct LocustProcess {
    /// The child.
    pub child: Child,
    /// The argv it was started with (program first).
    pub argv: Vec<String>,
    /// Its combined output file.
    pub log: PathBuf,
}

impl LocustProcess {
    /// Waits at most `limit` for the process to exit.
    pub async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .with_context(|| format!("{:?} still running after {limit:?}", self.argv))?
            .context("waiting for locust")
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LocustProcess {
    fn drop(&mut self) {
        // Kills only this child (by its own pid).
        let _ = self.child.start_kill();
    }
}

/// Starts `rendered` as a local process: the entrypoint is `<bin>/locust`;
/// `extra` is appended, and `replace` maps whole arguments (`--master-host=svc`
/// → `--master-host=127.0.0.1`).
pub fn spawn(
    bin: &Path,
    rendered: &RenderedCommand,
    replace: &BTreeMap<String, String>,
    extra: &[String],
    workdir: &Path,
    log: PathBuf,
) -> Result<LocustProcess> {
    let locust = bin.join("locust").to_string_lossy().into_owned();
    let mut argv: Vec<String> = match &rendered.command {
        None => vec![locust.clone()],
        Some(cmd) => cmd
            .iter()
            .map(|w| {
                if w == "locust" {
                    locust.clone()
                } else {
                    w.clone()
                }
            })
            .collect(),
    };
    argv.extend(
        rendered
            .args
            .iter()
            .map(|a| replace.get(a).cloned().unwrap_or_else(|| a.clone())),
    );
    argv.extend(extra.iter().cloned());
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(&rendered.env)
        .env("PATH", path)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {argv:?}"))?;
    Ok(LocustProcess { child, argv, log })
}

/// Extra master arguments binding it to `ip` only.
pub fn master_bind_args(ip: IpAddr) -> Vec<String> {
    vec![
        format!("--master-bind-host={ip}"),
        format!("--web-host={ip}"),
    ]
}
