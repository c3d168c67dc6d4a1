//! How many DynamoDB requests a `StateStore` call costs when `norris-dynamo` serves it, and the
//! minimum a tick's work needs. Pure arithmetic, written from `crates/dynamo/src/store.rs`:
//!
//! - ledger writes are one conditional `PutItem` each (creates and versioned updates alike), the
//!   periodic claim too; annotations are one `UpdateItem`; single reads are one `GetItem`;
//! - `get_job_definitions`, `get_job_states` and `get_attempt_results` deduplicate the keys and
//!   send one `BatchGetItem` per 100 keys (none for no keys); unprocessed keys would add retries,
//!   which a healthy table does not produce;
//! - queries (`due_jobs`, `active_runs`, `runs_of_job`, `list_clusters`) go page by page with
//!   `Limit = min(what is still wanted, 1000)`; a page also ends at 1 MB read. DynamoDB returns a
//!   `LastEvaluatedKey` whenever a page stopped at its `Limit` or at 1 MB, even if nothing follows,
//!   and the adapter asks again while it has fewer items than the call's limit: a result that ends
//!   exactly on a page boundary costs one more (empty) page;
//! - scans (`scan_job_definitions`, `list_pools`) have no `Limit`: pages of 1 MB;
//! - the grouped ledger's writes (shards, groups, schemas) are one `PutItem` each, its single
//!   reads (`get_shard`, `get_group`) one `GetItem`; `due_shards` and `open_groups` query a
//!   keys-only index (paged as above, entries of about a hundred bytes) and then read the listed
//!   items by key (`read_listed`: one `BatchGetItem` per 100, none for none), so each is counted as
//!   two operations, the index and the items; `get_group_results` and `get_schemas` are
//!   `BatchGetItem`s of 100 keys; `shards_of_cohort` is a query of whole shards (1 MB pages).

use serde::Serialize;
use serde_json::Value;

/// Most keys one `BatchGetItem` takes.
pub const BATCH_GET_KEYS: usize = 100;
/// The adapter's `Limit` per query page.
pub const QUERY_PAGE_LIMIT: usize = 1000;
/// DynamoDB's page size limit for queries and scans (data read).
pub const PAGE_BYTES: usize = 1 << 20;

/// A `StateStore` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `put_job_document`
    PutJobDocument,
    /// `get_job_definitions`
    GetJobDefinitions,
    /// `scan_job_definitions`
    ScanJobDefinitions,
    /// `annotate_job_definition`
    AnnotateJobDefinition,
    /// `claim_periodic`
    ClaimPeriodic,
    /// `put_pool_document`
    PutPoolDocument,
    /// `list_pools`
    ListPools,
    /// `get_job_state`
    GetJobState,
    /// `get_job_states`
    GetJobStates,
    /// `create_job_state`
    CreateJobState,
    /// `update_job_state`
    UpdateJobState,
    /// `due_jobs`
    DueJobs,
    /// `create_run`
    CreateRun,
    /// `get_run`
    GetRun,
    /// `update_run`
    UpdateRun,
    /// `active_runs`
    ActiveRuns,
    /// `runs_of_job`
    RunsOfJob,
    /// `create_cluster`
    CreateCluster,
    /// `update_cluster`
    UpdateCluster,
    /// `get_cluster`
    GetCluster,
    /// `list_clusters`
    ListClusters,
    /// `get_attempt_results`
    GetAttemptResults,
    /// `put_attempt_result`
    PutAttemptResult,
    /// `create_shard`
    CreateShard,
    /// `update_shard`
    UpdateShard,
    /// `get_shard`
    GetShard,
    /// `shards_of_cohort`
    ShardsOfCohort,
    /// `due_shards`: the keys-only `due` index query.
    DueShardsIndex,
    /// `due_shards`: the listed shards read by key.
    DueShardItems,
    /// `create_group`
    CreateGroup,
    /// `update_group`
    UpdateGroup,
    /// `get_group`
    GetGroup,
    /// `open_groups`: the keys-only `active` index query.
    OpenGroupsIndex,
    /// `open_groups`: the listed groups read by key.
    OpenGroupItems,
    /// `get_group_results`
    GetGroupResults,
    /// `put_group_result`
    PutGroupResult,
    /// `get_schemas`
    GetSchemas,
    /// `put_schema`
    PutSchema,
}

