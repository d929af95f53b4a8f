//! The pinned `helm` (`<tools>/bin/helm`, built by `olm-tests/tools/build.sh`)
//! for the chart tests: run with its cache, config and data homes in a
//! temporary directory (nothing touches `$HOME`), from the workspace root so
//! [`CHART`] resolves, with no `KUBECONFIG` unless a test passes one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

use crate::operator::workspace_root;
use crate::tools::tool_or_skip;

/// The chart, relative to the workspace root.
pub const CHART: &str = "charts/locust-k8s-operator";

/// The pinned helm with private homes (removed when dropped).
pub struct Helm {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// `None` (after a skip notice) when the tools or their helm are missing;
    /// a panic when they are required ([`crate::tools::tools_required`]).
    pub fn new(test: &str) -> Option<Self> {
        let bin = tool_or_skip(test, "helm", "")?;
        match Self::at(bin) {
            Ok(helm) => Some(helm),
            Err(e) => panic!("{test}: {e:#}"),
        }
    }

    /// The helm binary `bin` with fresh private homes.
    pub fn at(bin: PathBuf) -> Result<Self> {
        let home = tempfile::tempdir().context("creating helm's home")?;
        Ok(Self { bin, home })
    }

    /// The private home directory (also `HOME` of [`Self::command`]).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The helm binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A helm command with the private homes, in the workspace root.
    pub fn command(&self) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(workspace_root())
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HOME", home)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `helm <args>` to the end.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.command()
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.bin.display()))
    }

    /// Runs `helm <args>`; its stdout, or an error with its stderr.
    pub fn run_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "helm {} exited with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes `text` to `<home>/values/<name>` and returns its path.
    pub fn values_file(&self, name: &str, text: &str) -> Result<String> {
        let dir = self.home.path().join("values");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        path.to_str()
            .map(str::to_owned)
            .with_context(|| format!("{} is not UTF-8", path.display()))
    }

    /// `helm template <release> <chart> -n <namespace> <args>`: the stdout,
    /// or the stderr when helm fails.
    pub fn template(
        &self,
        chart: &str,
        release: &str,
        namespace: &str,
        args: &[&str],
    ) -> Result<Result<String, String>> {
        let mut all = vec!["template", release, chart, "--namespace", namespace];
        all.extend_from_slice(args);
        let out = self.run(&all)?;
        Ok(if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "helm exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        })
    }
}

/// Every path where `a` and `b` differ (`a_name`/`b_name` say which is
/// which in the messages).
pub fn diff(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
    names: (&str, &str),
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    let (an, bn) = names;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&p, va, vb, names, out),
                    (Some(va), None) => out.push(format!("{p}: only in {an}: {va}")),
                    (None, Some(vb)) => out.push(format!("{p}: only in {bn}: {vb}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!(
                    "{path}: {} items in {an}, {} in {bn}",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, names, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {an} {a} != {bn} {b}")),
        _ => {}
    }
}
