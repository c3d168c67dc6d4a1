//! What the operator reads of the grouped ledger (the one the scheduler Lambda keeps): jobs with
//! their shard lines, a job's windows in its shard's groups, the open groups.

use anyhow::{Context, Result};
use norris_control::follow::at_once;
use norris_dynamo::DynamoStore;
use norris_model::{
    Group, GroupKey, GroupStatus, JobDefinition, JobId, JobState, MemberState, Shard, ShardJob, UnixTime, Validity,
};
use norris_ports::{GroupStore, StateStore};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every shard: each is in the due index whatever its state, so one read finds every job's line.
async fn all_shards(store: &DynamoStore) -> Result<Vec<Shard>> {
    Ok(store.due_shards(UnixTime(i64::MAX), usize::MAX).await?)
}

/// Where each job's line is (a job moving between cohorts has two for a while: the one in its
/// definition's cohort comes first).
fn lines_by_job(shards: &[Shard]) -> BTreeMap<&JobId, Vec<(&Shard, &ShardJob)>> {
    let mut lines: BTreeMap<&JobId, Vec<(&Shard, &ShardJob)>> = BTreeMap::new();
    for shard in shards {
        for (id, line) in &shard.jobs {
            lines.entry(id).or_default().push((shard, line));
        }
    }
    lines
}

/// `norris jobs list`: each definition with its line's verdict, watermark and when its shard is
/// next due.
pub async fn list_jobs(store: &DynamoStore) -> Result<()> {
    let shards = all_shards(store).await?;
    let lines = lines_by_job(&shards);
    println!("{:<28} {:<12} {:<22} {:<22} {:<18} problems", "job", "status", "watermark", "next due", "shard");
    for record in store.scan_job_definitions().await? {
        let id = JobId::new(&record.key);
        let Some((shard, line)) = lines.get(&id).and_then(|l| l.first()) else {
            // A definition that does not parse has no cohort, so no line until it is fixed.
            let (status, why) = match &record.parsed {
                Err(e) => ("invalid", e.to_string()),
                Ok(_) => ("unplaced", "not in a shard yet (the next definition sweep places it)".into()),
            };
            println!("{:<28} {:<12} {:<22} {:<22} {:<18} {why}", record.key, status, "-", "-", "-");
            continue;
        };
        let status = match (&line.validity, &record.parsed) {
            (Validity::Invalid { .. }, _) => "invalid",
            (Validity::Quarantined { .. }, _) => "quarantined",
            (Validity::Valid, Ok(d)) if !d.enabled => "disabled",
            (Validity::Valid, _) => "valid",
        };
        let problems = match &line.validity {
            Validity::Invalid { problems } => problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            Validity::Quarantined { reason } => reason.clone(),
            Validity::Valid => String::new(),
        };
        let watermark =
            if line.next_window_lo == JobState::NOT_STARTED { "-".to_string() } else { line.watermark.to_string() };
        let due = shard.due_at.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{:<28} {:<12} {:<22} {:<22} {:<18} {problems}",
            record.key,
            status,
            watermark,
            due,
            shard.key.to_string()
        );
    }
    Ok(())
}

/// `norris windows list JOB`: the job's windows in the last `groups` groups of its shards, oldest
/// first. A window's output prefix is worked out from the job's current definition.
pub async fn list_windows(store: &DynamoStore, job: &str, from: i64, groups: u64, as_json: bool) -> Result<()> {
    let id = JobId::new(job);
    let shards = all_shards(store).await?;
    let lines = lines_by_job(&shards);
    let Some(homes) = lines.get(&id) else { anyhow::bail!("job {job} is in no shard (`norris jobs list` tells why)") };
    let definition: Option<JobDefinition> =
        store.get_job_definitions(std::slice::from_ref(&id)).await?.pop().and_then(|r| r.parsed.ok());
    let lake_uri = definition.as_ref().and_then(|d| d.extraction()).map(|e| e.lake_uri.clone());
    let keys: Vec<(GroupKey, UnixTime)> = homes
        .iter()
        .flat_map(|(shard, line)| {
            let first = shard.cut_seq.saturating_sub(groups) + 1;
            (first..=shard.cut_seq).map(|seq| (GroupKey { shard: shard.key.clone(), seq }, line.watermark))
        })
        .collect();
    let read = at_once(keys.iter().map(|(key, _)| store.get_group(key))).await;
    let mut rows: Vec<(UnixTime, Value)> = Vec::new();
    for ((key, watermark), group) in keys.iter().zip(read) {
        let Some(group) = group.with_context(|| format!("reading group {key}"))? else { continue };
        for m in group.members.iter().filter(|m| m.job_id == id && m.window.lo.0 >= from) {
            rows.push((m.window.lo, window_row(&group, m, *watermark, lake_uri.as_deref())));
        }
    }
    rows.sort_by_key(|(lo, _)| *lo);
    for (_, row) in rows {
        if as_json {
            println!("{row}");
        } else {
            println!(
                "{:<24} {:<12} {:<24} a{:<3} {:<11} {:>7} {}",
                job,
                row["window_lo"],
                row["group"].as_str().unwrap_or_default(),
                row["attempt"],
                row["status"].as_str().unwrap_or_default(),
                row["rows"],
                row["reason"].as_str().unwrap_or_default(),
            );
        }
    }
    Ok(())
}

