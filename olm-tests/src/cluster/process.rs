//! Child processes of a cluster: each in its own process group, logging to a
//! file, killed with its parent.
//!
//! `prctl(PR_SET_PDEATHSIG, SIGKILL)` is delivered when the *thread* that
//! forked the child exits, not the process. Spawning from whatever tokio
//! worker happens to run a future would kill components when that worker is
//! retired, so every cluster owns a dedicated spawner thread that lives
//! exactly as long as the cluster: components die with the cluster, or with
//! the test process if it is killed outright.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
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

enum Request {
    /// Fork and exec a command (stdout and stderr appended to `log`).
    Spawn {
        command: Box<Command>,
        log: PathBuf,
        reply: mpsc::Sender<io::Result<Child>>,
    },
    /// Create a TCP socket in the thread's network namespace.
    Socket {
        reply: mpsc::Sender<io::Result<OwnedFd>>,
    },
    /// End the thread (even while handles to it live on).
    Shutdown,
}

/// A cheap handle to a [`Spawner`] thread: spawn in its namespaces, or get
/// a socket in its network namespace. Fails once the spawner is gone.
#[derive(Clone)]
pub(crate) struct SpawnerHandle {
    requests: mpsc::Sender<Request>,
}

impl SpawnerHandle {
    fn send(&self, request: Request) -> Result<()> {
        self.requests
            .send(request)
            .map_err(|_| anyhow!("the cluster's spawner thread is gone (cluster stopped?)"))
    }

    /// Starts `command` from the spawner thread, in its namespaces, with
    /// stdout and stderr appended to `log` (see [`spawn_logged`]).
    pub fn spawn_command(&self, command: Command, log: &Path) -> Result<Child> {
        let (reply, response) = mpsc::channel();
        let program = command.get_program().to_owned();
        self.send(Request::Spawn {
            command: Box::new(command),
            log: log.to_path_buf(),
            reply,
        })?;
        response
            .recv()
            .map_err(|_| anyhow!("spawner thread is gone"))?
            .with_context(|| format!("starting {}", Path::new(&program).display()))
    }

    /// A TCP (IPv4) socket created in the spawner's network namespace:
    /// connecting or binding it reaches that namespace's addresses, whatever
    /// thread uses it afterwards.
    pub fn tcp_socket(&self) -> Result<OwnedFd> {
        let (reply, response) = mpsc::channel();
        self.send(Request::Socket { reply })?;
        response
            .recv()
            .map_err(|_| anyhow!("spawner thread is gone"))?
            .context("creating a socket in the cluster's network namespace")
    }
}

/// The namespaces a [`Spawner`] thread enters before it forks anything.
pub(crate) enum Isolation {
    /// A new network namespace of its own: only `lo` at first, so nothing
    /// its children do on the network can reach the host or beyond.
    NewNetwork,
    /// The network namespace `net` (another spawner's), plus a new mount
    /// namespace (every mount private to it) and a new PID namespace whose
    /// init is `init`, forked first. When init dies, the kernel kills every
    /// process of the PID namespace, daemonised container shims included.
    /// `init` must create `ready` once its set-up is done and then stay.
    Node {
        net: Arc<OwnedFd>,
        init: Box<Command>,
        init_log: PathBuf,
        ready: PathBuf,
    },
}

/// The thread that forks every child of one cluster, inside the cluster's
/// namespaces (see [`Isolation`]).
pub(crate) struct Spawner {
    handle: SpawnerHandle,
    thread: Option<JoinHandle<()>>,
    netns: Arc<OwnedFd>,
    /// PID-namespace init of a node spawner (in the host's PID numbering).
    init_pid: Option<u32>,
}

impl Spawner {
    /// Starts a spawner thread in a new network namespace (with `lo` up).
    pub fn new(cluster_name: &str) -> Result<Self> {
        let spawner = Self::with_isolation(cluster_name, Isolation::NewNetwork)?;
        let mut up = Command::new("ip");
        up.args(["link", "set", "lo", "up"]);
        spawner.run(up)?;
        Ok(spawner)
    }

