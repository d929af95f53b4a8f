//! The apiserver's audit log: the policy the bench clusters run with,
//! reading the log, counting requests and latencies per user.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::{BENCH_NAMESPACE, FLOOR_ACCOUNT};
use crate::operator::{OPERATOR_NAMESPACE, SERVICE_ACCOUNT};

/// Username of the operator's ServiceAccount.
pub fn operator_user() -> String {
    format!("system:serviceaccount:{OPERATOR_NAMESPACE}:{SERVICE_ACCOUNT}")
}

/// Username of the floor client's ServiceAccount.
pub fn floor_user() -> String {
    format!("system:serviceaccount:{BENCH_NAMESPACE}:{FLOOR_ACCOUNT}")
}

/// The audit policy: the operator's and the floor client's requests at
/// `Metadata`, their updates and patches at `RequestResponse` (the response
/// carries the object's resourceVersion: no-op detection), every write to a
/// LocustTest by anyone at `RequestResponse` (so each test's
/// resourceVersions are all known), the apiserver's ClusterIP allocations at
/// `Metadata`; nothing else. Creates of the children and Events stay at
/// `Metadata`: a create always makes a new object, and logging their bodies
/// would cost the apiserver more CPU in the operator's run (more writes) than
/// in the floor's.
pub fn audit_policy() -> String {
    let users = serde_json::json!([operator_user(), floor_user()]);
    let writes = serde_json::json!(["update", "patch"]);
    let policy = serde_json::json!({
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "omitManagedFields": true,
        "rules": [
            { "level": "RequestResponse", "users": users, "verbs": writes },
            { "level": "Metadata", "users": users },
            {
                "level": "RequestResponse",
                "verbs": ["create", "update", "patch"],
                "resources": [{ "group": "locust.io", "resources": ["locusttests", "locusttests/status"] }],
            },
            // ClusterIP allocations (by the apiserver itself), for the
            // evidence of what bounds Service creation.
            {
                "level": "Metadata",
                "verbs": ["create"],
                "resources": [{ "group": "networking.k8s.io", "resources": ["ipaddresses"] }],
            },
            { "level": "None" },
        ],
    });
    crate::yaml::to_string(&policy).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAudit {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    user: RawUser,
    #[serde(default)]
    object_ref: Option<RawObjectRef>,
    #[serde(default)]
    response_status: Option<RawStatus>,
    #[serde(default)]
    response_object: Option<RawObject>,
    request_received_timestamp: String,
    #[serde(default)]
    stage_timestamp: Option<String>,
}

#[derive(Deserialize)]
struct RawUser {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObjectRef {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_group: Option<String>,
    #[serde(default)]
    subresource: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Deserialize)]
struct RawObject {
    #[serde(default)]
    metadata: Option<RawMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// One API request, from its last audit stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// The request's auditID.
    pub id: String,
    /// Who sent it.
    pub user: String,
    /// get, list, watch, create, update, patch, delete, …
    pub verb: String,
    /// API group ("" for core).
    pub group: String,
    /// Resource (plural), e.g. `jobs`.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: String,
    /// Namespace ("" when cluster-scoped).
    pub namespace: String,
    /// Object name ("" for collections).
    pub name: String,
    /// HTTP status code (0 while a watch is still open).
    pub code: u16,
    /// When the apiserver received the request.
    pub received: Timestamp,
    /// When its last logged stage happened (the response, for a request
    /// that completed).
    pub completed: Timestamp,
    /// resourceVersion of the object in the response, when logged.
    pub response_rv: Option<u64>,
}

impl AuditRecord {
    /// Whether the verb changes state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    fn key(&self) -> (String, String, String, String) {
        (
            self.group.clone(),
            self.resource.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }
}

/// Parses an audit log (JSON lines); one record per request (its last stage
/// wins), sorted by the response's resourceVersion, then by receive time.
pub fn read_audit_log(path: &Path) -> Result<Vec<AuditRecord>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut by_id: BTreeMap<String, AuditRecord> = BTreeMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawAudit = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        let complete = raw.stage == "ResponseComplete" || raw.stage == "Panic";
        if !complete && by_id.contains_key(&raw.audit_id) {
            continue;
        }
        let oref = raw.object_ref.unwrap_or(RawObjectRef {
            resource: None,
            namespace: None,
            name: None,
            api_group: None,
            subresource: None,
        });
        let meta = raw.response_object.and_then(|o| o.metadata);
        let received: Timestamp = raw
            .request_received_timestamp
            .parse()
            .with_context(|| format!("{} line {}: timestamp", path.display(), i + 1))?;
        let name = oref
            .name
            .filter(|n| !n.is_empty())
            .or_else(|| meta.as_ref().and_then(|m| m.name.clone()))
            .unwrap_or_default();
        let record = AuditRecord {
            id: raw.audit_id.clone(),
            user: raw.user.username,
            verb: raw.verb,
            group: oref.api_group.unwrap_or_default(),
            resource: oref.resource.unwrap_or_default(),
            subresource: oref.subresource.unwrap_or_default(),
            namespace: oref.namespace.unwrap_or_default(),
            name,
            code: if complete {
                raw.response_status.and_then(|s| s.code).unwrap_or(0)
            } else {
                0
            },
            received,
            completed: raw
                .stage_timestamp
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(received),
            response_rv: meta
                .and_then(|m| m.resource_version)
                .and_then(|rv| rv.parse().ok()),
        };
        by_id.insert(raw.audit_id, record);
    }
    let mut records: Vec<AuditRecord> = by_id.into_values().collect();
    records.sort_by(|a, b| {
        (a.response_rv.unwrap_or(u64::MAX), a.received, &a.id).cmp(&(
            b.response_rv.unwrap_or(u64::MAX),
            b.received,
            &b.id,
        ))
    });
    Ok(records)
}

