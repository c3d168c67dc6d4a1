//! The cluster lifecycle handlers: what the cluster health watcher, the rotation handler and the
//! job migrator run. Each pass re-reads the ledger and EMR (events are hints, never the truth),
//! decides with `norris_engine::clusters`, and applies the decisions with conditional writes, so
//! a pass may run twice, late, or next to another one.
//!
//! Orderings that make a crash between any two lines safe:
//! - a launch is recorded (`Launching`, conditional create under a key derived from the pool's
//!   generations) before RunJobFlow is called, and a launch not found by its tag after
//!   `launch_retry_secs` is fenced (versioned update of `requested_at`) before it is called again;
//! - a cluster is marked `Terminated` before TerminateJobFlows is called; a cluster EMR still runs
//!   under a `Terminated` record is an orphan, terminated again by the rotation handler;
//! - a run leaves a cluster by a versioned update that bumps its attempt, so the old attempt can
//!   never publish, before it is placed anywhere else.

use crate::config::{number, ConfigError};
use crate::follow::won;
use crate::grouped::place_moved_groups;
use crate::scheduler::{follow_and_commit, FollowScope, TickError, TickReport};
use crate::SchedulerConfig;
use norris_engine::clusters::{
    awaits_failover, doom, may_terminate, move_run, must_move_runs, needs_livy_probe, observe_cluster, orphans,
    plan_pool, rotate_early, PoolDecision,
};
use norris_engine::groups::{group_awaits_failover, group_batch_name, move_group, moved_group_stalled};
use norris_model::{Cluster, ClusterKey, ClusterState, LaunchRequest, PoolDefinition, UnixTime, Version};
use norris_ports::{BatchService, EmrError, EmrService, GroupStore, SpecStore, StateStore, StoreError, WriteError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How the lifecycle handlers behave (environment of the three Lambdas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// The scheduler's settings (table prefix), for placing moved runs at once.
    pub scheduler: SchedulerConfig,
    /// The deployment's name: the `norris:deployment` tag of its clusters.
    pub deployment: String,
    /// How long a draining cluster's runs may finish before they are moved.
    pub drain_secs: i64,
    /// A cluster not ready this long after its launch is written off.
    pub start_timeout_secs: i64,
    /// A drained or lost cluster is terminated no sooner than this after it became so: at
    /// least the longest timeout of a handler that places runs (see `may_terminate`).
    pub terminate_settle_secs: i64,
    /// A launch not visible in EMR this long after it was recorded is made again.
    pub launch_retry_secs: i64,
    /// A deployment-tagged cluster the ledger does not account for is terminated after this.
    pub orphan_grace_secs: i64,
    /// Where the runs of a lost cluster go.
    pub failover: Failover,
}

/// Where the runs of a lost cluster go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Failover {
    /// At once, to any ready cluster of the pool with room (norris's behaviour).
    #[default]
    Warm,
    /// Only once a cluster becomes ready after the loss (its relaunch, or any cluster that
    /// was still booting): the approach norris replaces (relaunch, wait, re-run), kept so the
    /// simulator can compare the two on one fault trace.
    WaitForReplacement,
}

