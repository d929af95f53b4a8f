//! Upgrading through OLM along the `stable` and `alpha` channels, from a
//! catalog image with the current release to a catalog image that adds
//! generated next releases (patch in alpha+stable, minor in alpha only), all
//! served by OLM's registry pods from the local registry, every bundle
//! unpacked from its bundle image, with LocustTests (v1 and v2) created
//! before the upgrade and read in both versions after it. Conversion and
//! admission are served by the operator Deployment's pods on the real node
//! (the operator image built here, pushed as each hypothetical release),
//! through the webhook Service with the certificate OLM issued.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectList,
};
use kube::{Client, ResourceExt};
use olm_tests::olm::{self, Approval, OPERATORS_NAMESPACE, Olm, csv_name};
use olm_tests::registry::Registry;
use olm_tests::{Cluster, ClusterOptions};
use olm_tests::{images, operator};
use serde_json::{Value, json};

const STEP: Duration = Duration::from_secs(180);
const CATALOG: &str = "locust-catalog";

/// The current release and the two hypothetical next ones.
struct Versions {
    current: String,
    patch: String,
    minor: String,
}

impl Versions {
    fn new() -> Result<Self> {
        let current = olm::current_version()?;
        let parts: Vec<u64> = current
            .split('.')
            .map(|p| p.parse::<u64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("version {current} is not MAJOR.MINOR.PATCH"))?;
        ensure!(
            parts.len() == 3,
            "version {current} is not MAJOR.MINOR.PATCH"
        );
        Ok(Self {
            patch: format!("{}.{}.{}", parts[0], parts[1], parts[2] + 1),
            minor: format!("{}.{}.0", parts[0], parts[1] + 1),
            current,
        })
    }
}

fn locust_api(client: &Client, ns: &str, version: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("locust.io", version, "LocustTest"),
        "locusttests",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn sample(version: &str, name: &str) -> Result<DynamicObject> {
    let file = format!("operator/samples/locusttest-{version}.yaml");
    let path = operator::workspace_root().join(file);
    let mut obj: DynamicObject = olm_tests::yaml::from_str(&std::fs::read_to_string(&path)?)?;
    obj.metadata.name = Some(name.to_owned());
    obj.metadata.namespace = None;
    // Pods really start here: the Locust image built here (v1 and v2 both
    // name it `spec.image`).
    obj.data["spec"]["image"] = json!(images::locust_image());
    Ok(obj)
}

/// Waits until the operator of release `version` runs (its pods Ready on the
/// real node, serving the webhooks).
async fn wait_running(client: &Client, version: &str) -> Result<()> {
    olm::wait_operator_running(client, &olm::operator_image(version), STEP)
        .await
        .map(drop)
}

/// Creates a v1 and a v2 LocustTest in `ns` (needs the webhooks).
async fn create_tests(client: &Client, ns: &str, prefix: &str) -> Result<()> {
    operator::create_namespace(client, ns, &[]).await?;
    for version in ["v1", "v2"] {
        let name = format!("{prefix}-{version}");
        olm::create_when_admitted(
            &locust_api(client, ns, version),
            &sample(version, &name)?,
            OPERATORS_NAMESPACE,
            STEP,
        )
        .await
        .with_context(|| format!("creating {version} LocustTest {name}"))?;
    }
    Ok(())
}

/// Both tests are readable in both versions (retried, bounded: the webhook
/// certificate may be in the middle of a rotation).
async fn read_tests(client: &Client, ns: &str, prefix: &str) -> Result<()> {
    let read = olm_tests::wait_for(STEP, Duration::from_secs(1), || async move {
        read_tests_once(client, ns, prefix).await.map(Some)
    })
    .await;
    match read {
        Ok(()) => Ok(()),
        Err(e) => Err(e.context(format!(
            "operator pods:\n{}",
            olm::operator_logs(client, 20).await
        ))),
    }
}

/// Test `name` of a list of LocustTests read as `version`.
fn listed<'a>(
    list: &'a ObjectList<DynamicObject>,
    version: &str,
    name: &str,
) -> Result<&'a DynamicObject> {
    list.items
        .iter()
        .find(|o| o.name_any() == name)
        .with_context(|| format!("{name} missing from the {version} list"))
}

fn integer_at(object: &DynamicObject, pointer: &str) -> Option<i64> {
    object.data.pointer(pointer).and_then(Value::as_i64)
}

