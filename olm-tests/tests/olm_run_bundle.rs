//! `operator-sdk run bundle`, `run bundle-upgrade` and `cleanup`, the way
//! the operator is tried on a test cluster: the bundle images in the local
//! registry (`198.19.0.1:5000/...`, HTTPS with the cluster CA), operator-sdk
//! v1.34.1 (built by the tools) in the cluster's network namespace, OLM
//! unpacking each bundle with its unpack Job on the real node and the
//! operator Deployment running the operator image there.
//!
//! operator-sdk's index image (`--index-image`) and decompression image are
//! the local opm image (an empty File-Based Catalog: operator-sdk requires
//! the FBC label of any non-default index image, then adds the bundle).
//! `run bundle-upgrade` has no decompression-image flag and always uses
//! Docker Hub's `busybox:1.36.0`; the node mirrors docker.io to the local
//! registry, which holds a busybox built here under that name
//! ([`Registry::push_operator_sdk_images`]).
//!
//! `operator-sdk scorecard` runs the bundle's scorecard configuration
//! (`bundle/tests/scorecard/config.yaml`) in pods on the real node: its
//! test image `quay.io/operator-framework/scorecard-test:v1.34.1` is built
//! here from the same operator-sdk module and served through the quay.io
//! mirror; the untar image is the local busybox.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use locust_operator::api::LocustTest;
use olm_tests::olm::{self, Olm, csv_name};
use olm_tests::registry::{Registry, local_reference};
use olm_tests::{Cluster, ClusterOptions, images, operator, wait_for};

/// The namespace operator-sdk installs into (AllNamespaces mode).
const NS: &str = "locust-sdk";
const SDK_TIMEOUT: &str = "5m";
const STEP: Duration = Duration::from_secs(300);

/// The sample v2 test with the Locust image built here.
fn sample(name: &str) -> Result<LocustTest> {
    let mut t = olm_tests::checks::sample(name)?;
    t.metadata.namespace = None;
    t.spec.image = images::locust_image();
    Ok(t)
}

