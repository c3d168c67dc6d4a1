//! What DynamoDB bills for the grouped ledger's items, from the adapter's own item layout: the
//! benchmarks measure the control plane's cost with it rather than with guessed sizes.

use crate::items;
use norris_model::{Group, GroupResult, JobId, Shard};

/// Bytes of a shard item as stored (what a strongly consistent read of it by key reads).
pub fn shard_bytes(shard: &Shard) -> usize {
    items::item_size(&items::shard_item(shard))
}

/// Bytes of a shard's entry in the `due` index, which copies keys only (`infra/tables.json`):
/// what writing the entry is billed by (one write unit). `None` when the shard has no due time.
pub fn shard_index_entry_bytes(shard: &Shard) -> Option<usize> {
    index_entry_bytes(&items::shard_item(shard), ["due_shard", "due_at"])
}

/// Bytes of a group item as stored (what a strongly consistent read of it by key reads).
pub fn group_bytes(group: &Group) -> usize {
    items::item_size(&items::group_item(group))
}

/// Bytes of an open group's entry in the `active` index, which copies keys only: what writing
/// the entry is billed by (one write unit). `None` once the group is committed.
pub fn group_index_entry_bytes(group: &Group) -> Option<usize> {
    index_entry_bytes(&items::group_item(group), ["active_shard", "active_key"])
}

/// The size of a keys-only index entry: the table's keys and the index's, if the item has them.
fn index_entry_bytes(item: &items::Item, index_keys: [&str; 2]) -> Option<usize> {
    index_keys.iter().all(|k| item.contains_key(*k)).then(|| {
        let entry: items::Item = item
            .iter()
            .filter(|(k, _)| ["pk", "sk"].contains(&k.as_str()) || index_keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        items::item_size(&entry)
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{
        Attempt, CohortKey, GroupKey, GroupStatus, ShardJob, ShardKey, SizeClass, UnixTime, Validity, Version,
        SHARD_MAX_JOBS,
    };

    #[test]
    fn a_keys_only_index_entry_is_one_write_unit_whatever_the_item() {
        let key = ShardKey {
            cohort: CohortKey { size_class: SizeClass::new("small"), interval_secs: 300, phase_secs: 60 },
            index: 0,
        };
        let job = ShardJob {
            definition_hash: "d".repeat(32),
            validity: Validity::Valid,
            watermark: UnixTime(1_795_305_600),
            next_window_lo: UnixTime(1_795_305_900),
            schema_hash: Some("s".repeat(32)),
        };
        let mut shard = Shard {
            key: key.clone(),
            jobs: (0..SHARD_MAX_JOBS).map(|i| (JobId::new(format!("shop.table-{i:04}")), job.clone())).collect(),
            cut_seq: 7,
            due_at: Some(UnixTime(1_795_306_200)),
            version: Version(3),
        };
        assert!(write_units(shard_bytes(&shard)) > 20, "{} bytes", shard_bytes(&shard));
        assert_eq!(shard_index_entry_bytes(&shard).map(write_units), Some(1));
        shard.due_at = None;
        assert_eq!(shard_index_entry_bytes(&shard), None, "not in the index");

        let mut group = Group {
            key: GroupKey { shard: key, seq: 8 },
            members: Vec::new(),
            attempt: Attempt(1),
            status: GroupStatus::Pending { not_before: UnixTime(1_795_306_200) },
            created_at: UnixTime(1_795_306_200),
            updated_at: UnixTime(1_795_306_200),
            last_outcome: None,
            committed: false,
            version: Version(1),
        };
        assert_eq!(group_index_entry_bytes(&group).map(write_units), Some(1));
        group.committed = true;
        assert_eq!(group_index_entry_bytes(&group), None, "committed groups leave the index");
    }
}