/// One user's API requests in a time window, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiCounts {
    /// get, list and watch requests of API objects, Leases excluded.
    pub reads: u64,
    /// Reads by `<verb> <resource>` (housekeeping included).
    pub reads_by_kind: BTreeMap<String, u64>,
    /// Reads that do not depend on the tests: the leader election's Lease
    /// gets and the `/version` reachability checks.
    pub housekeeping_reads: u64,
    /// Creates of Jobs and Services (the children).
    pub child_creates: u64,
    /// Writes of LocustTest status.
    pub status_writes: u64,
    /// Creates and patches of Events.
    pub event_writes: u64,
    /// Writes of Leases (leader election renewals).
    pub lease_writes: u64,
    /// Any other write, by `<verb> <resource>[/<subresource>]`.
    pub other_writes: BTreeMap<String, u64>,
    /// Writes answered with an error (e.g. 409 Conflict).
    pub failed_writes: u64,
    /// Successful updates/patches whose response kept the object's
    /// resourceVersion: they changed nothing.
    pub noop_writes: u64,
    /// Up to 5 no-op writes, for the report.
    pub noop_examples: Vec<String>,
    /// Status writes per LocustTest name: how many tests got 1, 2, 3… writes.
    pub status_writes_per_test: BTreeMap<u64, u64>,
}

impl ApiCounts {
    /// Writes other than lease renewals and Events.
    pub fn object_writes(&self) -> u64 {
        self.child_creates + self.status_writes + self.other_writes.values().sum::<u64>()
    }

    /// Every write but lease renewals (Events included).
    pub fn writes_excluding_leases(&self) -> u64 {
        self.object_writes() + self.event_writes
    }
}