/// Runs `operator-sdk ARGS` in the cluster's namespace, trusting the
/// registry, with the admin kubeconfig (except `bundle ...`, which talks to
/// no cluster); prints and returns its output.
fn operator_sdk(
    registry: &Registry,
    tools: &olm_tests::Tools,
    cluster: &Cluster,
    args: &[&str],
) -> Result<String> {
    let mut cmd = Command::new(tools.bin("operator-sdk"));
    cmd.args(args).env("HOME", cluster.dir());
    if args.first() != Some(&"bundle") {
        cmd.arg("--kubeconfig").arg(cluster.kubeconfig_path());
    }
    let start = Instant::now();
    let out = registry
        .run(cmd, STEP + Duration::from_secs(60))
        .with_context(|| format!("operator-sdk {}", args.join(" ")))?;
    eprintln!(
        "FIGURE operator-sdk {} took {:.1} s\n{out}",
        args.first().copied().unwrap_or_default(),
        start.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// `operator-sdk run <command> <bundle> --namespace NS ARGS` (`bundle` or
/// `bundle-upgrade`) with the restricted security context and
/// [`SDK_TIMEOUT`]; checks that it returned only once the CSV of `version`
/// Succeeded.
async fn sdk_run(
    registry: &Registry,
    tools: &olm_tests::Tools,
    cluster: &Cluster,
    command: &str,
    bundle: &str,
    args: &[&str],
    version: &semver::Version,
) -> Result<()> {
    let mut all = vec!["run", command, bundle, "--namespace", NS];
    all.extend(args);
    all.extend([
        "--security-context-config",
        "restricted",
        "--timeout",
        SDK_TIMEOUT,
    ]);
    let out = operator_sdk(registry, tools, cluster, &all)?;
    let csv = csv_name(&version.to_string());
    // operator-sdk returns once it has seen the CSV Succeeded: its log says
    // so (`Found ClusterServiceVersion \"NS/CSV\" phase: Succeeded`).
    let subject = format!("{NS}/{csv}");
    ensure!(
        out.lines()
            .any(|l| l.contains(&subject) && l.contains("phase: Succeeded")),
        "operator-sdk run {command} returned without seeing {csv} Succeeded:\n{out}"
    );
    // OLM may move a CSV it has just marked Succeeded back through Pending
    // (it re-checks requirements while the replaced CSV goes away). That is
    // OLM's to finish: wait for Succeeded again, and say what it was.
    let client = cluster.admin_client();
    let status = csv_status(&client, &csv).await?;
    if status.starts_with("Succeeded") {
        return Ok(());
    }
    let started = Instant::now();
    wait_for(STEP, Duration::from_millis(500), || {
        let (client, csv) = (client.clone(), csv.clone());
        async move {
            let phase = csv_phase(&client, &csv).await?;
            Ok((phase.as_deref() == Some("Succeeded")).then_some(()))
        }
    })
    .await
    .with_context(|| format!("{csv} after operator-sdk run {command}: {status}"))?;
    eprintln!(
        "FIGURE {csv} was {status} right after operator-sdk run {command}; Succeeded again {:.1} s later",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `phase (reason: message)` of CSV `name`.
async fn csv_status(client: &kube::Client, name: &str) -> Result<String> {
    let csv = olm::csvs(client, NS).get(name).await?;
    Ok(format!(
        "{} ({}: {})",
        olm::field(&csv, "/status/phase"),
        olm::field(&csv, "/status/reason"),
        olm::field(&csv, "/status/message")
    ))
}

async fn csv_phase(client: &kube::Client, name: &str) -> Result<Option<String>> {
    Ok(olm::csvs(client, NS)
        .get_opt(name)
        .await?
        .map(|c| olm::field(&c, "/status/phase").to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_bundle_then_bundle_upgrade_then_cleanup() -> Result<()> {
    let test = "run_bundle_then_bundle_upgrade_then_cleanup";
    let Some((tools, images)) = images::tools_and_images_or_skip(test) else {
        return Ok(());
    };
    let current: semver::Version = olm::current_version()?.parse()?;
    let next = semver::Version::new(current.major, current.minor, current.patch + 1);
    let cluster = Cluster::start(ClusterOptions::real_node_from(tools.clone(), "olm-sdk")).await?;
    let result = async {
        let registry = Registry::start(&cluster, &tools).await?;
        let mut opts = manifests_gen::Options::new(operator::workspace_root());
        opts.extra_releases.push(
            manifests_gen::parse_extra_release(&format!("{next}:alpha,stable"))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let published =
            registry.publish_release(&tools, &images, &opts, &[current.clone(), next.clone()])?;
        registry.push_operator_sdk_images(&tools)?;
        let bundle = |v: &semver::Version| local_reference(&manifests_gen::bundle::bundle_image(v));
        let (bundle_current, bundle_next) = (bundle(&current)?, bundle(&next)?);

        // The pushed bundle image: its labels are the committed
        // annotations.yaml, and it passes operator-sdk's validation read from
        // the registry (not from the directory).
        let labels = registry.config(&bundle_current)?["config"]["Labels"].clone();
        let committed: serde_json::Value = olm_tests::yaml::from_str(&std::fs::read_to_string(
            operator::workspace_root().join(manifests_gen::ANNOTATIONS_PATH),
        )?)?;
        ensure!(
            labels == committed["annotations"],
            "bundle image labels {labels} differ from annotations.yaml {}",
            committed["annotations"]
        );
        for extra in [
            &[][..],
            &["--select-optional", "suite=operatorframework"][..],
        ] {
            let mut args = vec![
                "bundle",
                "validate",
                bundle_current.as_str(),
                "--image-builder",
                "none",
            ];
            args.extend_from_slice(extra);
            let out = operator_sdk(&registry, &tools, &cluster, &args)?;
            ensure!(
                out.contains("All validation tests have completed successfully"),
                "operator-sdk bundle validate: {out}"
            );
        }
        // OLM itself, as processes (its unpack Jobs use the opm image).
        let mut olm = Olm::start(&cluster, &tools).await?;
        let client = cluster.admin_client();
        operator::create_namespace(&client, NS, &[]).await?;

        scorecard(&registry, &tools, &cluster).await?;

        sdk_run(
            &registry,
            &tools,
            &cluster,
            "bundle",
            &bundle_current,
            &[
                "--install-mode",
                "AllNamespaces",
                "--index-image",
                &published.opm,
                "--decompression-image",
                &published.opm,
            ],
            &current,
        )
        .await?;
        let pods = olm::wait_operator_running_in(
            &client,
            NS,
            &manifests_gen::bundle::operator_image(&current),
            STEP,
        )
        .await?;
        ensure!(!pods.is_empty());
        olm::ensure_unpacked(&client, NS, &bundle_current).await?;

        // A user's test, admitted and reconciled by the installed operator.
        operator::create_namespace(&client, "team-sdk", &[]).await?;
        let tests: Api<LocustTest> = Api::namespaced(client.clone(), "team-sdk");
        olm::create_when_admitted(&tests, &sample("kept")?, NS, STEP).await?;
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(client.clone(), "team-sdk");
        let master = locust_operator::resources::names::service_name("kept");
        wait_for(STEP, Duration::from_millis(250), || {
            let (services, master) = (services.clone(), master.clone());
            async move { Ok(services.get_opt(&master).await?.map(drop)) }
        })
        .await
        .context("the operator reconciles the LocustTest (master Service)")?;

        sdk_run(
            &registry,
            &tools,
            &cluster,
            "bundle-upgrade",
            &bundle_next,
            &[],
            &next,
        )
        .await?;
        wait_for(STEP, Duration::from_millis(500), || {
            let client = client.clone();
            let old = csv_name(&current.to_string());
            async move { Ok(csv_phase(&client, &old).await?.is_none().then_some(())) }
        })
        .await
        .context("the old CSV is replaced")?;
        olm::wait_operator_running_in(
            &client,
            NS,
            &manifests_gen::bundle::operator_image(&next),
            STEP,
        )
        .await?;
        olm::ensure_unpacked(&client, NS, &bundle_next).await?;
        ensure!(tests.get("kept").await?.name_any() == "kept");

        operator_sdk(
            &registry,
            &tools,
            &cluster,
            &[
                "cleanup",
                manifests_gen::PACKAGE,
                "--namespace",
                NS,
                "--timeout",
                "3m",
            ],
        )?;
        // cleanup deletes the CSV, Subscription, CatalogSource, its registry
        // pod, the OperatorGroup it created and — its default
        // (--delete-crds=true) — the CRD, hence every LocustTest.
        for (kind, api) in [
            ("CSV", olm::csvs(&client, NS)),
            ("Subscription", olm::subscriptions(&client, NS)),
            ("CatalogSource", olm::catalog_sources(&client, NS)),
        ] {
            let left = api.list(&ListParams::default()).await?.items;
            ensure!(left.is_empty(), "a {kind} is left after cleanup");
        }
        wait_for(STEP, Duration::from_millis(500), || {
            let client = client.clone();
            async move {
                let deployment = Api::<Deployment>::namespaced(client.clone(), NS)
                    .get_opt(olm::DEPLOYMENT)
                    .await?;
                let crd = Api::<CustomResourceDefinition>::all(client)
                    .get_opt(olm::CRD_NAME)
                    .await?;
                Ok((deployment.is_none() && crd.is_none()).then_some(()))
            }
        })
        .await
        .context("cleanup removes the operator Deployment and the CRD")?;
        olm.ensure_running()?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        cluster.mark_failed();
    }
    result
}

/// `operator-sdk scorecard bundle/`: every test of the bundle's scorecard
/// configuration runs; all pass but `olm-spec-descriptors`, which fails
/// exactly for the v1 example's fields that v2 does not have (v1.34.1
/// matches an `alm-examples` entry to the first owned CRD entry of the same
/// kind, ignoring its version: the v2 one; docs/bundle-validation.md).
async fn scorecard(registry: &Registry, tools: &olm_tests::Tools, cluster: &Cluster) -> Result<()> {
    let ns = "scorecard";
    operator::create_namespace(&cluster.admin_client(), ns, &[]).await?;
    let root = operator::workspace_root();
    let bundle_dir = root.join("bundle");
    let mut cmd = Command::new(tools.bin("operator-sdk"));
    cmd.arg("scorecard")
        .arg(&bundle_dir)
        .args(["--namespace", ns])
        .args(["--untar-image", olm_tests::registry::BUSYBOX_IMAGE])
        .args(["--storage-image", olm_tests::registry::BUSYBOX_IMAGE])
        .args(["--wait-time", "180s", "--output", "json"])
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .env("HOME", cluster.dir());
    let start = Instant::now();
    // Exits 1 when a test fails: judged below, test by test.
    let (status, out) = registry.run_capture(cmd, STEP)?;
    eprintln!(
        "FIGURE operator-sdk scorecard took {:.1} s ({status})",
        start.elapsed().as_secs_f64()
    );
    let json_start = out
        .find('{')
        .with_context(|| format!("scorecard printed no JSON: {out}"))?;
    let list: serde_json::Value = serde_json::from_str(&out[json_start..])
        .with_context(|| format!("scorecard output: {out}"))?;
    let items = list["items"].as_array().context("scorecard: no items")?;
    let config = std::fs::read_to_string(bundle_dir.join("tests/scorecard/config.yaml"))?;
    let configured = config.matches("- scorecard-test").count();
    ensure!(
        items.len() == configured && configured > 0,
        "scorecard ran {} of the {configured} configured tests",
        items.len()
    );

    // The v1 example's top-level spec fields without a v2 spec descriptor.
    let csv: serde_json::Value = olm_tests::yaml::from_str(&std::fs::read_to_string(
        root.join(manifests_gen::CSV_PATH),
    )?)?;
    let owned = csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .context("CSV without owned CRDs")?;
    let v2_paths: std::collections::BTreeSet<&str> = owned
        .iter()
        .find(|o| o["version"] == "v2")
        .and_then(|o| o["specDescriptors"].as_array())
        .context("no v2 owned entry with specDescriptors")?
        .iter()
        .filter_map(|d| d["path"].as_str())
        .collect();
    let v1: serde_json::Value = olm_tests::yaml::from_str(&std::fs::read_to_string(
        root.join("operator/samples/locusttest-v1.yaml"),
    )?)?;
    let expected: std::collections::BTreeSet<String> = v1["spec"]
        .as_object()
        .context("v1 sample without spec")?
        .keys()
        .filter(|k| !v2_paths.contains(k.as_str()))
        .map(|k| format!("{k} does not have a spec descriptor"))
        .collect();

    let mut unexpected = Vec::new();
    for item in items {
        for result in item["status"]["results"].as_array().into_iter().flatten() {
            let name = result["name"].as_str().unwrap_or("?");
            let state = result["state"].as_str().unwrap_or("");
            eprintln!("FIGURE scorecard {name}: {state}");
            let errors: std::collections::BTreeSet<String> = result["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect();
            let known = name == "olm-spec-descriptors" && state == "fail" && errors == expected;
            if state != "pass" && !known {
                unexpected.push(result.clone());
            }
        }
    }
    ensure!(
        unexpected.is_empty(),
        "scorecard tests failed (besides the known v1-example mismatch {expected:?}): {unexpected:#?}"
    );
    Ok(())
}
