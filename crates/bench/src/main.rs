//! `norris-bench`: norris's benchmarks. They print figures and never assert on time.
//!
//! - `norris-bench scheduler`: the real scheduler tick over the in-memory store and Livy models,
//!   for 100 … 100,000 jobs with 1% due per tick: wall time, where it goes, store operations and
//!   the DynamoDB requests the adapter would send, against the minimum the work needs. The
//!   grouped ledger's tick (what the scheduler Lambda runs) by default; `--ledger runs` measures
//!   the per-window tick, `--ledger both` both.
//! - `norris-bench lambdas`: the four Lambda release binaries: size, start to first handled event,
//!   peak memory, against a fake Lambda Runtime API.
//!
//! - `norris-bench cost`: the grouped ledger's control-plane cost per month for 1,000 jobs on a
//!   5-minute interval, billed item by item with the DynamoDB adapter's own item sizes.
//!
//! Without a subcommand, scheduler and lambdas. `--json` prints one JSON object instead of tables.

mod counting;
mod dynamo_model;
mod grouped_cost;
mod grouped_scheduler;
mod lambdas;
mod scheduler;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "norris-bench",
    about = "norris benchmarks: scheduler tick cost and DynamoDB requests, Lambda binaries"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// One JSON object instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The scheduler tick benchmark.
    Scheduler(SchedulerArgs),
    /// The Lambda binaries' size, start time and memory.
    Lambdas(LambdaArgs),
    /// The grouped ledger's control-plane cost per month.
    Cost(CostArgs),
}

#[derive(Debug, Args)]
struct CostArgs {
    /// Jobs, all on one 5-minute interval.
    #[arg(long, default_value_t = 1000)]
    jobs: u32,
    /// Virtual days ticked (the first hour is left out of the figures).
    #[arg(long, default_value_t = 1.0)]
    days: f64,
}

const DEFAULT_SIZES: [usize; 4] = [100, 1000, 10_000, 100_000];

#[derive(Debug, Args)]
struct SchedulerArgs {
    /// Job counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SIZES)]
    sizes: Vec<usize>,
    /// Measured ticks per size (after 3 warm-up ticks).
    #[arg(long, default_value_t = 9)]
    ticks: usize,
    /// Skip the constant-work series (1,000 rotating jobs among all the others).
    #[arg(long)]
    no_constant_work: bool,
    /// Job counts of the network-wait series (1% due a tick), comma-separated; the flag without
    /// a value for none.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = DEFAULT_NETWORK_WAIT_SIZES)]
    network_wait_sizes: Vec<usize>,
    /// Which ledger's tick: `grouped` (what the scheduler Lambda runs), `runs` (the per-window
    /// tick), or `both`.
    #[arg(long, value_enum, default_value_t = scheduler::LedgerChoice::Grouped)]
    ledger: scheduler::LedgerChoice,
}

const DEFAULT_NETWORK_WAIT_SIZES: [usize; 2] = [10_000, 100_000];

impl Default for SchedulerArgs {
    fn default() -> Self {
        SchedulerArgs {
            sizes: DEFAULT_SIZES.to_vec(),
            ticks: 9,
            no_constant_work: false,
            network_wait_sizes: DEFAULT_NETWORK_WAIT_SIZES.to_vec(),
            ledger: scheduler::LedgerChoice::Grouped,
        }
    }
}

