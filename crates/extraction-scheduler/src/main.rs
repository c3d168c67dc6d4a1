//! The extraction scheduler Lambda: on each EventBridge schedule, one tick of the grouped ledger
//! (jobs in shards, a shard's due windows run as one Spark batch whose spec is written to S3).
//! Everything it does lives in `norris_control::grouped`; this file only wires it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use norris_control::{grouped, SchedulerConfig};
use norris_dynamo::{DynamoStore, TableNames};
use norris_livy::{LivyClient, RetryPolicy};
use norris_ports::SystemClock;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON logs when AWS_LAMBDA_LOG_FORMAT=JSON (set by the stack), level from AWS_LAMBDA_LOG_LEVEL.
    lambda_runtime::tracing::init_default_subscriber();
    let config = SchedulerConfig::from_env()?;
    let store = DynamoStore::new(norris_dynamo::client_from_env().await, TableNames::with_prefix(&config.table_prefix));
    let livy = LivyClient::new(RetryPolicy::default())?;
    let specs = norris_s3::S3Specs::from_env().await?;
    let (store, livy, specs, config) = (&store, &livy, &specs, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        grouped::handle_event(store, livy, specs, &SystemClock, config, &event.payload).await.map_err(Error::from)
    }))
    .await
}
