//! Real-node end-to-end tests of the LocustTest features that kwok cannot
//! show: each boots its own cluster with the real kubelet node
//! ([`RealNodeFixture`]), runs the operator as a process, and lets a real
//! Locust master and real workers (the Locust image built here, real
//! containers) run against the HTTP target image behind a Service.
//!
//! What Locust saw is read back from the target: the locustfiles include
//! `olm_tests::fixture::REPORT_PY`, so every Locust process (master, each
//! worker process) reports its UID, environment and files as one request
//! path, and their requests carry what they computed; the test reads the
//! target's `/stats`.
//!
//! Skips without the tools or images unless `CI`/`LOCUST_REQUIRE_TOOLS`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use locust_operator::api::{Phase, condition_type as ct};
use locust_operator::stats;
use olm_tests::fixture::{
    self, LOCUSTFILE_PATH, RealNodeFixture, Report, locust_spec, locustfile, phase,
};
use olm_tests::images;
use serde_json::json;

/// Bound on one whole run (creation to final phase).
const RUN: Duration = Duration::from_secs(180);

fn elapsed(t: Instant) -> String {
    format!("{:.1}s", t.elapsed().as_secs_f64())
}

/// The reports of `role`.
fn of_role<'a>(reports: &'a [Report], role: &str) -> Vec<&'a Report> {
    reports.iter().filter(|r| r.role == role).collect()
}

/// One master and two worker processes reported.
fn one_master_two_workers(reports: &[Report]) -> bool {
    of_role(reports, "master").len() == 1 && of_role(reports, "worker").len() == 2
}

/// Checks a finished test: Succeeded, the master exited 0.
async fn assert_succeeded(
    fx: &RealNodeFixture,
    ns: &str,
    name: &str,
    test: &locust_operator::api::LocustTest,
) -> Result<()> {
    ensure!(
        phase(test) == Some(Phase::Succeeded),
        "{name}: phase {:?}, status {:?}",
        phase(test),
        test.status
    );
    let code = fx.master_exit_code(ns, name).await?;
    ensure!(code == Some(0), "{name}: master exit code {code:?}");
    Ok(())
}

/// (a) `testFiles.configMapRef` mounted at `/lotest/src` (the locustfile
/// Locust runs) and `testFiles.libConfigMapRef` at `/opt/locust/lib`, from
/// where the locustfile imports a helper module whose function builds the
/// request path: the target sees that path, from the workers' users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_test_files_and_lib_are_mounted_and_imported() -> Result<()> {
    let (test, ns) = (
        "real_node_test_files_and_lib_are_mounted_and_imported",
        "files",
    );
    RealNodeFixture::run(test, "real-files", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        let token = fixture::token("lib");
        fx.config_map(
            ns,
            "lib",
            &[(
                "lotest_helper.py",
                &format!(
                    "TOKEN = {token:?}\n\n\ndef tagged(name):\n    \
                     return f\"/lib/{{TOKEN}}/{{name}}\"\n"
                ),
            )],
        )
        .await?;
        let body = r#"
import os
import sys

try:
    import lotest_helper  # noqa: F401
    plain_import = "yes"
except ImportError:
    plain_import = "no"
sys.path.insert(0, "/opt/locust/lib")
import lotest_helper


def _listing(path):
    return ",".join(sorted(n for n in os.listdir(path) if not n.startswith("..")))


def facts(environment):
    return {
        "locustfile": os.path.abspath(__file__),
        "src": _listing("/lotest/src"),
        "lib": _listing("/opt/locust/lib"),
        "helper": os.path.abspath(lotest_helper.__file__),
        "plain_import": plain_import,
    }
"#;
        fx.locustfile(
            ns,
            "files",
            &locustfile(body, "lotest_helper.tagged(\"index\")"),
        )
        .await?;
        let spec = locust_spec(
            "files",
            "8s",
            json!({"testFiles": {"libConfigMapRef": "lib"}}),
        );
        let (done, took) = fx.run_test(ns, "files", spec, RUN).await?;
        assert_succeeded(fx, ns, "files", &done).await?;

        let stats = fx.target_stats(&target).await?;
        let path = format!("/lib/{token}/index");
        let hits = stats.paths.get(&path).map_or(0, |p| p.requests);
        ensure!(hits > 0, "no request to {path}: {:?}", stats.paths.keys());
        ensure!(stats.errors == 0, "{stats:?}");
        let reports = stats.reports();
        ensure!(of_role(&reports, "master").len() == 1, "{reports:?}");
        ensure!(of_role(&reports, "worker").len() == 2, "{reports:?}");
        for r in &reports {
            ensure!(r.fact("locustfile") == LOCUSTFILE_PATH, "{r:?}");
            ensure!(r.fact("src") == "locustfile.py", "{r:?}");
            ensure!(r.fact("lib") == "lotest_helper.py", "{r:?}");
            ensure!(
                r.fact("helper") == "/opt/locust/lib/lotest_helper.py",
                "{r:?}"
            );
        }
        let result = done
            .status
            .as_ref()
            .and_then(|s| s.result.clone())
            .context("status.result")?;
        let counted = u64::try_from(result.total_requests.unwrap_or(0))?;
        ensure!(
            counted > 0 && counted.abs_diff(hits) <= 8,
            "status.result counts {counted} requests, the target answered {hits} to {path}"
        );
        eprintln!(
            "real_node_test_files_and_lib: Succeeded in {:.1}s; target answered {hits} \
             requests to {path} \
             (status.result: {counted}); import from the lib without sys.path: {}",
            took.as_secs_f64(),
            reports[0].fact("plain_import")
        );
        Ok(())
    })
    .await
}

