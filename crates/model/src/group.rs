//! The grouped ledger's vocabulary (ARCHITECTURE.md, "Plan: the grouped ledger"): jobs due at the
//! same moments are kept in *shards* (one item per few hundred jobs, written once per tick), and a
//! tick's due windows of a shard are one *group* (one item, one Spark batch per attempt). An item
//! per window, or per job and window, costs $5.40 a month per write for 1,000 jobs on a 5-minute
//! interval; these keep the cost per window to a few dozen bytes written.
//!
//! Used by the grouped tick (`norris_control::grouped`), which the scheduler Lambda runs (the
//! per-window ledger is still there for the CLI's tick and the local demo; its removal is the
//! plan's last increment).

use crate::ids::{Attempt, JobId, SizeClass, Version};
use crate::job::{ExtractionSpec, Validity};
use crate::result::AttemptResult;
use crate::run::{BatchHandle, RunOutcome};
use crate::time::{UnixTime, Window};
use crate::ClusterKey;
use std::collections::BTreeMap;
use std::fmt;

/// Jobs whose windows become due at the same moments and run on the same clusters: one size
/// class, one interval (windows are aligned to multiples of it from the epoch, so jobs with one
/// interval share the window grid) and one phase (the lag modulo the interval).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CohortKey {
    /// The clusters the cohort's groups run on.
    pub size_class: SizeClass,
    /// The cohort's window length.
    pub interval_secs: i64,
    /// `lag_secs` modulo `interval_secs`: windows become due this long after a grid point.
    pub phase_secs: i64,
}

impl CohortKey {
    /// The cohort of a job with this size class and extraction spec.
    pub fn of(size_class: &SizeClass, spec: &ExtractionSpec) -> CohortKey {
        CohortKey {
            size_class: size_class.clone(),
            interval_secs: spec.interval_secs,
            phase_secs: spec.lag_secs.rem_euclid(spec.interval_secs),
        }
    }
}

/// The most jobs one shard holds: about 80 bytes each keeps a shard item near 20 KB, far below
/// DynamoDB's 400 KB item limit, while 1,000 jobs of one cohort are still only 4 items a tick.
pub const SHARD_MAX_JOBS: usize = 256;

/// One shard of a cohort.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardKey {
    /// The cohort.
    pub cohort: CohortKey,
    /// Which of the cohort's shards.
    pub index: u32,
}

impl fmt::Display for ShardKey {
    /// `<size class>/<interval>/<phase>/<index>`: the shard's key in the ledger and in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cohort;
        write!(f, "{}/{}/{}/{}", c.size_class, c.interval_secs, c.phase_secs, self.index)
    }
}

/// One job's line in its shard: what the per-job state holds, with the accepted schema by hash
/// (the schema itself changes rarely and is kept apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardJob {
    /// Hash of the definition document last validated.
    pub definition_hash: String,
    /// Verdict on that definition (or a quarantine a Spark attempt asked for).
    pub validity: Validity,
    /// Every window ending at or before this is committed; only ever moves forward, over
    /// contiguous published windows.
    pub watermark: UnixTime,
    /// Start of the next window to cut.
    pub next_window_lo: UnixTime,
    /// Hash of the source schema last accepted, if any.
    pub schema_hash: Option<String>,
}

/// A shard: up to [`SHARD_MAX_JOBS`] jobs of one cohort, cut and committed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Which shard.
    pub key: ShardKey,
    /// Its jobs.
    pub jobs: BTreeMap<JobId, ShardJob>,
    /// Sequence number of the last group cut from it: the next group's key is the next number,
    /// so two ticks that read the same shard try to create the same group and one of them wins.
    pub cut_seq: u64,
    /// When the scheduler should look at it next (`None`: nothing to cut, e.g. every job held).
    pub due_at: Option<UnixTime>,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// Where one window of a group is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Still to run: in the group's next attempt.
    ToDo,
    /// An attempt of the group published it.
    Published {
        /// The attempt whose output was published.
        attempt: Attempt,
        /// Rows written.
        rows: u64,
    },
    /// Every attempt failed: the job's watermark stops before it and an alarm fires.
    Failed {
        /// The last failure.
        reason: String,
    },
    /// A breaking schema change: the job is quarantined and the window waits for a person.
    Quarantined {
        /// What changed.
        reason: String,
    },
}

