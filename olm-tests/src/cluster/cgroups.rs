//! The real node's cgroup root.
//!
//! cgroups are not namespaced here: the kubelet creates its `kubepods`
//! hierarchy in the host's cgroup file system. Each real node gets a root of
//! its own (`cgroupRoot` in the kubelet's configuration), so that two nodes
//! never share one and everything the kubelet made can be removed:
//! `/<prefix><owner pid>.<n>` in every cgroup v1 hierarchy (or in the single
//! cgroup v2 hierarchy). [`CgroupRoot::remove`] deletes the whole tree
//! (depth first; `rmdir` only succeeds on a cgroup without processes, so it
//! can never hurt anything alive); a root left behind by a test process that
//! was killed outright is removed by the next [`CgroupRoot::create`] once its
//! owner pid is gone.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where the cgroup file systems are mounted.
pub(crate) const CGROUP_MOUNT: &str = "/sys/fs/cgroup";
/// Name prefix of every root this harness creates.
pub(crate) const ROOT_PREFIX: &str = "locust-k8s-operator-node.";

/// The layout of the cgroup file systems.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// cgroup v1 (possibly hybrid): one directory per mounted hierarchy
    /// (`cpu`, `memory`, `systemd`, …, and the hybrid layout's `unified`
    /// cgroup2 mount, where the kubelet's cgroup library mirrors its tree).
    V1(Vec<PathBuf>),
    /// cgroup v2 only: one tree.
    V2(PathBuf),
}

impl Hierarchy {
    /// Reads the layout under `base` (normally [`CGROUP_MOUNT`]).
    pub fn detect(base: &Path) -> Result<Self> {
        if base.join("cgroup.controllers").is_file() {
            return Ok(Self::V2(base.to_path_buf()));
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(base)
            .with_context(|| format!("reading {}", base.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.join("cgroup.procs").is_file()
                    // Skip the symlinks of co-mounted controllers (cpu,cpuacct).
                    && !p.is_symlink()
            })
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            bail!("no cgroup hierarchy found under {}", base.display());
        }
        Ok(Self::V1(dirs))
    }

    fn tops(&self) -> Vec<PathBuf> {
        match self {
            Self::V1(dirs) => dirs.clone(),
            Self::V2(dir) => vec![dir.clone()],
        }
    }
}

/// A cgroup root made for one real node.
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    name: String,
    hierarchy: Hierarchy,
    removed: bool,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl CgroupRoot {
    /// Creates a fresh root under `base` (normally [`CGROUP_MOUNT`]), after
    /// removing the roots of owners that no longer run.
    pub fn create(base: &Path) -> Result<Self> {
        let hierarchy = Hierarchy::detect(base)?;
        sweep_orphans(&hierarchy);
        let name = format!(
            "{ROOT_PREFIX}{}.{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::SeqCst)
        );
        let root = Self {
            name,
            hierarchy,
            removed: false,
        };
        for top in root.hierarchy.tops() {
            let dir = top.join(&root.name);
            std::fs::create_dir(&dir)
                .with_context(|| format!("creating the cgroup {}", dir.display()))?;
            if top.join("cpuset.cpus").is_file() {
                // A v1 cpuset cgroup starts with no CPUs and no memory
                // nodes, and refuses processes until they are set.
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    let value = std::fs::read_to_string(top.join(file))?;
                    std::fs::write(dir.join(file), value.trim())
                        .with_context(|| format!("writing {}", dir.join(file).display()))?;
                }
            }
            if let Hierarchy::V2(_) = &root.hierarchy {
                let available = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
                let enable: Vec<String> = available
                    .split_whitespace()
                    .map(|c| format!("+{c}"))
                    .collect();
                if !enable.is_empty() {
                    std::fs::write(dir.join("cgroup.subtree_control"), enable.join(" "))
                        .with_context(|| format!("enabling controllers in {}", dir.display()))?;
                }
            }
        }
        Ok(root)
    }

    /// The kubelet's `cgroupRoot` (`/<name>`).
    pub fn kubelet_root(&self) -> String {
        format!("/{}", self.name)
    }

    /// Removes the root and everything below it, once the processes in it
    /// are gone (retrying for up to `patience`: the kernel frees a cgroup
    /// shortly after its last process is reaped).
    pub fn remove(&mut self, patience: Duration) -> Result<()> {
        let deadline = Instant::now() + patience;
        let mut last = Ok(());
        for top in self.hierarchy.tops() {
            let dir = top.join(&self.name);
            loop {
                last = remove_tree(&dir);
                match &last {
                    Ok(()) => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Err(_) => break,
                }
            }
            if last.is_err() {
                break;
            }
        }
        self.removed = last.is_ok();
        last.with_context(|| format!("removing the node's cgroups {}", self.name))
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove(Duration::from_secs(5));
        }
    }
}

