//! Rendering the results: the table, the budgets and the Markdown block of
//! `docs/performance.md`.

use std::time::Duration;

use super::audit::Latency;
use super::results::ratio;
use super::sample::LoadSample;
use super::{BenchReport, Idle, SUSPENDED_SCHEDULES, SizeResult, budget};

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// `p50 / p99 | p50 / p99` of the operator's and the floor's requests.
fn latencies(operator: &Latency, floor: &Latency) -> String {
    format!(
        "{} / {} | {} / {}",
        ms(operator.p50),
        ms(operator.p99),
        ms(floor.p50),
        ms(floor.p99)
    )
}

/// `kube-apiserver / machine (other work)` CPU of `load`, in cores.
fn apiserver_load(load: &LoadSample) -> String {
    format!(
        "{:.2} / {:.2} ({:.2}) cores",
        load.cores("kube-apiserver"),
        load.machine_cores,
        load.foreign_cores()
    )
}

/// A Markdown table with padded columns (readable as plain text too).
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width = vec![3usize; cols];
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (i, cell) in row.iter().enumerate().take(cols) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |row: &[String]| {
        let cells: Vec<String> = (0..cols)
            .map(|i| {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                format!("{cell}{}", " ".repeat(width[i] - cell.chars().count()))
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = line(header);
    out.push('\n');
    let sep: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&format!("|-{}-|\n", sep.join("-|-")));
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

impl BenchReport {
    /// The results table: one column per size, one row per figure.
    pub fn table(&self) -> String {
        let mut header = vec!["Figure".to_owned()];
        header.extend(self.sizes.iter().map(|s| format!("N={}", s.n)));
        let row = |label: &str, f: &dyn Fn(&SizeResult) -> String| {
            let mut r = vec![label.to_owned()];
            r.extend(self.sizes.iter().map(f));
            r
        };
        let per = |s: &SizeResult, v: u64| format!("{:.2}", s.per_test(v));
        let rows = vec![
            row("bench creates N LocustTests", &|s| secs(s.create_tests)),
            row(
                "burst: first create → all Running, 3 children each",
                &|s| secs(s.to_running),
            ),
            row("floor: plain client creates the 3×N children", &|s| {
                secs(s.floor.create_only)
            }),
            row("floor: … and every master pod Running", &|s| {
                secs(s.floor.masters_running)
            }),
            row("ratio burst / floor (pods Running)", &|s| {
                format!("{:.2}", s.ratio())
            }),
            row("scenario floor: + the N LocustTest creates", &|s| {
                secs(s.floor.scenario)
            }),
            row("ratio burst / scenario floor", &|s| {
                format!("{:.2}", ratio(s.to_running, s.floor.scenario))
            }),
            row("ratio burst / floor (create-only)", &|s| {
                format!("{:.2}", s.ratio_create_only())
            }),
            row("complete masters → all Succeeded", &|s| {
                secs(s.to_succeeded)
            }),
            row("  of which the harness completing the pods", &|s| {
                secs(s.completions_done)
            }),
            row("operator CPU, start → all finished", &|s| {
                format!("{:.2} s", s.after.cpu_secs)
            }),
            row("operator peak RSS (VmHWM)", &|s| {
                format!("{:.1} MiB", mib(s.after.hwm_kib))
            }),
            row("operator RSS when all Running", &|s| {
                format!("{:.1} MiB", mib(s.at_running.rss_kib))
            }),
            row("operator steady RSS, all finished", &|s| {
                format!("{:.1} MiB", mib(s.after.rss_kib))
            }),
            row("writes per test: children created", &|s| {
                per(s, s.life.child_creates)
            }),
            row("writes per test: status", &|s| per(s, s.life.status_writes)),
            row("writes per test: other objects", &|s| {
                per(s, s.life.other_writes.values().sum())
            }),
            row("writes per test: total (children + status)", &|s| {
                per(s, s.life.object_writes())
            }),
            row("writes per test: Events (separate)", &|s| {
                per(s, s.life.event_writes)
            }),
            row("status writes: tests with 1/2/3/4/5+", &|s| {
                let h = &s.life.status_writes_per_test;
                let get = |k: u64| h.get(&k).copied().unwrap_or(0);
                let more: u64 = h.range(5..).map(|(_, v)| *v).sum();
                format!("{}/{}/{}/{}/{}", get(1), get(2), get(3), get(4), more)
            }),
            row("reads per test (get/list/watch of objects)", &|s| {
                per(s, s.life.reads)
            }),
            row("housekeeping reads (lease, /version), whole life", &|s| {
                s.life.housekeeping_reads.to_string()
            }),
            row("lease writes (leader election), whole life", &|s| {
                s.life.lease_writes.to_string()
            }),
            row("no-op writes / failed writes", &|s| {
                format!("{} / {}", s.life.noop_writes, s.life.failed_writes)
            }),
            row("restart over N finished: start-up", &|s| {
                ms(s.restart.startup)
            }),
            row("restart over N finished: writes (no lease)", &|s| {
                s.restart.requests.writes_excluding_leases().to_string()
            }),
            row("restart over N finished: reads", &|s| {
                s.restart.requests.reads.to_string()
            }),
            row("restart over N finished: RSS", &|s| {
                format!("{:.1} MiB", mib(s.restart.sample.rss_kib))
            }),
            row("Service create p50 / p99: operator | floor", &|s| {
                latencies(&s.creates.services, &s.floor.creates.services)
            }),
            row("Job create p50 / p99: operator | floor", &|s| {
                latencies(&s.creates.jobs, &s.floor.creates.jobs)
            }),
            row(
                "API writes during the burst: operator | floor | scenario",
                &|s| {
                    format!(
                        "{} | {} | {}",
                        s.creates.writes, s.floor.creates.writes, s.floor.scenario_writes
                    )
                },
            ),
            row("ClusterIPs allocated per second: operator | floor", &|s| {
                format!(
                    "{:.0} | {:.0}",
                    s.creates.cluster_ips.rate(),
                    s.floor.creates.cluster_ips.rate()
                )
            }),
            row("CPU during burst: kube-apiserver", &|s| {
                format!("{:.2} cores", s.burst_load.cores("kube-apiserver"))
            }),
            row("CPU during burst: etcd", &|s| {
                format!("{:.2} cores", s.burst_load.cores("etcd"))
            }),
            row("CPU during burst: controller-manager", &|s| {
                format!("{:.2} cores", s.burst_load.cores("kube-controller-manager"))
            }),
            row("CPU during burst: scheduler + kwok", &|s| {
                format!(
                    "{:.2} cores",
                    s.burst_load.cores("kube-scheduler") + s.burst_load.cores("kwok")
                )
            }),
            row("CPU during burst: operator", &|s| {
                format!("{:.2} cores", s.burst_load.cores("operator"))
            }),
            row("CPU during burst: machine busy (other work)", &|s| {
                format!(
                    "{:.2} ({:.2}) cores",
                    s.burst_load.machine_cores,
                    s.burst_load.foreign_cores()
                )
            }),
            row(
                "CPU during scenario floor: kube-apiserver / machine (other)",
                &|s| apiserver_load(&s.floor.scenario_load),
            ),
            row(
                "CPU during floor: kube-apiserver / machine (other work)",
                &|s| apiserver_load(&s.floor.load),
            ),
        ];
        let mut out = table(&header, &rows);
        out.push('\n');
        let i = &self.idle_empty;
        let mut single = vec![vec![
            format!("start-up to ready (median of {})", self.startup.runs.len()),
            format!(
                "{} (min {}, max {})",
                ms(self.startup.median()),
                ms(self.startup.min()),
                ms(self.startup.max())
            ),
        ]];
        single.extend(idle_rows("empty cluster", i));
        single.extend(idle_rows(
            &format!("{SUSPENDED_SCHEDULES} suspended schedules"),
            &self.idle_schedules,
        ));
        if let Some((n, idle)) = self
            .sizes
            .iter()
            .find_map(|s| s.idle.as_ref().map(|i| (s.n, i)))
        {
            single.extend(idle_rows(&format!("{n} finished tests"), idle));
        }
        single.push(vec![
            "operator binary".to_owned(),
            format!(
                "{} bytes ({:.1} MiB), {}",
                self.binary.bytes,
                mib(self.binary.bytes / 1024),
                match self.binary.stripped {
                    Some(true) => "stripped",
                    Some(false) => "not stripped",
                    None => "not an ELF64 file",
                }
            ),
        ]);
        out.push_str(&table(&["Figure".into(), "Measured".into()], &single));
        out
    }

    /// Budgets against the measurements, with the ratio measured/budget.
    pub fn budgets(&self) -> String {
        let mut rows = Vec::new();
        let median = self.startup.median();
        rows.push(vec![
            "start-up to ready (warm apiserver)".into(),
            "≤ 200 ms".into(),
            ms(median),
            format!("{:.2}", ratio(median, budget::STARTUP)),
            verdict(median <= budget::STARTUP).into(),
        ]);
        let largest = self.sizes.iter().max_by_key(|s| s.n);
        if let Some(s) = largest {
            rows.push(vec![
                format!("burst of {} to Running vs floor (pods Running)", s.n),
                format!("≤ {:.1}× floor", budget::BURST_RATIO),
                format!(
                    "{} vs {} = {:.2}×",
                    secs(s.to_running),
                    secs(s.floor.masters_running),
                    s.ratio()
                ),
                format!("{:.2}", s.ratio() / budget::BURST_RATIO),
                verdict(s.ratio() <= budget::BURST_RATIO).into(),
            ]);
        }
        for s in &self.sizes {
            let w = s.per_test(s.life.object_writes());
            rows.push(vec![
                format!("writes per LocustTest, creation → Succeeded (N={})", s.n),
                format!("≤ {}", budget::WRITES_PER_TEST),
                format!("{w:.2}"),
                format!("{:.2}", w / budget::WRITES_PER_TEST),
                verdict(w <= budget::WRITES_PER_TEST).into(),
            ]);
        }
        let noops: u64 = self.sizes.iter().map(|s| s.life.noop_writes).sum();
        rows.push(vec![
            "no-op writes (all sizes)".into(),
            "0".into(),
            noops.to_string(),
            "-".into(),
            verdict(noops == 0).into(),
        ]);
        let mut idle_writes = self.idle_empty.requests.writes_excluding_leases()
            + self.idle_schedules.requests.writes_excluding_leases();
        for s in &self.sizes {
            idle_writes += s.restart.requests.writes_excluding_leases();
            idle_writes += s
                .idle
                .as_ref()
                .map_or(0, |i| i.requests.writes_excluding_leases());
        }
        rows.push(vec![
            "writes when nothing changed (idle windows, restarts, suspended schedules; leases excluded)".into(),
            "0".into(),
            idle_writes.to_string(),
            "-".into(),
            verdict(idle_writes == 0).into(),
        ]);
        for (what, idle) in [
            ("empty cluster", &self.idle_empty),
            (
                &*format!("{SUSPENDED_SCHEDULES} suspended schedules"),
                &self.idle_schedules,
            ),
        ] {
            let idle_rss = mib(idle.end.rss_kib);
            rows.push(vec![
                format!("idle RSS, {what}"),
                format!("≤ {} MiB", budget::IDLE_RSS_MIB),
                format!("{idle_rss:.1} MiB"),
                format!("{:.2}", idle_rss / budget::IDLE_RSS_MIB),
                verdict(idle_rss <= budget::IDLE_RSS_MIB).into(),
            ]);
        }
        if let Some(s) = largest {
            let fresh = s
                .idle
                .as_ref()
                .map_or(s.restart.sample.rss_kib, |i| i.end.rss_kib);
            let worst = mib(s.after.hwm_kib.max(fresh));
            rows.push(vec![
                format!(
                    "RSS with {} tests cached (peak of burst, and restarted idle)",
                    s.n
                ),
                format!("≤ {} MiB", budget::RSS_1000_MIB),
                format!(
                    "peak {:.1} MiB, restarted {:.1} MiB",
                    mib(s.after.hwm_kib),
                    mib(fresh)
                ),
                format!("{:.2}", worst / budget::RSS_1000_MIB),
                verdict(worst <= budget::RSS_1000_MIB).into(),
            ]);
        }
        table(
            &[
                "Budget".into(),
                "Allowed".into(),
                "Measured".into(),
                "Measured / allowed".into(),
                "".into(),
            ],
            &rows,
        )
    }

    /// The Markdown block `docs/performance.md` keeps between its markers.
    pub fn markdown(&self, command: &str) -> String {
        let m = &self.machine;
        let mut out = String::new();
        out.push_str(&format!(
            "Measured by `{command}` in {:.0} s wall time.\n\n",
            self.wall.as_secs_f64()
        ));
        out.push_str(&format!(
            "Machine: {} CPUs (`nproc`), {} MiB memory, {}, Linux {}.\n",
            m.cpus, m.memory_mib, m.cpu_model, m.kernel
        ));
        out.push_str(&format!(
            "Operator binary: `{}`, {} bytes ({}).\n\n",
            self.binary
                .path
                .strip_prefix(crate::operator::workspace_root())
                .unwrap_or(&self.binary.path)
                .display(),
            self.binary.bytes,
            match self.binary.stripped {
                Some(true) => "stripped",
                Some(false) => "not stripped",
                None => "not an ELF64 file",
            }
        ));
        out.push_str("### Results\n\n");
        out.push_str(&self.table());
        out.push_str("\n### Budgets\n\n");
        out.push_str(&self.budgets());
        out.push_str("\n### Start-up runs\n\n");
        let runs: Vec<String> = self.startup.runs.iter().map(|d| ms(*d)).collect();
        out.push_str(&format!("{}\n", runs.join(", ")));
        out.push_str("\n### Reads by the operator over each run (whole life)\n\n");
        for s in &self.sizes {
            let kinds: Vec<String> = s
                .life
                .reads_by_kind
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out.push_str(&format!("- N={}: {}\n", s.n, kinds.join(", ")));
        }
        let noops: Vec<&String> = self
            .sizes
            .iter()
            .flat_map(|s| s.life.noop_examples.iter())
            .collect();
        if !noops.is_empty() {
            out.push_str("\nNo-op writes seen (examples):\n\n");
            for n in noops {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

/// Start and end markers of the generated block in `docs/performance.md`.
pub const MARKERS: (&str, &str) = (
    "<!-- bench:begin (generated by `make bench`; edit outside these markers) -->",
    "<!-- bench:end -->",
);

/// `existing` with the block between [`MARKERS`] replaced by `block`; when
/// the markers are missing, a new document holding just the block.
pub fn splice_markdown(existing: Option<&str>, block: &str) -> String {
    let (begin, end) = MARKERS;
    if let Some(text) = existing
        && let Some(b) = text.find(begin)
        && let Some(e) = text[b..].find(end).map(|e| b + e)
    {
        return format!("{}{begin}\n{block}{}", &text[..b], &text[e..]);
    }
    format!("# Performance\n\n{begin}\n{block}{end}\n")
}

/// The two rows of an idle window over `what`: RSS (and peak), then CPU,
/// writes (leases excluded) and lease writes.
fn idle_rows(what: &str, idle: &Idle) -> [Vec<String>; 2] {
    [
        vec![
            format!("idle, {what}, {} s: RSS", idle.window.as_secs()),
            format!(
                "{:.1} MiB (peak {:.1} MiB)",
                mib(idle.end.rss_kib),
                mib(idle.end.hwm_kib)
            ),
        ],
        vec![
            format!("idle, {what}: CPU / writes (no lease) / lease writes"),
            format!(
                "{:.2} s / {} / {}",
                idle.cpu_secs(),
                idle.requests.writes_excluding_leases(),
                idle.requests.lease_writes
            ),
        ],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{ApiCounts, Floor, Startup};

    #[test]
    fn startup_median_and_table() {
        let s = Startup {
            runs: [90, 70, 120, 80].map(Duration::from_millis).to_vec(),
        };
        assert_eq!(s.median(), Duration::from_millis(80));
        assert_eq!(s.min(), Duration::from_millis(70));
        assert_eq!(s.max(), Duration::from_millis(120));
        let t = table(
            &["a".into(), "bb".into()],
            &[vec!["long cell".into(), "1".into()]],
        );
        assert_eq!(
            t,
            "| a         | bb  |\n|-----------|-----|\n| long cell | 1   |\n"
        );
    }

    #[test]
    fn report_renders_every_row() {
        let report = BenchReport {
            startup: Startup {
                runs: vec![Duration::from_millis(50)],
            },
            sizes: vec![SizeResult {
                n: 20,
                to_running: Duration::from_secs(3),
                floor: Floor {
                    masters_running: Duration::from_secs(2),
                    create_only: Duration::from_secs(1),
                    ..Floor::default()
                },
                life: ApiCounts {
                    child_creates: 60,
                    status_writes: 60,
                    ..ApiCounts::default()
                },
                ..SizeResult::default()
            }],
            ..BenchReport::default()
        };
        let t = report.table();
        assert!(t.contains("| ratio burst / floor (pods Running)"), "{t}");
        assert!(t.contains("| 1.50"), "{t}");
        let b = report.budgets();
        assert!(
            b.lines().any(
                |l| l.contains("writes per LocustTest, creation → Succeeded (N=20)")
                    && l.contains("| ≤ 6 ")
                    && l.contains("| met")
            ),
            "{b}"
        );
        assert!(b.contains("| 6.00 "), "{b}");
        let md = report.markdown("make bench");
        assert!(md.starts_with("Measured by `make bench`"), "{md}");
    }

    #[test]
    fn markers_keep_the_hand_written_parts() {
        let (b, e) = MARKERS;
        let fresh = splice_markdown(None, "table\n");
        assert!(fresh.contains(&format!("{b}\ntable\n{e}")));
        let doc = format!("# P\n\nintro\n\n{b}\nold\n{e}\n\n## Analysis\nkept\n");
        let new = splice_markdown(Some(&doc), "new\n");
        assert_eq!(
            new,
            format!("# P\n\nintro\n\n{b}\nnew\n{e}\n\n## Analysis\nkept\n")
        );
    }
}
