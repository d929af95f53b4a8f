//! Locating the pinned Go binaries built by `olm-tests/tools/build.sh`.
//!
//! Lookup order:
//! 1. `LOCUST_TOOLS_DIR`: a directory with `bin/` (and optionally `crds/olm/`);
//! 2. `bash olm-tests/tools/build.sh --print-dir`, which prints the
//!    version-keyed cache directory only when it is complete.
//!
//! Neither builds anything; [`Tools::build`] does (it can take a long time).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// Environment variable pointing at a tools directory (with `bin/`).
pub const TOOLS_DIR_ENV: &str = "LOCUST_TOOLS_DIR";

/// Environment variable that makes a missing toolset a test failure.
pub const REQUIRE_TOOLS_ENV: &str = "LOCUST_REQUIRE_TOOLS";

/// Binaries the local cluster needs.
pub const CLUSTER_BINARIES: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// A directory of built tools: `bin/<tool>` and `crds/olm/*.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    dir: PathBuf,
}

impl Tools {
    /// Uses `dir` (which must contain `bin/` with every binary in
    /// [`CLUSTER_BINARIES`], executable).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let tools = Self { dir };
        let missing: Vec<&str> = CLUSTER_BINARIES
            .iter()
            .copied()
            .filter(|name| !is_executable(&tools.bin(name)))
            .collect();
        if !missing.is_empty() {
            bail!(
                "tools directory {} lacks executable bin/{{{}}}",
                tools.dir.display(),
                missing.join(",")
            );
        }
        Ok(tools)
    }

    /// Finds an already built toolset (see the module docs); never builds.
    pub fn locate() -> Result<Self> {
        locate_built(TOOLS_DIR_ENV, &build_script(), "tools", Self::from_dir)
    }

    /// Builds the tools if needed (`bash olm-tests/tools/build.sh`, whose
    /// progress goes to this process's stderr) and uses the result. The first
    /// build takes tens of minutes.
    pub fn build() -> Result<Self> {
        build_with(TOOLS_DIR_ENV, &build_script(), Self::from_dir)
    }

    /// The tools directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the binary `name` (`<dir>/bin/<name>`).
    pub fn bin(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.dir.join("bin").join(name.as_ref())
    }

    /// Path of the oldest supported control plane's binary `name`
    /// (`<dir>/kube-min/<name>`: kube-apiserver, kube-controller-manager,
    /// kube-scheduler).
    pub fn min_kube_bin(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.dir.join("kube-min").join(name.as_ref())
    }

    /// The module version a tool was built from, as `versions.txt` records
    /// it (`<name> <module> <version> ...`), e.g. `image-bin/opm` → `v1.61.0`.
    pub fn version_of(&self, name: &str) -> Result<String> {
        let path = self.dir.join("versions.txt");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(name)).then(|| f.nth(1).map(str::to_owned))?
            })
            .with_context(|| format!("{} does not record {name}", path.display()))
    }

    /// Directory of the OLM CRD YAMLs (`<dir>/crds/olm`).
    pub fn olm_crds_dir(&self) -> PathBuf {
        self.dir.join("crds").join("olm")
    }
}

/// `olm-tests/tools/build.sh` of this source tree.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join("build.sh")
}

/// Whether a missing toolset must fail a test rather than skip it: true when
/// `CI` or `LOCUST_REQUIRE_TOOLS` is set to anything but empty, `0` or `false`.
pub fn tools_required() -> bool {
    ["CI", REQUIRE_TOOLS_ENV]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| is_truthy(&v)))
}

/// The toolset for a test, or `None` (after printing a skip notice) when it
/// is not built and [`tools_required`] is false.
///
/// # Panics
/// When the tools are missing and [`tools_required`] is true: the test fails.
pub fn tools_or_skip(test: &str) -> Option<Tools> {
    match Tools::locate() {
        Ok(tools) => Some(tools),
        Err(error) if tools_required() => {
            panic!(
                "{test}: the cluster tools are required (CI or {REQUIRE_TOOLS_ENV} is set) but unavailable: {error:#}"
            )
        }
        Err(error) => {
            eprintln!(
                "SKIPPED {test}: cluster tools unavailable ({error:#}); set CI or {REQUIRE_TOOLS_ENV}=1 to make this a failure"
            );
            None
        }
    }
}