#[derive(Debug, Args)]
struct LambdaArgs {
    /// Where the release binaries are (default: next to this binary, i.e. target/release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Starts per binary.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Where the binaries' AWS requests (DynamoDB, EMR) go.
    #[arg(long, value_enum, default_value_t = lambdas::DynamoTarget::Stub)]
    dynamodb: lambdas::DynamoTarget,
    /// Give up on one start after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

impl Default for LambdaArgs {
    fn default() -> Self {
        LambdaArgs { bin_dir: None, runs: 10, dynamodb: lambdas::DynamoTarget::Stub, timeout_secs: 60 }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduler: Option<scheduler::SchedulerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lambdas: Option<lambdas::LambdaReport>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (sched, lam) = match cli.command {
        None => (Some(SchedulerArgs::default()), Some(LambdaArgs::default())),
        Some(Command::Scheduler(a)) => (Some(a), None),
        Some(Command::Lambdas(a)) => (None, Some(a)),
        Some(Command::Cost(a)) => {
            let runtime = tokio::runtime::Builder::new_current_thread().build()?;
            let args = grouped_cost::CostArgs { jobs: a.jobs, days: a.days };
            let r = runtime.block_on(grouped_cost::measure(args))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                grouped_cost::print(&r);
            }
            return Ok(());
        }
    };
    let mut report = Report { scheduler: None, lambdas: None };
    if let Some(a) = sched {
        eprintln!("norris-bench: scheduler tick");
        let options = scheduler::Options {
            sizes: a.sizes,
            ticks: a.ticks.max(1),
            constant_work: !a.no_constant_work,
            ledger: a.ledger,
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let mut r = runtime.block_on(scheduler::run(&options))?;
        let paused = || tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build();
        for &jobs in a.network_wait_sizes.iter().filter(|_| a.ledger.grouped()) {
            eprintln!("  network wait, grouped, {jobs} jobs");
            r.network_wait.push(paused()?.block_on(grouped_scheduler::network_wait(jobs, options.ticks))?);
        }
        for &jobs in a.network_wait_sizes.iter().filter(|_| a.ledger.runs()) {
            eprintln!("  network wait, per-window, {jobs} jobs");
            r.network_wait.push(paused()?.block_on(scheduler::network_wait(jobs, options.ticks))?);
        }
        if !cli.json {
            print_scheduler(&r);
        }
        report.scheduler = Some(r);
    }
    if let Some(a) = lam {
        eprintln!("norris-bench: Lambda binaries");
        let bin_dir = match a.bin_dir {
            Some(d) => d,
            None => std::env::current_exe()?.parent().map(PathBuf::from).unwrap_or_default(),
        };
        let options = lambdas::Options {
            bin_dir,
            runs: a.runs,
            dynamodb: a.dynamodb,
            timeout: Duration::from_secs(a.timeout_secs),
        };
        let mut r = lambdas::run(&options)?;
        let scheduler_seen =
            r.results.iter().find(|l| l.function == "extraction-scheduler" && !l.aws_requests.is_empty());
        if let Some(seen) = scheduler_seen.map(|l| &l.aws_requests) {
            let model =
                tokio::runtime::Builder::new_current_thread().build()?.block_on(scheduler::empty_world_requests())?;
            let show = |m: &std::collections::BTreeMap<String, u64>| {
                m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            };
            r.translation_check = Some(if *seen == model {
                format!("the stub saw exactly what the translation model predicts for that tick ({})", show(seen))
            } else {
                format!("MISMATCH: the stub saw {}, the translation model predicts {}", show(seen), show(&model))
            });
        }
        if !cli.json {
            print_lambdas(&r);
        }
        report.lambdas = Some(r);
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_scheduler(r: &scheduler::SchedulerReport) {
    if !r.grouped.is_empty() {
        print_grouped(r);
    }
    if !r.results.is_empty() {
        print_per_window(r);
    }
    print_network_wait(r);
}

fn print_per_window(r: &scheduler::SchedulerReport) {
    println!("\n== Per-window scheduler tick (norris_control::scheduler_tick over MemoryStore + MemoryLivy) ==\n");
    println!("Set-up:");
    for line in &r.setup {
        println!("  - {line}");
    }
    println!(
        "  - DynamoDB item sizes assumed for the 1 MB page bound (bytes): job state {}, run {}, cluster {}, job definition {}, pool {}",
        r.item_sizes.job_state, r.item_sizes.run, r.item_sizes.cluster, r.item_sizes.job_definition, r.item_sizes.pool
    );
    println!("\nTime (ms; median of the measured ticks [min-max]):\n");
    println!(
        "{:<14} {:>8} {:>4} {:>17} {:>9} {:>24} {:>8} {:>8} {:>6} {:>8} {:>7} {:>8} {:>8}",
        "series",
        "jobs",
        "clus",
        "due (cut+re)",
        "in-flight",
        "tick",
        "us/due",
        "store",
        "livy",
        "handler",
        "parse",
        "norris",
        "engine"
    );
    for s in &r.results {
        println!(
            "{:<14} {:>8} {:>4} {:>17} {:>9} {:>24} {:>8.1} {:>8.2} {:>6.2} {:>8.2} {:>7.2} {:>8.2} {:>8.3}",
            s.series,
            thousands(s.jobs as u64),
            s.clusters,
            format!("{} ({}+{})", s.due, s.due_with_windows, s.due_relooked),
            s.in_flight,
            format!("{:.2} [{:.2}-{:.2}]", s.tick_ms.median, s.tick_ms.min, s.tick_ms.max),
            s.per_due_job_us,
            s.store_model_ms,
            s.livy_model_ms,
            s.handler_ms,
            s.parse_definitions_ms,
            s.handler_ms + s.parse_definitions_ms,
            s.engine_ms
        );
    }
    println!("  tick: scheduler_tick wall time; us/due: tick / due jobs; store, livy: time inside MemoryStore and MemoryLivy");
    println!(
        "  (the in-memory models, timed by the wrappers); handler = tick - store - livy: norris's handler code and the"
    );
    println!("  engine; parse = DefinitionRecord::job (validate + hash) of the definitions the tick reads: inside 'store' here,");
    println!("  done by the DynamoDB adapter in production; norris = handler + parse: the CPU a tick needs whatever the store;");
    println!(
        "  engine = the pure decisions alone (reconcile_job, cut_windows, follow_run, place_runs, batch_submission,"
    );
    println!("  advance_watermark) over the same inputs. The rest of 'store' is the model: clones, and due_jobs filtering every");
    println!("  job state (MemoryStore has no index; DynamoDB's due index answers in O(result)).");

    println!("\nStore operations per tick (median tick) and the DynamoDB requests the adapter would send:");
    for s in &r.results {
        println!(
            "\n  {} - {} jobs: due {} (with a window {}, re-looked {}), in flight {}, cut/submitted/published/committed {:?}",
            s.series,
            thousands(s.jobs as u64),
            s.due,
            s.due_with_windows,
            s.due_relooked,
            s.in_flight,
            s.cut_submitted_published_committed
        );
        println!(
            "    {:<22} {:<13} {:>7} {:>8} {:>9} {:>9}",
            "operation", "API", "calls", "items", "requests", "model ms"
        );
        for op in &s.ops {
            println!(
                "    {:<22} {:<13} {:>7} {:>8} {:>9} {:>9.3}",
                op.op, op.api, op.calls, op.items, op.requests, op.model_ms
            );
        }
        let by_api: Vec<String> = s.requests_by_api.iter().map(|(a, n)| format!("{a} {n}")).collect();
        println!(
            "    total {} requests ({}); over the measured ticks {}-{}",
            s.requests,
            by_api.join(", "),
            s.requests_range[0],
            s.requests_range[1]
        );
        println!("    minimum for this work: {} requests", s.minimum_requests);
        for l in s.minimum.iter().filter(|l| l.requests > 0) {
            println!("      {:>6} {:<13} {}", l.requests, l.api.name(), l.what);
        }
        println!("    ratio actual/minimum: {:.2}; above the minimum:", s.ratio);
        for e in &s.excess {
            println!("      {:>+6} {}", e.requests, e.what);
        }
    }

    println!("\nGrowth: requests follow the work (due + in flight), not the job count:\n");
    println!(
        "{:<14} {:>8} {:>15} {:>9} {:>9} {:>6} {:>14} {:>11} {:>12}",
        "series", "jobs", "due+in-flight", "requests", "minimum", "ratio", "req/(due+ifl)", "items read", "sweep scans"
    );
    for s in &r.results {
        let work = s.due + s.in_flight;
        println!(
            "{:<14} {:>8} {:>15} {:>9} {:>9} {:>6.2} {:>14.2} {:>11} {:>12}",
            s.series,
            thousands(s.jobs as u64),
            work,
            s.requests,
            s.minimum_requests,
            s.ratio,
            s.requests as f64 / work.max(1) as f64,
            s.items_read,
            s.sweep_scan_requests
        );
    }
    println!(
        "  items read = keys batch-read + items returned by queries + single gets; sweep scans = Scan pages of the"
    );
    println!("  definition sweep, once per sweep interval (15 min) in one tick, not in these steady-state ticks.");

    println!("\nAgainst the targets:");
    if let Some(s) = r.results.iter().find(|s| s.series == "1% due" && s.jobs == 10_000) {
        println!(
            "  - 10,000 jobs, a tick's decisions under 20 ms on one core: norris's CPU (handler + parsing) {:.2} ms ({}); engine alone {:.3} ms; whole tick over the in-memory models {:.2} ms [{:.2}-{:.2}] ({}), of which the models' own work {:.2} ms",
            s.handler_ms + s.parse_definitions_ms,
            if s.handler_ms + s.parse_definitions_ms < 20.0 { "met" } else { "MISSED" },
            s.engine_ms,
            s.tick_ms.median,
            s.tick_ms.min,
            s.tick_ms.max,
            if s.tick_ms.median < 20.0 { "met" } else { "MISSED" },
            s.store_model_ms - s.parse_definitions_ms + s.livy_model_ms
        );
    }
    for s in &r.results {
        println!(
            "  - {} {} jobs: requests {} vs minimum {} = {:.2}x ({})",
            s.series,
            thousands(s.jobs as u64),
            s.requests,
            s.minimum_requests,
            s.ratio,
            if s.ratio <= 1.5 { "within 1.5x" } else { "OVER 1.5x" }
        );
    }
}

fn print_network_wait(r: &scheduler::SchedulerReport) {
    let Some(first) = r.network_wait.first() else { return };
    let l = first.latency;
    println!(
        "\nNetwork wait per tick (tokio's paused clock; assumed round trips: DynamoDB {} ms a request, Livy {} ms a \
         look-up, {} ms a submission, S3 {} ms a spec PUT; {} runs, groups or shards at once):\n",
        l.dynamodb_request_ms, l.livy_call_ms, l.livy_submit_ms, l.s3_put_ms, first.run_concurrency
    );
    println!(
        "{:<8} {:>8} {:>24} {:>10} {:>10} {:>9} {:>22} {:>14}",
        "ledger", "jobs", "cut/sub/pub/committed", "DynamoDB", "Livy", "S3 PUT", "wait s [min-max]", "one by one s"
    );
    for w in &r.network_wait {
        println!(
            "{:<8} {:>8} {:>24} {:>10} {:>10} {:>9} {:>22} {:>14.1}",
            w.ledger,
            thousands(w.jobs as u64),
            format!("{:?}", w.cut_submitted_published_committed),
            w.dynamodb_requests,
            w.livy_calls,
            w.spec_puts,
            format!("{:.2} [{:.2}-{:.2}]", w.wait_secs.median, w.wait_secs.min, w.wait_secs.max),
            w.one_by_one_secs
        );
    }
    println!("  one by one = the same round trips added up, as a tick that made them one after another would wait;");
    println!("  grouped: 'sub' counts group attempts submitted (one Livy batch each), the rest windows.");
}

fn print_grouped(r: &scheduler::SchedulerReport) {
    println!("\n== Grouped scheduler tick (norris_control::grouped::grouped_tick over MemoryStore + MemoryLivy + MemorySpecs) ==\n");
    println!("Set-up:");
    for line in &r.grouped_setup {
        println!("  - {line}");
    }
    println!(
        "  - DynamoDB sizes assumed for the 1 MB page bound (bytes): keys-only index entry {}, shard {}, cluster {}, job definition {}, pool {}",
        r.item_sizes.index_entry, r.item_sizes.shard, r.item_sizes.cluster, r.item_sizes.job_definition, r.item_sizes.pool
    );
    println!("\nTime (ms; median of the measured ticks [min-max]):\n");
    println!(
        "{:<14} {:>8} {:>7} {:>4} {:>15} {:>12} {:>22} {:>8} {:>6} {:>6} {:>8} {:>7} {:>22}",
        "series",
        "jobs",
        "shards",
        "clus",
        "due shards/jobs",
        "open/follow",
        "tick",
        "store",
        "livy",
        "specs",
        "handler",
        "parse",
        "norris"
    );
    for s in &r.grouped {
        println!(
            "{:<14} {:>8} {:>7} {:>4} {:>15} {:>12} {:>22} {:>8.2} {:>6.2} {:>6.2} {:>8.2} {:>7.2} {:>22}",
            s.series,
            thousands(s.jobs as u64),
            s.shards,
            s.clusters,
            format!("{}/{}", s.due_shards, s.due_jobs),
            format!("{}/{}", s.open_groups, s.followed_groups),
            format!("{:.2} [{:.2}-{:.2}]", s.tick_ms.median, s.tick_ms.min, s.tick_ms.max),
            s.store_model_ms,
            s.livy_model_ms,
            s.specs_model_ms,
            s.handler_ms,
            s.parse_definitions_ms,
            format!("{:.2} [{:.2}-{:.2}]", s.norris_ms.median, s.norris_ms.min, s.norris_ms.max),
        );
    }
    println!(
        "  tick: grouped_tick wall time; store, livy, specs: time inside MemoryStore, MemoryLivy, MemorySpecs (the"
    );
    println!("  in-memory models, timed by the wrappers); handler = tick - store - livy - specs: norris's handler code and the");
    println!("  engine; parse = DefinitionRecord::job (validate + hash) of the definitions the tick reads: inside 'store' here,");
    println!("  done by the DynamoDB adapter in production; norris = handler + parse, per tick: the CPU a tick needs whatever");
    println!("  the store (the adapter's item encoding and decoding not included). The rest of 'store' is the model: clones,");
    println!(
        "  and due_shards filtering every shard (MemoryStore has no index; DynamoDB's due index answers in O(result))."
    );

    println!("\nStore operations per tick (median tick), the DynamoDB requests the adapter would send, S3 and Livy:");
    for s in &r.grouped {
        println!(
            "\n  {} - {} jobs in {} shards: due {} shard(s) holding {} jobs, {} open group(s) ({} followed), cut/submitted/published/committed {:?}",
            s.series,
            thousands(s.jobs as u64),
            s.shards,
            s.due_shards,
            s.due_jobs,
            s.open_groups,
            s.followed_groups,
            s.cut_submitted_published_committed
        );
        println!(
            "    {:<22} {:<13} {:>7} {:>8} {:>9} {:>9}",
            "operation", "API", "calls", "items", "requests", "model ms"
        );
        for op in &s.ops {
            println!(
                "    {:<22} {:<13} {:>7} {:>8} {:>9} {:>9.3}",
                op.op, op.api, op.calls, op.items, op.requests, op.model_ms
            );
        }
        let by_api: Vec<String> = s.requests_by_api.iter().map(|(a, n)| format!("{a} {n}")).collect();
        println!(
            "    DynamoDB: {} requests ({}); over the measured ticks {}-{}",
            s.requests,
            by_api.join(", "),
            s.requests_range[0],
            s.requests_range[1]
        );
        let [finds, submits, others] = s.livy_finds_submits_others;
        let [min_puts, min_livy] = s.minimum_spec_puts_and_livy_calls;
        println!(
            "    S3: {} spec PUT(s) (minimum {min_puts}); Livy: {} look-up(s), {} submission(s), {} other (minimum {min_livy} calls)",
            s.spec_puts, finds, submits, others
        );
        println!("    minimum DynamoDB requests for this work: {}", s.minimum_requests);
        for l in s.minimum.iter().filter(|l| l.requests > 0) {
            println!("      {:>6} {:<13} {}", l.requests, l.api.name(), l.what);
        }
        println!(
            "    ratio actual/minimum: {:.2} ({:.2} against a minimum without the followed groups' definitions); above the minimum:",
            s.ratio, s.ratio_without_followed_definitions
        );
        for e in &s.excess {
            println!("      {:>+6} {}", e.requests, e.what);
        }
    }

    println!("\nGrowth: requests follow the due shards and open groups, not the job count:\n");
    println!(
        "{:<14} {:>8} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6} {:>7} {:>6} {:>11} {:>12}",
        "series",
        "jobs",
        "shards",
        "due jobs",
        "open grps",
        "requests",
        "minimum",
        "ratio",
        "S3 PUT",
        "Livy",
        "items read",
        "sweep reqs"
    );
    for s in &r.grouped {
        println!(
            "{:<14} {:>8} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6.2} {:>7} {:>6} {:>11} {:>12}",
            s.series,
            thousands(s.jobs as u64),
            s.shards,
            s.due_jobs,
            s.open_groups,
            s.requests,
            s.minimum_requests,
            s.ratio,
            s.spec_puts,
            s.livy_finds_submits_others.iter().sum::<u64>(),
            s.items_read,
            s.sweep_requests
        );
    }
    println!(
        "  items read = keys batch-read + items returned by queries + single gets; sweep reqs = the definition sweep's"
    );
    println!(
        "  requests (every shard through the due index and by key, a scan of every definition), once per 15 minutes."
    );

    println!("\nAgainst the targets:");
    if let Some(s) = r.grouped.iter().find(|s| s.series == "1% due" && s.jobs == 10_000) {
        println!(
            "  - 10,000 jobs, a tick's decisions under 20 ms on one core: norris's CPU (handler + parsing) {:.2} ms [{:.2}-{:.2}] ({}); whole tick over the in-memory models {:.2} ms [{:.2}-{:.2}] ({})",
            s.norris_ms.median,
            s.norris_ms.min,
            s.norris_ms.max,
            if s.norris_ms.median < 20.0 { "met" } else { "MISSED" },
            s.tick_ms.median,
            s.tick_ms.min,
            s.tick_ms.max,
            if s.tick_ms.median < 20.0 { "met" } else { "MISSED" },
        );
    }
    for s in &r.grouped {
        println!(
            "  - {} {} jobs: DynamoDB requests {} vs minimum {} = {:.2}x ({}; {:.2}x without the followed groups' definitions)",
            s.series,
            thousands(s.jobs as u64),
            s.requests,
            s.minimum_requests,
            s.ratio,
            if s.ratio <= 1.5 { "within 1.5x" } else { "OVER 1.5x" },
            s.ratio_without_followed_definitions
        );
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_lambdas(r: &lambdas::LambdaReport) {
    println!("\n== Lambda binaries ==\n");
    for line in &r.setup {
        println!("  - {line}");
    }
    println!(
        "\n{:<24} {:>11} {:>11} {:>13} {:>20} {:>22} {:>20} {:>18}",
        "function", "binary", "zip", "gzip -9", "init ms", "first event ms", "handler ms", "peak RSS MiB"
    );
    let spread = |s: &scheduler::Spread| format!("{:.1} [{:.1}-{:.1}]", s.median, s.min, s.max);
    for l in &r.results {
        println!(
            "{:<24} {:>11} {:>11} {:>13} {:>20} {:>22} {:>20} {:>18}",
            l.function,
            mib(l.binary_bytes),
            l.zip_bytes.map(mib).unwrap_or_else(|| "not built".into()),
            l.gzip_bytes.map(mib).unwrap_or_else(|| "n/a".into()),
            spread(&l.init_ms),
            spread(&l.first_event_ms),
            spread(&l.handler_ms),
            spread(&l.peak_rss_mib)
        );
    }
    println!("  medians [min-max] over {} start(s) each", r.results.first().map_or(0, |l| l.runs));
    println!("\nWhat the first event did:");
    for l in &r.results {
        println!("  - {}: {}: {}", l.function, l.outcome, l.outcome_body);
        if !l.aws_requests.is_empty() {
            let reqs: Vec<String> = l.aws_requests.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!("    AWS requests seen by the stub: {}", reqs.join(", "));
        }
        println!("    log: {}", l.log);
    }
    if let Some(check) = &r.translation_check {
        println!("  translation check (norris-dynamo's real requests vs this benchmark's model): {check}");
    }
    println!("\nAgainst the targets (zip < 8 MB, first event < 30 ms, peak memory < 64 MB):");
    for l in &r.results {
        let size = l.zip_bytes.or(l.gzip_bytes).unwrap_or(l.binary_bytes);
        let what = if l.zip_bytes.is_some() {
            "zip"
        } else if l.gzip_bytes.is_some() {
            "gzip stand-in"
        } else {
            "binary"
        };
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  - {}: {} {} ({}), first event {:.1} ms ({}), peak {:.1} MiB ({})",
            l.function,
            what,
            mib(size),
            verdict(size < 8_000_000),
            l.first_event_ms.median,
            verdict(l.first_event_ms.median > 0.0 && l.first_event_ms.median < 30.0),
            l.peak_rss_mib.max,
            verdict(l.peak_rss_mib.max > 0.0 && l.peak_rss_mib.max < 64.0)
        );
    }
}