/// (b) Environment from a ConfigMap (`env.configMapRefs`, with a prefix), a
/// Secret (`env.secretRefs`), single variables (literal, `secretKeyRef`,
/// `configMapKeyRef`, `fieldRef`) and a Secret mounted as files
/// (`env.secretMounts`, read-only) as every Locust process sees them; the
/// Secret's value travels only as a SHA-256 digest, and appears nowhere in
/// the operator's log, the Events or the LocustTest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_env_and_secrets_reach_locust() -> Result<()> {
    let (test, ns) = ("real_node_env_and_secrets_reach_locust", "env");
    RealNodeFixture::run(test, "real-env", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        let greeting = fixture::token("hello");
        let literal = fixture::token("lit");
        let secret = fixture::token("s3cr3t");
        let password = fixture::token("pw");
        fx.config_map(ns, "env-cm", &[("GREETING", &greeting), ("MODE", "from-configmap")])
            .await?;
        fx.secret(ns, "env-secret", &[("API_TOKEN", &secret), ("PASSWORD", &password)])
            .await?;
        let body = r#"
import errno
import os


def _write_errno(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def _file(path):
    with open(path) as f:
        return f.read()


def facts(environment):
    e = os.environ
    return {
        "CM_GREETING": e.get("CM_GREETING", "-"),
        "CM_MODE": e.get("CM_MODE", "-"),
        "GREETING": e.get("GREETING", "-"),
        "API_TOKEN_sha": sha(e.get("API_TOKEN", "-")),
        "PASSWORD_sha": sha(e.get("PASSWORD", "-")),
        "LITERAL": e.get("LITERAL", "-"),
        "FROM_SECRET_sha": sha(e.get("FROM_SECRET", "-")),
        "FROM_CM": e.get("FROM_CM", "-"),
        "POD_NAME": e.get("POD_NAME", "-"),
        "NODE_NAME": e.get("NODE_NAME", "-"),
        "mounted": ",".join(sorted(n for n in os.listdir("/etc/lotest-secret") if not n.startswith(".."))),
        "mounted_API_TOKEN_sha": sha(_file("/etc/lotest-secret/API_TOKEN")),
        "mount_write": _write_errno("/etc/lotest-secret/new-file"),
    }
"#;
        fx.locustfile(ns, "env-files", &locustfile(body, "\"/env/\" + os.environ[\"LITERAL\"]"))
            .await?;
        let spec = locust_spec(
            "env-files",
            "8s",
            json!({"env": {
                "configMapRefs": [{"name": "env-cm", "prefix": "CM_"}],
                "secretRefs": [{"name": "env-secret"}],
                "variables": [
                    {"name": "LITERAL", "value": literal},
                    {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "API_TOKEN"}}},
                    {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "GREETING"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ],
                "secretMounts": [{"name": "env-secret", "mountPath": "/etc/lotest-secret"}],
            }}),
        );
        let (done, took) = fx.run_test(ns, "env", spec, RUN).await?;
        assert_succeeded(fx, ns, "env", &done).await?;

        let stats = fx.target_stats(&target).await?;
        let path = format!("/env/{literal}");
        ensure!(stats.requests_to(&path) > 0, "no request to {path}: {:?}", stats.paths.keys());
        let reports = stats.reports();
        ensure!(one_master_two_workers(&reports), "{reports:?}");
        let secret_sha = fixture::sha256_hex(&secret);
        for r in &reports {
            let want = [
                ("CM_GREETING", greeting.as_str()),
                ("CM_MODE", "from-configmap"),
                ("GREETING", "-"),
                ("API_TOKEN_sha", secret_sha.as_str()),
                ("PASSWORD_sha", &fixture::sha256_hex(&password)),
                ("LITERAL", literal.as_str()),
                ("FROM_SECRET_sha", secret_sha.as_str()),
                ("FROM_CM", greeting.as_str()),
                ("POD_NAME", r.host.as_str()),
                ("NODE_NAME", olm_tests::cluster::REAL_NODE_NAME),
                ("mounted", "API_TOKEN,PASSWORD"),
                ("mounted_API_TOKEN_sha", secret_sha.as_str()),
                ("mount_write", "EROFS"),
            ];
            for (key, value) in want {
                ensure!(
                    r.fact(key) == value,
                    "{} {}: {key} = {:?}, want {value:?}",
                    r.role,
                    r.host,
                    r.fact(key)
                );
            }
        }

        // The value itself is nowhere the operator writes.
        let log = fx.operator.log();
        ensure!(log.len() > 1000, "the operator logged ({} bytes)", log.len());
        for value in [&secret, &password] {
            ensure!(!log.contains(value.as_str()), "a secret value is in the operator log");
        }
        let events = kube::Api::<k8s_openapi::api::core::v1::Event>::namespaced(fx.client(), ns)
            .list(&Default::default())
            .await?;
        let tests = fx.tests(ns).list(&Default::default()).await?;
        let pods = fx.pods(ns).list(&Default::default()).await?;
        for (what, text) in [
            ("Events", serde_json::to_string(&events.items)?),
            ("LocustTests", serde_json::to_string(&tests.items)?),
            ("pods", serde_json::to_string(&pods.items)?),
        ] {
            ensure!(
                !text.contains(&secret) && !text.contains(&password),
                "a secret value is in the {what}"
            );
        }
        eprintln!(
            "real_node_env_and_secrets: Succeeded in {:.1}s; {} processes saw every variable \
             and the read-only secret mount",
            took.as_secs_f64(),
            reports.len()
        );
        Ok(())
    })
    .await
}