    /// Starts a spawner thread in the given namespaces.
    pub fn with_isolation(name: &str, isolation: Isolation) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<(OwnedFd, Option<u32>)>>();
        let wait_for = match &isolation {
            Isolation::Node { ready, .. } => Some(ready.clone()),
            Isolation::NewNetwork => None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("{name}-spawner"))
            .spawn(move || {
                let mut init = None;
                let entered = enter(isolation, &mut init);
                let failed = entered.is_err();
                let _ = ready_tx.send(entered);
                if failed {
                    return;
                }
                while let Ok(request) = rx.recv() {
                    match request {
                        Request::Spawn {
                            command,
                            log,
                            reply,
                        } => {
                            let _ = reply.send(spawn_logged(*command, &log));
                        }
                        Request::Socket { reply } => {
                            let _ = reply.send(tcp_socket());
                        }
                        Request::Shutdown => break,
                    }
                }
                // Closing the channel ends the thread; the init of a node
                // spawner goes with it (PR_SET_PDEATHSIG), and with it every
                // process of its PID namespace.
                if let Some(mut init) = init {
                    stop_child(&mut init);
                }
            })
            .context("starting the spawner thread")?;
        let (netns, init_pid) = ready_rx
            .recv()
            .map_err(|_| anyhow!("the spawner thread died while entering its namespaces"))?
            .context("entering the cluster's namespaces (this needs root: CAP_SYS_ADMIN)")?;
        let spawner = Self {
            handle: SpawnerHandle { requests: tx },
            thread: Some(thread),
            netns: Arc::new(netns),
            init_pid,
        };
        if let Some(ready) = wait_for {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !ready.exists() {
                if Instant::now() > deadline {
                    anyhow::bail!(
                        "the node's PID-namespace init did not finish its set-up in 30 s (no {})",
                        ready.display()
                    );
                }
                if init_pid.is_some_and(|pid| !process_alive(pid)) {
                    anyhow::bail!("the node's PID-namespace init exited during its set-up");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(spawner)
    }

    /// The network namespace of this spawner's children (an open
    /// `/proc/<tid>/ns/net`).
    pub fn netns(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.netns)
    }

    /// The init of the node's PID namespace (host PID), for a node spawner.
    pub fn init_pid(&self) -> Option<u32> {
        self.init_pid
    }

    /// A handle for spawning and sockets that can be cloned and moved.
    pub fn handle(&self) -> SpawnerHandle {
        self.handle.clone()
    }

    /// Starts `spec` from the spawner thread.
    pub fn spawn(&self, spec: &ProcessSpec) -> Result<Child> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd);
        self.spawn_command(command, &spec.log)
            .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))
    }

    /// See [`SpawnerHandle::spawn_command`].
    pub fn spawn_command(&self, command: Command, log: &Path) -> Result<Child> {
        self.handle.spawn_command(command, log)
    }

    /// Runs `command` to completion in the spawner's namespaces (output
    /// captured); fails unless it exits 0.
    pub fn run(&self, command: Command) -> Result<String> {
        let dir = tempfile::tempdir().context("a directory for a command's output")?;
        let log = dir.path().join("output");
        let shown = format!("{command:?}");
        let mut child = self.spawn_command(command, &log)?;
        let status = child
            .wait()
            .with_context(|| format!("waiting for {shown}"))?;
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let output = output
            .split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default();
        if !status.success() {
            anyhow::bail!("{shown} failed with {status}: {}", output.trim());
        }
        Ok(output)
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        // Closing the channel ends the thread. The cluster stops its children
        // before dropping the spawner; any survivor gets SIGKILL from the
        // kernel as the thread exits.
        let _ = self.handle.send(Request::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Enters the namespaces of `isolation` on the calling thread; returns the
/// thread's network namespace and, for a node, the host PID of its init.
fn enter(isolation: Isolation, init_out: &mut Option<Child>) -> io::Result<(OwnedFd, Option<u32>)> {
    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    let mut init_pid = None;
    match isolation {
        Isolation::NewNetwork => {
            // SAFETY: unshare only changes this thread's namespaces.
            check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
        }
        Isolation::Node {
            net,
            init,
            init_log,
            ready: _,
        } => {
            // SAFETY: setns/unshare/mount only change this thread's
            // namespaces; the fd is a valid open namespace file.
            check(unsafe { libc::setns(net.as_raw_fd(), libc::CLONE_NEWNET) })?;
            check(unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS) })?;
            // No mount made in here may propagate to the host.
            check(unsafe {
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
            })?;
            check(unsafe { libc::unshare(libc::CLONE_NEWPID) })?;
            // Opened before the init starts: it shares this thread's mount
            // namespace and mounts its PID namespace's /proc over /proc,
            // where this thread (outside that PID namespace) has no
            // `thread-self` any more (ENOENT when the init won the race).
            let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
            let child = spawn_logged(*init, &init_log)?;
            init_pid = Some(child.id());
            *init_out = Some(child);
            return Ok((netns.into(), init_pid));
        }
    }
    let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
    Ok((netns.into(), init_pid))
}

