//! `StateStore` and `GroupStore` on DynamoDB. Every ledger write is a conditional PutItem of the whole item
//! (`attribute_not_exists(pk)` to create, `version = :read` to update), returning the stored item
//! on a lost condition (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) so the caller can decide
//! again without another read.
//!
//! The ledger's indexes (`due`, `active`) copy keys only (`infra/tables.json`): DynamoDB bills an
//! index copy like a table write, so a copy of a 28 KB shard would cost 28 write units where its
//! keys cost one. A query of an index therefore lists keys, and the items are read by key
//! (`read_listed`: strongly consistent `BatchGetItem`), then checked again against the query's
//! condition, since an index lags the table: an item that left the index since is dropped, and
//! the caller always gets the current version, never a stale copy from the index.

use crate::document::{item_to_document, json_to_attribute};
use crate::items::{self, Item};
use crate::schema::TableNames;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use norris_model::{
    Attempt, AttemptResult, Cluster, ClusterKey, CohortKey, Group, GroupKey, GroupResult, JobDefinition, JobId,
    JobState, PoolDefinition, Run, RunKey, Shard, ShardKey, UnixTime,
};
use norris_ports::{Annotation, DefinitionRecord, GroupStore, StateStore, StoreError, WriteError};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The DynamoDB state store of one deployment.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

impl DynamoStore {
    /// A store over the tables named by `tables`.
    pub fn new(client: Client, tables: TableNames) -> Self {
        DynamoStore { client, tables }
    }

    /// The table names in use.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
];

fn classify<E, R>(operation: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se) if !RETRYABLE_CODES.contains(&se.err().code().unwrap_or("")) => {
            StoreError::Rejected { operation, message }
        }
        _ => StoreError::Unavailable { operation, message },
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

enum Condition {
    Create,
    Version(u64),
}

impl DynamoStore {
    /// One conditional put. `desired` is the record as it will be stored. Each put carries a fresh
    /// `write_id`: when the condition fails and the stored item carries our own `write_id`, the SDK
    /// retried a put that had already succeeded, and the "conflict" is our own write.
    /// Stores `current` with the next version if the stored one is still `current`'s: the one
    /// shape of every ledger update (job states, runs, clusters, shards, groups).
    async fn update_versioned<T: Clone>(
        &self,
        operation: &'static str,
        current: &T,
        version: fn(&mut T) -> &mut norris_model::Version,
        encode: fn(&T) -> Item,
        parse: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<T, WriteError<T>> {
        let mut next = current.clone();
        let read = *version(&mut next);
        *version(&mut next) = read.next();
        let item = encode(&next);
        self.put_conditionally(operation, item, Condition::Version(read.0), next, parse).await
    }

    async fn put_conditionally<T>(
        &self,
        operation: &'static str,
        mut item: Item,
        condition: Condition,
        desired: T,
        parse: fn(&Item) -> Result<T, StoreError>,
    ) -> Result<T, WriteError<T>> {
        let write_id = new_write_id();
        item.insert("write_id".into(), s(&write_id));
        let mut req = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        req = match condition {
            Condition::Create => req.condition_expression("attribute_not_exists(pk)"),
            Condition::Version(v) => req
                .condition_expression("#version = :read_version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":read_version", n(v)),
        };
        match req.send().await {
            Ok(_) => Ok(desired),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                let current = match se.into_err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => e.item,
                    _ => None,
                };
                if current.as_ref().and_then(|c| c.get("write_id")).and_then(|v| v.as_s().ok()) == Some(&write_id) {
                    return Ok(desired);
                }
                let current = current.map(|item| parse(&item)).transpose()?;
                Err(WriteError::Conflict { current: current.map(Box::new) })
            }
            Err(e) => Err(WriteError::Store(classify(operation, e))),
        }
    }