impl LifecycleConfig {
    /// Reads `NORRIS_DEPLOYMENT` (required), `NORRIS_DRAIN_SECS` (900), `NORRIS_START_TIMEOUT_SECS`
    /// (2700), `NORRIS_TERMINATE_SETTLE_SECS` (300: the rotation handler's timeout, the longest
    /// of the handlers that place runs), `NORRIS_LAUNCH_RETRY_SECS` (600),
    /// `NORRIS_ORPHAN_GRACE_SECS` (1800) and the scheduler's variables; every problem is named.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let scheduler = SchedulerConfig::from_env_map(env).map_err(|e| problems.extend(e.0)).ok();
        let deployment = match env.get("NORRIS_DEPLOYMENT").map(|s| s.trim()) {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => {
                problems.push("NORRIS_DEPLOYMENT is required (the deployment's name)".into());
                String::new()
            }
        };
        let drain_secs = number(env, "NORRIS_DRAIN_SECS", 900, 0, 86_400, &mut problems);
        let start_timeout_secs = number(env, "NORRIS_START_TIMEOUT_SECS", 2700, 300, 86_400, &mut problems);
        let terminate_settle_secs = number(env, "NORRIS_TERMINATE_SETTLE_SECS", 300, 0, 3600, &mut problems);
        let launch_retry_secs = number(env, "NORRIS_LAUNCH_RETRY_SECS", 600, 60, 86_400, &mut problems);
        let orphan_grace_secs = number(env, "NORRIS_ORPHAN_GRACE_SECS", 1800, 300, 7 * 86_400, &mut problems);
        match scheduler {
            Some(scheduler) if problems.is_empty() => Ok(LifecycleConfig {
                scheduler,
                deployment,
                drain_secs,
                start_timeout_secs,
                terminate_settle_secs,
                launch_retry_secs,
                orphan_grace_secs,
                failover: Failover::Warm,
            }),
            _ => Err(ConfigError(problems)),
        }
    }

    /// [`Self::from_env_map`] over the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_map(&std::env::vars().collect())
    }
}

/// What one lifecycle pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterReport {
    /// Clusters that became ready.
    pub became_ready: Vec<String>,
    /// Clusters written off, with why.
    pub lost: Vec<(String, String)>,
    /// Launches recorded and made (ledger keys).
    pub launched: Vec<String>,
    /// Clusters that started draining.
    pub drained: Vec<String>,
    /// Clusters terminated (ledger keys).
    pub terminated: Vec<String>,
    /// Runs moved off lost or drained clusters.
    pub runs_moved: usize,
    /// Of those, placed again in this pass (warm failover), with runs moved by an earlier pass
    /// that died before placing them.
    pub runs_placed_again: usize,
    /// Moved runs not running again yet, placed or followed in this pass (see `awaits_failover`).
    #[serde(skip)]
    pub moved_waiting: usize,
    /// Groups (grouped ledger) moved off lost or drained clusters.
    pub groups_moved: usize,
    /// Group attempts placed and submitted again in this pass (warm failover).
    pub groups_placed_again: usize,
    /// Moved groups not running again yet, as the pool planning found them (`None`: not
    /// looked at in this pass, so placing reads the open groups itself).
    #[serde(skip)]
    pub groups_waiting: Option<usize>,
    /// EMR clusters terminated as orphans (ids).
    pub orphans_terminated: Vec<String>,
    /// Conditional writes lost to another writer (that writer's decision stands).
    pub conflicts: usize,
    /// Steps that failed and are retried on the next pass.
    pub failures: Vec<String>,
}

/// A pass that could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The store failed on a read every step needs.
    #[error("cluster lifecycle pass failed: {0}")]
    Store(#[from] StoreError),
    /// Placing the moved runs failed.
    #[error(transparent)]
    Tick(#[from] TickError),
}

/// A signal about one cluster from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterSignal {
    /// Look at this EMR cluster now (a state change event).
    Look {
        /// EMR's id.
        emr_cluster_id: String,
    },
    /// This EC2 instance will be taken (spot interruption warning).
    InstanceInterrupted {
        /// The instance.
        instance_id: String,
    },
    /// This EC2 instance is at elevated risk (rebalance recommendation).
    InstanceAtRisk {
        /// The instance.
        instance_id: String,
    },
    /// An alarm on this EMR cluster went to ALARM (Livy health, YARN memory).
    Alarm {
        /// EMR's id.
        emr_cluster_id: String,
        /// The alarm.
        alarm_name: String,
    },
}

async fn write_cluster<S: StateStore>(
    store: &S,
    next: &Cluster,
    report: &mut ClusterReport,
) -> Result<Option<Cluster>, StoreError> {
    crate::follow::won(store.update_cluster(next).await, &mut report.conflicts)
}