/// (c) `volumeMounts[].target`: a volume mounted on the master only, one on
/// the workers only, one on both. Each Locust process reports which it
/// sees; the pods carry only the volumes their role mounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_volumes_follow_their_target() -> Result<()> {
    let (test, ns) = ("real_node_volumes_follow_their_target", "volumes");
    RealNodeFixture::run(test, "real-volumes", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        for (cm, who) in [
            ("vol-master", "master-only"),
            ("vol-worker", "worker-only"),
            ("vol-both", "both"),
        ] {
            fx.config_map(ns, cm, &[("who", who)]).await?;
        }
        let body = r#"
import os


def _who(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return "absent"


def _scratch():
    try:
        with open("/scratch/probe", "w") as f:
            f.write("ok")
        return "writable"
    except OSError as e:
        return type(e).__name__


def facts(environment):
    return {
        "m": _who("/mnt/m/who"),
        "w": _who("/mnt/w/who"),
        "b": _who("/mnt/b/who"),
        "scratch": _scratch(),
    }
"#;
        fx.locustfile(ns, "vol-files", &locustfile(body, "\"/\""))
            .await?;
        let spec = locust_spec(
            "vol-files",
            "6s",
            json!({
                "volumes": [
                    {"name": "m", "configMap": {"name": "vol-master"}},
                    {"name": "w", "configMap": {"name": "vol-worker"}},
                    {"name": "b", "configMap": {"name": "vol-both"}},
                    {"name": "scratch", "emptyDir": {}},
                ],
                "volumeMounts": [
                    {"name": "m", "mountPath": "/mnt/m", "target": "master"},
                    {"name": "w", "mountPath": "/mnt/w", "target": "worker"},
                    {"name": "b", "mountPath": "/mnt/b"},
                    {"name": "scratch", "mountPath": "/scratch", "target": "worker"},
                ],
            }),
        );
        let (done, took) = fx.run_test(ns, "volumes", spec, RUN).await?;
        assert_succeeded(fx, ns, "volumes", &done).await?;

        let reports = fx.target_stats(&target).await?.reports();
        let masters = of_role(&reports, "master");
        let workers = of_role(&reports, "worker");
        ensure!(masters.len() == 1 && workers.len() == 2, "{reports:?}");
        for (r, want) in masters
            .iter()
            .map(|r| (r, ["master-only", "absent", "both", "FileNotFoundError"]))
            .chain(
                workers
                    .iter()
                    .map(|r| (r, ["absent", "worker-only", "both", "writable"])),
            )
        {
            let got = [r.fact("m"), r.fact("w"), r.fact("b"), r.fact("scratch")];
            ensure!(
                got == want,
                "{} {}: saw {got:?}, want {want:?}",
                r.role,
                r.host
            );
        }
        // The pod specs agree.
        let volume_names = |p: &Pod| -> Vec<String> {
            let mut v: Vec<String> = p
                .spec
                .as_ref()
                .and_then(|s| s.volumes.as_ref())
                .map(|vs| vs.iter().map(|v| v.name.clone()).collect())
                .unwrap_or_default();
            v.sort();
            v
        };
        let master_pods = fx.role_pods(ns, "volumes", "master").await?;
        let worker_pods = fx.role_pods(ns, "volumes", "worker").await?;
        ensure!(
            volume_names(&master_pods[0]) == ["b", "locust-src", "m"],
            "{:?}",
            volume_names(&master_pods[0])
        );
        for p in &worker_pods {
            ensure!(
                volume_names(p) == ["b", "locust-src", "scratch", "w"],
                "{:?}",
                volume_names(p)
            );
        }
        eprintln!(
            "real_node_volumes: Succeeded in {:.1}s; master saw m+b, workers w+b+scratch",
            took.as_secs_f64()
        );
        Ok(())
    })
    .await
}