    /// Reads items by key with `BatchGetItem`, 100 keys a request, strongly consistent; keys
    /// left unprocessed (throttling) are retried with backoff, never dropped. `keys` must be unique.
    async fn batch_get(&self, operation: &'static str, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Rejected { operation, message: e.to_string() })?,
            );
            let mut delay = Duration::from_millis(25);
            let mut rounds = 0;
            while let Some(req) = request.take() {
                let page = self
                    .client
                    .batch_get_item()
                    .request_items(table, req)
                    .send()
                    .await
                    .map_err(|e| classify(operation, e))?;
                if let Some(mut responses) = page.responses {
                    out.extend(responses.remove(table).unwrap_or_default());
                }
                request = page.unprocessed_keys.and_then(|mut u| u.remove(table)).filter(|k| !k.keys.is_empty());
                if request.is_some() {
                    rounds += 1;
                    if rounds > 8 {
                        return Err(StoreError::Unavailable {
                            operation,
                            message: "keys left unprocessed after 8 retries".into(),
                        });
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
        Ok(out)
    }

    async fn get_ledger_item(
        &self,
        operation: &'static str,
        pk: String,
        sk: String,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.ledger)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(out.item)
    }

    /// Runs a query to the end (or `limit` items), page by page.
    async fn query_all(
        &self,
        operation: &'static str,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let remaining = limit.saturating_sub(out.len()).min(1000) as i32;
            let page = build()
                .set_exclusive_start_key(start.take())
                .limit(remaining.max(1))
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if out.len() < limit && !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Reads the ledger items an index query listed (keys only, see the module doc) by key,
    /// strongly consistent, and keeps those that still satisfy `keep`, in the order the index
    /// listed them: an item deleted or changed since the index was read is what the table says now.
    async fn read_listed<T>(
        &self,
        operation: &'static str,
        listed: &[Item],
        parse: fn(&Item) -> Result<T, StoreError>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let keys = listed_keys(listed)?;
        let found = self
            .batch_get(operation, &self.tables.ledger, keys.iter().map(|k| key(k.0.clone(), k.1.clone())).collect())
            .await?;
        still_listed(&keys, found, parse, keep)
    }

    async fn put_document(&self, operation: &'static str, table: &str, document: &Value) -> Result<(), StoreError> {
        let AttributeValue::M(item) = json_to_attribute(document) else {
            return Err(StoreError::Rejected { operation, message: "a definition must be a JSON object".into() });
        };
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(())
    }

    async fn scan_documents(&self, operation: &'static str, table: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A token unique to one put call (process, time, counter, and the std hasher's random keys).
fn new_write_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:016x}{:08x}", h.finish(), std::process::id())
}

fn job_record(item: &Item) -> DefinitionRecord<JobDefinition> {
    let (doc, wire_problems) = item_to_document(item);
    let key = doc.get("job_id").and_then(Value::as_str).unwrap_or("").to_string();
    DefinitionRecord::job(&key, &doc, wire_problems)
}

fn collect<T>(items: &[Item], parse: fn(&Item) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    items.iter().map(parse).collect()
}

/// The table keys (`pk`, `sk`) of the items an index query listed, each once, in the listed order.
fn listed_keys(listed: &[Item]) -> Result<Vec<(String, String)>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::with_capacity(listed.len());
    for entry in listed {
        let part = |name: &str| entry.get(name).and_then(|v| v.as_s().ok()).cloned();
        let (Some(pk), Some(sk)) = (part("pk"), part("sk")) else {
            return Err(StoreError::Corrupt {
                key: format!("{entry:?}"),
                reason: "an index entry without the table's keys (pk, sk)".into(),
            });
        };
        if seen.insert((pk.clone(), sk.clone())) {
            keys.push((pk, sk));
        }
    }
    Ok(keys)
}

