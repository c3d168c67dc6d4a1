//! What DynamoDB bills for the grouped ledger's items, from the adapter's own item layout: the
//! benchmarks measure the control plane's cost with it rather than with guessed sizes.

use crate::items;
use norris_model::{Group, GroupResult, JobId, Shard};

/// Bytes of a shard item as stored (and as copied into the `due` index, which projects it all).
pub fn shard_bytes(shard: &Shard) -> usize {
    items::item_size(&items::shard_item(shard))
}

/// Bytes of a group item as stored (and as copied into the `active` index while it is open).
pub fn group_bytes(group: &Group) -> usize {
    items::item_size(&items::group_item(group))
}

/// Bytes of a group attempt's result item (written by the Spark application).
pub fn group_result_bytes(result: &GroupResult) -> usize {
    items::item_size(&items::group_result_item(result))
}

/// Bytes of a job's accepted-schema item.
pub fn schema_bytes(job: &JobId, schema_json: &str) -> usize {
    items::item_size(&items::schema_item(job, schema_json))
}

/// Write units of an item of `bytes`: one per KB, rounded up.
pub fn write_units(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

/// Read units of a strongly consistent read of `bytes` (one per 4 KB, rounded up); an eventually
/// consistent read costs half.
pub fn read_units(bytes: usize) -> u64 {
    bytes.div_ceil(4096).max(1) as u64
}
