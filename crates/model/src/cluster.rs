//! Clusters as norris sees them: an EMR cluster plus what norris needs to place work on it.

use crate::ids::{ClusterKey, SizeClass, Version};
use crate::time::UnixTime;

/// Lifecycle of a norris cluster. Placement only ever targets `Ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Launch recorded in the ledger; the RunJobFlow call may or may not have happened yet.
    Launching {
        /// When the launch was recorded (a launch not found by tag after a while is retried).
        requested_at: UnixTime,
    },
    /// EMR accepted it; not yet WAITING/RUNNING with Livy answering.
    Starting,
    /// EMR WAITING/RUNNING and Livy answers: work may be placed.
    Ready,
    /// Being replaced: no new placements; running work may finish until the deadline.
    Draining {
        /// When norris decided so: it is terminated no sooner than a placing handler's
        /// timeout after this, so every placement made from an older read is visible by then.
        since: UnixTime,
        /// After this, what still runs is moved.
        deadline: UnixTime,
    },
    /// Gone or doomed (spot loss, failure, Livy dead): its runs must be moved.
    Lost {
        /// Why, e.g. `INSTANCE_FAILURE` or `livy unreachable`.
        reason: String,
        /// When norris decided so.
        at: UnixTime,
    },
    /// Terminated by norris or EMR, nothing of norris's on it.
    Terminated {
        /// When it was seen terminated.
        at: UnixTime,
    },
}

impl ClusterState {
    /// Short lowercase name, as stored and logged.
    pub fn name(&self) -> &'static str {
        match self {
            ClusterState::Launching { .. } => "launching",
            ClusterState::Starting => "starting",
            ClusterState::Ready => "ready",
            ClusterState::Draining { .. } => "draining",
            ClusterState::Lost { .. } => "lost",
            ClusterState::Terminated { .. } => "terminated",
        }
    }
}

/// A cluster norris launched (or is launching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// norris's key, chosen before the launch call and carried as a tag.
    pub key: ClusterKey,
    /// The pool it belongs to.
    pub size_class: SizeClass,
    /// Increases with each replacement in the pool, for logs and tags.
    pub generation: u32,
    /// EMR's id (`j-…`), once known.
    pub emr_cluster_id: Option<String>,
    /// Livy's base URL, once known.
    pub livy_endpoint: Option<String>,
    /// Where it is in its life.
    pub state: ClusterState,
    /// When the launch was recorded.
    pub created_at: UnixTime,
    /// When it became ready.
    pub ready_at: Option<UnixTime>,
    /// Past this, rotation replaces it.
    pub rotate_after: UnixTime,
    /// Optimistic-concurrency version.
    pub version: Version,
}