impl Op {
    /// The trait method's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::PutJobDocument => "put_job_document",
            Op::GetJobDefinitions => "get_job_definitions",
            Op::ScanJobDefinitions => "scan_job_definitions",
            Op::AnnotateJobDefinition => "annotate_job_definition",
            Op::ClaimPeriodic => "claim_periodic",
            Op::PutPoolDocument => "put_pool_document",
            Op::ListPools => "list_pools",
            Op::GetJobState => "get_job_state",
            Op::GetJobStates => "get_job_states",
            Op::CreateJobState => "create_job_state",
            Op::UpdateJobState => "update_job_state",
            Op::DueJobs => "due_jobs",
            Op::CreateRun => "create_run",
            Op::GetRun => "get_run",
            Op::UpdateRun => "update_run",
            Op::ActiveRuns => "active_runs",
            Op::RunsOfJob => "runs_of_job",
            Op::CreateCluster => "create_cluster",
            Op::UpdateCluster => "update_cluster",
            Op::GetCluster => "get_cluster",
            Op::ListClusters => "list_clusters",
            Op::GetAttemptResults => "get_attempt_results",
            Op::PutAttemptResult => "put_attempt_result",
            Op::CreateShard => "create_shard",
            Op::UpdateShard => "update_shard",
            Op::GetShard => "get_shard",
            Op::ShardsOfCohort => "shards_of_cohort",
            Op::DueShardsIndex => "due_shards (index)",
            Op::DueShardItems => "due_shards (items)",
            Op::CreateGroup => "create_group",
            Op::UpdateGroup => "update_group",
            Op::GetGroup => "get_group",
            Op::OpenGroupsIndex => "open_groups (index)",
            Op::OpenGroupItems => "open_groups (items)",
            Op::GetGroupResults => "get_group_results",
            Op::PutGroupResult => "put_group_result",
            Op::GetSchemas => "get_schemas",
            Op::PutSchema => "put_schema",
        }
    }

    /// The DynamoDB API the adapter serves it with.
    pub fn api(self) -> Api {
        match self {
            Op::PutJobDocument
            | Op::ClaimPeriodic
            | Op::PutPoolDocument
            | Op::CreateJobState
            | Op::UpdateJobState
            | Op::CreateRun
            | Op::UpdateRun
            | Op::CreateCluster
            | Op::UpdateCluster
            | Op::PutAttemptResult
            | Op::CreateShard
            | Op::UpdateShard
            | Op::CreateGroup
            | Op::UpdateGroup
            | Op::PutGroupResult
            | Op::PutSchema => Api::PutItem,
            Op::AnnotateJobDefinition => Api::UpdateItem,
            Op::GetJobState | Op::GetRun | Op::GetCluster | Op::GetShard | Op::GetGroup => Api::GetItem,
            Op::GetJobDefinitions
            | Op::GetJobStates
            | Op::GetAttemptResults
            | Op::DueShardItems
            | Op::OpenGroupItems
            | Op::GetGroupResults
            | Op::GetSchemas => Api::BatchGetItem,
            Op::DueJobs
            | Op::ActiveRuns
            | Op::RunsOfJob
            | Op::ListClusters
            | Op::ShardsOfCohort
            | Op::DueShardsIndex
            | Op::OpenGroupsIndex => Api::Query,
            Op::ScanJobDefinitions | Op::ListPools => Api::Scan,
        }
    }
}

