//! The cluster health watcher Lambda: EMR cluster state changes, EC2 spot interruption warnings and
//! rebalance recommendations, cluster alarms and a periodic sweep, each a pass of
//! `norris_control::clusters::watch`.

// The lifecycle pass is one deeply nested future (watch → plan → place → follow).
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use norris_control::clusters::{handle_watcher_event, LifecycleConfig};
use norris_dynamo::{DynamoStore, TableNames};
use norris_emr::EmrClient;
use norris_livy::{LivyClient, RetryPolicy};
use norris_ports::SystemClock;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when AWS_LAMBDA_LOG_FORMAT=JSON (set by the stack), level from AWS_LAMBDA_LOG_LEVEL.
    lambda_runtime::tracing::init_default_subscriber();
    let config = LifecycleConfig::from_env()?;
    let prefix = TableNames::with_prefix(&config.scheduler.table_prefix);
    let store = DynamoStore::new(norris_dynamo::client_from_env().await, prefix);
    let emr = EmrClient::from_env().await?;
    let livy = LivyClient::new(RetryPolicy::default())?;
    let specs = norris_s3::S3Specs::from_env().await?;
    let (store, emr, livy, specs, config) = (&store, &emr, &livy, &specs, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_watcher_event(store, emr, livy, specs, &SystemClock, config, &event.payload).await.map_err(Error::from)
    }))
    .await
}