/// (d) A namespace enforcing the `restricted` Pod Security Standard (a
/// non-compliant pod is refused there first, so enforcement is on): the
/// operator's pods, with `readOnlyRootFilesystem` added through
/// `spec.security.containerSecurityContext`, are admitted, start, run as
/// the numeric UID the operator set (1000) with no capabilities, no new
/// privileges, a seccomp filter and a read-only root, and the run Succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_restricted_pod_security() -> Result<()> {
    let (test, ns) = ("real_node_restricted_pod_security", "restricted");
    RealNodeFixture::run(test, "real-restricted", &[], &[ns], async |fx| {
        fx.namespace(
            ns,
            &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "latest"),
            ],
        )
        .await?;
        // Enforcement is on: a pod without a security context is refused.
        let plain: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "plain"},
            "spec": {"containers": [{"name": "c", "image": olm_tests::images::locust_image()}]},
        }))?;
        let refused = fx
            .pods(ns)
            .create(&kube::api::PostParams { dry_run: true, ..Default::default() }, &plain)
            .await;
        ensure!(
            matches!(
                &refused,
                Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("restricted")
            ),
            "a non-compliant pod must be refused in {ns}: {refused:?}"
        );
        let target = fx.start_target(ns, None).await?;
        let body = r#"
import errno
import os


def _status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                out[key] = " ".join(value.split())
    return out


