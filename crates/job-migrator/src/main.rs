//! The job migrator Lambda: on norris's own events and its schedule, moves unfinished runs and
//! groups off lost and drained clusters (their attempt bumped, so the old one can never publish) and places them
//! again at once (`norris_control::clusters::migrate`).

// The lifecycle pass is one deeply nested future (watch → plan → place → follow).
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use norris_control::clusters::{handle_migrator_event, LifecycleConfig};
use norris_dynamo::{DynamoStore, TableNames};
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
    let livy = LivyClient::new(RetryPolicy::default())?;
    let specs = norris_s3::S3Specs::from_env().await?;
    let (store, livy, specs, config) = (&store, &livy, &specs, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_migrator_event(store, livy, specs, &SystemClock, config, &event.payload).await.map_err(Error::from)
    }))
    .await
}
