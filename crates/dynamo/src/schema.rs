//! Table definitions, read from `infra/tables.json` (shared with the CDK stack), and their
//! creation for the local world.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The table definitions, as shipped.
pub const TABLES_JSON: &str = include_str!("../../../infra/tables.json");

/// A key attribute.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySpec {
    /// Attribute name.
    pub name: String,
    /// `S` or `N`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// What a global secondary index copies of each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum IndexProjection {
    /// The table's and the index's keys only: an index copy costs one write unit whatever the
    /// item's size, and readers fetch the items by key (what the ledger's indexes do).
    #[serde(rename = "KEYS_ONLY")]
    KeysOnly,
    /// Every attribute: an index copy is billed like a write of the whole item.
    #[serde(rename = "ALL")]
    All,
}

/// A global secondary index.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Index partition key.
    pub partition_key: KeySpec,
    /// Index sort key.
    pub sort_key: Option<KeySpec>,
    /// What the index copies (`KEYS_ONLY` or `ALL`; required, so the file says it).
    pub projection: IndexProjection,
}

/// One table.
#[derive(Debug, Clone, Deserialize)]
pub struct TableSpec {
    /// Partition key.
    pub partition_key: KeySpec,
    /// Sort key, if any.
    pub sort_key: Option<KeySpec>,
    /// Indexes.
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexSpec>,
    /// TTL attribute, if records expire.
    pub time_to_live_attribute: Option<String>,
}

/// Every table by its logical name (`jobs`, `pools`, `ledger`, `results`).
pub fn table_specs() -> BTreeMap<String, TableSpec> {
    let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(TABLES_JSON).expect("infra/tables.json parses");
    raw.into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k, serde_json::from_value(v).expect("infra/tables.json table shape")))
        .collect()
}

/// Physical table names of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Job definitions.
    pub jobs: String,
    /// Pool definitions.
    pub pools: String,
    /// The ledger.
    pub ledger: String,
    /// Attempt results written by the Spark jobs.
    pub results: String,
}

impl TableNames {
    /// Names under a deployment prefix (`norris` → `norris-jobs`, …), so several isolated
    /// deployments can share an account.
    pub fn with_prefix(prefix: &str) -> Self {
        TableNames {
            jobs: format!("{prefix}-jobs"),
            pools: format!("{prefix}-pools"),
            ledger: format!("{prefix}-ledger"),
            results: format!("{prefix}-results"),
        }
    }
}

fn scalar(kind: &str) -> ScalarAttributeType {
    match kind {
        "N" => ScalarAttributeType::N,
        "B" => ScalarAttributeType::B,
        _ => ScalarAttributeType::S,
    }
}

fn projection_type(p: IndexProjection) -> ProjectionType {
    match p {
        IndexProjection::KeysOnly => ProjectionType::KeysOnly,
        IndexProjection::All => ProjectionType::All,
    }
}

fn key_schema(pk: &KeySpec, sk: Option<&KeySpec>) -> Vec<KeySchemaElement> {
    let mut out =
        vec![KeySchemaElement::builder().attribute_name(&pk.name).key_type(KeyType::Hash).build().expect("key")];
    if let Some(sk) = sk {
        out.push(KeySchemaElement::builder().attribute_name(&sk.name).key_type(KeyType::Range).build().expect("key"));
    }
    out
}

/// Errors creating tables.
#[derive(Debug, thiserror::Error)]
#[error("creating table {table}: {message}")]
pub struct CreateTablesError {
    /// The table.
    pub table: String,
    /// What DynamoDB said.
    pub message: String,
}

/// Creates every table under `prefix` that does not exist yet and waits until all are active.
/// Safe to run again: existing tables are left as they are.
pub async fn create_tables(client: &Client, prefix: &str) -> Result<Vec<String>, CreateTablesError> {
    let mut created = Vec::new();
    for (logical, spec) in table_specs() {
        let name = format!("{prefix}-{logical}");
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        let mut note = |k: &KeySpec| {
            attrs.insert(k.name.clone(), k.kind.clone());
        };
        note(&spec.partition_key);
        spec.sort_key.iter().for_each(&mut note);
        for gsi in &spec.global_secondary_indexes {
            note(&gsi.partition_key);
            gsi.sort_key.iter().for_each(&mut note);
        }
        let mut req = client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(&spec.partition_key, spec.sort_key.as_ref())))
            .set_attribute_definitions(Some(
                attrs
                    .iter()
                    .map(|(n, k)| {
                        AttributeDefinition::builder()
                            .attribute_name(n)
                            .attribute_type(scalar(k))
                            .build()
                            .expect("attr")
                    })
                    .collect(),
            ));
        for gsi in &spec.global_secondary_indexes {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&gsi.name)
                    .set_key_schema(Some(key_schema(&gsi.partition_key, gsi.sort_key.as_ref())))
                    .projection(Projection::builder().projection_type(projection_type(gsi.projection)).build())
                    .build()
                    .expect("gsi"),
            );
        }
        match req.send().await {
            Ok(_) => created.push(name.clone()),
            Err(e) => {
                let service = e.into_service_error();
                if !service.is_resource_in_use_exception() {
                    return Err(CreateTablesError { table: name, message: service.to_string() });
                }
            }
        }
        wait_active(client, &name).await?;
        if let Some(attr) = &spec.time_to_live_attribute {
            client
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder().enabled(true).attribute_name(attr).build().expect("ttl"),
                )
                .send()
                .await
                .map_err(|e| CreateTablesError { table: name.clone(), message: e.into_service_error().to_string() })?;
        }
    }
    Ok(created)
}

async fn wait_active(client: &Client, name: &str) -> Result<(), CreateTablesError> {
    let mut delay_ms = 50;
    for _ in 0..40 {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| CreateTablesError { table: name.into(), message: e.into_service_error().to_string() })?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        delay_ms = (delay_ms * 2).min(2_000);
    }
    Err(CreateTablesError { table: name.into(), message: "did not become ACTIVE".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_indexes_copy_keys_only() {
        let specs = table_specs();
        let ledger = &specs["ledger"];
        let indexes: Vec<(&str, IndexProjection)> =
            ledger.global_secondary_indexes.iter().map(|ix| (ix.name.as_str(), ix.projection)).collect();
        assert_eq!(indexes, vec![("due", IndexProjection::KeysOnly), ("active", IndexProjection::KeysOnly)]);
    }
}
