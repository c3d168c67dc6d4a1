//! Many seeds: each simulated on its own (a seed alone decides its run), on several threads,
//! handed back in seed order and folded into one aggregate per strategy — the figures `make sim`
//! writes to `target/sim/report.json` and `make soak` prints.

use crate::SimReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// Each seed's reports, a key per strategy.
pub type SeedReports = BTreeMap<&'static str, SimReport>;

/// Simulates every seed of `seeds` with `simulate` on `threads` threads and calls `each` with
/// the results in seed order (so output and aggregates do not depend on the thread count).
pub fn run_seeds(
    seeds: Range<u64>,
    threads: usize,
    simulate: impl Fn(u64) -> SeedReports + Sync,
    mut each: impl FnMut(u64, SeedReports),
) {
    let next = AtomicU64::new(seeds.start);
    let (send, receive) = mpsc::channel::<(u64, SeedReports)>();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let send = send.clone();
            let (next, simulate, end) = (&next, &simulate, seeds.end);
            scope.spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end || send.send((seed, simulate(seed))).is_err() {
                    return;
                }
            });
        }
        drop(send);
        let mut waiting = BTreeMap::new();
        let mut expected = seeds.start;
        for (seed, reports) in receive {
            waiting.insert(seed, reports);
            while let Some(reports) = waiting.remove(&expected) {
                each(expected, reports);
                expected += 1;
            }
        }
    });
}

/// One strategy's figures over every seed of a sweep. Percentiles are over the pooled values
/// of all seeds (every committed window, every spot loss), not averages of per-seed ones.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StrategyTotals {
    /// Seeds folded in.
    pub seeds: u64,
    /// Virtual days with faults, over all seeds.
    pub days: f64,
    /// Windows due by the end of the fault phase.
    pub windows_expected: u64,
    /// Of those, committed.
    pub windows_committed: u64,
    /// Windows published twice.
    pub windows_duplicated: u64,
    /// Windows never committed.
    pub windows_lost: u64,
    /// Invariant violations found.
    pub invariant_violations: u64,
    /// Seeds with a violation.
    pub seeds_broken: u64,
    /// From a window's end to its commit.
    pub freshness_p50_secs: i64,
    /// See `freshness_p50_secs`.
    pub freshness_p99_secs: i64,
    /// See `freshness_p50_secs`.
    pub freshness_max_secs: i64,
    /// Clusters lost to spot.
    pub spot_losses: u64,
    /// Of those, losses of a cluster with runs on it (the recovery figures are over these).
    pub spot_losses_with_runs: u64,
    /// From a spot loss to every run that was on the cluster running again.
    pub recovery_p50_secs: i64,
    /// See `recovery_p50_secs`.
    pub recovery_p99_secs: i64,
    /// See `recovery_p50_secs`.
    pub recovery_max_secs: i64,
    /// Clusters retired by rotation.
    pub rotations: u64,
    /// RunJobFlow calls that launched a cluster.
    pub clusters_launched: u64,
    /// Node-hours on on-demand capacity.
    pub node_hours_on_demand: f64,
    /// Node-hours on spot capacity.
    pub node_hours_spot: f64,
    /// Cluster cost over all seeds' virtual time, at list prices.
    pub cluster_cost_usd: f64,
    /// The same per 30 days of one deployment (mean over seeds).
    pub cluster_cost_usd_month: f64,
    /// Control-plane cost per month (mean over seeds).
    pub control_plane_cost_usd_month: f64,
    /// Handler invocations.
    pub invocations: u64,
    /// Invocations that died mid-flight.
    pub invocations_died: u64,
    #[serde(skip)]
    freshness: Vec<i64>,
    #[serde(skip)]
    recovery: Vec<i64>,
    #[serde(skip)]
    simulated_secs: f64,
}

impl StrategyTotals {
    /// Folds one seed's report in.
    pub fn add(&mut self, r: &SimReport, simulated_secs: f64) {
        self.seeds += 1;
        self.days += r.fault_secs as f64 / 86_400.0;
        self.windows_expected += r.windows_expected;
        self.windows_committed += r.windows_committed;
        self.windows_duplicated += r.windows_duplicated;
        self.windows_lost += r.windows_lost;
        self.invariant_violations += r.invariant_violations.len() as u64;
        self.seeds_broken += u64::from(!r.ok());
        self.freshness.extend(r.freshness_over_time.iter().map(|(_, secs)| *secs));
        self.recovery.extend(&r.recovery_secs);
        self.spot_losses += r.spot_losses;
        self.spot_losses_with_runs += r.spot_losses_with_runs;
        self.rotations += r.rotations;
        self.clusters_launched += r.clusters_launched;
        self.node_hours_on_demand += r.node_hours_on_demand;
        self.node_hours_spot += r.node_hours_spot;
        self.cluster_cost_usd += r.cluster_cost_usd;
        self.simulated_secs += simulated_secs;
        // Means over seeds, kept as running means.
        let n = self.seeds as f64;
        let per_month = r.cluster_cost_usd * 30.0 * 86_400.0 / simulated_secs.max(1.0);
        self.cluster_cost_usd_month += (per_month - self.cluster_cost_usd_month) / n;
        self.control_plane_cost_usd_month += (r.control_plane_cost_usd_month - self.control_plane_cost_usd_month) / n;
        self.invocations += r.invocations;
        self.invocations_died += r.invocations_died;
    }