def _write_errno(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def facts(environment):
    f = _status()
    f["home_write"] = _write_errno(os.path.expanduser("~") + "/probe")
    f["tmp_write"] = _write_errno("/tmp/probe")
    return f
"#;
        fx.locustfile(ns, "ro-files", &locustfile(body, "\"/\"")).await?;
        let spec = locust_spec(
            "ro-files",
            "6s",
            json!({"security": {
                "containerSecurityContext": images::restricted_security_context(),
            }}),
        );
        let (done, took) = fx.run_test(ns, "restricted", spec, RUN).await?;
        assert_succeeded(fx, ns, "restricted", &done).await?;
        let pods = fx.pods(ns).list(&Default::default()).await?;
        for p in pods.items.iter().filter(|p| p.metadata.name.as_deref() != Some("target")) {
            let uid = p
                .spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.run_as_user);
            ensure!(uid == Some(1000), "{}: pod runAsUser {uid:?}", kube::ResourceExt::name_any(p));
        }

        let reports = fx.target_stats(&target).await?.reports();
        ensure!(one_master_two_workers(&reports), "{reports:?}");
        for r in &reports {
            let want = [
                ("uid", "1000"),
                ("Uid", "1000 1000 1000 1000"),
                ("CapEff", "0000000000000000"),
                ("CapPrm", "0000000000000000"),
                ("CapBnd", "0000000000000000"),
                ("NoNewPrivs", "1"),
                ("Seccomp", "2"),
                ("home_write", "EROFS"),
                ("tmp_write", "EROFS"),
            ];
            for (key, value) in want {
                ensure!(
                    r.fact(key) == value,
                    "{} {}: {key} = {:?}, want {value:?}",
                    r.role,
                    r.host,
                    r.fact(key)
                );
            }
        }
        eprintln!(
            "real_node_restricted: Succeeded in {:.1}s under enforce=restricted; processes: \
             uid {} gid {} groups [{}], CapEff {}, NoNewPrivs {}, Seccomp {}, root writes {}",
            took.as_secs_f64(),
            reports[0].fact("uid"),
            reports[0].fact("gid"),
            reports[0].fact("Groups"),
            reports[0].fact("CapEff"),
            reports[0].fact("NoNewPrivs"),
            reports[0].fact("Seccomp"),
            reports[0].fact("home_write"),
        );
        Ok(())
    })
    .await
}

/// (e) `spec.observability.openTelemetry`: `--otel` and the `OTEL_*`
/// variables (endpoint, protocol, insecure, extra variables) reach the
/// master and every worker process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_opentelemetry_settings_reach_locust() -> Result<()> {
    let (test, ns) = ("real_node_opentelemetry_settings_reach_locust", "otel");
    RealNodeFixture::run(test, "real-otel", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        let run = fixture::token("run");
        let body = r#"
import os


def facts(environment):
    f = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    f["otel_option"] = str(getattr(environment.parsed_options, "otel", None))
    return f
"#;
        fx.locustfile(ns, "otel-files", &locustfile(body, "\"/\"")).await?;
        let spec = locust_spec(
            "otel-files",
            "6s",
            json!({"observability": {"openTelemetry": {
                "enabled": true,
                "endpoint": "otel-collector.monitoring:4318",
                "protocol": "http/protobuf",
                "insecure": true,
                "extraEnvVars": {"OTEL_RESOURCE_ATTRIBUTES": format!("team=qa,run={run}"), "OTEL_SERVICE_NAME": "lotest-otel"},
            }}}),
        );
        let (done, took) = fx.run_test(ns, "otel", spec, RUN).await?;
        assert_succeeded(fx, ns, "otel", &done).await?;

        let reports = fx.target_stats(&target).await?.reports();
        ensure!(one_master_two_workers(&reports), "{reports:?}");
        let resource = format!("team=qa,run={run}");
        for r in &reports {
            let want = [
                ("otel_option", "True"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector.monitoring:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_METRICS_EXPORTER", "otlp"),
                ("OTEL_RESOURCE_ATTRIBUTES", resource.as_str()),
                ("OTEL_SERVICE_NAME", "lotest-otel"),
            ];
            for (key, value) in want {
                ensure!(
                    r.fact(key) == value,
                    "{} {}: {key} = {:?}, want {value:?}",
                    r.role,
                    r.host,
                    r.fact(key)
                );
            }
        }
        let master = &fx.role_pods(ns, "otel", "master").await?[0];
        let log = fx.pod_log(ns, &kube::ResourceExt::name_any(master)).await?;
        let sdk = if log.contains("OpenTelemetry SDK is not installed") {
            "the image has no OpenTelemetry SDK: Locust says so and exports nothing"
        } else {
            "OpenTelemetry SDK present"
        };
        eprintln!(
            "real_node_opentelemetry: Succeeded in {:.1}s; --otel and {} OTEL_* variables \
             seen by {} processes ({sdk})",
            took.as_secs_f64(),
            reports[0].facts.keys().filter(|k| k.starts_with("OTEL_")).count(),
            reports.len()
        );
        Ok(())
    })
    .await
}