/// Counts `user`'s requests received in `[from, to)`. A write is a no-op
/// when it succeeded and the resourceVersion in its response is one an
/// earlier write of the same object (by anyone audited) already returned:
/// every real change gets a new, unique resourceVersion.
pub fn count_requests(
    records: &[AuditRecord],
    user: &str,
    from: Timestamp,
    to: Timestamp,
) -> ApiCounts {
    let mut counts = ApiCounts::default();
    let mut seen: BTreeMap<(String, String, String, String), BTreeSet<u64>> = BTreeMap::new();
    let mut per_test: BTreeMap<String, u64> = BTreeMap::new();
    for r in records {
        let in_window = r.user == user && r.received >= from && r.received < to;
        let duplicate_rv = r
            .response_rv
            .is_some_and(|rv| seen.get(&r.key()).is_some_and(|s| s.contains(&rv)));
        if let Some(rv) = r.response_rv
            && r.is_write()
        {
            seen.entry(r.key()).or_default().insert(rv);
        }
        if !in_window {
            continue;
        }
        if !r.is_write() {
            if r.resource.is_empty() || r.resource == "leases" {
                counts.housekeeping_reads += 1;
            } else {
                counts.reads += 1;
            }
            let what = if r.resource.is_empty() {
                "non-resource"
            } else {
                &r.resource
            };
            *counts
                .reads_by_kind
                .entry(format!("{} {what}", r.verb))
                .or_default() += 1;
            continue;
        }
        if r.code >= 400 {
            counts.failed_writes += 1;
        }
        if (200..300).contains(&r.code)
            && matches!(r.verb.as_str(), "update" | "patch")
            && duplicate_rv
        {
            counts.noop_writes += 1;
            if counts.noop_examples.len() < 5 {
                counts.noop_examples.push(format!(
                    "{} {}/{} {}/{} rv {}",
                    r.verb,
                    r.resource,
                    r.subresource,
                    r.namespace,
                    r.name,
                    r.response_rv.unwrap_or_default()
                ));
            }
        }
        match (r.verb.as_str(), r.resource.as_str(), r.subresource.as_str()) {
            ("create", "jobs" | "services", "") => counts.child_creates += 1,
            (_, "locusttests", "status") => {
                counts.status_writes += 1;
                *per_test.entry(r.name.clone()).or_default() += 1;
            }
            (_, "events", _) => counts.event_writes += 1,
            (_, "leases", _) => counts.lease_writes += 1,
            (verb, resource, sub) => {
                let kind = if sub.is_empty() {
                    format!("{verb} {resource}")
                } else {
                    format!("{verb} {resource}/{sub}")
                };
                *counts.other_writes.entry(kind).or_default() += 1;
            }
        }
    }
    for n in per_test.values() {
        *counts.status_writes_per_test.entry(*n).or_default() += 1;
    }
    counts
}

/// Latencies of one kind of request (from its audit timestamps).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Requests counted.
    pub count: u64,
    /// Median time from receipt to response.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// From the first receipt to the last response.
    pub span: Duration,
}

impl Latency {
    /// Requests per second over [`Latency::span`].
    pub fn rate(&self) -> f64 {
        let secs = self.span.as_secs_f64();
        if secs > 0.0 {
            self.count as f64 / secs
        } else {
            0.0
        }
    }
}

/// Latencies of `verb` on `resource` by `user` (any user when empty),
/// received in `[from, to)`.
pub fn latency(
    records: &[AuditRecord],
    user: &str,
    verb: &str,
    resource: &str,
    from: Timestamp,
    to: Timestamp,
) -> Latency {
    let picked: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| {
            (user.is_empty() || r.user == user)
                && r.verb == verb
                && r.resource == resource
                && r.subresource.is_empty()
                && r.received >= from
                && r.received < to
        })
        .collect();
    let mut took: Vec<Duration> = picked
        .iter()
        .map(|r| {
            Duration::try_from(r.completed.duration_since(r.received)).unwrap_or(Duration::ZERO)
        })
        .collect();
    took.sort();
    let at = |q: f64| -> Duration {
        if took.is_empty() {
            return Duration::ZERO;
        }
        let i = ((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1;
        took[i]
    };
    let first = picked.iter().map(|r| r.received).min();
    let last = picked.iter().map(|r| r.completed).max();
    Latency {
        count: u64::try_from(took.len()).unwrap_or(u64::MAX),
        p50: at(0.5),
        p99: at(0.99),
        span: match (first, last) {
            (Some(a), Some(b)) => Duration::try_from(b.duration_since(a)).unwrap_or_default(),
            _ => Duration::ZERO,
        },
    }
}

/// Create latencies of the children and the apiserver's ClusterIP
/// allocations in a burst.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CreateLatencies {
    /// Service creates by the measured client.
    pub services: Latency,
    /// Job creates by the measured client.
    pub jobs: Latency,
    /// IPAddress creates (one per ClusterIP) by the apiserver itself.
    pub cluster_ips: Latency,
    /// Every audited write in the window but the ClusterIP allocations: the
    /// measured client's, and the bench's LocustTest creates.
    pub writes: u64,
}