fn tcp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) returns a new descriptor we own, or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stop_child(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
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
            // The parent may have died between fork and prctl. A child in a
            // new PID namespace sees its parent (outside) as 0.
            let ppid = libc::getppid() as u32;
            if ppid != parent && ppid != 0 {
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

/// The last `max_lines` lines (at most 24 KiB) of a log file, for error
/// messages.
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    const MAX_BYTES: u64 = 24 * 1024;
    let read = || -> io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => last_lines(&text, max_lines),
        Err(error) => format!("<cannot read {}: {error}>", path.display()),
    }
}

/// The last `lines` lines of `name`'s log at `path`, framed for an error
/// message.
pub(crate) fn log_excerpt(name: &str, path: &Path, lines: usize) -> String {
    format!(
        "--- last {lines} lines of {} ---\n{}\n--- end of {name} ---",
        path.display(),
        log_tail(path, lines),
    )
}

/// Lines of a process's log an error quotes.
const LOG_TAIL_LINES: usize = 40;

/// The processes of a cluster or of its real node, by component, behind a
/// lock (components are started, stopped and polled from several tasks).
pub(crate) struct Processes<C>(Mutex<BTreeMap<C, ManagedProcess>>);

impl<C: Ord> Processes<C> {
    pub(crate) fn new(processes: BTreeMap<C, ManagedProcess>) -> Self {
        Self(Mutex::new(processes))
    }

    /// The processes (also after a panic of another holder of the lock).
    pub(crate) fn lock(&self) -> MutexGuard<'_, BTreeMap<C, ManagedProcess>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls `check` until it yields `Some`, failing at `deadline` or as
    /// soon as `component`'s process exits; errors quote its log.
    pub(crate) async fn wait_until<F, Fut>(
        &self,
        component: &C,
        deadline: Instant,
        what: &str,
        check: F,
    ) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<()>>>,
    {
        let (name, log) = {
            let processes = self.lock();
            let spec = &processes
                .get(component)
                .with_context(|| format!("waiting for {what}: no such process"))?
                .spec;
            (spec.name, spec.log.clone())
        };
        wait_while_running(
            name,
            deadline,
            what,
            || {
                self.lock()
                    .get_mut(component)
                    .and_then(ManagedProcess::exit_status)
            },
            || log_excerpt(name, &log, LOG_TAIL_LINES),
            check,
        )
        .await
    }
}