/// (f) `spec.output` reports on a volume that outlives the pods. The spec
/// accepts any Pod volume; as docs/results.md suggests, a
/// PersistentVolumeClaim: here bound to a statically provisioned `hostPath`
/// PersistentVolume whose directory lies in the cluster's directory (the
/// cluster has no storage provisioner). After the run the LocustTest is
/// deleted and its pods are gone; then
/// - a NEW pod mounting the same claim reads the three reports back (its log
///   carries their digests), and
/// - the test reads the same files on the host,
///
/// and their numbers agree with `status.result`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_reports_outlive_the_run_on_a_volume() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (test, ns) = ("real_node_reports_outlive_the_run_on_a_volume", "reports");
    RealNodeFixture::run(test, "real-reports", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        let host_dir = fx.cluster.dir().join("pv-reports");
        std::fs::create_dir_all(&host_dir)?;
        // The Locust user (1000) writes there.
        std::fs::set_permissions(&host_dir, std::fs::Permissions::from_mode(0o777))?;
        let client = fx.client();
        let pv: PersistentVolume = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "reports-pv"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": host_dir.to_string_lossy(), "type": "Directory"},
            },
        }))?;
        kube::Api::<PersistentVolume>::all(client.clone())
            .create(&Default::default(), &pv)
            .await?;
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "reports"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": "reports-pv",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }))?;
        let claims = kube::Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns);
        claims.create(&Default::default(), &pvc).await?;
        olm_tests::wait_for(Duration::from_secs(60), fixture::POLL, || async {
            let c = claims.get("reports").await?;
            Ok((c.status.and_then(|s| s.phase).as_deref() == Some("Bound")).then_some(()))
        })
        .await
        .context("the claim never bound")?;

        fx.locustfile(ns, "report-files", &locustfile("", "\"/\"")).await?;
        let spec = locust_spec(
            "report-files",
            "8s",
            json!({
                "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": "reports"}}],
                "volumeMounts": [{"name": "results", "mountPath": "/results", "target": "master"}],
                "output": {
                    "htmlReport": {"enabled": true, "path": "/results/report.html"},
                    "jsonFile": {"enabled": true, "path": "/results/stats"},
                    "csv": {"enabled": true, "prefix": "/results/run"},
                },
            }),
        );
        let (done, took) = fx.run_test(ns, "reports", spec, RUN).await?;
        assert_succeeded(fx, ns, "reports", &done).await?;
        let result = done.status.as_ref().and_then(|s| s.result.clone()).context("status.result")?;
        let total = result.total_requests.context("totalRequests")?;

        // The test and its pods are gone...
        fx.tests(ns).delete("reports", &Default::default()).await?;
        fx.cluster
            .wait_for_no_pods(
                ns,
                &fixture::role_selector("reports", "master"),
                Duration::from_secs(90),
            )
            .await
            .context("the master pod never went away")?;

        // ...a new pod reads the reports through the claim...
        let files = ["report.html", "stats.json", "run_stats.csv"];
        let script = format!(
            "import hashlib\nfor n in {files:?}:\n    d = open('/results/' + n, 'rb').read()\n    \
             print(n, len(d), hashlib.sha256(d).hexdigest())\n"
        );
        let reader: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "reader"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "reader",
                    "image": olm_tests::images::locust_image(),
                    "command": ["python3", "-c", script],
                    "volumeMounts": [{"name": "results", "mountPath": "/results", "readOnly": true}],
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                }],
                "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": "reports", "readOnly": true}}],
            },
        }))?;
        fx.pods(ns).create(&Default::default(), &reader).await?;
        let pods = fx.pods(ns);
        let finished = olm_tests::wait_for(Duration::from_secs(90), fixture::POLL, || async {
            let p = pods.get("reader").await?;
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            Ok((phase == "Succeeded" || phase == "Failed").then_some(phase))
        })
        .await
        .context("the reader pod never finished")?;
        let log = fx.pod_log(ns, "reader").await?;
        ensure!(finished == "Succeeded", "the reader pod failed:\n{log}");

        // ...and the same bytes are on the host.
        for name in files {
            let bytes = std::fs::read(host_dir.join(name))
                .with_context(|| format!("{name} on the host"))?;
            let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            let line = format!("{name} {} {hex}", bytes.len());
            ensure!(
                log.lines().any(|l| l.trim() == line),
                "{line} not in the reader's log:\n{log}"
            );
        }
        let html = std::fs::read_to_string(host_dir.join("report.html"))?;
        ensure!(
            html.contains("<html") && html.contains("Locust"),
            "report.html is not Locust's report"
        );
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(host_dir.join("stats.json"))?)?;
        let json_total: i64 = entries.iter().filter_map(|e| e["num_requests"].as_i64()).sum();
        let csv = std::fs::read_to_string(host_dir.join("run_stats.csv"))?;
        let header: Vec<&str> = csv.lines().next().unwrap_or_default().split(',').collect();
        let count_col = header
            .iter()
            .position(|h| *h == "Request Count")
            .context("Request Count column")?;
        let aggregated = csv
            .lines()
            .find(|l| l.contains(",Aggregated,"))
            .context("no Aggregated row in run_stats.csv")?;
        let csv_total: i64 = aggregated.split(',').nth(count_col).unwrap_or_default().parse()?;
        ensure!(
            json_total == total && csv_total == total,
            "stats.json {json_total}, run_stats.csv {csv_total}, status.result {total}"
        );
        let target_seen = fx.target_stats(&target).await?.requests_to("/");
        eprintln!(
            "real_node_reports: Succeeded in {:.1}s; after the LocustTest was deleted a new pod \
             read {files:?} through the claim; {total} requests in stats.json, run_stats.csv and \
             status.result (target answered {target_seen})",
            took.as_secs_f64()
        );
        Ok(())
    })
    .await
}

