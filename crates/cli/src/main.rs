//! `norris`: the operator's command. Tables, job and pool definitions, one-off scheduler ticks and
//! lifecycle passes, what the ledger holds, and the simulator. It talks to DynamoDB through the
//! standard AWS environment (`AWS_ENDPOINT_URL` points it at the local world's moto server).

mod ledger;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use norris_control::{grouped, SchedulerConfig};
use norris_dynamo::{DynamoStore, TableNames};
use norris_model::{JobDefinition, JobId, PoolDefinition};
use norris_ports::{Clock, GroupStore, StateStore, SystemClock};
use serde_json::Value;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "norris", about = "Operate norris: definitions, ticks, the local demo")]
struct Cli {
    /// Deployment prefix of the DynamoDB tables.
    #[arg(long, env = "NORRIS_TABLE_PREFIX", default_value = "norris", global = true)]
    table_prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The deterministic simulator: the scheduler handler over in-memory DynamoDB and Livy models
    /// with faults, every promise checked after every invocation (no AWS needed).
    Sim(SimArgs),
    /// DynamoDB tables.
    Tables {
        #[command(subcommand)]
        command: TablesCommand,
    },
    /// Job definitions.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Pool definitions.
    Pools {
        #[command(subcommand)]
        command: PoolsCommand,
    },
    /// Runs one scheduler tick now (the grouped ledger's, as the scheduler Lambda runs it) and
    /// prints its report. Group specs go where `NORRIS_SPEC_URI` says (default `file://.norris/specs`).
    Tick,
    /// Runs one pass of the cluster health watcher now (what its periodic sweep does) and prints
    /// its report. Needs `NORRIS_DEPLOYMENT` and the `NORRIS_EMR_*` launch settings.
    Watch,
    /// Runs one pass of the rotation handler now (rotation, scale-down, terminations, orphans).
    Rotate,
    /// A job's windows, from the groups of its shard (the grouped ledger the Lambdas keep).
    Windows {
        #[command(subcommand)]
        command: WindowsCommand,
    },
    /// Runs of the per-window ledger (one item per job and window; `norris tick` and the
    /// Lambdas now keep the grouped ledger: see `windows` and `groups`).
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Groups of the grouped ledger (a shard's windows cut by one tick, run as one batch).
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Cluster records.
    Clusters {
        #[command(subcommand)]
        command: ClustersCommand,
    },
}

#[derive(Subcommand)]
enum TablesCommand {
    /// Creates the tables from infra/tables.json (existing ones are left alone).
    Create,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Validates job definition files and writes them, then runs the definition sweep so each job
    /// is in its shard, and due, at once.
    Put {
        /// JSON files, one definition each.
        files: Vec<PathBuf>,
        /// Write even if invalid (the control plane will then mark it invalid).
        #[arg(long)]
        force: bool,
    },
    /// Lists jobs with their state.
    List,
}

#[derive(Subcommand)]
enum WindowsCommand {
    /// Lists a job's windows in its shard's recent groups, oldest first.
    List {
        /// The job.
        job: String,
        /// First window start to list (Unix seconds).
        #[arg(long, default_value_t = 0)]
        from: i64,
        /// How many of the shard's most recent groups to read (288: a day of 5-minute ticks).
        #[arg(long, default_value_t = 288)]
        groups: u64,
        /// One JSON object per line instead of a table (for programs: the demo's lake reader).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// Lists a job's runs from its first window on, or from `--from` (Unix seconds).
    List {
        /// The job.
        job: String,
        /// First window start to list.
        #[arg(long, default_value_t = 0)]
        from: i64,
        /// One JSON object per line instead of a table (for programs: the demo's lake reader).
        #[arg(long)]
        json: bool,
    },
    /// Retries a failed run with a new attempt (after the cause is fixed).
    Retry {
        /// The job.
        job: String,
        /// The run's window start (Unix seconds).
        window_lo: i64,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// Lists the open groups (not yet committed): attempt, status, cluster, windows left.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lists the windows of open groups that failed every attempt or were quarantined: what an
    /// operator retries once the cause is fixed.
    Failed,
    /// Retries a failed or quarantined window in a new attempt of its group.
    Retry {
        /// The group (`<size class>/<interval>/<phase>/<index>/<seq>`, as `groups failed` prints it).
        group: String,
        /// The job.
        job: String,
        /// The window's start (Unix seconds).
        window_lo: i64,
    },
}

#[derive(Subcommand)]
enum ClustersCommand {
    /// Records a running cluster as ready for work (a cluster norris did not launch itself, or the
    /// local world's stand-in cluster).
    Register {
        /// norris's key for it.
        #[arg(long)]
        key: String,
        /// Its size class.
        #[arg(long)]
        size_class: String,
        /// Livy's base URL.
        #[arg(long)]
        livy: String,
        /// EMR cluster id, if any.
        #[arg(long)]
        emr_cluster_id: Option<String>,
    },
    /// Lists cluster records.
    List,
}

#[derive(Subcommand)]
enum PoolsCommand {
    /// Validates pool definition files and writes them.
    Put {
        /// JSON files, one definition each.
        files: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::Sim(args) = &cli.command {
        // The handlers' logs of injected faults would drown the report: the trace tells the story.
        return simulate(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let client = norris_dynamo::client_from_env().await;
    let store = DynamoStore::new(client.clone(), TableNames::with_prefix(&cli.table_prefix));
    match cli.command {
        Command::Tables { command: TablesCommand::Create } => {
            let created = norris_dynamo::create_tables(&client, &cli.table_prefix).await?;
            println!("tables ready under prefix {:?} (created now: {})", cli.table_prefix, created.len());
        }
        Command::Jobs { command: JobsCommand::Put { files, force } } => put_jobs(&store, &files, force).await?,
        Command::Jobs { command: JobsCommand::List } => ledger::list_jobs(&store).await?,
        Command::Pools { command: PoolsCommand::Put { files } } => {
            for file in &files {
                let doc = read_json(file)?;
                if let Err(e) = PoolDefinition::from_document(&doc) {
                    bail!("{}: {e}", file.display());
                }
                store.put_pool_document(&doc).await?;
                println!("pool {} written", doc["size_class"].as_str().unwrap_or("?"));
            }
        }
        Command::Tick => {
            let config = SchedulerConfig { table_prefix: cli.table_prefix.clone(), ..scheduler_defaults()? };
            let livy = norris_livy::LivyClient::new(norris_livy::RetryPolicy::default())?;
            let specs = CliSpecs::from_env().await?;
            let report = grouped::grouped_tick(&store, &livy, &specs, SystemClock.now(), &config).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Windows { command: WindowsCommand::List { job, from, groups, json } } => {
            ledger::list_windows(&store, &job, from, groups, json).await?
        }
        Command::Groups { command: GroupsCommand::List { json } } => ledger::list_groups(&store, json).await?,
        Command::Watch | Command::Rotate => {
            let env: std::collections::HashMap<String, String> =
                std::env::vars().chain([("NORRIS_TABLE_PREFIX".to_string(), cli.table_prefix.clone())]).collect();
            let config = norris_control::clusters::LifecycleConfig::from_env_map(&env)?;
            let emr = norris_emr::EmrClient::from_env().await?;
            let livy = norris_livy::LivyClient::new(norris_livy::RetryPolicy::default())?;
            let now = SystemClock.now();
            let specs = CliSpecs::from_env().await?;
            let report = match cli.command {
                Command::Watch => {
                    norris_control::clusters::watch(&store, &emr, &livy, &specs, None, now, &config).await?
                }
                _ => norris_control::clusters::rotate(&store, &emr, &livy, &specs, now, &config).await?,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Clusters { command: ClustersCommand::Register { key, size_class, livy, emr_cluster_id } } => {
            let now = SystemClock.now();
            let cluster = norris_model::Cluster {
                key: norris_model::ClusterKey::new(key),
                size_class: norris_model::SizeClass::new(size_class),
                generation: 1,
                emr_cluster_id,
                livy_endpoint: Some(livy),
                state: norris_model::ClusterState::Ready,
                created_at: now,
                ready_at: Some(now),
                rotate_after: now.plus_secs(86_400),
                version: norris_model::Version::INITIAL,
            };
            match store.create_cluster(&cluster).await {
                Ok(c) => println!("cluster {} registered (ready, {})", c.key, c.livy_endpoint.unwrap_or_default()),
                Err(e) => bail!("cluster {} not registered: {e}", cluster.key),
            }
        }
        Command::Runs { command: RunsCommand::List { job, from, json } } => {
            let runs = store.runs_of_job(&JobId::new(&job), norris_model::UnixTime(from), usize::MAX).await?;
            for run in runs {
                let (prefix, rows) = match &run.status {
                    norris_model::RunStatus::Published { prefix, rows, .. } => (prefix.clone(), *rows),
                    _ => (String::new(), 0),
                };
                if json {
                    let line = serde_json::json!({
                        "job_id": run.job_id.as_str(), "window_lo": run.window.lo.0, "window_hi": run.window.hi.0,
                        "attempt": run.attempt.0, "failures": run.failures, "status": run.status.name(),
                        "published_prefix": prefix, "rows": rows,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{:<24} {:<22} a{:<3} {:<11} {:>7} {}",
                        run.job_id,
                        run.window.lo.to_string(),
                        run.attempt.0,
                        run.status.name(),
                        rows,
                        run.last_outcome.map(|o| o.summary).unwrap_or_default()
                    );
                }
            }
        }
        Command::Runs { command: RunsCommand::Retry { job, window_lo } } => {
            let key = norris_model::RunKey { job_id: JobId::new(job), window_lo: norris_model::UnixTime(window_lo) };
            let run = norris_control::follow::retry_failed_run(&store, SystemClock.now(), &key).await?;
            println!("run {} is pending again as attempt {}", run.key(), run.attempt);
        }
        Command::Groups { command: GroupsCommand::Failed } => {
            for group in store.open_groups().await? {
                for m in &group.members {
                    let (state, reason) = match &m.state {
                        norris_model::MemberState::Failed { reason } => ("failed", reason),
                        norris_model::MemberState::Quarantined { reason } => ("quarantined", reason),
                        _ => continue,
                    };
                    println!("{:<28} {:<28} {:>12} {:<12} {}", group.key, m.job_id, m.window.lo.0, state, reason);
                }
            }
        }
        Command::Groups { command: GroupsCommand::Retry { group, job, window_lo } } => {
            let Some(key) = norris_model::GroupKey::parse(&group) else {
                bail!("{group:?} is not a group key: <size class>/<interval>/<phase>/<index>/<seq>")
            };
            let lo = norris_model::UnixTime(window_lo);
            let retried =
                norris_control::grouped::retry_failed_member(&store, SystemClock.now(), &key, &JobId::new(&job), lo)
                    .await?;
            println!("window {job}@{window_lo} is to do again in group {} attempt {}", retried.key, retried.attempt);
        }
        Command::Clusters { command: ClustersCommand::List } => {
            for c in store.list_clusters().await? {
                println!(
                    "{:<24} {:<10} {:<12} {:<16} {}",
                    c.key,
                    c.size_class,
                    c.state.name(),
                    c.emr_cluster_id.unwrap_or_default(),
                    c.livy_endpoint.unwrap_or_default()
                );
            }
        }
        Command::Sim { .. } => unreachable!("handled before the AWS client is built"),
    }
    Ok(())
}

/// Scheduler settings from the environment, with the table prefix filled in by the CLI.
fn scheduler_defaults() -> Result<SchedulerConfig> {
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.entry("NORRIS_TABLE_PREFIX".into()).or_insert_with(|| "norris".into());
    Ok(SchedulerConfig::from_env_map(&env)?)
}

fn read_json(file: &PathBuf) -> Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))
}

async fn put_jobs(store: &DynamoStore, files: &[PathBuf], force: bool) -> Result<()> {
    let docs: Vec<(PathBuf, Value)> =
        files.iter().map(|f| read_json(f).map(|d| (f.clone(), d))).collect::<Result<_>>()?;
    let mut refused = Vec::new();
    for (file, doc) in &docs {
        if let Err(e) = JobDefinition::from_document(doc) {
            refused.push(format!("{}: {e}", file.display()));
        }
    }
    if !refused.is_empty() && !force {
        bail!("nothing written; fix these (or pass --force):\n  {}", refused.join("\n  "));
    }
    let mut written = Vec::new();
    for (_, doc) in &docs {
        store.put_job_document(doc).await?;
        let id = doc.get("job_id").and_then(Value::as_str).unwrap_or_default().to_string();
        println!("job {id} written");
        written.push(id);
    }
    // Placed now rather than at the next periodic sweep; a job the sweep could not place this
    // time (its shard changed meanwhile) is placed by the next one, and said so.
    let report = grouped::sweep_now(store, SystemClock.now()).await?;
    let unplaced: Vec<String> = report
        .failures
        .iter()
        .filter(|f| written.contains(&f.job_id))
        .map(|f| format!("{}: {}", f.job_id, f.error))
        .collect();
    if !unplaced.is_empty() {
        bail!("written, but not yet in a shard:\n  {}", unplaced.join("\n  "));
    }
    Ok(())
}

/// Where a tick or a lifecycle pass run from here writes the specs of the groups it places:
/// `NORRIS_SPEC_URI` as the Lambdas read it (`s3://…`), or `file://<dir>` for the local world,
/// where the Livy stand-in's spark-submit reads files (the default, `file://.norris/specs`).
enum CliSpecs {
    S3(norris_s3::S3Specs),
    Files(norris_ports::FileSpecs),
}

impl CliSpecs {
    async fn from_env() -> Result<CliSpecs> {
        let uri = std::env::var(norris_s3::SPEC_URI_VAR).unwrap_or_else(|_| "file://.norris/specs".into());
        match uri.strip_prefix("file://") {
            Some(dir) => Ok(CliSpecs::Files(norris_ports::FileSpecs::new(dir))),
            None => Ok(CliSpecs::S3(norris_s3::S3Specs::from_uri(norris_s3::client_from_env().await, &uri)?)),
        }
    }
}

impl norris_ports::SpecStore for CliSpecs {
    async fn put_spec(&self, name: &str, spec: &Value) -> Result<String, norris_ports::SpecError> {
        match self {
            CliSpecs::S3(s3) => s3.put_spec(name, spec).await,
            CliSpecs::Files(files) => files.put_spec(name, spec).await,
        }
    }
}

/// What `norris sim` was asked.
#[derive(Args)]
struct SimArgs {
    /// First seed (a seed replays a run exactly).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Virtual days of faults (then two hours to converge).
    #[arg(long, default_value_t = 1.0)]
    days: f64,
    /// Jobs on a 5-minute interval.
    #[arg(long, default_value_t = 10)]
    jobs: u32,
    /// Ready clusters.
    #[arg(long, default_value_t = 2)]
    clusters: u32,
    /// One JSON object per seed, a key per strategy, instead of a summary.
    #[arg(long)]
    json: bool,
    /// Also write an HTML report with plots (of the first seed) here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Only norris's strategy (no baselines): what the CI sweep runs.
    #[arg(long, conflicts_with = "strategies")]
    norris_only: bool,
    /// The strategies to run, comma-separated (norris, baseline, on_demand_only; default all).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<String>,
    /// The fault mix: `harsh` (finds bugs; the default) or `realistic` (for comparing figures).
    #[arg(long, default_value = "harsh")]
    faults: String,
    /// Cluster-ending spot interruptions per cluster per 30 days (default: the harsh test mix).
    #[arg(long, conflicts_with = "spot_band")]
    spot_per_month: Option<f64>,
    /// Spot interruption band, per cent of instances reclaimed per month (5, 10, 15, 20): sets
    /// the cluster-loss rate from the cluster's spot nodes.
    #[arg(long)]
    spot_band: Option<f64>,
    /// Threads (default: every core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Also write every seed's reports (a key per strategy) as one JSON array here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The ledger the scheduler keeps: `grouped` (shards and groups, what the Lambdas run) or
    /// `runs` (the per-window ledger).
    #[arg(long, default_value = "grouped")]
    ledger: String,
}

impl SimArgs {
    /// The strategies asked for.
    fn strategies(&self) -> Result<Vec<norris_sim::Strategy>> {
        if self.norris_only {
            return Ok(vec![norris_sim::Strategy::Norris]);
        }
        if self.strategies.is_empty() {
            return Ok(norris_sim::Strategy::ALL.to_vec());
        }
        self.strategies
            .iter()
            .map(|k| norris_sim::Strategy::from_key(k).with_context(|| format!("no strategy named {k:?}")))
            .collect()
    }

    /// The fault mix asked for, with the spot rate from the band or the rate.
    fn faults(&self) -> Result<norris_sim::Faults> {
        let mut faults = match self.faults.as_str() {
            "harsh" => norris_sim::Faults::default_mix(),
            "realistic" => norris_sim::Faults::realistic(),
            other => bail!("--faults must be harsh or realistic, not {other:?}"),
        };
        if let Some(rate) = self.spot_band.map(norris_sim::spot_losses_per_month).or(self.spot_per_month) {
            faults.spot_interruptions_per_month = rate;
        }
        Ok(faults)
    }
}

/// Runs `seeds` simulations from `seed`, each strategy on the same fault trace; fails when any
/// promise was broken, after printing the seed, the violations and the trace.
fn simulate(args: &SimArgs) -> Result<()> {
    let (strategies, faults) = (args.strategies()?, args.faults()?);
    let ledger = norris_sim::Ledger::from_key(&args.ledger)
        .with_context(|| format!("--ledger must be runs or grouped, not {:?}", args.ledger))?;
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut broken = Vec::new();
    let mut aggregate = norris_sim::sweep::Aggregate::new();
    let config_of = |s: u64| {
        let mut config = norris_sim::SimConfig::new(s, args.days, args.jobs, args.clusters);
        config.faults = faults;
        config.ledger = ledger;
        config
    };
    let simulated_secs = {
        let c = config_of(args.seed);
        (c.fault_secs + c.heal_secs) as f64
    };
    let run = |s: u64| norris_sim::simulate_some(&config_of(s), &strategies);
    let mut failure: Option<anyhow::Error> = None;
    let seeds = args.seed..args.seed.saturating_add(args.seeds);
    norris_sim::sweep::run_seeds(seeds, threads, run, |s, reports| {
        norris_sim::sweep::fold(&mut aggregate, &reports, simulated_secs);
        if let Err(e) = show_seed(args, s, &reports, &mut broken) {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    norris_sim::sweep::finish(&mut aggregate);
    if !args.json && (args.seeds > 1 || args.out.is_some()) {
        println!("\n{}", norris_sim::sweep::table(&aggregate));
    }
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&aggregate)?)?;
        eprintln!("wrote {}", path.display());
    }
    if !broken.is_empty() {
        bail!("promises broken for seeds {broken:?} (replay one with --seed S --seeds 1)");
    }
    Ok(())
}

/// Prints one seed's reports (a line per strategy, or one JSON object), writes the HTML page
/// of the first seed, and notes the seed when a promise was broken.
fn show_seed(
    args: &SimArgs,
    s: u64,
    reports: &std::collections::BTreeMap<&'static str, norris_sim::SimReport>,
    broken: &mut Vec<String>,
) -> Result<()> {
    if args.json {
        let summary: serde_json::Map<String, Value> = reports
            .iter()
            .map(|(k, r)| {
                let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.remove("freshness_over_time");
                    o.insert("invariant_violations".into(), r.invariant_violations.len().into());
                    o.insert("violations".into(), serde_json::to_value(&r.invariant_violations).unwrap_or(Value::Null));
                }
                ((*k).to_string(), v)
            })
            .collect();
        println!("{}", Value::Object(summary));
    } else {
        for (key, report) in reports {
            println!(
                    "seed {s} {key:>14}: windows expected {} committed {} duplicated {} lost {}; freshness p50 {} s p99 {} s; \
                     {} spot losses, recovery p50 {} s p99 {} s; {} rotations, {} clusters; cost: clusters ${:.2}, \
                     control plane ${:.2}/month; {} invocations ({} died), {} store ops; {}",
                    report.windows_expected,
                    report.windows_committed,
                    report.windows_duplicated,
                    report.windows_lost,
                    report.freshness_p50_secs,
                    report.freshness_p99_secs,
                    report.spot_losses,
                    report.recovery_p50_secs,
                    report.recovery_p99_secs,
                    report.rotations,
                    report.clusters_launched,
                    report.cluster_cost_usd,
                    report.control_plane_cost_usd_month,
                    report.invocations,
                    report.invocations_died,
                    report.store_operations,
                    if report.ok() { "ok" } else { "PROMISES BROKEN" }
                );
        }
    }
    if let (Some(path), true) = (&args.html, s == args.seed) {
        let title = format!("norris sim: seed {s}, {} days, {} jobs, {} clusters", args.days, args.jobs, args.clusters);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, norris_sim::html::report_page(&title, reports))?;
        eprintln!("wrote {}", path.display());
    }
    for (key, report) in reports {
        if !report.ok() {
            eprintln!("seed {s} {key}: {}", report.invariant_violations.join("\n  "));
            eprintln!("trace:\n  {}", report.trace.join("\n  "));
            broken.push(format!("{s} ({key})"));
        }
    }
    Ok(())
}