    /// Sets the percentiles from the pooled values (once, after the last seed: sorting after
    /// every seed would make a 10,000-seed soak quadratic).
    fn finish(&mut self) {
        self.freshness.sort_unstable();
        self.recovery.sort_unstable();
        (self.freshness_p50_secs, self.freshness_p99_secs, self.freshness_max_secs) = quantiles(&self.freshness);
        (self.recovery_p50_secs, self.recovery_p99_secs, self.recovery_max_secs) = quantiles(&self.recovery);
    }
}

/// Median, 99th percentile and maximum of sorted values (0 for none).
fn quantiles(sorted: &[i64]) -> (i64, i64, i64) {
    let at = |q: f64| {
        if sorted.is_empty() {
            return 0;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    };
    (at(0.5), at(0.99), sorted.last().copied().unwrap_or(0))
}

/// Every strategy's totals, keyed as in the per-seed reports.
pub type Aggregate = BTreeMap<&'static str, StrategyTotals>;

/// Folds one seed's reports into `aggregate`; `simulated_secs` is the seed's whole virtual time.
pub fn fold(aggregate: &mut Aggregate, reports: &SeedReports, simulated_secs: f64) {
    for (key, report) in reports {
        aggregate.entry(key).or_default().add(report, simulated_secs);
    }
}

/// How one row of the table shows a strategy's totals.
type Cell = fn(&StrategyTotals) -> String;

/// Sets every strategy's percentiles: call after the last [`fold`], before reading them.
pub fn finish(aggregate: &mut Aggregate) {
    aggregate.values_mut().for_each(StrategyTotals::finish);
}

/// The side-by-side table of an aggregate, one column per strategy.
pub fn table(aggregate: &Aggregate) -> String {
    let keys: Vec<&&str> = aggregate.keys().collect();
    let mut out = format!("{:<34}", "");
    for k in &keys {
        out += &format!("{:>16}", k);
    }
    out.push('\n');
    let rows: [(&str, Cell); 16] = [
        ("seeds x virtual days", |t| format!("{} x {:.1}", t.seeds, t.days / t.seeds.max(1) as f64)),
        ("windows expected", |t| t.windows_expected.to_string()),
        ("windows committed", |t| t.windows_committed.to_string()),
        ("windows duplicated", |t| t.windows_duplicated.to_string()),
        ("windows lost", |t| t.windows_lost.to_string()),
        ("invariant violations", |t| t.invariant_violations.to_string()),
        ("freshness p50 / p99 (s)", |t| format!("{} / {}", t.freshness_p50_secs, t.freshness_p99_secs)),
        ("freshness max (s)", |t| t.freshness_max_secs.to_string()),
        ("spot losses (with runs on them)", |t| format!("{} ({})", t.spot_losses, t.spot_losses_with_runs)),
        ("recovery p50 / p99 (s)", |t| format!("{} / {}", t.recovery_p50_secs, t.recovery_p99_secs)),
        ("recovery max (s)", |t| t.recovery_max_secs.to_string()),
        ("clusters launched", |t| t.clusters_launched.to_string()),
        ("node-hours on demand / spot", |t| format!("{:.0} / {:.0}", t.node_hours_on_demand, t.node_hours_spot)),
        ("cluster cost, total ($)", |t| format!("{:.2}", t.cluster_cost_usd)),
        ("cluster cost per month ($)", |t| format!("{:.2}", t.cluster_cost_usd_month)),
        ("control plane per month ($)", |t| format!("{:.2}", t.control_plane_cost_usd_month)),
    ];
    for (name, cell) in rows {
        out += &format!("{name:<34}");
        for k in &keys {
            out += &format!("{:>16}", cell(&aggregate[**k]));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{simulate_strategies, SimConfig};

    #[test]
    fn seeds_come_back_in_order_whatever_the_threads() {
        let mut seen = Vec::new();
        run_seeds(3..40, 4, |s| BTreeMap::from([("x", dummy(s))]), |s, r| seen.push((s, r["x"].seed)));
        assert_eq!(seen, (3..40).map(|s| (s, s)).collect::<Vec<_>>());
    }

    fn dummy(seed: u64) -> SimReport {
        let mut config = SimConfig::new(seed, 0.01, 1, 1);
        config.heal_secs = 600;
        crate::simulate(&config)
    }

    #[test]
    fn the_aggregate_pools_percentiles_and_adds_counts() {
        let mut aggregate = Aggregate::new();
        let config = SimConfig::new(5, 0.05, 2, 2);
        let reports = simulate_strategies(&config);
        let secs = (config.fault_secs + config.heal_secs) as f64;
        fold(&mut aggregate, &reports, secs);
        fold(&mut aggregate, &reports, secs);
        finish(&mut aggregate);
        let norris = &aggregate["norris"];
        assert_eq!(norris.seeds, 2);
        assert_eq!(norris.windows_expected, 2 * reports["norris"].windows_expected);
        assert_eq!(norris.freshness_max_secs, reports["norris"].freshness_max_secs, "the same values twice");
        assert!((norris.cluster_cost_usd - 2.0 * reports["norris"].cluster_cost_usd).abs() < 1e-9);
        assert!(table(&aggregate).contains("on_demand_only"));
    }
}