/// (g) `webUI.basePath`: the master serves its web UI and REST API under
/// the prefix (and not at the root), and the operator reads the statistics
/// there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_web_ui_base_path_is_served() -> Result<()> {
    let (test, ns) = ("real_node_web_ui_base_path_is_served", "basepath");
    RealNodeFixture::run(test, "real-basepath", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        fx.locustfile(ns, "bp-files", &locustfile("", "\"/\""))
            .await?;
        let spec = locust_spec("bp-files", "15s", json!({"webUI": {"basePath": "/locust"}}));
        fx.create_test(ns, "basepath", spec).await?;
        let masters = fx
            .wait_role_running(ns, "basepath", "master", 1, Duration::from_secs(90))
            .await?;
        let ip = fixture::pod_ip(&masters[0])?;
        let forward = fx.cluster.forward(SocketAddr::new(ip, 8089))?;
        let web = forward.host_addr();
        let t = stats::DEFAULT_TIMEOUT;
        let page = olm_tests::wait_for(Duration::from_secs(60), fixture::POLL, || async {
            Ok(stats::http_get(web, "/locust/", t).await.ok())
        })
        .await
        .context("the web UI never answered under /locust/")?;
        let page = String::from_utf8_lossy(&page).into_owned();
        ensure!(
            page.contains("<html") || page.contains("<!DOCTYPE"),
            "not a page: {page:.300}"
        );
        let under = stats::read_stats(web, "/locust", t).await?;
        let root = stats::http_get(web, "/stats/requests", t).await;
        ensure!(
            matches!(root, Err(stats::StatsError::Status { status: 404, .. })),
            "/stats/requests outside the base path: {root:?}"
        );
        let ui_root = stats::http_get(web, "/", t).await;
        ensure!(
            matches!(ui_root, Err(stats::StatsError::Status { status: 404, .. })),
            "/ outside the base path: {ui_root:?}"
        );
        drop(forward);
        // The operator reads the statistics under the prefix too.
        let read = fx
            .wait_test(
                ns,
                "basepath",
                "StatsRead while running",
                Duration::from_secs(60),
                |t| {
                    let read = fixture::condition(t, ct::STATS_AVAILABLE)
                        .is_some_and(|(s, r, _)| s == "True" && r == "StatsRead");
                    let requests = t
                        .status
                        .as_ref()
                        .and_then(|s| s.live.as_ref())
                        .and_then(|l| l.total_requests)
                        .unwrap_or(0);
                    read && requests > 0
                },
            )
            .await?;
        let (_, _, read_message) =
            fixture::condition(&read, ct::STATS_AVAILABLE).unwrap_or_default();
        let done = fx.wait_terminal(ns, "basepath", RUN).await?;
        assert_succeeded(fx, ns, "basepath", &done).await?;
        let result = done
            .status
            .as_ref()
            .and_then(|s| s.result.clone())
            .context("status.result")?;
        ensure!(result.total_requests.unwrap_or(0) > 0, "{result:?}");
        let served = fx.target_stats(&target).await?.requests_to("/");
        eprintln!(
            "real_node_web_ui_base_path: /locust/ served the UI ({} bytes), \
             /locust/stats/requests state {:?}, / and /stats/requests 404; operator: \
             {read_message}; status.result {} requests (target answered {served}); took {}",
            page.len(),
            under.state,
            result.total_requests.unwrap_or(0),
            elapsed(fx.started)
        );
        Ok(())
    })
    .await
}

