//! The norris domain model: identifiers, job definitions, runs, clusters and pools.
//!
//! This crate does no IO and reads no clock. Job and pool definitions are documents that people
//! write (JSON files, or items edited in the DynamoDB console), so they are parsed here from a
//! plain JSON document with every problem collected and named by its field path; the adapters
//! only translate their wire format to and from that document.

pub mod batch;
pub mod cluster;
pub mod document;
pub mod emr;
pub mod group;
pub mod ids;
pub mod job;
pub mod pool;
pub mod result;
pub mod run;
pub mod time;

pub use batch::{BatchObservation, BatchPhase, BatchSubmission};
pub use cluster::{Cluster, ClusterState};
pub use document::{DefinitionError, FieldProblem};
pub use emr::{EmrCluster, EmrState, LaunchRequest};
pub use group::{
    CohortKey, Group, GroupKey, GroupResult, GroupStatus, Member, MemberState, Shard, ShardJob, ShardKey,
    SHARD_MAX_JOBS,
};
pub use ids::{Attempt, ClusterKey, JobId, RunKey, SizeClass, Version};
pub use job::{
    CatchUp, ExtractionSpec, JdbcSource, JobDefinition, JobKind, JobState, LivyBatchSpec, RetryPolicy, StreamingSpec,
    Validity,
};
pub use pool::{FleetSpec, InstanceTypeSpec, PoolDefinition, SpotSpec, SpotTimeoutAction};
pub use result::{AttemptOutcome, AttemptResult, Check};
pub use run::{BatchHandle, Run, RunOutcome, RunStatus};
pub use time::{UnixTime, Window};
