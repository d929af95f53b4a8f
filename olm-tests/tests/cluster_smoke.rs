//! Smoke test of the local cluster harness: boots a real control plane with
//! kwok nodes and checks what the operator's tests rely on: PodSecurity
//! admission, Jobs whose pods are scheduled, run and are completed by the
//! test, Job success and failure, garbage collection of a deleted Job's pods
//! (background and foreground propagation), and ServiceAccount tokens that
//! carry exactly the RBAC they are granted.
//!
//! Skips (with a notice) when the tools are not built, unless `CI` or
//! `LOCUST_REQUIRE_TOOLS` is set, in which case it fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, Namespace, Pod, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use olm_tests::cluster::{client_from_kubeconfig, first_container_state, pod_phase};
use olm_tests::tools::tools_or_skip;
use olm_tests::{Cluster, ClusterOptions, Component, wait_for};

const NS: &str = "smoke";
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(NS.to_string()),
        ..ObjectMeta::default()
    }
}

/// A pod spec that passes the `restricted` Pod Security Standard.
fn restricted_pod_spec() -> PodSpec {
    PodSpec {
        restart_policy: Some("Never".into()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(1000),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![Container {
            name: "main".into(),
            image: Some("busybox:1.36".into()),
            command: Some(vec!["sleep".into(), "3600".into()]),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                run_as_non_root: Some(true),
                ..SecurityContext::default()
            }),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity("100m".into())),
                    ("memory".to_string(), Quantity("64Mi".into())),
                ])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }],
        ..PodSpec::default()
    }
}

fn job(name: &str, pods: i32, backoff_limit: i32) -> Job {
    Job {
        metadata: meta(name),
        spec: Some(JobSpec {
            backoff_limit: Some(backoff_limit),
            completions: Some(pods),
            parallelism: Some(pods),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".to_string(), "smoke".to_string())])),
                    ..ObjectMeta::default()
                }),
                spec: Some(restricted_pod_spec()),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

async fn wait_job_condition(jobs: &Api<Job>, name: &str, condition: &str) -> Result<()> {
    wait_for(WAIT, POLL, || async {
        let job = jobs.get(name).await?;
        let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
        Ok(conditions
            .iter()
            .any(|c| c.type_ == condition && c.status == "True")
            .then_some(()))
    })
    .await
    .with_context(|| format!("waiting for Job {name} to be {condition}"))
}

/// Creates a Job and waits until all its pods run on kwok nodes.
async fn run_job(cluster: &Cluster, job: &Job) -> Result<Vec<Pod>> {
    let jobs: Api<Job> = Api::namespaced(cluster.admin_client(), NS);
    jobs.create(&PostParams::default(), job).await?;
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let count = job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1) as usize;
    let pods = cluster
        .wait_for_running_pods(
            NS,
            &format!("batch.kubernetes.io/job-name={name}"),
            count,
            WAIT,
        )
        .await?;
    for pod in &pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        assert!(
            cluster.node_names().contains(&node),
            "pod scheduled on unexpected node {node:?}"
        );
    }
    Ok(pods)
}

