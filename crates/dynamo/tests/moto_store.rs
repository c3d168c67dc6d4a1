//! The DynamoDB adapter against a real DynamoDB API (the moto server of the local world, reached
//! through the standard `AWS_ENDPOINT_URL`): the same conformance suite as the in-memory store,
//! plus what only the wire format can get wrong.

use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType};
use norris_dynamo::{create_tables, DynamoStore, TableNames};
use norris_model::{JobId, JobState, UnixTime, Validity, Version};
use norris_ports::StateStore;
use std::collections::{BTreeSet, HashMap};

async fn fresh_store(name: &str) -> (DynamoStore, aws_sdk_dynamodb::Client) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "these tests need the local world's moto server: run `make test`, or `make up` and `eval \"$(bash tests/local/world.sh env)\"` (AWS_ENDPOINT_URL is {endpoint:?})"
    );
    let client = norris_dynamo::client_from_env().await;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let prefix = format!("t{}-{name}", nanos % 1_000_000_000_000);
    create_tables(&client, &prefix).await.expect("create tables");
    (DynamoStore::new(client.clone(), TableNames::with_prefix(&prefix)), client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_keeps_the_store_contract() {
    let (store, _) = fresh_store("conf").await;
    norris_ports::conformance::run_all(&store, "dyn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_store_keeps_the_group_store_contract() {
    let (store, _) = fresh_store("groups").await;
    norris_ports::conformance::run_groups(&store, "dyn").await;
}

#[tokio::test]
async fn console_style_items_with_wrong_types_read_as_errors_naming_the_field() {
    let (store, client) = fresh_store("console").await;
    let mut doc = norris_ports::conformance::job_document("console-1");
    doc["source"]["primary_key"] = serde_json::json!("id");
    store.put_job_document(&doc).await.expect("put");
    // What a person might do by hand in the console: a string set where a list is expected is
    // fine, a binary attribute is not, and a number typed as a string is named.
    client
        .update_item()
        .table_name(&store.tables().jobs)
        .key("job_id", AttributeValue::S("console-1".into()))
        .update_expression("SET lake_uri = :b, lag_secs = :lag, livy.args = :args")
        .expression_attribute_values(":b", AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0, 1])))
        .expression_attribute_values(":lag", AttributeValue::S("60".into()))
        .expression_attribute_values(":args", AttributeValue::Ss(vec!["--x".into()]))
        .send()
        .await
        .expect("hand edit");
    let records = store.get_job_definitions(&[JobId::new("console-1")]).await.expect("read");
    let err = records[0].parsed.as_ref().expect_err("invalid");
    let problems: HashMap<&str, &str> = err.problems.iter().map(|p| (p.path.as_str(), p.reason.as_str())).collect();
    assert!(problems.get("lake_uri").is_some_and(|r| r.contains("binary")), "{problems:?}");
    assert!(problems.get("lag_secs").is_some_and(|r| r.contains("must be a number, is a string")), "{problems:?}");
    assert!(!problems.contains_key("livy.args"), "a string set reads as a list: {problems:?}");
    assert!(!problems.contains_key("source.primary_key"), "one string is a one-column key: {problems:?}");
}

#[tokio::test]
async fn a_hand_edited_ledger_item_is_reported_as_corrupt_not_a_panic() {
    let (store, client) = fresh_store("corrupt").await;
    client
        .put_item()
        .table_name(&store.tables().ledger)
        .item("pk", AttributeValue::S("JOB#broken".into()))
        .item("sk", AttributeValue::S("STATE".into()))
        .item("job_id", AttributeValue::S("broken".into()))
        .item("validity", AttributeValue::S("valid".into()))
        .send()
        .await
        .expect("put");
    let err = store.get_job_state(&JobId::new("broken")).await.expect_err("corrupt");
    assert!(err.to_string().contains("JOB#broken/STATE"), "{err}");
}

#[tokio::test]
async fn the_ledger_indexes_hold_keys_only_and_the_store_reads_whole_items_by_key() {
    let (store, client) = fresh_store("keys").await;
    let table = client.describe_table().table_name(&store.tables().ledger).send().await.expect("describe");
    let projections: Vec<(String, Option<ProjectionType>)> = table
        .table()
        .expect("table")
        .global_secondary_indexes()
        .iter()
        .map(|ix| {
            (ix.index_name().unwrap_or("").to_string(), ix.projection().and_then(|p| p.projection_type()).cloned())
        })
        .collect();
    assert_eq!(projections.len(), 2, "{projections:?}");
    assert!(projections.iter().all(|(_, p)| p == &Some(ProjectionType::KeysOnly)), "{projections:?}");

    let state = JobState {
        job_id: JobId::new("keys-1"),
        definition_hash: "hash".into(),
        validity: Validity::Valid,
        watermark: UnixTime(1_000),
        next_window_lo: UnixTime(1_300),
        due_at: Some(UnixTime(2_000)),
        accepted_schema: Some(r#"[{"name":"id"}]"#.into()),
        version: Version::INITIAL,
    };
    let state = store.create_job_state(&state).await.expect("create");
    // The index itself answers with keys only (moto honours KEYS_ONLY as DynamoDB does) ...
    let listed = client
        .query()
        .table_name(&store.tables().ledger)
        .index_name("due")
        .key_condition_expression("due_shard = :shard")
        .expression_attribute_values(":shard", AttributeValue::S("due".into()))
        .send()
        .await
        .expect("query");
    let names: Vec<BTreeSet<&str>> =
        listed.items().iter().map(|item| item.keys().map(String::as_str).collect()).collect();
    assert_eq!(names, vec![BTreeSet::from(["pk", "sk", "due_shard", "due_at"])]);
    // ... and the store reads the whole, current item by key.
    assert_eq!(store.due_jobs(UnixTime(2_000), 10).await.expect("due"), vec![state.clone()]);
    let mut later = state.clone();
    later.due_at = Some(UnixTime(9_000));
    store.update_job_state(&later).await.expect("update");
    assert!(store.due_jobs(UnixTime(2_000), 10).await.expect("due").is_empty());
}
