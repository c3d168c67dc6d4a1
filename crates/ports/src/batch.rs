//! The batch service port: submitting and following Spark batches on a cluster (Livy, in AWS and
//! locally). Batches are identified by norris's own name (run key and attempt); the service's ids
//! are hints that a restart can invalidate.

pub use norris_model::batch::{BatchObservation, BatchPhase, BatchSubmission};
use std::future::Future;

/// A batch service failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// No answer (connection refused, timeout, 5xx) after retries with backoff.
    #[error("batch service at {endpoint} unreachable: {message}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// The server is busy creating other sessions; try again later.
    #[error("batch service at {endpoint} is busy: {message}")]
    Busy {
        /// The endpoint.
        endpoint: String,
        /// What it said.
        message: String,
    },
    /// The server refused the request as such.
    #[error("batch service at {endpoint} rejected the request: {message}")]
    Rejected {
        /// The endpoint.
        endpoint: String,
        /// What it said.
        message: String,
    },
}

/// The batch service of the cluster at `endpoint`.
pub trait BatchService: Send + Sync {
    /// Submits a batch; if a batch of that name already exists (a retried or duplicated
    /// submission), returns that one instead of creating a second.
    fn submit(
        &self,
        endpoint: &str,
        batch: &BatchSubmission,
    ) -> impl Future<Output = Result<BatchObservation, BatchError>> + Send;
    /// Looks a batch up by name (`None`: the server does not know it, or forgot it).
    fn find(
        &self,
        endpoint: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BatchObservation>, BatchError>> + Send;
    /// Kills a batch by id; `false` if the server does not know the id.
    fn kill(&self, endpoint: &str, id: i64) -> impl Future<Output = Result<bool, BatchError>> + Send;
    /// Whether the service answers at all (cluster health).
    fn ping(&self, endpoint: &str) -> impl Future<Output = Result<(), BatchError>> + Send;
}