/// A DynamoDB API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Api {
    /// Single-item strongly consistent read.
    GetItem,
    /// Single-item (conditional) write.
    PutItem,
    /// Single-item update expression.
    UpdateItem,
    /// Up to 100 keys per request.
    BatchGetItem,
    /// One page of a query.
    Query,
    /// One page of a scan.
    Scan,
}

impl Api {
    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Api::GetItem => "GetItem",
            Api::PutItem => "PutItem",
            Api::UpdateItem => "UpdateItem",
            Api::BatchGetItem => "BatchGetItem",
            Api::Query => "Query",
            Api::Scan => "Scan",
        }
    }
}

/// Estimated DynamoDB item sizes (bytes), for the 1 MB page bound. They only matter when fewer
/// than 1,000 items fit in 1 MB (items over 1 KB), which norris's ledger items are far from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ItemSizes {
    /// A job state (`JOB#<id>/STATE`, with an accepted schema).
    pub job_state: usize,
    /// A run (`JOB#<id>/RUN#<lo>`, running, with its batch name and index keys).
    pub run: usize,
    /// A cluster record.
    pub cluster: usize,
    /// A job definition document with norris's annotations.
    pub job_definition: usize,
    /// A pool definition document.
    pub pool: usize,
    /// An entry of a keys-only ledger index (`due`, `active`): the table's and the index's keys.
    pub index_entry: usize,
    /// A full shard (256 jobs), for `shards_of_cohort`'s pages.
    pub shard: usize,
}

impl Default for ItemSizes {
    fn default() -> Self {
        // Attribute names plus values of the layouts in crates/dynamo/src/items.rs, with
        // 16-character job ids and a write_id; rounded up. A shard of 256 jobs is about 28 KB
        // (ARCHITECTURE.md, "Plan: the grouped ledger").
        ItemSizes {
            job_state: 320,
            run: 380,
            cluster: 260,
            job_definition: 900,
            pool: 420,
            index_entry: 120,
            shard: 28_000,
        }
    }
}

/// DynamoDB's size of an item given as a JSON document (attribute names plus values; numbers
/// counted as about one byte per two digits plus one).
pub fn approx_item_bytes(document: &Value) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Number(n) => n.to_string().trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
            Value::String(s) => s.len(),
            Value::Array(items) => 3 + items.iter().map(|i| 1 + value(i)).sum::<usize>(),
            Value::Object(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>(),
        }
    }
    match document {
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + value(v)).sum(),
        other => value(other),
    }
}

/// One store call, as much as the request count depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The operation.
    pub op: Op,
    /// Distinct keys asked for (batch reads).
    pub keys: usize,
    /// Items returned (queries and scans).
    pub items: usize,
    /// The call's own limit (queries; `usize::MAX` when it has none).
    pub limit: usize,
}

impl Call {
    /// A call whose request count does not depend on its arguments (single-item operations).
    pub fn single(op: Op) -> Self {
        Call { op, keys: 0, items: 0, limit: usize::MAX }
    }
}

/// `BatchGetItem` requests for `keys` distinct keys.
pub fn batch_gets(keys: usize) -> u64 {
    keys.div_ceil(BATCH_GET_KEYS) as u64
}

fn items_per_page(item_bytes: usize) -> usize {
    (PAGE_BYTES / item_bytes.max(1)).max(1)
}

/// Query pages the adapter's `query_all` sends to get `returned` items under the call's `limit`.
pub fn query_pages(returned: usize, limit: usize, item_bytes: usize) -> u64 {
    let fit = items_per_page(item_bytes);
    let (mut got, mut pages) = (0usize, 0u64);
    loop {
        let page_limit = limit.saturating_sub(got).clamp(1, QUERY_PAGE_LIMIT);
        let cap = page_limit.min(fit);
        let take = cap.min(returned - got);
        pages += 1;
        got += take;
        // A page that stopped at its Limit or at 1 MB carries a LastEvaluatedKey; the adapter
        // follows it while it has fewer than `limit` items.
        if take < cap || got >= limit {
            return pages;
        }
    }
}