async fn delete_and_expect_gc(cluster: &Cluster, name: &str, params: &DeleteParams) -> Result<()> {
    let jobs: Api<Job> = Api::namespaced(cluster.admin_client(), NS);
    run_job(cluster, &job(name, 2, 0)).await?;
    jobs.delete(name, params).await?;
    cluster
        .wait_for_no_pods(NS, &format!("batch.kubernetes.io/job-name={name}"), WAIT)
        .await
        .with_context(|| format!("pods of deleted Job {name} were not garbage-collected"))?;
    wait_for(WAIT, POLL, || async {
        Ok(jobs.get_opt(name).await?.is_none().then_some(()))
    })
    .await
    .with_context(|| format!("Job {name} was not deleted"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_smoke() -> Result<()> {
    let Some(tools) = tools_or_skip("cluster_smoke::local_cluster_smoke") else {
        return Ok(());
    };
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();

    let started = Instant::now();
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        ..ClusterOptions::default()
    })
    .await?;
    let boot = started.elapsed();
    println!(
        "local cluster start-up time: {:.2}s (ready as measured by the harness: {:.2}s)",
        boot.as_secs_f64(),
        cluster.startup_duration().as_secs_f64()
    );
    eprintln!("local cluster start-up time: {:.2}s", boot.as_secs_f64());
    let outcome = scenario(&cluster).await;
    match &outcome {
        // Keeps the cluster directory when LOCUST_KEEP_CLUSTER=1.
        Err(_) => cluster.mark_failed(),
        Ok(()) => cluster.stop(),
    }
    outcome
}

async fn scenario(cluster: &Cluster) -> Result<()> {
    let client = cluster.admin_client();

    // A namespace enforcing the restricted Pod Security Standard.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(NS.into()),
                    labels: Some(BTreeMap::from([(
                        "pod-security.kubernetes.io/enforce".to_string(),
                        "restricted".to_string(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;
    // PodSecurity admission is really enforcing: a root pod is refused.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut privileged = restricted_pod_spec();
    privileged.security_context = None;
    privileged.containers[0].security_context = None;
    match pods
        .create(
            &PostParams::default(),
            &Pod {
                metadata: meta("not-restricted"),
                spec: Some(privileged),
                ..Pod::default()
            },
        )
        .await
    {
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("PodSecurity") => {}
        other => bail!("a pod violating the restricted PSS was not refused: {other:?}"),
    }

    // A Job whose pod runs on a kwok node, stays Running until the test
    // completes it, and then the Job is Complete.
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let running = run_job(cluster, &job("succeeds", 1, 0)).await?;
    let pod_name = running[0].metadata.name.clone().unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pod_phase(&pods.get(&pod_name).await?),
        "Running",
        "kwok must not finish Job pods by itself"
    );
    let done = cluster.complete_pod(NS, &pod_name, 0).await?;
    assert_eq!(pod_phase(&done), "Succeeded");
    wait_job_condition(&jobs, "succeeds", "Complete").await?;

    // Exit code 1 with backoffLimit 0: the Job fails.
    let running = run_job(cluster, &job("fails", 1, 0)).await?;
    let pod_name = running[0].metadata.name.clone().unwrap_or_default();
    let failed = cluster.complete_pod(NS, &pod_name, 1).await?;
    assert_eq!(pod_phase(&failed), "Failed");
    wait_job_condition(&jobs, "fails", "Failed").await?;
    let terminated = failed
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.state)
        .and_then(|s| s.terminated)
        .context("no terminated state")?;
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (1, Some("Error"))
    );

    // Deleting a Job garbage-collects its running pods, both ways.
    delete_and_expect_gc(cluster, "gc-background", &DeleteParams::background()).await?;
    delete_and_expect_gc(cluster, "gc-foreground", &DeleteParams::foreground()).await?;

    // A ServiceAccount token without RBAC is authenticated but forbidden...
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);
    accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("no-rbac"),
                ..ServiceAccount::default()
            },
        )
        .await?;
    let kubeconfig = cluster
        .service_account_kubeconfig(NS, "no-rbac", Duration::from_secs(3600))
        .await?;
    let sa_pods: Api<Pod> = Api::namespaced(client_from_kubeconfig(&kubeconfig).await?, NS);
    match sa_pods.list(&Default::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            assert!(
                status
                    .message
                    .contains("system:serviceaccount:smoke:no-rbac"),
                "{}",
                status.message
            );
        }
        other => bail!("listing pods without RBAC was not forbidden: {other:?}"),
    }
    // ...and gets exactly what a Role grants it.
    Api::<Role>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("pod-reader"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["pods".into()]),
                    verbs: vec!["list".into()],
                    ..PolicyRule::default()
                }]),
            },
        )
        .await?;
    Api::<RoleBinding>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("pod-reader"),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "pod-reader".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "no-rbac".into(),
                    namespace: Some(NS.into()),
                    ..Subject::default()
                }]),
            },
        )
        .await?;
    wait_for(WAIT, POLL, || async {
        Ok(sa_pods.list(&Default::default()).await.ok().map(drop))
    })
    .await
    .context("the granted Role did not take effect")?;
    Ok(())
}

