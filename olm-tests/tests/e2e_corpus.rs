//! The admission corpus (`operator/tests/corpus`) through a real kube-apiserver
//! (the current control plane), with CEL alone and with the webhook alone: see
//! [`olm_tests::corpus`]. `tests/min_kube.rs` runs the same check on the oldest
//! supported control plane.

use anyhow::{Result, bail};
use olm_tests::corpus::check_corpus;
use olm_tests::operator;
use olm_tests::{Cluster, ClusterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_apiserver() -> Result<()> {
    let Some(tools) = olm_tests::tools::tools_or_skip("corpus_through_the_apiserver") else {
        return Ok(());
    };
    let cluster = Cluster::start(ClusterOptions {
        tools: Some(tools),
        name: "e2e-corpus".into(),
        ..ClusterOptions::default()
    })
    .await?;
    let webhook = operator::start_local_webhook_operator(&cluster, "corpus").await?;
    match check_corpus(&cluster, &webhook).await {
        Ok(report) => {
            eprintln!("corpus: {report}");
            Ok(())
        }
        Err(e) => {
            cluster.mark_failed();
            bail!(
                "{e:#}\n--- operator log tail ---\n{}",
                webhook.process.log_tail(40)
            )
        }
    }
}