/// Scan pages (no `Limit`, 1 MB each) for `items` items.
pub fn scan_pages(items: usize, item_bytes: usize) -> u64 {
    (items / items_per_page(item_bytes)) as u64 + 1
}

/// The requests one call costs, and the API that serves it.
pub fn requests(call: &Call, sizes: &ItemSizes) -> (Api, u64) {
    let api = call.op.api();
    let n = match call.op {
        Op::GetJobDefinitions
        | Op::GetJobStates
        | Op::GetAttemptResults
        | Op::DueShardItems
        | Op::OpenGroupItems
        | Op::GetGroupResults
        | Op::GetSchemas => batch_gets(call.keys),
        Op::DueShardsIndex | Op::OpenGroupsIndex => query_pages(call.items, call.limit, sizes.index_entry),
        Op::ShardsOfCohort => query_pages(call.items, call.limit, sizes.shard),
        Op::DueJobs => query_pages(call.items, call.limit, sizes.job_state),
        Op::ActiveRuns | Op::RunsOfJob => query_pages(call.items, call.limit, sizes.run),
        Op::ListClusters => query_pages(call.items, call.limit, sizes.cluster),
        Op::ScanJobDefinitions => scan_pages(call.items, sizes.job_definition),
        Op::ListPools => scan_pages(call.items, sizes.pool),
        _ => 1,
    };
    (api, n)
}

/// What a tick had to do, for the minimum model.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Work {
    /// Due jobs that had a window to cut.
    pub due_with_windows: usize,
    /// The due query's limit (`max_due_per_tick`).
    pub due_limit: usize,
    /// Runs created.
    pub windows_cut: usize,
    /// Unfinished runs (the active index's content at the tick, new runs included).
    pub active_runs: usize,
    /// Placed (submitting or running) runs followed: each needs its attempt's result.
    pub followed_runs: usize,
    /// Jobs with unfinished runs that were not due: their definitions and states are needed.
    pub other_jobs: usize,
    /// Run updates that changed something (placement, running, publish, retry, failure).
    pub run_writes: usize,
    /// Jobs whose state had to change (a window cut or the watermark moved).
    pub job_state_writes: usize,
    /// Jobs whose watermark moved (each needs its runs from the watermark on).
    pub commits: usize,
    /// Cluster records.
    pub clusters: usize,
    /// Pool definitions.
    pub pools: usize,
}

/// One line of the minimum model.
#[derive(Debug, Clone, Serialize)]
pub struct MinimumLine {
    /// What the requests are for.
    pub what: &'static str,
    /// The API.
    pub api: Api,
    /// How many.
    pub requests: u64,
}

/// The fewest requests the work needs with norris's data model: every ledger write is its own
/// conditional `PutItem` (conditions cannot be batched, and transactions would cost double),
/// reads are batched wherever DynamoDB allows (`BatchGetItem` of 100 keys, strongly consistent,
/// across tables), queries are paged as the adapter pages them. Per due job with a window, one
/// query of its runs from the watermark (the in-flight limit needs that count); the periodic
/// claim, the cluster query and the pool scan are per tick.
pub fn minimum(work: &Work, sizes: &ItemSizes) -> Vec<MinimumLine> {
    let line = |what, api, requests| MinimumLine { what, api, requests };
    vec![
        line("claim the periodic sweep (held: condition fails)", Api::PutItem, 1),
        line("due index page(s)", Api::Query, query_pages(work.due_with_windows, work.due_limit, sizes.job_state)),
        line(
            "definitions of due and in-flight jobs, states of in-flight jobs, attempt results",
            Api::BatchGetItem,
            batch_gets(work.due_with_windows + work.other_jobs)
                + batch_gets(work.other_jobs)
                + batch_gets(work.followed_runs),
        ),
        line("runs from the watermark, per due job with a window", Api::Query, work.due_with_windows as u64),
        line("active index page(s)", Api::Query, query_pages(work.active_runs, usize::MAX, sizes.run)),
        line("cluster records", Api::Query, query_pages(work.clusters, usize::MAX, sizes.cluster)),
        line("pool definitions", Api::Scan, scan_pages(work.pools, sizes.pool)),
        line("runs of committing jobs", Api::Query, work.commits as u64),
        line("run creates", Api::PutItem, work.windows_cut as u64),
        line("run updates", Api::PutItem, work.run_writes as u64),
        line("job state updates", Api::PutItem, work.job_state_writes as u64),
    ]
}

