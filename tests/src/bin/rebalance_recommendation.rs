//! `rebalance-recommendation CLUSTER_KEY`: plays an EC2 Instance Rebalance Recommendation for the
//! primary node of one of norris's clusters in the local world (the demo's rotation).
//!
//! On AWS the cluster health watcher maps the event's instance to its cluster (EMR ListInstances)
//! and, for a primary node, makes the cluster due for rotation now (`rotate_early`, a versioned
//! write of the cluster record): the next pass launches its replacement and drains it once the
//! replacement is ready, make-before-break. moto creates no instances for instance fleets, so the
//! lookup cannot be played here; this applies the watcher's decision for the named cluster, with
//! the same engine function and the same conditional write. Tables from `NORRIS_TABLE_PREFIX`.

use anyhow::{bail, Context, Result};
use norris_dynamo::{DynamoStore, TableNames};
use norris_ports::{Clock, StateStore, SystemClock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // As the norris command logs (warnings and up on stderr, RUST_LOG to see more).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let key = std::env::args().nth(1).context("usage: rebalance-recommendation CLUSTER_KEY")?;
    let prefix = std::env::var("NORRIS_TABLE_PREFIX").unwrap_or_else(|_| "norris".into());
    let store = DynamoStore::new(norris_dynamo::client_from_env().await, TableNames::with_prefix(&prefix));
    let cluster = store
        .list_clusters()
        .await?
        .into_iter()
        .find(|c| c.key.as_str() == key)
        .with_context(|| format!("no cluster {key} under prefix {prefix}"))?;
    let Some(due) = norris_engine::clusters::rotate_early(&cluster, SystemClock.now()) else {
        bail!("cluster {key} is {} (due {}): nothing to rotate early", cluster.state.name(), cluster.rotate_after);
    };
    let written = store.update_cluster(&due).await.map_err(|e| anyhow::anyhow!("cluster {key}: {e}"))?;
    println!("cluster {key} is due for rotation at {}", written.rotate_after);
    Ok(())
}