fn note_change(before: &Cluster, after: &Cluster, report: &mut ClusterReport) {
    match &after.state {
        ClusterState::Ready if before.state != ClusterState::Ready => {
            tracing::info!(cluster = %after.key, endpoint = ?after.livy_endpoint, "cluster ready");
            report.became_ready.push(after.key.to_string());
        }
        ClusterState::Lost { reason, .. } if !matches!(before.state, ClusterState::Lost { .. }) => {
            tracing::warn!(cluster = %after.key, %reason, alarm = "cluster_lost", "cluster lost; its runs move");
            report.lost.push((after.key.to_string(), reason.clone()));
        }
        _ => {}
    }
}

/// Applies an event's signal: a doomed primary node dooms its cluster (lost at once: nothing more
/// is placed there and its runs move now); a primary at risk rotates its cluster early; a state
/// change or an alarm makes the pass look at that cluster first.
pub async fn apply_signal<S: StateStore, E: EmrService>(
    store: &S,
    emr: &E,
    signal: &ClusterSignal,
    now: UnixTime,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let clusters = store.list_clusters().await?;
    let live: Vec<&Cluster> = clusters.iter().filter(|c| !matches!(c.state, ClusterState::Terminated { .. })).collect();
    let by_id = |id: &str| live.iter().find(|c| c.emr_cluster_id.as_deref() == Some(id)).copied();
    let instance = |instance_id: &String| {
        let ids: Vec<String> = live.iter().filter_map(|c| c.emr_cluster_id.clone()).collect();
        let instance_id = instance_id.clone();
        async move { emr.locate_instance(&ids, &instance_id).await }
    };
    let next = match signal {
        ClusterSignal::Look { .. } => None,
        ClusterSignal::Alarm { emr_cluster_id, alarm_name } => {
            by_id(emr_cluster_id).and_then(|c| doom(c, &format!("alarm {alarm_name}"), now))
        }
        ClusterSignal::InstanceInterrupted { instance_id } => match instance(instance_id).await {
            Ok(Some(p)) if p.primary => by_id(&p.cluster_id)
                .and_then(|c| doom(c, &format!("spot interruption of its primary node {instance_id}"), now)),
            Ok(Some(p)) => {
                tracing::info!(
                    instance_id,
                    cluster = p.cluster_id,
                    "spot interruption of a core/task node; YARN reschedules"
                );
                None
            }
            Ok(None) => None,
            Err(e) => {
                report.failures.push(format!("locating instance {instance_id}: {e}"));
                None
            }
        },
        ClusterSignal::InstanceAtRisk { instance_id } => match instance(instance_id).await {
            Ok(Some(p)) if p.primary => by_id(&p.cluster_id).and_then(|c| rotate_early(c, now)),
            Ok(_) => None,
            Err(e) => {
                report.failures.push(format!("locating instance {instance_id}: {e}"));
                None
            }
        },
    };
    if let Some(next) = next {
        let before = clusters.iter().find(|c| c.key == next.key).cloned();
        if let Some(written) = write_cluster(store, &next, report).await? {
            if let Some(before) = before {
                note_change(&before, &written, report);
            }
        }
    }
    Ok(())
}

