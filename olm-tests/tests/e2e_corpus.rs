//! The admission corpus (`operator/tests/corpus`) through a real kube-apiserver
//! (the current control plane), with CEL alone and with the webhook alone: see
//! [`olm_tests::corpus`]. `tests/min_kube.rs` runs the same check on the oldest
//! supported control plane.

use anyhow::Result;
use olm_tests::corpus::check_corpus;
use olm_tests::{e2e, operator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_apiserver() -> Result<()> {
    let Some(cluster) = e2e::kwok_cluster("corpus_through_the_apiserver", "e2e-corpus").await?
    else {
        return Ok(());
    };
    let webhook = operator::start_local_webhook_operator(&cluster, "corpus").await?;
    let checked = check_corpus(&cluster, &webhook).await;
    let report = e2e::with_operator_log(&cluster, &webhook.process, 40, checked)?;
    eprintln!("corpus: {report}");
    Ok(())
}