/// The items `BatchGetItem` found for `keys` (in no particular order) as records, in the order
/// of `keys`, keeping those that satisfy `keep` as read: keys not found (deleted since the index
/// listed them) and items changed so that they no longer belong in the index are left out.
fn still_listed<T>(
    keys: &[(String, String)],
    found: Vec<Item>,
    parse: fn(&Item) -> Result<T, StoreError>,
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<T>, StoreError> {
    let mut by_key: HashMap<(String, String), Item> = found
        .into_iter()
        .filter_map(|item| {
            let part = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            let k = (part("pk")?, part("sk")?);
            Some((k, item))
        })
        .collect();
    let mut out = Vec::with_capacity(keys.len());
    for item in keys.iter().filter_map(|k| by_key.remove(k)) {
        let record = parse(&item)?;
        if keep(&record) {
            out.push(record);
        }
    }
    Ok(out)
}

impl StateStore for DynamoStore {
    async fn put_job_document(&self, document: &Value) -> Result<(), StoreError> {
        self.put_document("put_job_document", &self.tables.jobs, document).await
    }

    async fn get_job_definitions(&self, ids: &[JobId]) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        let unique: BTreeSet<&JobId> = ids.iter().collect();
        let keys = unique.into_iter().map(|id| HashMap::from([("job_id".to_string(), s(id.as_str()))])).collect();
        Ok(self.batch_get("get_job_definitions", &self.tables.jobs, keys).await?.iter().map(job_record).collect())
    }

    async fn scan_job_definitions(&self) -> Result<Vec<DefinitionRecord<JobDefinition>>, StoreError> {
        Ok(self.scan_documents("scan_job_definitions", &self.tables.jobs).await?.iter().map(job_record).collect())
    }

    async fn annotate_job_definition(&self, id: &JobId, annotation: &Annotation) -> Result<(), StoreError> {
        let problems = AttributeValue::L(annotation.problems.iter().map(|p| s(p.to_string())).collect());
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.jobs)
            .key("job_id", s(id.as_str()))
            .update_expression("SET norris_status = :status, norris_problems = :problems, norris_hash = :hash")
            .condition_expression("attribute_exists(job_id)")
            .expression_attribute_values(":status", s(&annotation.status))
            .expression_attribute_values(":hash", s(&annotation.hash))
            .expression_attribute_values(":problems", problems)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The definition was deleted meanwhile: nothing to annotate.
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(classify("annotate_job_definition", e)),
        }
    }

    async fn claim_periodic(&self, task: &str, now: UnixTime, until: UnixTime) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(HashMap::from([
                ("pk".to_string(), s(items::PERIODIC_PK)),
                ("sk".to_string(), s(task)),
                ("held_until".to_string(), n(until.0)),
            ])))
            .condition_expression("attribute_not_exists(pk) OR held_until <= :now")
            .expression_attribute_values(":now", n(now.0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(classify("claim_periodic", e)),
        }
    }

    async fn put_pool_document(&self, document: &Value) -> Result<(), StoreError> {
        self.put_document("put_pool_document", &self.tables.pools, document).await
    }

    async fn list_pools(&self) -> Result<Vec<DefinitionRecord<PoolDefinition>>, StoreError> {
        let items = self.scan_documents("list_pools", &self.tables.pools).await?;
        Ok(items
            .iter()
            .map(|item| {
                let (doc, wire) = item_to_document(item);
                let key = doc.get("size_class").and_then(Value::as_str).unwrap_or("").to_string();
                DefinitionRecord::pool(&key, &doc, wire)
            })
            .collect())
    }

    async fn get_job_state(&self, id: &JobId) -> Result<Option<JobState>, StoreError> {
        let item = self.get_ledger_item("get_job_state", items::job_pk(id), items::STATE_SK.into()).await?;
        item.as_ref().map(items::job_state_from_item).transpose()
    }

    async fn get_job_states(&self, ids: &[JobId]) -> Result<Vec<JobState>, StoreError> {
        let unique: BTreeSet<&JobId> = ids.iter().collect();
        let keys = unique.into_iter().map(|id| key(items::job_pk(id), items::STATE_SK.into())).collect();
        let found = self.batch_get("get_job_states", &self.tables.ledger, keys).await?;
        found.iter().map(items::job_state_from_item).collect()
    }

    async fn create_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        let item = items::job_state_item(state);
        self.put_conditionally("create_job_state", item, Condition::Create, state.clone(), items::job_state_from_item)
            .await
    }

    async fn update_job_state(&self, state: &JobState) -> Result<JobState, WriteError<JobState>> {
        self.update_versioned(
            "update_job_state",
            state,
            |x| &mut x.version,
            items::job_state_item,
            items::job_state_from_item,
        )
        .await
    }

    async fn due_jobs(&self, now: UnixTime, limit: usize) -> Result<Vec<JobState>, StoreError> {
        let items = self
            .query_all(
                "due_jobs",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .index_name("due")
                        .key_condition_expression("due_shard = :shard AND due_at <= :now")
                        .expression_attribute_values(":shard", s(items::DUE_SHARD))
                        .expression_attribute_values(":now", n(now.0))
                },
                limit,
            )
            .await?;
        let mut due = self
            .read_listed("due_jobs", &items, items::job_state_from_item, |s| s.due_at.is_some_and(|d| d <= now))
            .await?;
        // Read now, a due time may differ from the index's; jobs due at the same moment come in
        // id order, as they do from the in-memory store.
        due.sort_by(|a, b| (a.due_at, &a.job_id).cmp(&(b.due_at, &b.job_id)));
        Ok(due)
    }

    async fn create_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.put_conditionally("create_run", items::run_item(run), Condition::Create, run.clone(), items::run_from_item)
            .await
    }

    async fn get_run(&self, key: &RunKey) -> Result<Option<Run>, StoreError> {
        let item = self.get_ledger_item("get_run", items::job_pk(&key.job_id), items::run_sk(key.window_lo)).await?;
        item.as_ref().map(items::run_from_item).transpose()
    }

    async fn update_run(&self, run: &Run) -> Result<Run, WriteError<Run>> {
        self.update_versioned("update_run", run, |x| &mut x.version, items::run_item, items::run_from_item).await
    }

    async fn active_runs(&self) -> Result<Vec<Run>, StoreError> {
        let items = self
            .query_all(
                "active_runs",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .index_name("active")
                        .key_condition_expression("active_shard = :shard")
                        .expression_attribute_values(":shard", s(items::ACTIVE_SHARD))
                },
                usize::MAX,
            )
            .await?;
        // In the index's order (`active_key`: the run's key).
        self.read_listed("active_runs", &items, items::run_from_item, |r| r.status.is_unfinished()).await
    }

    async fn runs_of_job(&self, id: &JobId, from: UnixTime, limit: usize) -> Result<Vec<Run>, StoreError> {
        let items = self
            .query_all(
                "runs_of_job",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .consistent_read(true)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                        .expression_attribute_values(":pk", s(items::job_pk(id)))
                        .expression_attribute_values(":from", s(items::run_sk(from)))
                        .expression_attribute_values(":to", s("RUN#~"))
                },
                limit,
            )
            .await?;
        collect(&items, items::run_from_item)
    }

    async fn create_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        let item = items::cluster_item(cluster);
        self.put_conditionally("create_cluster", item, Condition::Create, cluster.clone(), items::cluster_from_item)
            .await
    }

    async fn update_cluster(&self, cluster: &Cluster) -> Result<Cluster, WriteError<Cluster>> {
        self.update_versioned(
            "update_cluster",
            cluster,
            |x| &mut x.version,
            items::cluster_item,
            items::cluster_from_item,
        )
        .await
    }

    async fn get_cluster(&self, key: &ClusterKey) -> Result<Option<Cluster>, StoreError> {
        let item = self.get_ledger_item("get_cluster", items::CLUSTER_PK.into(), key.as_str().into()).await?;
        item.as_ref().map(items::cluster_from_item).transpose()
    }

    async fn get_attempt_results(&self, attempts: &[(RunKey, Attempt)]) -> Result<Vec<AttemptResult>, StoreError> {
        let unique: BTreeSet<(String, Attempt)> = attempts.iter().map(|(k, a)| (k.to_string(), *a)).collect();
        let keys = unique
            .into_iter()
            .map(|(run, attempt)| {
                HashMap::from([("run_key".to_string(), s(run)), ("attempt".to_string(), n(attempt.0))])
            })
            .collect();
        let found = self.batch_get("get_attempt_results", &self.tables.results, keys).await?;
        found.iter().map(items::result_from_item).collect()
    }

    async fn put_attempt_result(&self, result: &AttemptResult) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.results)
            .set_item(Some(items::result_item(result)))
            .send()
            .await
            .map_err(|e| classify("put_attempt_result", e))?;
        Ok(())
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>, StoreError> {
        let items = self
            .query_all(
                "list_clusters",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .consistent_read(true)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(items::CLUSTER_PK))
                },
                usize::MAX,
            )
            .await?;
        collect(&items, items::cluster_from_item)
    }
}

