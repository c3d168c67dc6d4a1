//! `norris demo`: the main job, run locally against the local world. For now: tables, a pool,
//! three jobs (one of them broken on purpose, as a hand edit in the console might leave it), and
//! scheduler ticks; the extraction issue grows this into windows extracted end to end.

use anyhow::{ensure, Result};
use norris_control::{scheduler, SchedulerConfig};
use norris_dynamo::DynamoStore;
use norris_model::{JobId, UnixTime};
use norris_ports::{Clock, StateStore, SystemClock};
use serde_json::{json, Value};

fn job(id: &str, table: &str, start_at: UnixTime) -> Value {
    json!({
        "job_id": id,
        "kind": "batch_extraction",
        "enabled": true,
        "size_class": "small",
        "interval_secs": 300,
        "lag_secs": 60,
        "lookback_secs": 120,
        "start_at": start_at.to_string(),
        "source": {
            "jdbc_url": "jdbc:mysql://127.0.0.1:3306/norris_demo",
            "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:norris/demo-source-AbCdEf",
            "table": table,
            "watermark_column": "updated_at",
            "primary_key": ["id"]
        },
        "lake_uri": format!("file:///tmp/norris-demo/lake/{table}"),
        "livy": {"file": "local:/opt/norris/livy-jobs/extract.py", "driver_memory": "1g"},
        "retry": {"max_attempts": 3, "backoff_base_secs": 30, "backoff_max_secs": 300}
    })
}

/// Runs the demo and prints what happened.
pub async fn run(client: &aws_sdk_dynamodb::Client, store: &DynamoStore, prefix: &str) -> Result<()> {
    norris_dynamo::create_tables(client, prefix).await?;
    println!("tables ready: {:?}", store.tables());
    store
        .put_pool_document(&json!({
            "size_class": "small",
            "emr_release": "emr-7.5.0",
            "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
            "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
            "task": {"instance_types": [{"instance_type": "m7g.2xlarge"}, {"instance_type": "m6g.2xlarge"}],
                "spot_capacity": 2, "spot": {"allocation_strategy": "price-capacity-optimized", "timeout_minutes": 10}},
            "max_age_secs": 86400
        }))
        .await?;
    let now = SystemClock.now();
    let start = now.align_down(300).plus_secs(-3600);
    let mut broken = job("demo.refunds", "refunds", start);
    broken["interval_secs"] = json!("5 minutes");
    broken["source"]["primary_key"] = json!([]);
    for doc in [job("demo.orders", "orders", start), job("demo.customers", "customers", start), broken] {
        store.put_job_document(&doc).await?;
    }
    println!("jobs written: demo.orders, demo.customers, demo.refunds (broken on purpose)\n");

    let config = SchedulerConfig { table_prefix: prefix.into(), definition_sweep_secs: 900, max_due_per_tick: 1000 };
    let livy = norris_livy::LivyClient::new(norris_livy::RetryPolicy::default())?;
    let report = scheduler::scheduler_tick(store, &livy, now, &config).await?;
    println!("scheduler tick at {now}:\n{}\n", serde_json::to_string_pretty(&report)?);
    ensure!(report.failures.is_empty(), "the tick reported failures");

    println!("{:<16} {:<8} {:<44} next due", "job", "status", "windows cut (uncommitted)");
    for id in ["demo.orders", "demo.customers", "demo.refunds"] {
        let id = JobId::new(id);
        let state = store.get_job_state(&id).await?;
        let runs = store.runs_of_job(&id, UnixTime(0), 1000).await?;
        let windows = match (runs.first(), runs.last()) {
            (Some(a), Some(b)) => format!("{} runs, {} .. {}", runs.len(), a.window.lo, b.window.hi),
            _ => "none".to_string(),
        };
        let (status, due) = match &state {
            Some(s) => (
                match s.validity {
                    norris_model::Validity::Valid => "valid",
                    norris_model::Validity::Invalid { .. } => "invalid",
                    norris_model::Validity::Quarantined { .. } => "quarantined",
                },
                s.due_at.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            ),
            None => ("missing", "-".into()),
        };
        println!("{:<16} {:<8} {:<44} {}", id, status, windows, due);
    }
    Ok(())
}
