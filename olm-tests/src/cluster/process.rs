//! Child processes of a cluster: each in its own process group, logging to a
//! file, killed with its parent.
//!
//! `prctl(PR_SET_PDEATHSIG, SIGKILL)` is delivered when the *thread* that
//! forked the child exits, not the process. Spawning from whatever tokio
//! worker happens to run a future would kill components when that worker is
//! retired, so every cluster owns a dedicated spawner thread that lives
//! exactly as long as the cluster: components die with the cluster, or with
//! the test process if it is killed outright.

use std::ffi::OsString;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

/// How to run one component.
#[derive(Clone, Debug)]
pub(crate) struct ProcessSpec {
    /// Short name, used in messages.
    pub name: &'static str,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    /// stdout and stderr are appended here.
    pub log: PathBuf,
}

struct SpawnRequest {
    spec: ProcessSpec,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The thread that forks every child of one cluster.
pub(crate) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    /// Starts the spawner thread.
    pub fn new(cluster_name: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name(format!("{cluster_name}-spawner"))
            .spawn(move || {
                while let Ok(request) = rx.recv() {
                    let _ = request.reply.send(spawn(&request.spec));
                }
            })
            .context("starting the spawner thread")?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Starts `spec` from the spawner thread.
    pub fn spawn(&self, spec: &ProcessSpec) -> Result<Child> {
        let (reply, response) = mpsc::channel();
        self.requests
            .as_ref()
            .context("spawner already stopped")?
            .send(SpawnRequest {
                spec: spec.clone(),
                reply,
            })
            .map_err(|_| anyhow!("spawner thread is gone"))?;
        response
            .recv()
            .map_err(|_| anyhow!("spawner thread is gone"))?
            .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing the channel ends the thread. The cluster stops its children
        // before dropping the spawner; any survivor gets SIGKILL from the
        // kernel as the thread exits.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn(spec: &ProcessSpec) -> io::Result<Child> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd);
    spawn_logged(command, &spec.log)
}

/// Starts `command` with stdout and stderr appended to `log`, in its own
/// process group (so the group can be killed as one), and with
/// `PR_SET_PDEATHSIG=SIGKILL` so it dies with the test process. Call it from a
/// thread that outlives the child (see [`Spawner`]): the signal fires when the
/// forking *thread* ends.
pub fn spawn_logged(mut command: Command, log: &Path) -> io::Result<Child> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    writeln!(file, "==> local-cluster: starting {command:?}")?;
    let stderr = file.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure only makes async-signal-safe system calls (prctl,
    // getppid) and allocates nothing, as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// One running (or stopped) component process.
pub(crate) struct ManagedProcess {
    pub spec: ProcessSpec,
    child: Option<Child>,
    /// Exit status of the last run, once reaped.
    last_exit: Option<ExitStatus>,
}

impl ManagedProcess {
    pub fn new(spec: ProcessSpec) -> Self {
        Self {
            spec,
            child: None,
            last_exit: None,
        }
    }

    /// Starts the process (it must not be running).
    pub fn start(&mut self, spawner: &Spawner) -> Result<()> {
        if self.is_running() {
            anyhow::bail!("{} is already running", self.spec.name);
        }
        self.child = Some(spawner.spawn(&self.spec)?);
        self.last_exit = None;
        Ok(())
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running; reaps it if it exited.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if let Some(pid) = self.pid() {
            if !leader_exited(pid) {
                return None;
            }
            self.reap();
        }
        self.last_exit
    }

    /// Kills what is left of the group while the exited leader still holds
    /// the group id (as a zombie), then reaps the leader.
    fn reap(&mut self) {
        self.kill_group(libc::SIGKILL);
        if let Some(mut child) = self.child.take() {
            self.last_exit = child.wait().ok();
        }
    }

    fn kill_group(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // The child leads its own group (process_group(0)), and is only
            // reaped after this, so the group id cannot have been recycled.
            // SAFETY: killpg has no memory-safety preconditions.
            unsafe {
                libc::killpg(pid as libc::pid_t, signal);
            }
        }
    }

    /// Sends `signal` to the process group and waits up to `grace` for the
    /// process to exit, then SIGKILLs the group. Returns the exit status (or
    /// `None` if it was not running).
    pub fn stop(&mut self, signal: libc::c_int, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid()?;
        if !leader_exited(pid) {
            self.kill_group(signal);
            let deadline = Instant::now() + grace;
            while !leader_exited(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Anything left in the group, or the leader itself past its grace.
        self.reap();
        self.last_exit
    }
}

/// Whether process `pid` (our child) has exited, without reaping it.
fn leader_exited(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain data; waitid with WNOWAIT only inspects our
    // own child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if rc != 0 {
            // ECHILD: no such child any more (only we reap, so this does not
            // happen in practice); count it as exited.
            return io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
        }
        info.si_pid() != 0
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop(libc::SIGKILL, Duration::from_secs(5));
    }
}

/// The last `max_lines` lines (at most 16 KiB) of a log file, for error
/// messages.
pub(crate) fn log_tail(path: &Path, max_lines: usize) -> String {
    const MAX_BYTES: u64 = 16 * 1024;
    let read = || -> io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(error) => format!("<cannot read {}: {error}>", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            name: "sh",
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            cwd: dir.to_path_buf(),
            log: dir.join("sh.log"),
        }
    }

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks for existence.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[test]
    fn logs_exit_status_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::new("t").unwrap();
        let mut p = ManagedProcess::new(spec(dir.path(), "echo hello; echo oops >&2; exit 3"));
        p.start(&spawner).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while p.exit_status().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(p.exit_status().and_then(|s| s.code()), Some(3));
        assert!(!p.is_running());
        let tail = log_tail(&dir.path().join("sh.log"), 2);
        assert_eq!(tail, "hello\noops");
    }

    #[test]
    fn stop_kills_the_whole_group_and_restart_appends_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::new("t").unwrap();
        // The shell ignores TERM and has a grandchild in its group.
        let mut p = ManagedProcess::new(spec(
            dir.path(),
            "trap '' TERM; sleep 300 & echo $! > grandchild; wait",
        ));
        p.start(&spawner).unwrap();
        let file = dir.path().join("grandchild");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&file).map_or(true, |s| s.trim().is_empty()) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        let grandchild: u32 = std::fs::read_to_string(&file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(p.is_running());
        let status = p.stop(libc::SIGTERM, Duration::from_millis(300)).unwrap();
        assert!(!status.success());
        assert!(!p.is_running());
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(grandchild) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The grandchild may linger as a zombie of init briefly; it must be
        // gone or a zombie, never running.
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        assert!(state.is_empty() || state.contains(") Z"), "{state}");

        p.start(&spawner).unwrap();
        assert!(p.is_running());
        drop(p);
        let log = std::fs::read_to_string(dir.path().join("sh.log")).unwrap();
        assert_eq!(log.matches("==> local-cluster: starting").count(), 2);
    }

    #[test]
    fn children_die_with_the_spawner_thread() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::new("t").unwrap();
        let mut child = spawner.spawn(&spec(dir.path(), "exec sleep 300")).unwrap();
        let pid = child.id();
        assert!(alive(pid));
        drop(spawner); // ends the thread: PDEATHSIG fires
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn tail_of_a_missing_file_says_so() {
        assert!(log_tail(Path::new("/nonexistent/x.log"), 5).contains("cannot read"));
    }
}