/// One window of one job in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The job.
    pub job_id: JobId,
    /// The window.
    pub window: Window,
    /// Failed attempts in the member's retry budget (the job's `retry.max_attempts`).
    pub failures: u32,
    /// Where it is.
    pub state: MemberState,
}

/// A group's key: its shard and the cut that made it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// The shard it was cut from.
    pub shard: ShardKey,
    /// The shard's `cut_seq` that cut it.
    pub seq: u64,
}

impl GroupKey {
    /// Reads a group key as `Display` writes it (`<size class>/<interval>/<phase>/<index>/<seq>`:
    /// how operators name a group, and how results name theirs). A size class holds no `/`.
    pub fn parse(text: &str) -> Option<GroupKey> {
        let parts: Vec<&str> = text.split('/').collect();
        let [size_class, interval, phase, index, seq] = parts.as_slice() else { return None };
        Some(GroupKey {
            shard: ShardKey {
                cohort: CohortKey {
                    size_class: SizeClass::new(*size_class),
                    interval_secs: interval.parse().ok()?,
                    phase_secs: phase.parse().ok()?,
                },
                index: index.parse().ok()?,
            },
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for GroupKey {
    /// `<shard>/<seq>`: the group's key in logs, results and batch names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.shard, self.seq)
    }
}

/// Where a group's current attempt is: the run's state machine, for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupStatus {
    /// Waiting for a cluster (again, after a failed attempt, once `not_before` passes).
    Pending {
        /// Earliest time to place it.
        not_before: UnixTime,
    },
    /// Placed and about to be submitted (recorded before the Livy call).
    Submitting {
        /// The cluster it was placed on.
        cluster: ClusterKey,
        /// When the placement was recorded.
        since: UnixTime,
    },
    /// Submitted and running.
    Running {
        /// The cluster running it.
        cluster: ClusterKey,
        /// The Livy batch.
        batch: BatchHandle,
        /// When the submission was recorded.
        since: UnixTime,
    },
    /// No member is left to do: each is published, failed or quarantined.
    Settled {
        /// When the last member settled.
        at: UnixTime,
    },
}

impl GroupStatus {
    /// The cluster the current attempt is placed on, if it is: it holds one of that cluster's
    /// batch slots, and the cluster is not terminated under it.
    pub fn cluster(&self) -> Option<&ClusterKey> {
        match self {
            GroupStatus::Submitting { cluster, .. } | GroupStatus::Running { cluster, .. } => Some(cluster),
            GroupStatus::Pending { .. } | GroupStatus::Settled { .. } => None,
        }
    }
}

/// A shard's windows cut by one tick, run as one Spark batch per attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its key.
    pub key: GroupKey,
    /// Its windows, in (job, window) order.
    pub members: Vec<Member>,
    /// Current attempt: the fence checked when publishing any member.
    pub attempt: Attempt,
    /// Where the current attempt is.
    pub status: GroupStatus,
    /// When it was cut.
    pub created_at: UnixTime,
    /// Last write.
    pub updated_at: UnixTime,
    /// The last finished attempt's report (and the cluster it was moved off, for warm failover).
    pub last_outcome: Option<RunOutcome>,
    /// Its published members are folded into the shard's watermarks and nothing is left to do.
    pub committed: bool,
    /// Optimistic-concurrency version.
    pub version: Version,
}

impl Group {
    /// The members still to run.
    pub fn to_do(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.state == MemberState::ToDo)
    }
}

/// What one attempt of a group reported, written by its Spark application: a result per member
/// it ran (`run_key` `<job>@<window lo>`, `attempt` the group's), judged member by member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResult {
    /// The group.
    pub group: GroupKey,
    /// The attempt that wrote it.
    pub attempt: Attempt,
    /// One per member the attempt ran.
    pub members: Vec<AttemptResult>,
    /// When the attempt ended.
    pub finished_at: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_key_reads_back_as_it_is_written() {
        let cohort = CohortKey { size_class: SizeClass::new("small"), interval_secs: 300, phase_secs: 60 };
        let key = GroupKey { shard: ShardKey { cohort, index: 2 }, seq: 41 };
        assert_eq!(key.to_string(), "small/300/60/2/41");
        assert_eq!(GroupKey::parse("small/300/60/2/41"), Some(key));
        for bad in ["small/300/60/2", "small/300/60/2/41/1", "small/5m/60/2/41", "small/300/60/-2/41"] {
            assert_eq!(GroupKey::parse(bad), None, "{bad}");
        }
    }
}