/// `rmdir` of `dir` and every directory below it, deepest first (cgroup
/// directories hold only virtual files, which `rmdir` ignores).
fn remove_tree(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The owner pid in a root's name, if it is one of ours.
fn owner_of(name: &str) -> Option<u32> {
    name.strip_prefix(ROOT_PREFIX)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Removes roots whose owner no longer runs (a test killed outright). Roots
/// that still hold processes stay: `rmdir` refuses them.
fn sweep_orphans(hierarchy: &Hierarchy) {
    for top in hierarchy.tops() {
        let Ok(entries) = std::fs::read_dir(&top) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(owner) = name.to_str().and_then(owner_of) else {
                continue;
            };
            if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
                let _ = remove_tree(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake v1 layout: plain directories with the marker files (rmdir of
    /// a plain directory with files fails, as a cgroup with processes does).
    fn fake_v1(base: &Path) {
        for h in ["cpu", "cpuset", "memory", "systemd", "unified"] {
            std::fs::create_dir_all(base.join(h)).unwrap();
            std::fs::write(base.join(h).join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(base.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(base.join("cpuset/cpuset.mems"), "0\n").unwrap();
    }

    #[test]
    fn detects_v1_with_the_hybrid_unified_mount_and_v2() {
        let dir = tempfile::tempdir().unwrap();
        fake_v1(dir.path());
        let h = Hierarchy::detect(dir.path()).unwrap();
        assert!(matches!(h, Hierarchy::V1(_)));
        let names: Vec<String> = h
            .tops()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["cpu", "cpuset", "memory", "systemd", "unified"]);
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        assert_eq!(
            Hierarchy::detect(v2.path()).unwrap(),
            Hierarchy::V2(v2.path().to_path_buf())
        );
    }

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(owner_of("locust-k8s-operator-node.123.4"), Some(123));
        assert_eq!(owner_of("kubepods"), None);
        assert_eq!(owner_of("locust-k8s-operator-node.x.1"), None);
    }

    #[test]
    fn a_root_is_created_everywhere_seeded_for_cpuset_and_removed_with_its_tree() {
        let dir = tempfile::tempdir().unwrap();
        fake_v1(dir.path());
        let mut root = CgroupRoot::create(dir.path()).unwrap();
        let name = root.kubelet_root();
        let rel = name.trim_start_matches('/');
        for h in ["cpu", "cpuset", "memory", "systemd", "unified"] {
            assert!(dir.path().join(h).join(rel).is_dir(), "{h}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cpuset").join(rel).join("cpuset.cpus"))
                .unwrap(),
            "0-1"
        );
        // What the kubelet would make below it.
        std::fs::create_dir_all(
            dir.path()
                .join("memory")
                .join(rel)
                .join("kubepods/burstable"),
        )
        .unwrap();
        // cpuset's seeded files make its rmdir fail here (a real cgroup's
        // files do not): drop them as the kernel would not need to.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            std::fs::remove_file(dir.path().join("cpuset").join(rel).join(f)).unwrap();
        }
        std::fs::create_dir_all(
            dir.path()
                .join("unified")
                .join(rel)
                .join("kubepods/besteffort"),
        )
        .unwrap();
        root.remove(Duration::from_millis(100)).unwrap();
        for h in ["cpu", "cpuset", "memory", "systemd", "unified"] {
            assert!(!dir.path().join(h).join(rel).exists(), "{h}");
        }
    }

    #[test]
    fn orphans_of_dead_owners_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        fake_v1(dir.path());
        // pid 0 never names a running test process; our own pid does.
        let dead = format!("{ROOT_PREFIX}999999999.0");
        let live = format!("{ROOT_PREFIX}{}.77", std::process::id());
        for h in ["cpu", "memory", "unified"] {
            std::fs::create_dir_all(dir.path().join(h).join(&dead).join("kubepods")).unwrap();
            std::fs::create_dir_all(dir.path().join(h).join(&live)).unwrap();
        }
        let root = CgroupRoot::create(dir.path()).unwrap();
        for h in ["cpu", "memory", "unified"] {
            assert!(!dir.path().join(h).join(&dead).exists());
            assert!(dir.path().join(h).join(&live).exists());
        }
        drop(root);
    }
}
