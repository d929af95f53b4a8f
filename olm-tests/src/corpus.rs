//! The admission corpus (`operator/tests/corpus`) through a real
//! kube-apiserver, twice: with the CRD's CEL rules and no webhook, then with
//! the validating webhook and a CRD without CEL. Every invalid object is
//! rejected in both modes with its expected message (webhook-only rules:
//! accepted by CEL alone), schema failures by the schema in both; every valid
//! object, including the documentation's examples, is accepted in both.
//!
//! [`check_corpus`] is the whole check; `tests/e2e_corpus.rs` runs it on the
//! current control plane and `tests/min_kube.rs` on the oldest supported one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use locust_operator::api::v2;
use locust_operator::crd::crd_without_cel;
use serde_json::Value;

use crate::operator::{self, LocalWebhookOperator};
use crate::{Cluster, wait_for};

/// How long the API server may keep serving the previous CRD or webhook set.
const SETTLE: Duration = Duration::from_secs(15);
const WEBHOOK_DENIAL: &str = "denied the request";

pub struct Invalid {
    pub file: String,
    /// `field: start of message`, or only the field for `cel: schema`.
    pub expect: String,
    /// `yes`, `no` (webhook-only) or `schema`.
    pub cel: String,
    pub doc: Value,
}

impl Invalid {
    /// The field and the message the API server's answer must contain.
    fn parts(&self) -> (&str, Option<&str>) {
        match self.expect.split_once(": ") {
            Some((field, msg)) if self.cel != "schema" => (field, Some(msg)),
            _ => (self.expect.as_str(), None),
        }
    }
}

fn corpus_dir() -> PathBuf {
    operator::workspace_root().join("operator/tests/corpus")
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "yaml") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

fn parse_docs(text: &str) -> Result<Vec<Value>> {
    Ok(crate::yaml::documents(text)?)
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .map(|s| s.trim().to_owned())
}

pub fn invalid_corpus() -> Result<Vec<Invalid>> {
    let mut out = Vec::new();
    for path in yaml_files(&corpus_dir().join("invalid"))? {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path)?;
        let expect = header(&text, "expect").with_context(|| format!("{file}: no expect"))?;
        let cel = header(&text, "cel").with_context(|| format!("{file}: no cel"))?;
        let doc = parse_docs(&text)?
            .into_iter()
            .next()
            .with_context(|| format!("{file}: empty"))?;
        out.push(Invalid {
            file,
            expect,
            cel,
            doc,
        });
    }
    Ok(out)
}

/// v2 LocustTests of the valid corpus, the samples and the docs' ```yaml blocks.
pub fn valid_corpus() -> Result<Vec<(String, Value)>> {
    let root = operator::workspace_root();
    let mut texts = Vec::new();
    let mut files = yaml_files(&corpus_dir().join("valid"))?;
    files.extend(yaml_files(&root.join("operator/samples"))?);
    for f in files {
        texts.push((f.display().to_string(), std::fs::read_to_string(&f)?));
    }
    let mut md = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "md") {
            md.push(p);
        }
    }
    md.sort();
    for f in md {
        let text = std::fs::read_to_string(&f)?;
        let mut block: Option<String> = None;
        for line in text.lines() {
            let fence = line.trim_start();
            match block.take() {
                None => {
                    if fence.starts_with("```yaml") {
                        block = Some(String::new());
                    }
                }
                Some(b) if fence.starts_with("```") => {
                    if b.contains("kind: LocustTest") {
                        texts.push((f.display().to_string(), b));
                    }
                }
                Some(mut b) => {
                    b.push_str(line);
                    b.push('\n');
                    block = Some(b);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (what, text) in texts {
        for doc in parse_docs(&text).with_context(|| what.clone())? {
            if doc.get("kind").and_then(Value::as_str) == Some("LocustTest")
                && doc.get("apiVersion").and_then(Value::as_str) == Some("locust.io/v2")
            {
                out.push((what.clone(), doc));
            }
        }
    }
    Ok(out)
}

/// Outcome of one create: `Ok(None)` accepted (and deleted again),
/// `Ok(Some(message))` rejected with 400/422.
async fn try_create(api: &Api<DynamicObject>, doc: &Value) -> Result<Option<String>> {
    let obj: DynamicObject = serde_json::from_value(doc.clone())?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(created) => {
            api.delete(&created.name_any(), &DeleteParams::default())
                .await?;
            Ok(None)
        }
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => Ok(Some(s.message)),
        Err(e) => Err(e.into()),
    }
}

/// Why `outcome` is not what `case` expects in `mode`, or `None` when it is.
fn mismatch(case: &Invalid, webhook: bool, outcome: &Option<String>) -> Option<String> {
    let (field, msg) = case.parts();
    let accept_expected = !webhook && case.cel == "no";
    match (outcome, accept_expected) {
        (None, true) => None,
        (None, false) => Some("accepted".into()),
        (Some(m), true) => Some(format!("rejected: {m}")),
        (Some(m), false) => {
            let by_webhook = m.contains(WEBHOOK_DENIAL);
            if !m.contains(field) || msg.is_some_and(|msg| !m.contains(msg)) {
                Some(format!("message {m:?} lacks {:?}", case.expect))
            } else if case.cel != "schema" && by_webhook != webhook {
                Some(format!("rejected by the wrong layer: {m}"))
            } else {
                None
            }
        }
    }
}

/// Create every case until it gets its expected outcome (the API server may
/// serve the previous CRD for a moment); returns how many were rejected.
async fn run_invalid(api: &Api<DynamicObject>, cases: &[Invalid], webhook: bool) -> Result<usize> {
    let mode = if webhook {
        "webhook alone"
    } else {
        "CEL alone"
    };
    let mut rejected = 0;
    for case in cases {
        let last = wait_for(SETTLE, Duration::from_millis(300), || async {
            let outcome = try_create(api, &case.doc).await?;
            Ok(mismatch(case, webhook, &outcome)
                .is_none()
                .then_some(outcome))
        })
        .await;
        match last {
            Ok(Some(_)) => rejected += 1,
            Ok(None) => {}
            Err(e) => {
                let outcome = try_create(api, &case.doc).await?;
                bail!(
                    "{} ({mode}): {} [{e:#}]",
                    case.file,
                    mismatch(case, webhook, &outcome).unwrap_or_default()
                );
            }
        }
    }
    Ok(rejected)
}

async fn run_valid(api: &Api<DynamicObject>, valid: &[(String, Value)], mode: &str) -> Result<()> {
    for (what, doc) in valid {
        wait_for(SETTLE, Duration::from_millis(300), || async {
            Ok(try_create(api, doc).await?.is_none().then_some(()))
        })
        .await
        .with_context(|| {
            format!(
                "{what} ({}) not accepted by {mode}",
                doc["metadata"]["name"]
            )
        })?;
    }
    Ok(())
}

/// What [`check_corpus`] saw.
#[derive(Clone, Debug)]
pub struct CorpusReport {
    /// Invalid files, all rejected by the webhook pass.
    pub invalid: usize,
    /// Of them, rejected by CEL (and the schema) alone with the same message.
    pub by_cel: usize,
    /// Of them, rejected by the schema (in both modes).
    pub schema: usize,
    /// Of them, webhook-only rules (accepted by CEL alone).
    pub webhook_only: usize,
    /// Valid documents, accepted in both modes.
    pub valid: usize,
    /// Time of the CEL pass and of the webhook pass.
    pub cel_time: Duration,
    pub webhook_time: Duration,
}

impl std::fmt::Display for CorpusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} invalid rejected by the webhook, {} of them by CEL alone with the same message \
             ({} by the schema in both modes, {} webhook-only accepted by CEL alone); \
             {} valid accepted in both modes; CEL pass {:?}, webhook pass {:?}",
            self.invalid,
            self.by_cel,
            self.schema,
            self.webhook_only,
            self.valid,
            self.cel_time,
            self.webhook_time
        )
    }
}

