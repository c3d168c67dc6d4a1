//! The promises, checked against the ledger and the world after every handler invocation.
//!
//! - **No window published twice**: once a run is published with an attempt and prefix, it keeps
//!   them for ever.
//! - **Only data that exists is published**: a published prefix is one a successful attempt wrote.
//! - **Watermarks only move forward and never over a gap**: everything below a job's watermark is
//!   tiled exactly by published windows, from its first window on.
//! - **No window cut twice**: a job's runs never overlap.
//! - **No run live twice**: at most one live Spark application per run and attempt, and the
//!   applications of a run's current attempt live on one cluster.

use norris_model::{JobId, JobState, Run, RunKey, RunStatus, UnixTime};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Remembers what it saw, to check what must never change. It is fed the runs written since the
/// last check (the store's journal), so a check costs what changed, not the whole ledger.
#[derive(Debug, Default)]
pub struct Checker {
    /// The ledger's runs as last seen.
    runs: BTreeMap<RunKey, Run>,
    published: BTreeMap<RunKey, (u32, String)>,
    /// Per job, the watermark last seen: below it the ledger was found tiled by published runs.
    watermarks: BTreeMap<JobId, i64>,
    /// Runs that exhausted their attempts, for the simulated operator.
    failed: BTreeSet<RunKey>,
    /// Windows published a second time.
    pub duplicated: u64,
    /// For each committed window: seconds from its end to the check that saw it committed.
    pub freshness_secs: Vec<i64>,
    /// The same, with when each was seen: (virtual seconds since the first window's start, seconds).
    pub freshness_at: Vec<(i64, i64)>,
}

impl Checker {
    /// The run as last seen.
    pub fn run(&self, key: &RunKey) -> Option<&Run> {
        self.runs.get(key)
    }

    /// Runs that exhausted their attempts (as last seen).
    pub fn failed(&self) -> impl Iterator<Item = &Run> {
        self.failed.iter().filter_map(|k| self.runs.get(k))
    }

