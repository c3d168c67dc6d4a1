//! The cluster service port: launching, describing and terminating EMR clusters. EMR's RunJobFlow
//! has no client token, so a launch is recorded in the ledger first (its key travels as the
//! `norris:launch-key` tag) and a launch whose response was lost is found again by that tag.

pub use norris_model::emr::{EmrCluster, EmrState, LaunchRequest};
use std::future::Future;

/// A cluster service failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmrError {
    /// No answer, throttled or 5xx after the adapter's retries: try again later. The call may
    /// have taken effect.
    #[error("EMR unavailable during {operation}: {message}")]
    Unavailable {
        /// The operation.
        operation: &'static str,
        /// What failed.
        message: String,
    },
    /// EMR refused the request as such (validation, permissions): retrying will not help.
    #[error("EMR rejected {operation}: {message}")]
    Rejected {
        /// The operation.
        operation: &'static str,
        /// What EMR said.
        message: String,
    },
}

/// Where an EC2 instance belongs (spot interruption warnings name instances, not clusters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlacement {
    /// The EMR cluster id.
    pub cluster_id: String,
    /// Whether it is the primary node: losing it ends the cluster.
    pub primary: bool,
}

/// EMR, as norris uses it. Every method is safe to repeat.
pub trait EmrService: Send + Sync {
    /// Launches a cluster (RunJobFlow) with the request's pool, name and tags; returns its id.
    /// Not idempotent by itself: callers find a launch by key first (`find_by_launch_key`).
    fn launch(&self, request: &LaunchRequest) -> impl Future<Output = Result<String, EmrError>> + Send;
    /// The cluster of this deployment launched under `key`, in any state, if EMR knows one.
    fn find_by_launch_key(
        &self,
        deployment: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<EmrCluster>, EmrError>> + Send;
    /// One cluster by id (`None` when EMR does not know it).
    fn describe(&self, id: &str) -> impl Future<Output = Result<Option<EmrCluster>, EmrError>> + Send;
    /// Every cluster tagged with this deployment that is not terminated (for the sweep and orphan
    /// detection).
    fn list_deployment_clusters(
        &self,
        deployment: &str,
    ) -> impl Future<Output = Result<Vec<EmrCluster>, EmrError>> + Send;
    /// Terminates a cluster (done when it is already terminating or gone).
    fn terminate(&self, id: &str) -> impl Future<Output = Result<(), EmrError>> + Send;
    /// Which of the given clusters runs the EC2 instance, and in which role.
    fn locate_instance(
        &self,
        cluster_ids: &[String],
        instance_id: &str,
    ) -> impl Future<Output = Result<Option<InstancePlacement>, EmrError>> + Send;
}