/// One window as `windows list --json` prints it.
fn window_row(group: &Group, m: &norris_model::Member, watermark: UnixTime, lake_uri: Option<&str>) -> Value {
    let (status, attempt, rows, reason) = match &m.state {
        MemberState::Published { attempt, rows } => ("published", *attempt, *rows, ""),
        MemberState::Failed { reason } => ("failed", group.attempt, 0, reason.as_str()),
        MemberState::Quarantined { reason } => ("quarantined", group.attempt, 0, reason.as_str()),
        MemberState::ToDo => (status_name(&group.status), group.attempt, 0, ""),
    };
    let prefix = match (&m.state, lake_uri) {
        (MemberState::Published { .. }, Some(uri)) => norris_engine::runs::window_prefix(uri, m.window.lo, attempt),
        _ => String::new(),
    };
    json!({
        "job_id": m.job_id.as_str(), "window_lo": m.window.lo.0, "window_hi": m.window.hi.0,
        "group": group.key.to_string(), "attempt": attempt.0, "failures": m.failures, "status": status,
        "committed": m.window.hi <= watermark, "published_prefix": prefix, "rows": rows, "reason": reason,
    })
}

/// A group's status as listed: a placed attempt is followed in Livy by its batch name, and the
/// ledger is not rewritten when it starts running, so both placed states read `placed`.
fn status_name(status: &GroupStatus) -> &'static str {
    match status {
        GroupStatus::Pending { .. } => "pending",
        GroupStatus::Submitting { .. } | GroupStatus::Running { .. } => "placed",
        GroupStatus::Settled { .. } => "settled",
    }
}

/// `norris groups list`: the open groups (not yet committed), where their attempt is and what is
/// left in them.
pub async fn list_groups(store: &DynamoStore, as_json: bool) -> Result<()> {
    for g in store.open_groups().await? {
        let count = |f: fn(&MemberState) -> bool| g.members.iter().filter(|m| f(&m.state)).count();
        let row = json!({
            "group": g.key.to_string(), "attempt": g.attempt.0, "status": status_name(&g.status),
            "cluster": g.status.cluster().map(ToString::to_string),
            "batch_name": g.status.cluster().map(|_| norris_engine::groups::group_batch_name(&g)),
            "members": g.members.len(),
            "to_do": count(|s| matches!(s, MemberState::ToDo)),
            "published": count(|s| matches!(s, MemberState::Published { .. })),
            "failed": count(|s| matches!(s, MemberState::Failed { .. } | MemberState::Quarantined { .. })),
            "jobs": g.members.iter().map(|m| format!("{}@{}", m.job_id, m.window.lo.0)).collect::<Vec<_>>(),
        });
        if as_json {
            println!("{row}");
        } else {
            println!(
                "{:<24} a{:<3} {:<11} {:<20} {} windows: {} to do, {} published, {} failed",
                row["group"].as_str().unwrap_or_default(),
                g.attempt.0,
                row["status"].as_str().unwrap_or_default(),
                row["cluster"].as_str().unwrap_or("-"),
                g.members.len(),
                row["to_do"],
                row["published"],
                row["failed"],
            );
        }
    }
    Ok(())
}