/// One pass over the corpus in a fresh namespace `ns`: every invalid object
/// rejected (by the webhook alone when `webhook`, else by CEL), every valid
/// one created. Returns how many were rejected and the time the pass took.
async fn run_pass(
    client: &Client,
    ns: &str,
    (invalid, valid): (&[Invalid], &[(String, Value)]),
    webhook: bool,
) -> Result<(usize, Duration)> {
    operator::create_namespace(client, ns, &[]).await?;
    let ar = ApiResource::erase::<v2::LocustTest>(&());
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar);
    let start = Instant::now();
    let rejected = run_invalid(&api, invalid, webhook).await?;
    run_valid(
        &api,
        valid,
        if webhook { "the webhook" } else { "CEL alone" },
    )
    .await?;
    Ok((rejected, start.elapsed()))
}

/// The whole corpus check on `cluster`, against `webhook` (an operator
/// started with [`operator::start_local_webhook_operator`]): the CEL pass
/// installs the bundle's CRD without its conversion webhook, the webhook pass
/// a CRD without CEL converted by, and validated through, `webhook`.
/// Namespaces `corpus-cel` and `corpus-wh` are used.
pub async fn check_corpus(
    cluster: &Cluster,
    webhook: &LocalWebhookOperator,
) -> Result<CorpusReport> {
    let invalid = invalid_corpus()?;
    let valid = valid_corpus()?;
    ensure!(invalid.len() >= 40 && valid.len() >= 12, "corpus too small");
    let client = cluster.admin_client();

    // CEL alone: the bundle's CRD, no conversion webhook, no VWC.
    operator::install_crd(
        &client,
        &operator::crd_without_webhook(operator::bundle_crd()?),
    )
    .await?;
    let (by_cel, cel_time) = run_pass(&client, "corpus-cel", (&invalid, &valid), false).await?;

    // The webhook alone: a CRD without CEL, the webhooks served by the operator.
    webhook.process.wait_ready(Duration::from_secs(30)).await?;
    let crd = operator::with_local_conversion_webhook(crd_without_cel(), webhook.port, &webhook.ca);
    operator::install_crd(&client, &crd).await?;
    let stored = Api::<CustomResourceDefinition>::all(client.clone())
        .get("locusttests.locust.io")
        .await?;
    ensure!(
        !serde_json::to_string(&stored.spec)?.contains("x-kubernetes-validations"),
        "CEL rules removed for the webhook pass"
    );
    operator::install_local_validating_webhook(&client, webhook.port, &webhook.ca).await?;
    let (by_webhook, webhook_time) =
        run_pass(&client, "corpus-wh", (&invalid, &valid), true).await?;

    let report = CorpusReport {
        invalid: invalid.len(),
        by_cel,
        schema: invalid.iter().filter(|c| c.cel == "schema").count(),
        webhook_only: invalid.iter().filter(|c| c.cel == "no").count(),
        valid: valid.len(),
        cel_time,
        webhook_time,
    };
    ensure!(
        by_webhook == report.invalid,
        "every invalid file rejected by the webhook pass"
    );
    ensure!(
        by_cel == report.invalid - report.webhook_only,
        "CEL rejects all but the webhook-only files"
    );
    Ok(report)
}
