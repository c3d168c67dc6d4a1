//! Runs: one per job and window, the ledger entry that makes extraction exactly-once.

use crate::ids::{Attempt, ClusterKey, JobId, RunKey, Version};
use crate::time::{UnixTime, Window};

/// The Livy batch an attempt was submitted as. Livy forgets batches and reuses ids after a
/// restart, so the id is only a hint: the batch is recognised by its name (the run key and
/// attempt) before it is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHandle {
    /// Livy's batch id at submission time.
    pub livy_batch_id: i64,
    /// The batch name norris gave it (`norris-<job>-<lo>-a<attempt>`).
    pub batch_name: String,
}

/// Where a run is in its life. Each state carries exactly the data it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Cut and waiting for a cluster (again, after a failed attempt, once `not_before` passes).
    Pending {
        /// Earliest time to place it (retry backoff).
        not_before: UnixTime,
    },
    /// Placed on a cluster and about to be submitted: recorded before the Livy call, so that a
    /// submission whose response was lost is looked for by name instead of sent twice.
    Submitting {
        /// The cluster it was placed on.
        cluster: ClusterKey,
        /// When the placement was recorded.
        since: UnixTime,
    },
    /// Submitted and running on a cluster.
    Running {
        /// The cluster running it.
        cluster: ClusterKey,
        /// The Livy batch.
        batch: BatchHandle,
        /// When the submission was recorded.
        since: UnixTime,
    },
    /// The current attempt published its output (the fenced write succeeded).
    Published {
        /// Where the published files are.
        prefix: String,
        /// Rows written.
        rows: u64,
        /// When it published.
        at: UnixTime,
    },
    /// Every attempt failed; the job's watermark stops before this window and an alarm fires.
    Failed {
        /// The last failure.
        reason: String,
        /// When the run was given up.
        at: UnixTime,
    },
}

impl RunStatus {
    /// True while the run still needs work (placement, submission or following).
    pub fn is_unfinished(&self) -> bool {
        matches!(self, RunStatus::Pending { .. } | RunStatus::Submitting { .. } | RunStatus::Running { .. })
    }

    /// The cluster holding the run, if it is placed.
    pub fn cluster(&self) -> Option<&ClusterKey> {
        match self {
            RunStatus::Submitting { cluster, .. } | RunStatus::Running { cluster, .. } => Some(cluster),
            _ => None,
        }
    }

    /// Short lowercase name, as stored and logged.
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Pending { .. } => "pending",
            RunStatus::Submitting { .. } => "submitting",
            RunStatus::Running { .. } => "running",
            RunStatus::Published { .. } => "published",
            RunStatus::Failed { .. } => "failed",
        }
    }
}

/// What the last finished attempt reported, kept for operators and for the retry decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Attempt that produced it.
    pub attempt: Attempt,
    /// Human-readable summary (rows, checks, schema verdict, or the failure).
    pub summary: String,
    /// The cluster the attempt was moved off, when a move (not a failure) ended it: a lifecycle
    /// pass that moved the run and died before placing it is completed by the next pass.
    pub moved_off: Option<ClusterKey>,
}

/// One window of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The job it belongs to.
    pub job_id: JobId,
    /// The window it extracts.
    pub window: Window,
    /// Current attempt: the fencing token checked when publishing.
    pub attempt: Attempt,
    /// Failed attempts in the current retry budget (`retry.max_attempts`). Moves off a lost or
    /// rotated cluster are not the job's fault and do not count; an operator's retry of a failed
    /// run starts a new budget.
    pub failures: u32,
    /// Where it is.
    pub status: RunStatus,
    /// When the run was cut.
    pub created_at: UnixTime,
    /// Last write.
    pub updated_at: UnixTime,
    /// The last finished attempt's report, if any.
    pub last_outcome: Option<RunOutcome>,
    /// Optimistic-concurrency version.
    pub version: Version,
}

impl Run {
    /// A freshly cut run, pending from `now`.
    pub fn new(job_id: JobId, window: Window, now: UnixTime) -> Run {
        Run {
            job_id,
            window,
            attempt: Attempt::FIRST,
            failures: 0,
            status: RunStatus::Pending { not_before: now },
            created_at: now,
            updated_at: now,
            last_outcome: None,
            version: Version::INITIAL,
        }
    }

    /// The run's key.
    pub fn key(&self) -> RunKey {
        RunKey { job_id: self.job_id.clone(), window_lo: self.window.lo }
    }
}