fn pod_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its adopter) is not alive.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    first_container_state(pod)?.waiting.as_ref()?.reason.clone()
}

/// Pod status stand-ins that kwok leaves alone, restarting components with
/// the same data, and no process surviving the cluster. Runs in parallel with
/// `local_cluster_smoke`, each on its own ports and directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_states_and_component_restarts() -> Result<()> {
    let Some(tools) = tools_or_skip("cluster_smoke::pod_states_and_component_restarts") else {
        return Ok(());
    };
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        nodes: 1,
        name: "restarts".into(),
        ..ClusterOptions::default()
    })
    .await?;
    let pids: Vec<u32> = Component::ALL
        .iter()
        .map(|c| {
            cluster
                .component_pid(*c)
                .with_context(|| format!("{c} not running"))
        })
        .collect::<Result<_>>()?;
    let outcome = restarts_scenario(&cluster).await;
    if outcome.is_err() {
        cluster.mark_failed();
    }
    drop(cluster);
    for pid in pids {
        assert!(!pod_alive(pid), "process {pid} survived the cluster");
    }
    outcome
}

async fn restarts_scenario(cluster: &Cluster) -> Result<()> {
    let client = cluster.admin_client();
    let ns = "states";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pod = Pod {
        metadata: ObjectMeta {
            name: Some("stuck".into()),
            labels: Some(BTreeMap::from([("app".to_string(), "stuck".to_string())])),
            ..ObjectMeta::default()
        },
        spec: Some(restricted_pod_spec()),
        ..Pod::default()
    };
    pod.metadata.namespace = Some(ns.into());
    pods.create(&PostParams::default(), &pod).await?;
    cluster
        .wait_for_running_pods(ns, "app=stuck", 1, WAIT)
        .await?;

    // Waiting (e.g. a bad image): kwok must not flip it back to Running.
    let stuck = cluster
        .set_pod_waiting(
            ns,
            "stuck",
            "ImagePullBackOff",
            "Back-off pulling image \"nope\"",
        )
        .await?;
    assert_eq!(pod_phase(&stuck), "Pending");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = pods.get("stuck").await?;
    assert_eq!(pod_phase(&stuck), "Pending");
    assert_eq!(waiting_reason(&stuck).as_deref(), Some("ImagePullBackOff"));
    let running = cluster.set_pod_running(ns, "stuck").await?;
    assert_eq!(pod_phase(&running), "Running");

    // The apiserver restarts on the same port with the same data.
    cluster.stop_component(Component::Apiserver)?;
    assert!(!cluster.component_running(Component::Apiserver));
    assert!(pods.get("stuck").await.is_err(), "the apiserver is down");
    cluster.start_component(Component::Apiserver, WAIT).await?;
    assert_eq!(pod_phase(&pods.get("stuck").await?), "Running");

    // etcd crashes and comes back; the apiserver recovers by itself.
    cluster.kill_component(Component::Etcd)?;
    cluster.start_component(Component::Etcd, WAIT).await?;
    wait_for(WAIT, POLL, || async {
        Ok(pods.get_opt("stuck").await?.map(drop))
    })
    .await
    .context("the apiserver did not recover after etcd restarted")?;

    // Without the controller-manager nobody creates a Job's pods.
    cluster.stop_component(Component::ControllerManager)?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let mut paused = job("paused", 1, 0);
    paused.metadata.namespace = Some(ns.into());
    jobs.create(&PostParams::default(), &paused).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(cluster.job_pods(ns, "paused").await?.is_empty());
    cluster
        .start_component(Component::ControllerManager, WAIT)
        .await?;
    cluster
        .wait_for_running_pods(ns, "batch.kubernetes.io/job-name=paused", 1, WAIT)
        .await?;

    // A deleted pod with a test-written status is still removed by kwok.
    pods.delete("stuck", &DeleteParams::default()).await?;
    cluster.wait_for_no_pods(ns, "app=stuck", WAIT).await?;
    Ok(())
}
