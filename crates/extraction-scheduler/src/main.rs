//! The extraction scheduler Lambda: on each EventBridge schedule, one scheduler tick.
//! Everything it does lives in `norris_control::scheduler`; this file only wires it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use norris_control::{scheduler, SchedulerConfig};
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
    let (store, livy, config) = (&store, &livy, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        scheduler::handle_event(store, livy, &SystemClock, config, &event.payload).await.map_err(Error::from)
    }))
    .await
}