    /// A job's runs with `lo <= window.lo < hi`, in window order.
    fn runs_of<'a>(&'a self, job: &JobId, lo: i64, hi: i64) -> impl Iterator<Item = &'a Run> + 'a {
        let from = RunKey { job_id: job.clone(), window_lo: UnixTime(lo) };
        let to = RunKey { job_id: job.clone(), window_lo: UnixTime(hi) };
        self.runs.range((Bound::Included(from), Bound::Excluded(to))).map(|(_, r)| r)
    }

    /// Checks the runs `written` since the last check, the job states, the lake (what each
    /// `(run key, attempt)` wrote) and the live Spark applications (`(endpoint, run, attempt)`) at
    /// `now`; returns every violation found.
    pub fn check(
        &mut self,
        now: i64,
        written: &[Run],
        states: &[JobState],
        lake: &BTreeMap<(String, u32), u64>,
        live: &[(String, RunKey, u32)],
    ) -> Vec<String> {
        let mut violations = BTreeSet::new();
        for run in written {
            let key = run.key();
            if let RunStatus::Published { prefix, .. } = &run.status {
                let now_published = (run.attempt.0, prefix.clone());
                match self.published.get(&key) {
                    Some(before) if *before != now_published => {
                        self.duplicated += 1;
                        violations.insert(format!(
                            "{key} published twice: attempt {} at {} after attempt {} at {}",
                            now_published.0, now_published.1, before.0, before.1
                        ));
                    }
                    Some(_) => {}
                    None => {
                        if !lake.contains_key(&(key.to_string(), run.attempt.0)) {
                            violations.insert(format!(
                                "{key} published attempt {} at {prefix}, which no successful attempt wrote",
                                run.attempt.0
                            ));
                        }
                        self.published.insert(key.clone(), now_published);
                    }
                }
            } else if let Some(before) = self.published.get(&key) {
                violations.insert(format!(
                    "{key} was published (attempt {}) and is now {}",
                    before.0,
                    run.status.name()
                ));
            }
            if matches!(run.status, RunStatus::Failed { .. }) {
                self.failed.insert(key.clone());
            } else {
                self.failed.remove(&key);
            }
            self.runs.insert(key, run.clone());
        }
        // No window cut twice: a written run does not overlap its neighbours.
        for run in written {
            let key = run.key();
            let before = self.runs.range(..key.clone()).next_back().map(|(_, r)| r);
            let after = self.runs.range((Bound::Excluded(key), Bound::Unbounded)).next().map(|(_, r)| r);
            let pairs = [before.map(|b| (b, run)), after.map(|a| (run, a))];
            for (first, second) in pairs.into_iter().flatten() {
                if first.job_id == second.job_id && first.window.hi > second.window.lo {
                    violations.insert(format!(
                        "{}: windows [{}, {}) and [{}, {}) overlap",
                        first.job_id, first.window.lo.0, first.window.hi.0, second.window.lo.0, second.window.hi.0
                    ));
                }
            }
        }
        for state in states {
            let watermark = state.watermark.0;
            let before = self.watermarks.get(&state.job_id).copied();
            if let Some(before) = before {
                if watermark < before {
                    violations.insert(format!("{}: watermark moved back from {before} to {watermark}", state.job_id));
                }
            }
            if watermark <= JobState::NOT_STARTED.0 || before.is_some_and(|b| watermark <= b) {
                continue;
            }
            // Tiled from the first window (or the part checked before) to the watermark by
            // published runs, with no gap.
            let first_lo = self.runs_of(&state.job_id, i64::MIN, i64::MAX).next().map_or(watermark, |r| r.window.lo.0);
            let checked_to = before.filter(|b| *b > JobState::NOT_STARTED.0);
            let mut covered_to = checked_to;
            let mut fresh = Vec::new();
            for run in self.runs_of(&state.job_id, checked_to.unwrap_or(i64::MIN), watermark) {
                if !matches!(run.status, RunStatus::Published { .. }) {
                    violations.insert(format!(
                        "{}: watermark {watermark} is past window [{}, {}), which is {}",
                        state.job_id,
                        run.window.lo.0,
                        run.window.hi.0,
                        run.status.name()
                    ));
                }
                if let Some(c) = covered_to {
                    if run.window.lo.0 != c {
                        violations
                            .insert(format!("{}: gap [{c}, {}) below the watermark", state.job_id, run.window.lo.0));
                    }
                }
                covered_to = Some(run.window.hi.0);
                if run.window.hi.0 <= watermark {
                    fresh.push((now - first_lo, now - run.window.hi.0));
                }
            }
            for (at, secs) in fresh {
                self.freshness_secs.push(secs);
                self.freshness_at.push((at, secs));
            }
            if covered_to.is_some_and(|c| c != watermark) {
                violations.insert(format!(
                    "{}: watermark {watermark} is not the end of its published windows (they end at {covered_to:?})",
                    state.job_id
                ));
            }
            self.watermarks.insert(state.job_id.clone(), watermark);
        }
        let mut apps: BTreeMap<(&RunKey, u32), BTreeSet<&str>> = BTreeMap::new();
        let mut count: BTreeMap<(&RunKey, u32), usize> = BTreeMap::new();
        for (endpoint, key, attempt) in live {
            apps.entry((key, *attempt)).or_default().insert(endpoint);
            *count.entry((key, *attempt)).or_default() += 1;
        }
        for ((key, attempt), n) in count {
            if n > 1 {
                violations.insert(format!("{key} attempt {attempt} runs {n} times at once"));
            }
        }
        for ((key, attempt), endpoints) in apps {
            if self.runs.get(key).map(|r| r.attempt.0) == Some(attempt) && endpoints.len() > 1 {
                violations.insert(format!("{key} attempt {attempt} is live on clusters {endpoints:?}"));
            }
        }
        violations.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use norris_model::{Attempt, UnixTime, Validity, Version, Window};

    fn run(lo: i64, attempt: u32, status: RunStatus) -> Run {
        Run {
            job_id: JobId::new("j"),
            window: Window { lo: UnixTime(lo), hi: UnixTime(lo + 300) },
            attempt: Attempt(attempt),
            failures: 0,
            status,
            created_at: UnixTime(0),
            updated_at: UnixTime(0),
            last_outcome: None,
            version: Version::INITIAL,
        }
    }

    fn published(prefix: &str) -> RunStatus {
        RunStatus::Published { prefix: prefix.into(), rows: 1, at: UnixTime(0) }
    }

    fn state(watermark: i64) -> JobState {
        JobState {
            job_id: JobId::new("j"),
            definition_hash: String::new(),
            validity: Validity::Valid,
            watermark: UnixTime(watermark),
            next_window_lo: UnixTime(watermark),
            due_at: None,
            accepted_schema: None,
            version: Version::INITIAL,
        }
    }

    fn lake(entries: &[(&str, u32)]) -> BTreeMap<(String, u32), u64> {
        entries.iter().map(|(k, a)| ((k.to_string(), *a), 1)).collect()
    }

    #[test]
    fn a_consistent_ledger_passes_and_records_freshness() {
        let mut c = Checker::default();
        let runs = [run(1000, 1, published("p1")), run(1300, 2, published("p2"))];
        let found = c.check(1700, &runs, &[state(1600)], &lake(&[("j@1000", 1), ("j@1300", 2)]), &[]);
        assert_eq!(found, Vec::<String>::new());
        assert_eq!(c.freshness_secs, vec![400, 100]);
    }

    #[test]
    fn a_second_publication_of_a_window_is_caught() {
        let mut c = Checker::default();
        let l = lake(&[("j@1000", 1), ("j@1000", 2)]);
        assert!(c.check(0, &[run(1000, 1, published("p1"))], &[], &l, &[]).is_empty());
        let found = c.check(0, &[run(1000, 2, published("p2"))], &[], &l, &[]);
        assert_eq!(c.duplicated, 1);
        assert!(found[0].contains("published twice"), "{found:?}");
    }

    #[test]
    fn publishing_what_no_attempt_wrote_is_caught() {
        let found = Checker::default().check(0, &[run(1000, 2, published("p"))], &[], &lake(&[("j@1000", 1)]), &[]);
        assert!(found[0].contains("which no successful attempt wrote"), "{found:?}");
    }

    #[test]
    fn a_watermark_over_a_gap_or_moving_back_is_caught() {
        let mut c = Checker::default();
        let l = lake(&[("j@1000", 1), ("j@1600", 1)]);
        let runs = [run(1000, 1, published("a")), run(1300, 1, RunStatus::Pending { not_before: UnixTime(0) })];
        let found = c.check(0, &runs, &[state(1600)], &l, &[]);
        assert!(found.iter().any(|v| v.contains("which is pending")), "{found:?}");
        let mut c = Checker::default();
        let found = c.check(0, &[run(1000, 1, published("a")), run(1600, 1, published("b"))], &[state(1900)], &l, &[]);
        assert!(found.iter().any(|v| v.contains("gap [1300, 1600)")), "{found:?}");
        let mut c = Checker::default();
        assert!(c.check(0, &[run(1000, 1, published("a"))], &[state(1300)], &l, &[]).is_empty());
        let found = c.check(0, &[run(1000, 1, published("a"))], &[state(1000)], &l, &[]);
        assert!(found.iter().any(|v| v.contains("moved back")), "{found:?}");
    }

    #[test]
    fn overlapping_windows_and_a_run_live_twice_are_caught() {
        let mut c = Checker::default();
        let pending = RunStatus::Pending { not_before: UnixTime(0) };
        let mut second = run(1200, 1, pending.clone());
        second.window.hi = UnixTime(1500);
        let key = run(1000, 1, RunStatus::Pending { not_before: UnixTime(0) }).key();
        let live = [("a".to_string(), key.clone(), 1), ("b".to_string(), key, 1)];
        let found = c.check(0, &[run(1000, 1, pending), second], &[], &BTreeMap::new(), &live);
        assert!(found.iter().any(|v| v.contains("overlap")), "{found:?}");
        assert!(found.iter().any(|v| v.contains("runs 2 times at once")), "{found:?}");
        assert!(found.iter().any(|v| v.contains("is live on clusters")), "{found:?}");
    }
}