/// Re-reads EMR (and probes Livy where readiness depends on it) for every cluster norris holds,
/// and records what changed; relaunches a launch that never became visible.
pub async fn observe_clusters<S: StateStore, E: EmrService, B: BatchService>(
    store: &S,
    emr: &E,
    livy: &B,
    pools: &[PoolDefinition],
    now: UnixTime,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    for cluster in store.list_clusters().await? {
        if matches!(cluster.state, ClusterState::Terminated { .. } | ClusterState::Lost { .. }) {
            continue;
        }
        let seen = match &cluster.emr_cluster_id {
            Some(id) => emr.describe(id).await,
            None => emr.find_by_launch_key(&config.deployment, cluster.key.as_str()).await,
        };
        let seen = match seen {
            Ok(s) => s,
            Err(e) => {
                report.failures.push(format!("reading EMR for cluster {}: {e}", cluster.key));
                continue;
            }
        };
        if let (ClusterState::Launching { requested_at }, None) = (&cluster.state, &seen) {
            if now.secs() - requested_at.secs() >= config.launch_retry_secs {
                relaunch(store, emr, &cluster, pools, now, config, report).await?;
            }
            continue;
        }
        let livy_answers =
            match (needs_livy_probe(&cluster, seen.as_ref()), seen.as_ref().and_then(|e| e.livy_endpoint())) {
                (true, Some(endpoint)) => Some(livy.ping(&endpoint).await.is_ok()),
                _ => None,
            };
        if let Some(next) = observe_cluster(&cluster, seen.as_ref(), livy_answers, now, config.start_timeout_secs) {
            if let Some(written) = write_cluster(store, &next, report).await? {
                note_change(&cluster, &written, report);
            }
        }
    }
    Ok(())
}

fn launch_request(key: &ClusterKey, generation: u32, pool: &PoolDefinition, config: &LifecycleConfig) -> LaunchRequest {
    LaunchRequest {
        key: key.clone(),
        deployment: config.deployment.clone(),
        size_class: pool.size_class.clone(),
        generation,
        pool: pool.clone(),
        extra_tags: BTreeMap::new(),
    }
}

/// Calls RunJobFlow for a recorded launch and records the cluster id. A failure leaves the
/// record `Launching`: the next pass finds the cluster by its tag, or launches again after
/// `launch_retry_secs`.
async fn launch<S: StateStore, E: EmrService>(
    store: &S,
    emr: &E,
    record: &Cluster,
    pool: &PoolDefinition,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let request = launch_request(&record.key, record.generation, pool, config);
    match emr.launch(&request).await {
        Ok(id) => {
            tracing::info!(cluster = %record.key, emr_cluster_id = %id, "cluster launched");
            report.launched.push(record.key.to_string());
            let mut next = record.clone();
            next.emr_cluster_id = Some(id);
            next.state = ClusterState::Starting;
            write_cluster(store, &next, report).await?;
        }
        Err(e @ EmrError::Unavailable { .. }) => {
            report.failures.push(format!("launching {}: {e} (found by its tag or launched again later)", record.key))
        }
        Err(e) => {
            tracing::error!(cluster = %record.key, error = %e, alarm = "launch_refused", "EMR refused the launch");
            report.failures.push(format!("launching {}: {e}", record.key));
        }
    }
    Ok(())
}

async fn relaunch<S: StateStore, E: EmrService>(
    store: &S,
    emr: &E,
    cluster: &Cluster,
    pools: &[PoolDefinition],
    now: UnixTime,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let Some(pool) = pools.iter().find(|p| p.size_class == cluster.size_class) else { return Ok(()) };
    let mut fenced = cluster.clone();
    fenced.state = ClusterState::Launching { requested_at: now };
    // Whoever moves `requested_at` launches; a concurrent pass loses the write and does not.
    let Some(fenced) = write_cluster(store, &fenced, report).await? else { return Ok(()) };
    tracing::warn!(cluster = %cluster.key, "launch not visible in EMR; launching again");
    launch(store, emr, &fenced, pool, config, report).await
}

/// The clusters whose work must move now: lost or drained past their deadline, and, when the
/// failover waits for a replacement, a lost one only once a cluster of its size class became
/// ready after the loss.
fn leaving_clusters(clusters: &[Cluster], now: UnixTime, failover: Failover) -> Vec<&Cluster> {
    let replaced = |lost: &Cluster| match (&lost.state, failover) {
        (ClusterState::Lost { at, .. }, Failover::WaitForReplacement) => clusters.iter().any(|c| {
            c.size_class == lost.size_class
                && c.state == ClusterState::Ready
                && c.ready_at.is_some_and(|ready| ready >= *at)
        }),
        _ => true,
    };
    clusters.iter().filter(|c| must_move_runs(c, now) && replaced(c)).collect()
}