/// Polls `check` every 100 ms until it yields `Some`, failing at `deadline`
/// or as soon as `exited` reports the exit of process `name`; an error
/// waiting for `what` quotes `excerpt()` (its log).
async fn wait_while_running<F, Fut>(
    name: &str,
    deadline: Instant,
    what: &str,
    exited: impl Fn() -> Option<ExitStatus>,
    excerpt: impl FnOnce() -> String,
    check: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<()>>>,
{
    let (check, exited) = (&check, &exited);
    let timeout = deadline.saturating_duration_since(Instant::now());
    let outcome = crate::wait_for(timeout, Duration::from_millis(100), || async move {
        if let Some(status) = exited() {
            return Ok(Some(Err(anyhow!("{name} exited with {status}"))));
        }
        Ok(check().await?.map(Ok))
    })
    .await
    .and_then(|inner| inner);
    outcome.with_context(|| format!("waiting for {what}\n{}", excerpt()))
}

/// The last `max_lines` lines of `text`, joined by newlines.
pub fn last_lines(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// A child process in its own process group, killed (group and all) on drop.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    name: String,
    child: Option<Child>,
}

impl ChildProcess {
    /// Owns `child` (the leader of its own process group) as `name`.
    pub(crate) fn new(name: &str, child: Child) -> Self {
        Self {
            name: name.to_owned(),
            child: Some(child),
        }
    }

    /// The name it was given.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether it still runs.
    pub(crate) fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Its exit status, if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: killpg on the group our unreaped child leads.
                unsafe {
                    libc::killpg(pid, libc::SIGKILL);
                }
            }
            let _ = child.wait();
        }
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

    fn command(program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command.args(args);
        command
    }

    #[test]
    fn a_spawner_has_a_network_namespace_of_its_own() {
        let spawner = Spawner::new("t").unwrap();
        let inside = spawner.run(command("ip", &["-o", "link"])).unwrap();
        assert!(inside.contains("lo:"), "{inside}");
        assert_eq!(inside.lines().count(), 1, "only lo: {inside}");
        assert!(inside.contains("UP"), "lo is up: {inside}");
        let host = std::fs::read_link("/proc/self/ns/net").unwrap();
        let theirs = spawner
            .run(command("readlink", &["/proc/self/ns/net"]))
            .unwrap();
        assert_ne!(theirs.trim(), host.to_string_lossy());
        // A socket from the spawner binds in its namespace: the host does
        // not see the port.
        let fd = spawner.handle().tcp_socket().unwrap();
        let socket = std::net::TcpListener::from(fd);
        drop(socket);
    }

    #[test]
    fn a_node_spawner_kills_its_whole_pid_namespace_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let net = Spawner::new("t").unwrap();
        let ready = dir.path().join("ready");
        let mut init = Command::new("bash");
        init.arg("-c").arg(format!(
            "mount -t proc proc /proc && touch {} && while :; do sleep 3600 & wait $!; done",
            ready.display()
        ));
        let node = Spawner::with_isolation(
            "n",
            Isolation::Node {
                net: net.netns(),
                init: Box::new(init),
                init_log: dir.path().join("init.log"),
                ready,
            },
        )
        .unwrap();
        let init_pid = node.init_pid().unwrap();
        assert!(process_alive(init_pid));
        // A daemon that leaves its parent behind (as container shims do).
        let pidfile = dir.path().join("daemon.pid");
        let out = node
            .run(command(
                "bash",
                &[
                    "-c",
                    &format!(
                        "setsid sleep 300 & echo $! > {}; echo $$; readlink /proc/self/ns/net",
                        pidfile.display()
                    ),
                ],
            ))
            .unwrap();
        let mut lines = out.lines();
        let pid_inside: u32 = lines.next().unwrap().trim().parse().unwrap();
        assert!(
            pid_inside < 100,
            "a fresh PID namespace numbers from 1: {pid_inside}"
        );
        let net_of_node = lines.next().unwrap().trim().to_owned();
        let net_of_cluster = net
            .run(command("readlink", &["/proc/self/ns/net"]))
            .unwrap();
        assert_eq!(
            net_of_node,
            net_of_cluster.trim(),
            "the node shares the cluster's network"
        );
        // The daemon's host PID: find the sleep whose PID-namespace PID is the one written.
        let inner: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let host_pid = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                    s.lines().any(|l| {
                        l.starts_with("NSpid:")
                            && l.split_whitespace().nth(2) == Some(inner.to_string().as_str())
                    }) && s.lines().any(|l| {
                        l.starts_with("PPid:") && !l.ends_with(&format!("\t{}", std::process::id()))
                    })
                })
            })
            .expect("the daemon's host pid");
        assert!(process_alive(host_pid));
        drop(node);
        let deadline = Instant::now() + Duration::from_secs(5);
        while (process_alive(host_pid) || process_alive(init_pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!process_alive(init_pid), "init is gone");
        assert!(
            !process_alive(host_pid),
            "the daemon died with the PID namespace"
        );
    }

    #[test]
    fn tail_of_a_missing_file_says_so() {
        assert!(log_tail(Path::new("/nonexistent/x.log"), 5).contains("cannot read"));
    }
}