/// Both tests are readable in both versions, with the fields of each.
async fn read_tests_once(client: &Client, ns: &str, prefix: &str) -> Result<()> {
    let lp = ListParams::default();
    let v1 = locust_api(client, ns, "v1")
        .list(&lp)
        .await
        .context("listing v1 LocustTests (served through the conversion webhook)")?;
    let v2 = locust_api(client, ns, "v2").list(&lp).await?;
    for version in ["v1", "v2"] {
        let name = format!("{prefix}-{version}");
        let as_v1 = listed(&v1, "v1", &name)?;
        ensure!(
            integer_at(as_v1, "/spec/workerReplicas") == Some(2),
            "{name} as v1: {}",
            as_v1.data
        );
        let as_v2 = listed(&v2, "v2", &name)?;
        ensure!(
            integer_at(as_v2, "/spec/worker/replicas").is_some(),
            "{name} as v2: {}",
            as_v2.data
        );
        ensure!(
            as_v2.data.pointer("/spec/image").and_then(Value::as_str)
                == as_v1.data.pointer("/spec/image").and_then(Value::as_str),
            "{name}: image differs between versions"
        );
    }
    Ok(())
}

async fn delete_tests(client: &Client, ns: &str) -> Result<()> {
    let api = locust_api(client, ns, "v2");
    for t in api.list(&ListParams::default()).await?.items {
        api.delete(&t.name_any(), &DeleteParams::default()).await?;
    }
    olm_tests::wait_for(STEP, Duration::from_millis(250), || {
        let api = api.clone();
        async move {
            Ok(api
                .list(&ListParams::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        }
    })
    .await
    .context("waiting for the LocustTests to be deleted")
}

async fn csv_exists(olm: &Olm, name: &str) -> Result<bool> {
    Ok(olm::csvs(olm.client(), OPERATORS_NAMESPACE)
        .get_opt(name)
        .await?
        .is_some())
}

/// Waits until OLM has garbage-collected the replaced CSV `name`.
async fn wait_replaced(olm: &Olm, name: &str) -> Result<()> {
    let res = olm_tests::wait_for(STEP, Duration::from_millis(250), || async move {
        Ok((!csv_exists(olm, name).await?).then_some(()))
    })
    .await;
    match res {
        Ok(()) => Ok(()),
        Err(e) => Err(olm
            .fail(e.context(format!("waiting for the replaced CSV {name} to be removed")))
            .await),
    }
}

async fn sub_field(olm: &Olm, sub: &str, pointer: &str) -> Result<String> {
    let s = olm::subscriptions(olm.client(), OPERATORS_NAMESPACE)
        .get(sub)
        .await?;
    Ok(olm::field(&s, pointer).to_owned())
}

/// alpha (Automatic) at the current release; switched to stable; a catalog
/// update publishes the next releases: the subscription moves to the stable
/// head (not alpha's) and the old CSV is replaced; then switched back to
/// alpha it moves to the alpha head. LocustTests survive every step.
async fn automatic_and_channel_switches(olm: &mut Olm, v: &Versions, c: &Catalogs) -> Result<()> {
    let client = olm.client().clone();
    let sub = "locust-auto";
    olm.subscribe(sub, CATALOG, "alpha", Approval::Automatic, None)
        .await?;
    olm.wait_installed(sub, &csv_name(&v.current), STEP).await?;
    wait_running(&client, &v.current).await?;
    create_tests(&client, "team-auto", "before").await?;

    // alpha → stable: the current release is in both, nothing to install.
    olm.patch_subscription(sub, json!({"channel": "stable"}))
        .await?;
    olm.wait_installed(sub, &csv_name(&v.current), STEP).await?;

    // Publish the next releases: stable's head is the patch release.
    olm.catalog_from_image(CATALOG, &c.next).await?;
    olm.wait_installed(sub, &csv_name(&v.patch), STEP).await?;
    wait_replaced(olm, &csv_name(&v.current)).await?;
    ensure!(
        !csv_exists(olm, &csv_name(&v.minor)).await?,
        "stable must not install the alpha-only {}",
        v.minor
    );
    wait_running(&client, &v.patch).await?;
    read_tests(&client, "team-auto", "before").await?;

    // stable → alpha: moves on to alpha's head.
    olm.patch_subscription(sub, json!({"channel": "alpha"}))
        .await?;
    olm.wait_installed(sub, &csv_name(&v.minor), STEP).await?;
    wait_replaced(olm, &csv_name(&v.patch)).await?;
    wait_running(&client, &v.minor).await?;
    read_tests(&client, "team-auto", "before").await?;

    // Clean up while conversion is served (a reinstall lists every version).
    delete_tests(&client, "team-auto").await?;
    olm.uninstall(sub).await?;
    Ok(())
}

/// A Manual subscription on an old release in alpha: the next InstallPlan
/// waits for approval and goes to the alpha head in one step (skipRange),
/// never through the patch release.
async fn manual_with_skip_range(olm: &mut Olm, v: &Versions, c: &Catalogs) -> Result<()> {
    let client = olm.client().clone();
    olm.catalog_from_image(CATALOG, &c.next).await?;
    let sub = "locust-manual";
    let start = csv_name(&v.current);
    olm.subscribe(sub, CATALOG, "alpha", Approval::Manual, Some(&start))
        .await?;
    let first = olm.wait_install_plan(sub, &start, STEP).await?;
    ensure!(
        first.data.pointer("/spec/approved") == Some(&json!(false)),
        "a Manual plan must start unapproved"
    );
    ensure!(!csv_exists(olm, &start).await?, "installed before approval");
    olm.approve(&first.name_any()).await?;
    olm.wait_installed(sub, &start, STEP).await?;
    wait_running(&client, &v.current).await?;
    create_tests(&client, "team-manual", "old").await?;

    let head = csv_name(&v.minor);
    let plan = olm.wait_install_plan(sub, &head, STEP).await?;
    let names = plan
        .data
        .pointer("/spec/clusterServiceVersionNames")
        .cloned()
        .unwrap_or_default();
    ensure!(
        names == json!([head.clone()]),
        "one step to the head expected, plan has {names}"
    );
    ensure!(plan.data.pointer("/spec/approved") == Some(&json!(false)));
    // Unapproved: nothing moves.
    tokio::time::sleep(Duration::from_secs(5)).await;
    ensure!(sub_field(olm, sub, "/status/installedCSV").await? == start);
    ensure!(sub_field(olm, sub, "/status/state").await? == "UpgradePending");
    ensure!(!csv_exists(olm, &head).await?);

    olm.approve(&plan.name_any()).await?;
    olm.wait_installed(sub, &head, STEP).await?;
    wait_replaced(olm, &start).await?;
    ensure!(
        !csv_exists(olm, &csv_name(&v.patch)).await?,
        "the patch release was installed on the way"
    );
    wait_running(&client, &v.minor).await?;
    read_tests(&client, "team-manual", "old").await?;
    delete_tests(&client, "team-manual").await?;
    olm.uninstall(sub).await?;
    Ok(())
}

/// The two catalog images: the current release's, and the next one's.
struct Catalogs {
    current: String,
    next: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_along_stable_and_alpha() -> Result<()> {
    let Some((tools, images)) = images::tools_and_images_or_skip("upgrade_along_stable_and_alpha")
    else {
        return Ok(());
    };
    let v = Versions::new()?;
    let cluster =
        Cluster::start(ClusterOptions::real_node_from(tools.clone(), "olm-upgrade")).await?;
    let registry = Registry::start(&cluster, &tools).await?;
    let root = operator::workspace_root();
    let current = registry.publish_release(
        &tools,
        &images,
        &manifests_gen::Options::new(&root),
        &[v.current.parse()?],
    )?;
    // The next releases: the same build, published as each of them.
    let mut next_opts = manifests_gen::Options::new(&root);
    for spec in [
        format!("{}:alpha,stable", v.patch),
        format!("{}:alpha", v.minor),
    ] {
        next_opts
            .extra_releases
            .push(manifests_gen::parse_extra_release(&spec).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let next = registry.publish_release(
        &tools,
        &images,
        &next_opts,
        &[v.current.parse()?, v.patch.parse()?, v.minor.parse()?],
    )?;
    let catalogs = Catalogs {
        current: current.catalog,
        next: next.catalog,
    };
    ensure!(catalogs.current != catalogs.next, "{}", catalogs.next);
    let mut olm = Olm::start(&cluster, &tools).await?;
    olm.catalog_from_image(CATALOG, &catalogs.current).await?;
    let mut result = automatic_and_channel_switches(&mut olm, &v, &catalogs)
        .await
        .context("scenario: automatic upgrade and channel switches");
    if result.is_ok() {
        result = manual_with_skip_range(&mut olm, &v, &catalogs)
            .await
            .context("scenario: manual approval and skipRange");
    }
    if let Err(e) = result {
        cluster.mark_failed();
        return Err(olm.fail(e).await);
    }
    olm.ensure_running()
}
