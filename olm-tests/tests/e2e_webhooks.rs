//! The conversion and validating webhooks through a real kube-apiserver, as
//! controller-runtime's envtest does: the CRD's conversion webhook and a
//! ValidatingWebhookConfiguration point at `https://127.0.0.1:<port>` with the
//! CA of a certificate the test made; the operator binary serves them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use locust_operator::api::{v1, v2};
use locust_operator::conversion;
use locust_operator::crd::crd_without_cel;
use olm_tests::operator::{self};
use olm_tests::{e2e, wait_for};

fn base(name: &str) -> Result<v2::LocustTest> {
    let path = operator::workspace_root().join("operator/samples/locusttest-v2.yaml");
    let mut t: v2::LocustTest = olm_tests::yaml::from_str(&std::fs::read_to_string(path)?)?;
    t.metadata.name = Some(name.into());
    Ok(t)
}

fn msg(id: &str) -> Result<&'static str> {
    locust_operator::validation::RULES
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.message)
        .with_context(|| format!("no rule {id}"))
}

fn json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

/// Invalid objects, each with the message of the rule it breaks (one per
/// CEL-expressible rule family).
/// Test `name` with an emptyDir volume `data` mounted at `mount_path`.
fn with_data_mount(name: &str, mount_path: &str) -> Result<v2::LocustTest> {
    let mut t = base(name)?;
    t.spec.volumes = vec![json(serde_json::json!({"name": "data", "emptyDir": {}}))?];
    t.spec.volume_mounts = vec![json(
        serde_json::json!({"name": "data", "mountPath": mount_path}),
    )?];
    Ok(t)
}

/// `(what, object, message its rejection names)`.
type Cases = [(&'static str, v2::LocustTest, &'static str)];

fn invalid_cases() -> Result<Vec<(&'static str, v2::LocustTest, &'static str)>> {
    let mut cases = Vec::new();
    let mut t = base("bad-mount")?;
    t.spec.volume_mounts = vec![json(
        serde_json::json!({"name": "ghost", "mountPath": "/data"}),
    )?];
    cases.push((
        "mount without volume",
        t,
        msg("volume-mount-unknown-volume")?,
    ));
    let mut t = base("bad-otel")?;
    t.spec.observability = Some(v2::ObservabilitySpec {
        open_telemetry: Some(v2::OpenTelemetrySpec {
            enabled: true,
            ..Default::default()
        }),
    });
    cases.push(("otel without endpoint", t, msg("otel-endpoint-required")?));
    let mut t = base("bad-image")?;
    t.spec.image = String::new();
    cases.push(("empty image", t, msg("image-required")?));
    let mut t = base("bad-command")?;
    t.spec.master.command = "   ".into();
    cases.push(("blank master command", t, msg("master-command-required")?));
    let t = base(&"x".repeat(57))?;
    cases.push(("name too long", t, msg("name-length")?));
    let mut t = base("bad-reserved")?;
    t.spec.volumes = vec![json(
        serde_json::json!({"name": "locust-src", "emptyDir": {}}),
    )?];
    cases.push(("reserved volume name", t, msg("volume-names-reserved")?));
    let mut t = base("bad-dup")?;
    t.spec.volumes = vec![
        json(serde_json::json!({"name": "data", "emptyDir": {}}))?,
        json(serde_json::json!({"name": "data", "emptyDir": {}}))?,
    ];
    cases.push(("duplicate volume names", t, msg("volume-names-unique")?));
    cases.push((
        "mount over the test files",
        with_data_mount("bad-conflict", "/lotest/src")?,
        msg("volume-mount-path-conflict")?,
    ));
    cases.push((
        "relative mount path",
        with_data_mount("bad-relative", "results")?,
        msg("volume-mount-paths-absolute")?,
    ));
    let mut t = base("bad-secrets")?;
    t.spec.env = Some(json(serde_json::json!({"secretMounts": [
        {"name": "a", "mountPath": "/etc/certs"}, {"name": "b", "mountPath": "/etc/certs"}]}))?);
    cases.push((
        "secret mounts on one path",
        t,
        msg("secret-mount-path-conflict")?,
    ));
    let mut t = base("bad-paths")?;
    t.spec.test_files = Some(json(serde_json::json!({
        "configMapRef": "a", "libConfigMapRef": "b", "srcMountPath": "/same", "libMountPath": "/same"}))?);
    cases.push((
        "src and lib on one path",
        t,
        msg("test-files-mount-path-conflict")?,
    ));
    Ok(cases)
}