impl CreateLatencies {
    pub(super) fn measure(
        records: &[AuditRecord],
        user: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Self {
        Self {
            services: latency(records, user, "create", "services", from, to),
            jobs: latency(records, user, "create", "jobs", from, to),
            cluster_ips: latency(records, "", "create", "ipaddresses", from, to),
            writes: records
                .iter()
                .filter(|r| {
                    r.is_write()
                        && r.resource != "ipaddresses"
                        && r.received >= from
                        && r.received < to
                })
                .count() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// One audit event: auditID, stage, user, verb, resource, subresource,
    /// name, the response's resourceVersion, the code, and the time (received
    /// and stage) on 2026-01-01 as `HH:MM:SS.ffffff`.
    type Event<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<u64>,
        u16,
        &'a str,
    );

    /// The audit log line of `event`.
    fn line(&(id, stage, user, verb, resource, sub, name, rv, code, time): &Event<'_>) -> String {
        let at = format!("2026-01-01T{time}Z");
        let mut v = serde_json::json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": id,
            "stage": stage,
            "verb": verb,
            "user": { "username": user, "groups": ["system:serviceaccounts"] },
            "objectRef": { "resource": resource, "namespace": "bench", "name": name, "apiGroup": "locust.io", "apiVersion": "v2" },
            "responseStatus": { "metadata": {}, "code": code },
            "requestReceivedTimestamp": at,
            "stageTimestamp": at,
        });
        if !sub.is_empty() {
            v["objectRef"]["subresource"] = sub.into();
        }
        if let Some(rv) = rv {
            v["responseObject"] = serde_json::json!({ "metadata": { "name": name, "resourceVersion": rv.to_string() } });
        }
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn audit_counts_writes_reads_and_noops() {
        let op = operator_user();
        let (done, started) = ("ResponseComplete", "ResponseStarted");
        // One event a line.
        #[rustfmt::skip]
        let events: [Event; 13] = [
            // The bench creates the test (rv 10); the operator patches its
            // status twice for real (11, 13) and once without effect (13).
            ("a", done, "admin", "create", "locusttests", "", "t-0", Some(10), 201, "00:00:01.000000"),
            ("b", done, &op, "patch", "locusttests", "status", "t-0", Some(11), 200, "00:00:02.000000"),
            ("c", done, &op, "patch", "locusttests", "status", "t-0", Some(13), 200, "00:00:03.000000"),
            ("d", done, &op, "patch", "locusttests", "status", "t-0", Some(13), 200, "00:00:04.000000"),
            ("e", done, &op, "create", "jobs", "", "t-0-master", Some(12), 201, "00:00:02.500000"),
            ("f", done, &op, "create", "jobs", "", "t-0-master", None, 409, "00:00:02.600000"),
            // Housekeeping: a Lease get (and a non-resource /version get, below).
            ("l", done, &op, "get", "leases", "", "lock", None, 200, "00:00:01.100000"),
            // A watch still open (only ResponseStarted) and a finished list.
            ("g", started, &op, "watch", "pods", "", "", None, 200, "00:00:01.500000"),
            ("h", started, &op, "watch", "jobs", "", "", None, 200, "00:00:01.500000"),
            ("h", done, &op, "watch", "jobs", "", "", None, 200, "00:00:01.500000"),
            ("i", done, &op, "update", "leases", "", "lock", Some(14), 200, "00:00:05.000000"),
            ("j", done, &op, "create", "events", "", "t-0.1", Some(15), 201, "00:00:05.000000"),
            // Outside the window.
            ("k", done, &op, "patch", "locusttests", "status", "t-0", Some(20), 200, "00:01:00.000000"),
        ];
        let mut lines: Vec<String> = events.iter().map(line).collect();
        lines.push(
            serde_json::json!({
                "auditID": "v",
                "stage": "ResponseComplete",
                "verb": "get",
                "requestURI": "/version",
                "user": { "username": op },
                "responseStatus": { "code": 200 },
                "requestReceivedTimestamp": "2026-01-01T00:00:01.200000Z",
            })
            .to_string(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let records = read_audit_log(&path).unwrap();
        assert_eq!(records.len(), 13, "one record per auditID");
        let c = count_requests(
            &records,
            &op,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:30Z"),
        );
        assert_eq!(c.status_writes, 3);
        assert_eq!(c.child_creates, 2);
        assert_eq!(c.failed_writes, 1);
        assert_eq!(c.noop_writes, 1, "{:?}", c.noop_examples);
        assert!(
            c.noop_examples[0].contains("t-0 rv 13"),
            "{:?}",
            c.noop_examples
        );
        assert_eq!(c.lease_writes, 1);
        assert_eq!(c.event_writes, 1);
        assert_eq!(c.reads, 2);
        assert_eq!(c.housekeeping_reads, 2);
        assert_eq!(c.reads_by_kind["get non-resource"], 1);
        assert_eq!(c.reads_by_kind["watch pods"], 1);
        assert_eq!(c.object_writes(), 5);
        assert_eq!(c.writes_excluding_leases(), 6);
        assert_eq!(c.status_writes_per_test[&3], 1);
        let admin = count_requests(
            &records,
            "admin",
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T00:00:30Z"),
        );
        assert_eq!(admin.other_writes["create locusttests"], 1);
        assert_eq!(admin.noop_writes, 0);
    }

    #[test]
    fn latencies_of_one_kind() {
        let rec = |id: &str, resource: &str, at: &str, took_ms: i64| {
            let received = ts(at);
            AuditRecord {
                id: id.into(),
                user: "u".into(),
                verb: "create".into(),
                group: String::new(),
                resource: resource.into(),
                subresource: String::new(),
                namespace: "bench".into(),
                name: id.into(),
                code: 201,
                received,
                completed: received
                    .checked_add(k8s_openapi::jiff::SignedDuration::from_millis(took_ms))
                    .unwrap(),
                response_rv: None,
            }
        };
        let records: Vec<AuditRecord> = (0..100)
            .map(|i| {
                rec(
                    &format!("s{i}"),
                    "services",
                    "2026-01-01T00:00:01Z",
                    10 * (i + 1),
                )
            })
            .chain([rec("j", "jobs", "2026-01-01T00:00:02Z", 5)])
            .collect();
        let from = ts("2026-01-01T00:00:00Z");
        let to = ts("2026-01-01T00:01:00Z");
        let l = latency(&records, "u", "create", "services", from, to);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50, Duration::from_millis(500));
        assert_eq!(l.p99, Duration::from_millis(990));
        assert_eq!(l.span, Duration::from_millis(1000));
        assert!((l.rate() - 100.0).abs() < 1e-9);
        assert_eq!(latency(&records, "", "create", "jobs", from, to).count, 1);
        assert_eq!(
            latency(&records, "other", "create", "jobs", from, to).count,
            0
        );
        assert_eq!(Latency::default().rate(), 0.0);
    }

    #[test]
    fn policy_names_both_users_and_parses() {
        let policy: serde_json::Value = crate::yaml::from_str(&audit_policy()).unwrap();
        assert_eq!(policy["kind"], "Policy");
        let users = &policy["rules"][0]["users"];
        assert_eq!(
            users[0],
            "system:serviceaccount:locust-system:locust-k8s-operator"
        );
        assert_eq!(users[1], "system:serviceaccount:bench:bench-floor");
        assert_eq!(
            policy["rules"][3]["resources"][0]["resources"][0],
            "ipaddresses"
        );
        assert_eq!(policy["rules"][4]["level"], "None");
    }
}