/// The total of a minimum model.
pub fn total(lines: &[MinimumLine]) -> u64 {
    lines.iter().map(|l| l.requests).sum()
}

/// What a grouped tick had to do, for [`grouped_minimum`]: read from the ledger before and after
/// the tick, not from the requests it sent, so a read or write the work does not need shows as
/// requests over the minimum.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GroupedWork {
    /// Shards the due index listed (due at or before the tick).
    pub due_shards: usize,
    /// The due query's limit (`max_due_per_tick`).
    pub due_limit: usize,
    /// Jobs in the due shards.
    pub due_jobs: usize,
    /// Groups not committed at the start of the tick (the `active` index's content).
    pub open_groups: usize,
    /// Of those, placed groups followed (each needs a Livy look-up and its attempt's result).
    pub followed_groups: usize,
    /// Jobs whose definitions a decision needs: the due shards' jobs (to cut: validity, hash,
    /// windows), the followed groups' members still to do (their retry policies give the
    /// attempt's timeout, `group_attempt_timeout_secs`, and the failure budget) and the members
    /// of pending groups placed this tick (their spec).
    pub definitions: usize,
    /// Of those, jobs needed only as members of followed groups: what a group that kept its
    /// attempt's timeout (and its members' budgets) would not need read every tick.
    pub followed_only_definitions: usize,
    /// Members of the group attempts submitted this tick: each one's accepted schema goes into
    /// the attempt's spec.
    pub schemas: usize,
    /// Shards not due that had to be read to fold a group that published or settled.
    pub other_shards: usize,
    /// Groups cut (each created, already placed when a slot was planned for it).
    pub groups_created: usize,
    /// Pending groups of earlier ticks placed (the placement recorded before the Livy call).
    pub groups_placed: usize,
    /// Followed groups whose attempt ended (settled, or a new attempt pending).
    pub groups_ended: usize,
    /// Groups marked committed (folded into their shard).
    pub groups_committed: usize,
    /// Shards whose item changed (a cut, a fold, the next due time).
    pub shard_writes: usize,
    /// Group attempts submitted to Livy (each with its spec written to S3 first).
    pub submissions: usize,
    /// Cluster records.
    pub clusters: usize,
    /// Pool definitions.
    pub pools: usize,
}