async fn expect_rejected(
    api: &Api<v2::LocustTest>,
    what: &str,
    t: &v2::LocustTest,
    message: &str,
    by: &str,
) -> Result<()> {
    match api.create(&PostParams::default(), t).await {
        Ok(_) => {
            let _ = api.delete(&t.name_any(), &DeleteParams::default()).await;
            bail!("{what}: accepted, expected rejection by {by}")
        }
        Err(kube::Error::Api(s)) => {
            ensure!(
                s.code == 422 || s.code == 400,
                "{what} ({by}): HTTP {} {}",
                s.code,
                s.message
            );
            ensure!(
                s.message.contains(message),
                "{what} ({by}): message {:?} lacks {message:?}",
                s.message
            );
            Ok(())
        }
        Err(e) => Err(e).context(what.to_owned()),
    }
}

/// [`expect_rejected`] for every case, retried for up to 10 s each: the
/// apiserver may serve the previous schema for a moment.
async fn eventually_rejected(api: &Api<v2::LocustTest>, cases: &Cases, by: &str) -> Result<()> {
    for (what, t, msg) in cases {
        wait_for(
            Duration::from_secs(10),
            Duration::from_millis(300),
            || async { Ok(expect_rejected(api, what, t, msg, by).await.ok()) },
        )
        .await
        .with_context(|| format!("{what}: rejected by {by}"))?;
    }
    Ok(())
}

