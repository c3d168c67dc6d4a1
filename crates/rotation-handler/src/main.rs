//! The rotation handler Lambda. Its handler arrives with the cluster lifecycle; until then every
//! invocation fails loudly (see `norris_control::pending`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        norris_control::pending::handle_event("rotation handler", &event.payload).await.map_err(Error::from)
    }))
    .await
}