/// The fewest DynamoDB requests a grouped tick's work needs with the grouped ledger's data model
/// (ARCHITECTURE.md, "Plan: the grouped ledger"), so that the ratio to it shows reads and writes
/// the tick sends without needing them:
///
/// - per tick: the periodic sweep's claim (held: its condition fails, still a request), one page
///   of the `due` index and one of the `active` index (keys only), the cluster records (a query)
///   and the pool definitions (a scan);
/// - reads by key, batched 100 keys to a `BatchGetItem` per kind, across the whole tick: the due
///   shards and the open groups the indexes listed, the definitions of the jobs a decision needs
///   (see [`GroupedWork::definitions`]), the followed attempts' results, the accepted schemas of
///   the members submitted this tick, and the shards not due that a published or settled group
///   folds into;
/// - writes, one conditional `PutItem` each (conditions cannot be batched, transactions cost
///   double): each group cut (created placed), each pending group placed, each attempt that
///   ended (settled or a new attempt), each group committed, each shard that changed.
///
/// Not counted here but reported beside it: one S3 PUT per submission (the attempt's spec) and
/// Livy's calls (one look-up per followed group, one submission per attempt). Settling and
/// committing a group are two writes under the model (the shard is written between them); one
/// write would need a different protocol, so it is not assumed. The followed groups' definitions
/// are counted because the model derives an attempt's timeout from its members' retry policies
/// (even a group still running needs them); a group that kept its timeout would not, so
/// [`GroupedWork::followed_only_definitions`] is reported for the stricter figure.
pub fn grouped_minimum(work: &GroupedWork, sizes: &ItemSizes) -> Vec<MinimumLine> {
    let line = |what, api, requests| MinimumLine { what, api, requests };
    let w = work;
    vec![
        line("claim the periodic sweep (held: condition fails)", Api::PutItem, 1),
        line("due index page(s)", Api::Query, query_pages(w.due_shards, w.due_limit, sizes.index_entry)),
        line("due shards by key", Api::BatchGetItem, batch_gets(w.due_shards)),
        line("active index page(s)", Api::Query, query_pages(w.open_groups, usize::MAX, sizes.index_entry)),
        line("open groups by key", Api::BatchGetItem, batch_gets(w.open_groups)),
        line(
            "definitions: due shards' jobs, followed groups' members (attempt timeout), placed pending groups' members",
            Api::BatchGetItem,
            batch_gets(w.definitions),
        ),
        line("followed attempts' results", Api::BatchGetItem, batch_gets(w.followed_groups)),
        line("accepted schemas of the members submitted", Api::BatchGetItem, batch_gets(w.schemas)),
        line("shards not due to fold into", Api::BatchGetItem, batch_gets(w.other_shards)),
        line("cluster records", Api::Query, query_pages(w.clusters, usize::MAX, sizes.cluster)),
        line("pool definitions", Api::Scan, scan_pages(w.pools, sizes.pool)),
        line("groups cut (created placed)", Api::PutItem, w.groups_created as u64),
        line("pending groups placed", Api::PutItem, w.groups_placed as u64),
        line("attempts ended (settled or retried)", Api::PutItem, w.groups_ended as u64),
        line("groups committed", Api::PutItem, w.groups_committed as u64),
        line("shard writes", Api::PutItem, w.shard_writes as u64),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SMALL: usize = 300;

    #[test]
    fn batch_reads_go_in_hundreds() {
        assert_eq!(batch_gets(0), 0, "no ids, no request");
        assert_eq!(batch_gets(1), 1);
        assert_eq!(batch_gets(100), 1);
        assert_eq!(batch_gets(101), 2);
        assert_eq!(batch_gets(1000), 10);
        let call = Call { op: Op::GetJobDefinitions, keys: 250, items: 0, limit: usize::MAX };
        assert_eq!(requests(&call, &ItemSizes::default()), (Api::BatchGetItem, 3));
    }

    #[test]
    fn queries_page_at_a_thousand_items_and_follow_a_full_last_page() {
        // Fewer than a page: one request, no LastEvaluatedKey.
        assert_eq!(query_pages(0, usize::MAX, SMALL), 1);
        assert_eq!(query_pages(999, usize::MAX, SMALL), 1);
        // Exactly a page without a call limit: the page stopped at Limit, so the adapter asks
        // once more and gets an empty page.
        assert_eq!(query_pages(1000, usize::MAX, SMALL), 2);
        assert_eq!(query_pages(2500, usize::MAX, SMALL), 3);
        // The call's own limit ends the loop without the empty page.
        assert_eq!(query_pages(4, 4, SMALL), 1);
        assert_eq!(query_pages(1000, 1000, SMALL), 1);
        assert_eq!(query_pages(5000, 5000, SMALL), 5);
        // A limit below the page size is the page's Limit.
        assert_eq!(query_pages(3, 4, SMALL), 1);
    }

    #[test]
    fn large_items_page_at_one_megabyte() {
        // 4 KB items: 256 per MB page.
        assert_eq!(query_pages(256, usize::MAX, 4096), 2);
        assert_eq!(query_pages(600, usize::MAX, 4096), 3);
        assert_eq!(scan_pages(0, 900), 1);
        // 1,024 items of 1 KB per page: 97 full pages and a partial one.
        assert_eq!(scan_pages(100_000, 1024), 98);
    }

    #[test]
    fn single_item_operations_are_one_request_of_their_api() {
        let sizes = ItemSizes::default();
        assert_eq!(requests(&Call::single(Op::UpdateJobState), &sizes), (Api::PutItem, 1));
        assert_eq!(requests(&Call::single(Op::GetRun), &sizes), (Api::GetItem, 1));
        assert_eq!(requests(&Call::single(Op::AnnotateJobDefinition), &sizes), (Api::UpdateItem, 1));
        assert_eq!(requests(&Call::single(Op::ClaimPeriodic), &sizes), (Api::PutItem, 1));
    }

    #[test]
    fn the_minimum_batches_reads_and_counts_every_write() {
        let work = Work {
            due_with_windows: 100,
            due_limit: 5000,
            windows_cut: 100,
            active_runs: 300,
            followed_runs: 200,
            other_jobs: 200,
            run_writes: 300,
            job_state_writes: 200,
            commits: 100,
            clusters: 2,
            pools: 1,
        };
        let lines = minimum(&work, &ItemSizes::default());
        // 1 claim + 1 due page + (3 + 2 + 2) batch reads + 100 run queries + 1 active page
        // + 1 cluster page + 1 pool page + 100 commit queries + 100 creates + 300 + 200 writes.
        assert_eq!(total(&lines), 1 + 1 + 7 + 100 + 1 + 1 + 1 + 100 + 100 + 300 + 200);
    }

    #[test]
    fn the_grouped_minimum_batches_reads_per_kind_and_counts_every_write() {
        let work = GroupedWork {
            due_shards: 4,
            due_limit: 5000,
            due_jobs: 1000,
            open_groups: 8,
            followed_groups: 8,
            definitions: 3000,
            followed_only_definitions: 2000,
            schemas: 1000,
            other_shards: 4,
            groups_created: 4,
            groups_placed: 0,
            groups_ended: 4,
            groups_committed: 4,
            shard_writes: 8,
            submissions: 4,
            clusters: 4,
            pools: 1,
        };
        let lines = grouped_minimum(&work, &ItemSizes::default());
        // 1 claim + 1 + 1 due + 1 + 1 open + 30 definitions + 1 results + 10 schemas + 1 shards
        // + 1 clusters + 1 pools + 4 creates + 4 ended + 4 committed + 8 shard writes.
        assert_eq!(total(&lines), 1 + 2 + 2 + 30 + 1 + 10 + 1 + 1 + 1 + 4 + 4 + 4 + 8);
        let sizes = ItemSizes::default();
        assert_eq!(requests(&Call { op: Op::DueShardsIndex, keys: 0, items: 0, limit: 5000 }, &sizes), (Api::Query, 1));
        let items = Call { op: Op::OpenGroupItems, keys: 0, items: 0, limit: usize::MAX };
        assert_eq!(requests(&items, &sizes), (Api::BatchGetItem, 0), "nothing listed, nothing read");
    }

    #[test]
    fn item_size_counts_names_and_values() {
        assert_eq!(approx_item_bytes(&json!({"job_id": "abc"})), 6 + 3);
        assert_eq!(approx_item_bytes(&json!({"n": 123456})), 1 + 4);
        assert!(approx_item_bytes(&json!({"m": {"a": [1, 2]}})) > 4);
    }
}