/// The tool `name` from the tools cache for `test`, as [`tools_or_skip`]
/// does for the whole cache: `None` after a skip notice when it is missing,
/// a panic when [`tools_required`]. `hint` is added to the message (another
/// way to provide it, say).
pub fn tool_or_skip(test: &str, name: &str, hint: &str) -> Option<PathBuf> {
    let bin = tools_or_skip(test)?.bin(name);
    if bin.is_file() {
        return Some(bin);
    }
    let why = format!(
        "{} is missing (rebuild the tools with olm-tests/tools/build.sh{hint})",
        bin.display()
    );
    if tools_required() {
        panic!("{test}: {why} (CI or {REQUIRE_TOOLS_ENV} is set)");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

fn is_truthy(value: &str) -> bool {
    let value = value.trim();
    !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Opens (with `from_dir`) the output of build script `script` without
/// building: the directory `env` names when set, else the one
/// `bash <script> --print-dir` prints (only once complete). `what` names the
/// output in errors.
pub(crate) fn locate_built<T>(
    env: &str,
    script: &Path,
    what: &str,
    from_dir: impl FnOnce(PathBuf) -> Result<T>,
) -> Result<T> {
    if let Some(dir) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return from_dir(PathBuf::from(&dir))
            .with_context(|| format!("{env}={}", Path::new(&dir).display()));
    }
    let output = Command::new("bash")
        .arg(script)
        .arg("--print-dir")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running bash {} --print-dir", script.display()))?;
    if !output.status.success() {
        bail!(
            "the {what} are not built (bash {} --print-dir exited with {}: {}); build them with `bash {}` or set {env}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            script.display()
        );
    }
    from_dir(last_line(&output.stdout)?)
}

/// Opens (with `from_dir`) the directory `env` names when set; else runs
/// `bash <script>` (its progress to this process's stderr), which builds
/// what is missing, and opens the directory it prints.
pub(crate) fn build_with<T>(
    env: &str,
    script: &Path,
    from_dir: impl FnOnce(PathBuf) -> Result<T>,
) -> Result<T> {
    if let Some(dir) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return from_dir(PathBuf::from(dir));
    }
    let output = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running bash {}", script.display()))?;
    if !output.status.success() {
        bail!("bash {} failed with {}", script.display(), output.status);
    }
    from_dir(last_line(&output.stdout)?)
}

/// The directory a build script printed last (its stdout's last non-empty line).
pub(crate) fn last_line(stdout: &[u8]) -> Result<PathBuf> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .context("build.sh printed no directory")?;
    Ok(PathBuf::from(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn truthiness() {
        assert!(is_truthy("true"));
        assert!(is_truthy("1"));
        assert!(is_truthy("yes"));
        assert!(!is_truthy(""));
        assert!(!is_truthy("0"));
        assert!(!is_truthy("FALSE"));
    }

    #[test]
    fn last_non_empty_line_is_the_directory() {
        let out = b"[12:00:00] tools: building\n/cache/abc\n\n";
        assert_eq!(last_line(out).unwrap(), PathBuf::from("/cache/abc"));
        assert!(last_line(b"\n \n").is_err());
    }

    #[test]
    fn from_dir_requires_every_executable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let err = Tools::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("kube-apiserver"), "{err}");
        for name in CLUSTER_BINARIES {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o755)
                .open(dir.path().join("bin").join(name))
                .unwrap();
        }
        let tools = Tools::from_dir(dir.path()).unwrap();
        assert_eq!(tools.bin("etcd"), dir.path().join("bin/etcd"));
        assert_eq!(tools.olm_crds_dir(), dir.path().join("crds/olm"));
    }
}
