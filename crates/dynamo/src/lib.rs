//! The DynamoDB adapter of the norris state store.
//!
//! This crate is the only code that knows how norris's records are laid out as DynamoDB items
//! (`items`), how human-written definition documents map to attribute values (`document`), and
//! which tables and indexes exist (`schema`, from `infra/tables.json`). Everything above it speaks
//! `norris_ports::StateStore` and `norris_ports::GroupStore`.

pub mod billing;
mod document;
mod items;
pub mod schema;
mod store;

pub use document::{attribute_to_json, json_to_attribute};
pub use schema::{create_tables, TableNames, TableSpec, TABLES_JSON};
pub use store::DynamoStore;

/// Builds a DynamoDB client from the standard AWS environment (region, credentials,
/// `AWS_ENDPOINT_URL` for moto locally), with retries and timeouts suited to a Lambda tick.
pub async fn client_from_env() -> aws_sdk_dynamodb::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(5))
                .operation_timeout(std::time::Duration::from_secs(20))
                .build(),
        )
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}