/// LocustSchedules through the apiserver and the webhook: what only the
/// webhook can say (a cron expression, a time zone) is refused with the
/// parser's message, a bad template with the LocustTest rule's message under
/// `spec.template.spec`, and the sample schedule is accepted.
async fn schedules_through_the_apiserver(client: &kube::Client) -> Result<()> {
    use locust_operator::api::LocustSchedule;
    operator::install_crd(client, &operator::bundle_schedule_crd()?).await?;
    let api: Api<LocustSchedule> = Api::namespaced(client.clone(), "wh");
    let path = operator::workspace_root().join("operator/samples/locustschedule.yaml");
    let sample: LocustSchedule = olm_tests::yaml::from_str(&std::fs::read_to_string(path)?)?;
    let with = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> Result<LocustSchedule> {
        let mut value = serde_json::to_value(&sample)?;
        value["metadata"]["name"] = name.into();
        edit(&mut value);
        Ok(serde_json::from_value(value)?)
    };
    let cases = [
        (
            with("bad-cron", &|v| v["spec"]["schedule"] = "0 25 * * *".into())?,
            "spec.schedule: not a valid cron schedule: hour: 25 is out of range 0-23",
        ),
        (
            with("bad-zone", &|v| {
                v["spec"]["timeZone"] = "Mars/Olympus".into()
            })?,
            "spec.timeZone: unknown time zone \"Mars/Olympus\"",
        ),
        (
            with("bad-template", &|v| {
                v["spec"]["template"]["spec"]["worker"]["replicas"] = 0.into()
            })?,
            "spec.template.spec.worker.replicas",
        ),
    ];
    for (schedule, message) in &cases {
        let name = schedule.name_any();
        // The webhook may briefly be unknown for the new resource: retry.
        wait_for(
            Duration::from_secs(20),
            Duration::from_millis(300),
            || async {
                match api.create(&PostParams::default(), schedule).await {
                    Ok(_) => {
                        let _ = api.delete(&name, &DeleteParams::default()).await;
                        Ok(None)
                    }
                    Err(kube::Error::Api(s)) if s.message.contains(message) => Ok(Some(())),
                    Err(e) => Err(anyhow::anyhow!("{name}: {e}")),
                }
            },
        )
        .await
        .with_context(|| format!("schedule {name}: refused with {message:?}"))?;
    }
    api.create(&PostParams::default(), &sample)
        .await
        .context("the sample LocustSchedule is accepted")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_through_the_apiserver() -> Result<()> {
    let Some((cluster, op, port, ca)) =
        e2e::webhook_cluster("webhooks_through_the_apiserver", "e2e-webhooks", "webhooks").await?
    else {
        return Ok(());
    };
    let client = cluster.admin_client();
    let full_crd = operator::with_local_conversion_webhook(operator::bundle_crd()?, port, &ca);
    operator::install_crd(&client, &full_crd).await?;
    op.wait_ready(Duration::from_secs(30)).await?;
    operator::install_local_validating_webhook(&client, port, &ca).await?;
    operator::create_namespace(&client, "wh", &[]).await?;

    let result = async {
        let v1_api: Api<v1::LocustTest> = Api::namespaced(client.clone(), "wh");
        let v2_api: Api<v2::LocustTest> = Api::namespaced(client.clone(), "wh");

        // v1 in, read back as v2 and as v1, losslessly.
        let path = operator::workspace_root().join("operator/samples/locusttest-v1.yaml");
        let sample: v1::LocustTest = olm_tests::yaml::from_str(&std::fs::read_to_string(path)?)?;
        // The webhook may briefly be unknown to the apiserver's client cache: retry.
        let created = wait_for(
            Duration::from_secs(20),
            Duration::from_millis(250),
            || async { Ok(Some(v1_api.create(&PostParams::default(), &sample).await?)) },
        )
        .await?;
        let as_v2 = v2_api.get("demo-v1").await?;
        let expected_v2 = conversion::v1_to_v2(&created).object;
        ensure!(
            as_v2.spec == expected_v2.spec,
            "v1 read as v2: {:#?}\nexpected {:#?}",
            as_v2.spec,
            expected_v2.spec
        );
        let as_v1 = v1_api.get("demo-v1").await?;
        ensure!(
            as_v1.spec == sample.spec,
            "v1 read back as v1: {:#?}",
            as_v1.spec
        );
        ensure!(
            !as_v1
                .annotations()
                .contains_key(conversion::V2_SPEC_ANNOTATION),
            "no annotation needed for a plain v1 object"
        );

        // A v2 object v1 cannot express survives a trip through v1.
        let mut rich = base("rich")?;
        rich.spec.master.resources = Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".into(), Quantity("500m".into()))])),
            ..Default::default()
        });
        rich.spec.master.extra_args = vec!["--only-summary".into()];
        rich.spec.env = Some(v2::EnvSpec {
            variables: vec![EnvVar {
                name: "TARGET".into(),
                value: Some("blue".into()),
                ..Default::default()
            }],
            ..Default::default()
        });
        let rich = v2_api.create(&PostParams::default(), &rich).await?;
        let rich_v1 = v1_api.get("rich").await?;
        ensure!(
            rich_v1
                .annotations()
                .contains_key(conversion::V2_SPEC_ANNOTATION),
            "v2-only fields kept in the annotation on the v1 view"
        );
        ensure!(
            v2_api.get("rich").await?.spec == rich.spec,
            "v2 → v1 → v2 lossless"
        );

        // An edit made through v1 wins, and the v2-only fields survive it.
        let patch = serde_json::json!({"spec": {"workerReplicas": 4}});
        v1_api
            .patch("rich", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let after = v2_api.get("rich").await?;
        ensure!(after.spec.worker.replicas == 4, "edit through v1 applied");
        ensure!(
            after.spec.master.extra_args == rich.spec.master.extra_args,
            "extraArgs survived"
        );
        ensure!(after.spec.env == rich.spec.env, "env survived");
        ensure!(
            after.spec.master.resources == rich.spec.master.resources,
            "resources survived"
        );

        // Invalid objects: CEL and webhook both on, then the webhook alone
        // (CRD without CEL), then CEL alone (webhook removed): same messages.
        let cases = invalid_cases()?;
        for (what, t, msg) in &cases {
            expect_rejected(&v2_api, what, t, msg, "CEL+webhook").await?;
        }
        schedules_through_the_apiserver(&client).await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        operator::install_crd(
            &client,
            &operator::with_local_conversion_webhook(crd_without_cel(), port, &ca),
        )
        .await?;
        let no_cel = crds.get("locusttests.locust.io").await?;
        ensure!(
            !serde_json::to_string(&no_cel.spec)?.contains("x-kubernetes-validations"),
            "CEL rules removed for the webhook-only pass"
        );
        eventually_rejected(&v2_api, &cases, "webhook alone").await?;
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(operator::VALIDATING_WEBHOOK, &DeleteParams::default())
            .await?;
        operator::install_crd(&client, &full_crd).await?;
        eventually_rejected(&v2_api, &cases, "CEL alone").await?;
        // A valid object is accepted with only CEL.
        v2_api
            .create(&PostParams::default(), &base("fine")?)
            .await?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    e2e::with_operator_log(&cluster, &op, 40, result)
}
