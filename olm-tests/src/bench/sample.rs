//! Machine and process readings (/proc) and the operator binary's size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cluster::{Cluster, Component};

/// The machine the benchmark ran on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// `nproc`.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// MemTotal from /proc/meminfo, in MiB.
    pub memory_mib: u64,
    /// /proc/sys/kernel/osrelease.
    pub kernel: String,
}

impl Machine {
    /// Reads /proc.
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == "model name").then(|| v.trim().to_owned())
                })
                .unwrap_or_else(|| "unknown".into()),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

/// Memory and CPU of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// utime + stime (seconds) from the text of `/proc/<pid>/stat`.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    // Fields after the command name (which may contain spaces and parentheses).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks())
}

/// A `<key>: <n> kB` line of /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// Reads RSS, peak RSS and CPU time of `pid`.
pub fn proc_sample(pid: u32) -> Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(ProcSample {
        rss_kib: status_kib(&status, "VmRSS").context("no VmRSS")?,
        hwm_kib: status_kib(&status, "VmHWM").context("no VmHWM")?,
        cpu_secs: parse_stat_cpu(&stat).context("cannot parse /proc/<pid>/stat")?,
    })
}

/// Busy and total CPU time of the whole machine (seconds), from /proc/stat.
fn machine_cpu() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let t = clock_ticks();
    ((total - idle.min(total)) as f64 / t, total as f64 / t)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// CPU used by each control-plane process, the operator, the bench itself
/// and the whole machine over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadSample {
    /// Length of the window.
    pub wall: Duration,
    /// Busy CPU of the whole machine, in cores (busy seconds / wall seconds).
    pub machine_cores: f64,
    /// CPU seconds per process name in the window.
    pub per_process: BTreeMap<String, f64>,
    /// 1-minute load average at the end.
    pub loadavg: f64,
}

impl LoadSample {
    /// Cores used by `name` on average over the window.
    pub fn cores(&self, name: &str) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.per_process.get(name).copied().unwrap_or(0.0) / secs
    }

    /// Cores used by processes outside the benchmark (other work on the machine).
    pub fn foreign_cores(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        let ours: f64 = self.per_process.values().sum();
        (self.machine_cores - ours / secs).max(0.0)
    }
}

/// CPU of the machine and of the cluster's processes over a window.
pub(super) struct LoadMeter {
    started: Instant,
    machine_busy: f64,
    pids: BTreeMap<String, u32>,
    cpu: BTreeMap<String, f64>,
}

impl LoadMeter {
    pub(super) fn start(cluster: &Cluster, operator: Option<u32>) -> Self {
        let mut pids = BTreeMap::new();
        for c in Component::ALL {
            if let Some(pid) = cluster.component_pid(c) {
                pids.insert(c.name().to_owned(), pid);
            }
        }
        if let Some(pid) = operator {
            pids.insert("operator".into(), pid);
        }
        pids.insert("bench".into(), std::process::id());
        let cpu = pids
            .iter()
            .filter_map(|(n, p)| Some((n.clone(), proc_sample(*p).ok()?.cpu_secs)))
            .collect();
        Self {
            started: Instant::now(),
            machine_busy: machine_cpu().0,
            pids,
            cpu,
        }
    }

    pub(super) fn finish(self) -> LoadSample {
        let wall = self.started.elapsed();
        let busy = machine_cpu().0 - self.machine_busy;
        let per_process = self
            .pids
            .iter()
            .filter_map(|(n, p)| {
                let before = self.cpu.get(n)?;
                Some((n.clone(), proc_sample(*p).ok()?.cpu_secs - before))
            })
            .collect();
        LoadSample {
            wall,
            machine_cores: if wall.as_secs_f64() > 0.0 {
                busy / wall.as_secs_f64()
            } else {
                0.0
            },
            per_process,
            loadavg: loadavg(),
        }
    }
}

/// Size of a binary and whether it still has a symbol table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// `Some(true)` when the ELF file has no `.symtab` section.
    pub stripped: Option<bool>,
}

impl BinaryInfo {
    /// Reads the size and the ELF section names of `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            bytes: u64::try_from(data.len()).unwrap_or(u64::MAX),
            stripped: elf_section_names(&data).map(|names| !names.iter().any(|n| n == ".symtab")),
        })
    }
}

/// Section names of a little-endian ELF64 file (`None` if it is not one).
fn elf_section_names(data: &[u8]) -> Option<Vec<String>> {
    if data.get(0..4)? != b"\x7fELF" || *data.get(4)? != 2 || *data.get(5)? != 1 {
        return None;
    }
    let u16_at = |o: usize| -> Option<usize> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?).into())
    };
    let u64_at = |o: usize| -> Option<usize> {
        usize::try_from(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?)).ok()
    };
    let shoff = u64_at(0x28)?;
    let shentsize = u16_at(0x3a)?;
    let shnum = u16_at(0x3c)?;
    let shstrndx = u16_at(0x3e)?;
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let strtab = header(shstrndx)?;
    let str_off = u64_at(strtab + 0x18)?;
    let mut names = Vec::with_capacity(shnum);
    for i in 0..shnum {
        let name_off = u32::from_le_bytes(data.get(header(i)?..header(i)? + 4)?.try_into().ok()?);
        let start = str_off.checked_add(usize::try_from(name_off).ok()?)?;
        let end = start + data.get(start..)?.iter().position(|b| *b == 0)?;
        names.push(String::from_utf8_lossy(data.get(start..end)?).into_owned());
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        let stat = "1234 (tokio (runtime)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        let cpu = parse_stat_cpu(stat).unwrap();
        assert!((cpu - 300.0 / clock_ticks()).abs() < 1e-9, "{cpu}");
        let status = "Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(status_kib(status, "VmRSS"), Some(6789));
        let own = proc_sample(std::process::id()).unwrap();
        assert!(own.rss_kib > 0 && own.hwm_kib >= own.rss_kib);
        assert!(Machine::read().cpus > 0);
    }

    #[test]
    fn elf_of_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let info = BinaryInfo::read(&exe).unwrap();
        assert!(info.bytes > 0);
        // Test binaries are built with symbols.
        assert_eq!(info.stripped, Some(false));
        assert_eq!(elf_section_names(b"not an elf"), None);
    }
}