/// Why work leaves `cluster`, for the moved attempt's outcome.
fn why_leaving(cluster: &Cluster) -> String {
    match &cluster.state {
        ClusterState::Lost { reason, .. } => reason.clone(),
        _ => "drain deadline passed".to_string(),
    }
}

/// Moves the work off clusters that are lost or drained past their deadline: every unfinished run
/// and every placed group there gets its batch killed where Livy still answers, then a new
/// attempt (which fences the old one), pending, no failure counted. Counts what moved in
/// `report`.
pub async fn move_work<S: StateStore + GroupStore, B: BatchService>(
    store: &S,
    livy: &B,
    now: UnixTime,
    failover: Failover,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let clusters = store.list_clusters().await?;
    let leaving = leaving_clusters(&clusters, now, failover);
    if leaving.is_empty() {
        return Ok(());
    }
    let on_leaving = |placed: Option<&ClusterKey>| leaving.iter().copied().find(|c| placed == Some(&c.key));
    for run in store.active_runs().await? {
        let Some(cluster) = on_leaving(run.status.cluster()) else { continue };
        kill_if_draining(livy, cluster, &norris_engine::runs::batch_name(&run), &run.key().to_string()).await;
        let Some(next) = move_run(&run, &cluster.key, &why_leaving(cluster), now) else { continue };
        if moved(store.update_run(&next).await, &format!("run {}", run.key()), &cluster.key, report) {
            report.runs_moved += 1;
        }
    }
    for group in store.open_groups().await? {
        let Some(cluster) = on_leaving(group.status.cluster()) else { continue };
        let what = format!("group {}", group.key);
        kill_if_draining(livy, cluster, &group_batch_name(&group), &what).await;
        let Some(next) = move_group(&group, &cluster.key, &why_leaving(cluster), now) else { continue };
        if moved(store.update_group(&next).await, &what, &cluster.key, report) {
            report.groups_moved += 1;
        }
    }
    Ok(())
}

/// Whether a move's versioned update won (a conflict means another pass moved it first).
fn moved<T>(written: Result<T, WriteError<T>>, what: &str, from: &ClusterKey, report: &mut ClusterReport) -> bool {
    match won(written, &mut report.conflicts) {
        Ok(Some(_)) => {
            tracing::info!(what, from = %from, "moved off a cluster being left");
            true
        }
        Ok(None) => false,
        Err(e) => {
            report.failures.push(format!("moving {what}: {e}"));
            false
        }
    }
}

/// On a draining cluster (its Livy still answers), kills the batch of work being moved off it.
async fn kill_if_draining<B: BatchService>(livy: &B, cluster: &Cluster, name: &str, what: &str) {
    if let (ClusterState::Draining { .. }, Some(endpoint)) = (&cluster.state, cluster.livy_endpoint.as_deref()) {
        kill_batch(livy, endpoint, name, what).await;
    }
}