/// The grouped ledger's items live in the ledger table beside job states and runs, in index
/// partitions of their own (`items::DUE_SHARDS`, `items::OPEN_GROUPS`), written by the same
/// conditional put; a job's accepted schema is a plain put under the job's partition (`SCHEMA`).
impl GroupStore for DynamoStore {
    async fn create_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        let item = items::shard_item(shard);
        self.put_conditionally("create_shard", item, Condition::Create, shard.clone(), items::shard_from_item).await
    }

    async fn update_shard(&self, shard: &Shard) -> Result<Shard, WriteError<Shard>> {
        self.update_versioned("update_shard", shard, |x| &mut x.version, items::shard_item, items::shard_from_item)
            .await
    }

    async fn get_shard(&self, key: &ShardKey) -> Result<Option<Shard>, StoreError> {
        let item = self.get_ledger_item("get_shard", items::cohort_pk(&key.cohort), items::shard_sk(key.index)).await?;
        item.as_ref().map(items::shard_from_item).transpose()
    }

    async fn shards_of_cohort(&self, cohort: &CohortKey) -> Result<Vec<Shard>, StoreError> {
        let items = self
            .query_all(
                "shards_of_cohort",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .consistent_read(true)
                        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":pk", s(items::cohort_pk(cohort)))
                        .expression_attribute_values(":prefix", s(items::SHARD_SK_PREFIX))
                },
                usize::MAX,
            )
            .await?;
        collect(&items, items::shard_from_item)
    }

    async fn due_shards(&self, now: UnixTime, limit: usize) -> Result<Vec<Shard>, StoreError> {
        let items = self
            .query_all(
                "due_shards",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .index_name("due")
                        .key_condition_expression("due_shard = :shard AND due_at <= :now")
                        .expression_attribute_values(":shard", s(items::DUE_SHARDS))
                        .expression_attribute_values(":now", n(now.0))
                },
                limit,
            )
            .await?;
        let mut due = self
            .read_listed("due_shards", &items, items::shard_from_item, |s| s.due_at.is_some_and(|d| d <= now))
            .await?;
        // The index orders by due time only (and a due time read now may differ from the
        // index's); shards due at the same moment come in key order, as they do from the
        // in-memory store.
        due.sort_by(|a, b| (a.due_at, &a.key).cmp(&(b.due_at, &b.key)));
        Ok(due)
    }

    async fn create_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        let item = items::group_item(group);
        self.put_conditionally("create_group", item, Condition::Create, group.clone(), items::group_from_item).await
    }

    async fn update_group(&self, group: &Group) -> Result<Group, WriteError<Group>> {
        self.update_versioned("update_group", group, |x| &mut x.version, items::group_item, items::group_from_item)
            .await
    }

    async fn get_group(&self, key: &GroupKey) -> Result<Option<Group>, StoreError> {
        let item = self.get_ledger_item("get_group", items::groups_pk(&key.shard), items::group_sk(key.seq)).await?;
        item.as_ref().map(items::group_from_item).transpose()
    }

    async fn open_groups(&self) -> Result<Vec<Group>, StoreError> {
        let items = self
            .query_all(
                "open_groups",
                || {
                    self.client
                        .query()
                        .table_name(&self.tables.ledger)
                        .index_name("active")
                        .key_condition_expression("active_shard = :shard")
                        .expression_attribute_values(":shard", s(items::OPEN_GROUPS))
                },
                usize::MAX,
            )
            .await?;
        // In the index's order (`active_key`: the group's key).
        self.read_listed("open_groups", &items, items::group_from_item, |g| !g.committed).await
    }

    async fn get_group_results(&self, attempts: &[(GroupKey, Attempt)]) -> Result<Vec<GroupResult>, StoreError> {
        let unique: BTreeSet<&(GroupKey, Attempt)> = attempts.iter().collect();
        let keys = unique
            .into_iter()
            .map(|(group, attempt)| {
                HashMap::from([
                    ("run_key".to_string(), s(items::group_result_key(group))),
                    ("attempt".to_string(), n(attempt.0)),
                ])
            })
            .collect();
        let found = self.batch_get("get_group_results", &self.tables.results, keys).await?;
        let mut results = collect(&found, items::group_result_from_item)?;
        // BatchGetItem answers in no particular order; the in-memory store answers in key order.
        results.sort_by(|a, b| (&a.group, a.attempt).cmp(&(&b.group, b.attempt)));
        Ok(results)
    }

    async fn put_group_result(&self, result: &GroupResult) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.results)
            .set_item(Some(items::group_result_item(result)))
            .send()
            .await
            .map_err(|e| classify("put_group_result", e))?;
        Ok(())
    }

    async fn get_schemas(&self, jobs: &[JobId]) -> Result<Vec<(JobId, String)>, StoreError> {
        let unique: BTreeSet<&JobId> = jobs.iter().collect();
        let keys = unique.into_iter().map(|id| key(items::job_pk(id), items::SCHEMA_SK.into())).collect();
        let found = self.batch_get("get_schemas", &self.tables.ledger, keys).await?;
        let mut schemas = collect(&found, items::schema_from_item)?;
        // BatchGetItem answers in no particular order; the in-memory store answers in job order.
        schemas.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(schemas)
    }

    async fn put_schema(&self, job: &JobId, schema_json: &str) -> Result<(), StoreError> {
        // Unconditional: the latest accepted schema wins.
        self.client
            .put_item()
            .table_name(&self.tables.ledger)
            .set_item(Some(items::schema_item(job, schema_json)))
            .send()
            .await
            .map_err(|e| classify("put_schema", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{Validity, Version};

    fn state(id: &str, due_at: Option<i64>, version: u64) -> JobState {
        JobState {
            job_id: JobId::new(id),
            definition_hash: "h".into(),
            validity: Validity::Valid,
            watermark: UnixTime(0),
            next_window_lo: UnixTime(300),
            due_at: due_at.map(UnixTime),
            accepted_schema: None,
            version: Version(version),
        }
    }

    /// What a keys-only `due` index holds of an item: the table's and the index's keys.
    fn index_entry(item: &Item) -> Item {
        item.iter()
            .filter(|(k, _)| ["pk", "sk", "due_shard", "due_at"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn listed_items_are_read_as_they_are_now_in_the_index_order_and_checked_again() {
        let now = UnixTime(1_000);
        // The index listed a, b, c, d (and a twice, as a lagging index might); since then b was
        // deleted, c moved later, and d was updated but is still due.
        let listed: Vec<Item> = [("a", 10), ("b", 20), ("c", 30), ("d", 40), ("a", 10)]
            .into_iter()
            .map(|(id, due)| index_entry(&items::job_state_item(&state(id, Some(due), 1))))
            .collect();
        assert!(listed.iter().all(|e| !e.contains_key("version")), "keys only");
        let keys = listed_keys(&listed).expect("keys");
        assert_eq!(keys.len(), 4, "each key once");
        let found = vec![
            items::job_state_item(&state("d", Some(50), 2)),
            items::job_state_item(&state("c", Some(5_000), 2)),
            items::job_state_item(&state("a", Some(10), 1)),
        ];
        let due = still_listed(&keys, found, items::job_state_from_item, |s| s.due_at.is_some_and(|d| d <= now))
            .expect("read");
        assert_eq!(due, vec![state("a", Some(10), 1), state("d", Some(50), 2)]);
    }

    #[test]
    fn an_index_entry_without_the_table_keys_is_corrupt() {
        let entry = HashMap::from([("due_shard".to_string(), s("due")), ("due_at".to_string(), n(5))]);
        assert!(matches!(listed_keys(&[entry]), Err(StoreError::Corrupt { .. })));
    }
}
