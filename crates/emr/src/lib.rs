//! The EMR adapter of the norris cluster service.
//!
//! norris runs its Spark batches on long-lived EMR clusters with Livy, one pool of them per size
//! class. This crate is the only code that speaks the EMR API: it launches a pool's clusters as
//! instance fleets (primary on-demand, spot where the pool asks, with the pool's fallback), finds
//! a launch again by its `norris:launch-key` tag when RunJobFlow's answer was lost (RunJobFlow
//! has no client token), lists a deployment's live clusters for the sweep, terminates them, and
//! maps an EC2 instance named by a spot interruption warning to its cluster. Everything above it
//! speaks `norris_ports::EmrService`.
//!
//! Deployment-wide settings (roles, subnets, security groups, logs) come from the environment
//! (`EmrLaunchConfig`); the pool definition brings the rest.

mod client;
pub mod config;
mod launch;

pub use client::EmrClient;
pub use config::{EmrConfigError, EmrLaunchConfig};

/// Builds an EMR client from the standard AWS environment (region, credentials,
/// `AWS_ENDPOINT_URL` for moto locally), with retries and timeouts suited to a Lambda invocation.
/// RunJobFlow turns the retries off for itself (see `EmrClient`).
pub async fn client_from_env() -> aws_sdk_emr::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(10))
                .operation_timeout(std::time::Duration::from_secs(30))
                .build(),
        )
        .load()
        .await;
    aws_sdk_emr::Client::new(&config)
}

impl EmrClient {
    /// The client of a Lambda: launch settings and AWS settings both from the environment.
    pub async fn from_env() -> Result<EmrClient, EmrConfigError> {
        let config = EmrLaunchConfig::from_env()?;
        Ok(EmrClient::new(client_from_env().await, config))
    }
}