/// Kills the batch `name` where Livy still answers (best effort: its attempt is fenced anyway).
async fn kill_batch<B: BatchService>(livy: &B, endpoint: &str, name: &str, what: &str) {
    match livy.find(endpoint, name).await {
        Ok(Some(b)) if !b.phase.is_final() => {
            if let Err(e) = livy.kill(endpoint, b.id).await {
                tracing::warn!(what, error = %e, "could not kill the batch; its attempt is fenced anyway");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(what, error = %e, "could not reach Livy to kill the batch"),
    }
}

/// Per pool: launches what is missing (replacements of lost clusters, rotations, the minimum),
/// drains what rotation or scale-down retires, and terminates lost or drained clusters that hold
/// no unfinished run and no placed group of the grouped ledger.
pub async fn plan_pools<S: StateStore + GroupStore, E: EmrService>(
    store: &S,
    emr: &E,
    pools: &[PoolDefinition],
    now: UnixTime,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let clusters = store.list_clusters().await?;
    let active = store.active_runs().await?;
    report.moved_waiting = active.iter().filter(|r| awaits_failover(r, now)).count();
    let mut runs_on: BTreeMap<&ClusterKey, usize> = BTreeMap::new();
    for run in &active {
        if let Some(c) = run.status.cluster() {
            *runs_on.entry(c).or_default() += 1;
        }
    }
    // Groups hold a batch slot like runs: a cluster running one is not terminated under it, and
    // a pool with one to run has work.
    let groups = store.open_groups().await?;
    let waiting = groups.iter().filter(|g| group_awaits_failover(g, now) || moved_group_stalled(g, now)).count();
    report.groups_waiting = Some(waiting);
    for cluster in groups.iter().filter_map(|g| g.status.cluster()) {
        *runs_on.entry(cluster).or_default() += 1;
    }
    let job_ids: Vec<_> = active.iter().map(|r| r.job_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut working: BTreeSet<_> = store
        .get_job_definitions(&job_ids)
        .await?
        .into_iter()
        .filter_map(|r| r.parsed.ok().map(|d| d.size_class))
        .collect();
    working.extend(groups.iter().filter(|g| g.to_do().next().is_some()).map(|g| g.key.shard.cohort.size_class.clone()));
    for pool in pools {
        let has_work = working.contains(&pool.size_class);
        for decision in plan_pool(pool, &clusters, has_work, now, config.drain_secs) {
            match decision {
                PoolDecision::Launch { key, generation } => {
                    let record = Cluster {
                        key: key.clone(),
                        size_class: pool.size_class.clone(),
                        generation,
                        emr_cluster_id: None,
                        livy_endpoint: None,
                        state: ClusterState::Launching { requested_at: now },
                        created_at: now,
                        ready_at: None,
                        rotate_after: now.plus_secs(pool.max_age_secs),
                        version: Version::INITIAL,
                    };
                    match store.create_cluster(&record).await {
                        Ok(created) => launch(store, emr, &created, pool, config, report).await?,
                        Err(WriteError::Conflict { .. }) => report.conflicts += 1,
                        Err(WriteError::Store(e)) => return Err(e),
                    }
                }
                PoolDecision::Drain { key, deadline } => {
                    let Some(c) = clusters.iter().find(|c| c.key == key) else { continue };
                    let mut next = c.clone();
                    next.state = ClusterState::Draining { since: now, deadline };
                    if write_cluster(store, &next, report).await?.is_some() {
                        tracing::info!(cluster = %key, deadline = %deadline, "cluster draining");
                        report.drained.push(key.to_string());
                    }
                }
            }
        }
    }
    let runs_on_it = |c: &Cluster| runs_on.get(&c.key).copied().unwrap_or(0);
    for cluster in clusters.iter().filter(|c| may_terminate(c, runs_on_it(c), now, config.terminate_settle_secs)) {
        let mut next = cluster.clone();
        next.state = ClusterState::Terminated { at: now };
        if write_cluster(store, &next, report).await?.is_none() {
            continue;
        }
        report.terminated.push(cluster.key.to_string());
        if let Some(id) = &cluster.emr_cluster_id {
            match emr.terminate(id).await {
                Ok(()) => tracing::info!(cluster = %cluster.key, emr_cluster_id = %id, "cluster terminated"),
                // The record says terminated: the orphan sweep terminates it again.
                Err(e) => report.failures.push(format!("terminating {}: {e}", cluster.key)),
            }
        }
    }
    Ok(())
}

/// Terminates clusters EMR runs under this deployment's tag that the ledger does not account for.
pub async fn terminate_orphans<S: StateStore, E: EmrService>(
    store: &S,
    emr: &E,
    now: UnixTime,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), StoreError> {
    let seen = match emr.list_deployment_clusters(&config.deployment).await {
        Ok(s) => s,
        Err(e) => {
            report.failures.push(format!("listing EMR clusters: {e}"));
            return Ok(());
        }
    };
    let ledger = store.list_clusters().await?;
    for orphan in orphans(&seen, &ledger, now, config.orphan_grace_secs) {
        tracing::warn!(emr_cluster_id = %orphan.id, name = %orphan.name, alarm = "orphan_cluster", "orphan cluster; terminating");
        match emr.terminate(&orphan.id).await {
            Ok(()) => report.orphans_terminated.push(orphan.id.clone()),
            Err(e) => report.failures.push(format!("terminating orphan {}: {e}", orphan.id)),
        }
    }
    Ok(())
}

async fn valid_pools<S: StateStore>(store: &S) -> Result<Vec<PoolDefinition>, StoreError> {
    Ok(store.list_pools().await?.into_iter().filter_map(|p| p.parsed.ok()).collect())
}

/// Places and follows moved runs at once (warm failover): those this pass moved, and those an
/// earlier pass moved that are not running yet (it died before placing them, or the peer's Livy
/// failed the submission and the backoff is over).
async fn place_moved<S: StateStore + GroupStore, B: BatchService, P: SpecStore>(
    store: &S,
    livy: &B,
    specs: &P,
    now: UnixTime,
    config: &LifecycleConfig,
    report: &mut ClusterReport,
) -> Result<(), LifecycleError> {
    // Groups first, when some were moved or wait (or nobody looked: the migrator's pass).
    if report.groups_moved > 0 || report.groups_waiting != Some(0) {
        let mut tick = TickReport { now: now.secs(), ..TickReport::default() };
        report.groups_placed_again += place_moved_groups(store, livy, specs, now, &config.scheduler, &mut tick).await?;
        report.failures.extend(tick.failures.into_iter().map(|f| format!("{}: {}", f.job_id, f.error)));
    }
    if report.runs_moved == 0 && report.moved_waiting == 0 {
        return Ok(());
    }
    let mut tick = TickReport { now: now.secs(), ..TickReport::default() };
    follow_and_commit(
        store,
        livy,
        now,
        &config.scheduler,
        HashMap::new(),
        HashMap::new(),
        &BTreeSet::new(),
        FollowScope::Everything,
        &mut tick,
    )
    .await?;
    report.runs_placed_again += tick.runs_submitted;
    report.failures.extend(tick.failures.into_iter().map(|f| format!("{}: {}", f.job_id, f.error)));
    Ok(())
}

/// The cluster health watcher's pass: the event's signal first, then every cluster re-read, lost
/// clusters replaced, their runs moved and placed again.
pub async fn watch<S: StateStore + GroupStore, E: EmrService, B: BatchService, P: SpecStore>(
    store: &S,
    emr: &E,
    livy: &B,
    specs: &P,
    signal: Option<&ClusterSignal>,
    now: UnixTime,
    config: &LifecycleConfig,
) -> Result<ClusterReport, LifecycleError> {
    let mut report = ClusterReport::default();
    if let Some(signal) = signal {
        apply_signal(store, emr, signal, now, &mut report).await?;
    }
    let pools = valid_pools(store).await?;
    observe_clusters(store, emr, livy, &pools, now, config, &mut report).await?;
    move_work(store, livy, now, config.failover, &mut report).await?;
    plan_pools(store, emr, &pools, now, config, &mut report).await?;
    place_moved(store, livy, specs, now, config, &mut report).await?;
    Ok(report)
}

/// The rotation handler's pass: the watcher's pass (rotation is one of the pool decisions), plus
/// the orphan sweep.
pub async fn rotate<S: StateStore + GroupStore, E: EmrService, B: BatchService, P: SpecStore>(
    store: &S,
    emr: &E,
    livy: &B,
    specs: &P,
    now: UnixTime,
    config: &LifecycleConfig,
) -> Result<ClusterReport, LifecycleError> {
    let mut report = watch(store, emr, livy, specs, None, now, config).await?;
    terminate_orphans(store, emr, now, config, &mut report).await?;
    Ok(report)
}

/// The job migrator's pass: moves runs and groups off lost and drained clusters and places them
/// again.
pub async fn migrate<S: StateStore + GroupStore, B: BatchService, P: SpecStore>(
    store: &S,
    livy: &B,
    specs: &P,
    now: UnixTime,
    config: &LifecycleConfig,
) -> Result<ClusterReport, LifecycleError> {
    let mut report = ClusterReport::default();
    move_work(store, livy, now, config.failover, &mut report).await?;
    place_moved(store, livy, specs, now, config, &mut report).await?;
    Ok(report)
}

/// Why a lifecycle Lambda invocation failed (the runtime reports it as the error type).
#[derive(Debug, thiserror::Error)]
pub enum LifecycleEventError {
    /// The event was malformed or not one this function handles; nothing was read or written.
    #[error(transparent)]
    Event(#[from] crate::events::EventError),
    /// The pass could not run.
    #[error(transparent)]
    Pass(#[from] LifecycleError),
    /// The pass ran but some steps failed; they are retried on the next pass, and failing the
    /// invocation makes the Lambda error metric (and its alarm) see them.
    #[error("cluster lifecycle pass left {} step(s) for the next pass: {}", .0.failures.len(), .0.failures.join("; "))]
    StepsFailed(Box<ClusterReport>),
}

fn finish(report: ClusterReport) -> Result<ClusterReport, LifecycleEventError> {
    tracing::info!(
        became_ready = ?report.became_ready,
        lost = ?report.lost,
        launched = ?report.launched,
        drained = ?report.drained,
        terminated = ?report.terminated,
        runs_moved = report.runs_moved,
        runs_placed_again = report.runs_placed_again,
        orphans_terminated = ?report.orphans_terminated,
        failures = report.failures.len(),
        "cluster lifecycle pass done"
    );
    if report.failures.is_empty() {
        Ok(report)
    } else {
        Err(LifecycleEventError::StepsFailed(Box::new(report)))
    }
}

/// The cluster health watcher Lambda's handler: EMR state changes, spot interruption warnings,
/// rebalance recommendations, cluster alarms and its periodic sweep.
pub async fn handle_watcher_event<
    S: StateStore + GroupStore,
    E: EmrService,
    B: BatchService,
    P: SpecStore,
    C: norris_ports::Clock,
>(
    store: &S,
    emr: &E,
    livy: &B,
    specs: &P,
    clock: &C,
    config: &LifecycleConfig,
    payload: &serde_json::Value,
) -> Result<ClusterReport, LifecycleEventError> {
    let signal = crate::events::parse_cluster_event(payload)?;
    tracing::info!(?signal, "cluster watcher pass");
    finish(watch(store, emr, livy, specs, signal.as_ref(), clock.now(), config).await?)
}

/// The rotation handler Lambda's handler (its schedule).
pub async fn handle_rotation_event<
    S: StateStore + GroupStore,
    E: EmrService,
    B: BatchService,
    P: SpecStore,
    C: norris_ports::Clock,
>(
    store: &S,
    emr: &E,
    livy: &B,
    specs: &P,
    clock: &C,
    config: &LifecycleConfig,
    payload: &serde_json::Value,
) -> Result<ClusterReport, LifecycleEventError> {
    crate::events::ScheduledEvent::parse(payload)?;
    finish(rotate(store, emr, livy, specs, clock.now(), config).await?)
}

/// The job migrator Lambda's handler: norris's own events (source `norris`) or its schedule.
pub async fn handle_migrator_event<
    S: StateStore + GroupStore,
    B: BatchService,
    P: SpecStore,
    C: norris_ports::Clock,
>(
    store: &S,
    livy: &B,
    specs: &P,
    clock: &C,
    config: &LifecycleConfig,
    payload: &serde_json::Value,
) -> Result<ClusterReport, LifecycleEventError> {
    if payload.get("source").and_then(serde_json::Value::as_str) != Some("norris") {
        crate::events::ScheduledEvent::parse(payload)?;
    }
    finish(migrate(store, livy, specs, clock.now(), config).await?)
}