/// (h) `worker.processesPerPod: 2` with 2 replicas: each worker pod forks
/// two Locust worker processes, the master sees 4 workers
/// (`status.connectedWorkers`, its own `/stats/requests`), and each process
/// reports its own pid, the two of a pod sharing their parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_worker_processes_fork() -> Result<()> {
    let (test, ns) = ("real_node_worker_processes_fork", "processes");
    RealNodeFixture::run(test, "real-processes", &[], &[ns], async |fx| {
        fx.namespace(ns, &[]).await?;
        let target = fx.start_target(ns, None).await?;
        fx.locustfile(ns, "proc-files", &locustfile("", "\"/\""))
            .await?;
        let spec = locust_spec(
            "proc-files",
            "15s",
            json!({"worker": {"processesPerPod": 2}}),
        );
        fx.create_test(ns, "processes", spec).await?;
        let running = fx
            .wait_test(
                ns,
                "processes",
                "4 connected workers while running",
                Duration::from_secs(120),
                |t| fixture::running_with_workers(t, 4),
            )
            .await?;
        let (status, reason, message) =
            fixture::condition(&running, ct::WORKERS_CONNECTED).context("WorkersConnected")?;
        let masters = fx.role_pods(ns, "processes", "master").await?;
        let forward = fx
            .cluster
            .forward(SocketAddr::new(fixture::pod_ip(&masters[0])?, 8089))?;
        let own = stats::read_stats(forward.host_addr(), "", stats::DEFAULT_TIMEOUT).await?;
        drop(forward);
        ensure!(
            own.worker_count == Some(4),
            "the master counts {:?} workers",
            own.worker_count
        );
        let workers = fx.role_pods(ns, "processes", "worker").await?;
        ensure!(workers.len() == 2, "{} worker pods", workers.len());
        for p in &workers {
            let args = fixture::container_args(p);
            ensure!(args.iter().any(|a| a == "--processes=2"), "{args:?}");
        }
        let done = fx.wait_terminal(ns, "processes", RUN).await?;
        assert_succeeded(fx, ns, "processes", &done).await?;

        let reports = fx.target_stats(&target).await?.reports();
        let worker_reports = of_role(&reports, "worker");
        ensure!(worker_reports.len() == 4, "{reports:?}");
        let mut by_host: std::collections::BTreeMap<&str, Vec<&Report>> = Default::default();
        for r in &worker_reports {
            by_host.entry(r.host.as_str()).or_default().push(r);
        }
        ensure!(by_host.len() == 2, "{by_host:?}");
        for (host, rs) in &by_host {
            ensure!(rs.len() == 2 && rs[0].pid != rs[1].pid, "{host}: {rs:?}");
            ensure!(
                rs[0].fact("ppid") == rs[1].fact("ppid"),
                "{host}: one parent: {rs:?}"
            );
            ensure!(
                rs.iter().all(|r| r.fact("ppid") != r.pid.to_string()),
                "{host}: children of a parent: {rs:?}"
            );
        }
        eprintln!(
            "real_node_worker_processes: master counted {:?} workers, status.connectedWorkers 4, \
             WorkersConnected {status} {reason} ({message}); \
             pids per pod: {}; took {}",
            own.worker_count,
            by_host
                .iter()
                .map(|(h, rs)| {
                    let pids: Vec<String> = rs.iter().map(|r| r.pid.to_string()).collect();
                    format!("{h}: {} (parent {})", pids.join("+"), rs[0].fact("ppid"))
                })
                .collect::<Vec<_>>()
                .join(", "),
            elapsed(fx.started)
        );
        Ok(())
    })
    .await
}
