//! Cutting windows: which `[lo, hi)` intervals of a job are due now.

use norris_model::{CatchUp, ExtractionSpec, UnixTime, Window};

/// What to cut for one job this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutPlan {
    /// Windows to create runs for, in order, contiguous from the job's `next_window_lo`.
    pub windows: Vec<Window>,
    /// The job's `next_window_lo` after these windows.
    pub next_window_lo: UnixTime,
    /// When to look at the job again: when its next window becomes due, or `now` (the next
    /// tick) when due windows were held back by the in-flight limit.
    pub due_at: UnixTime,
}

/// Cuts the job's due windows. A window `[lo, lo + interval)` is due once `now >= hi + lag`.
/// At most `max_windows_in_flight - uncommitted` windows are cut; under [`CatchUp::Coalesce`] each
/// window may span several due intervals. Windows are contiguous and never overlap, so however
/// they are cut, every instant of the watermark column is in exactly one window.
pub fn cut_windows(now: UnixTime, spec: &ExtractionSpec, next_window_lo: UnixTime, uncommitted: u32) -> CutPlan {
    let interval = spec.interval_secs;
    let mut budget = spec.max_windows_in_flight.saturating_sub(uncommitted);
    let mut lo = next_window_lo;
    let mut windows = Vec::new();
    let due_intervals = |lo: UnixTime| (now.secs() - spec.lag_secs - lo.secs()).div_euclid(interval).max(0);
    while budget > 0 {
        let due = due_intervals(lo);
        if due == 0 {
            break;
        }
        let span = match spec.catch_up {
            CatchUp::Sequential => 1,
            CatchUp::Coalesce { max_intervals } => due.min(i64::from(max_intervals)),
        };
        let hi = lo.plus_secs(span * interval);
        windows.push(Window { lo, hi });
        lo = hi;
        budget -= 1;
    }
    let due_at = if due_intervals(lo) > 0 { now } else { lo.plus_secs(interval + spec.lag_secs) };
    CutPlan { windows, next_window_lo: lo, due_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: UnixTime = UnixTime(1_795_305_600);

    fn spec(catch_up: serde_json::Value, max_in_flight: u32) -> ExtractionSpec {
        let def = norris_model::JobDefinition::from_document(&json!({
            "job_id": "j", "kind": "batch_extraction", "size_class": "small",
            "interval_secs": 300, "lag_secs": 60, "start_at": "2026-11-22T00:00:00Z",
            "catch_up": catch_up, "max_windows_in_flight": max_in_flight,
            "source": {"jdbc_url": "jdbc:mysql://db/shop",
                "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:s", "table": "t",
                "watermark_column": "u", "primary_key": "id"},
            "lake_uri": "s3://lake/t", "livy": {"file": "s3://code/extract.py"}
        }))
        .expect("valid");
        def.extraction().expect("extraction").clone()
    }

    #[test]
    fn nothing_is_cut_before_the_first_window_ends_plus_lag() {
        let plan = cut_windows(T0.plus_secs(359), &spec(json!({"mode": "sequential"}), 4), T0, 0);
        assert!(plan.windows.is_empty());
        assert_eq!(plan.due_at, T0.plus_secs(360));
        let plan = cut_windows(T0.plus_secs(360), &spec(json!({"mode": "sequential"}), 4), T0, 0);
        assert_eq!(plan.windows, vec![Window { lo: T0, hi: T0.plus_secs(300) }]);
        assert_eq!(plan.next_window_lo, T0.plus_secs(300));
        assert_eq!(plan.due_at, T0.plus_secs(660));
    }

    #[test]
    fn sequential_catch_up_cuts_one_interval_per_window_up_to_the_in_flight_limit() {
        let now = T0.plus_secs(10 * 300 + 60);
        let plan = cut_windows(now, &spec(json!({"mode": "sequential"}), 4), T0, 1);
        assert_eq!(plan.windows.len(), 3, "4 in flight allowed, 1 already cut and uncommitted");
        assert!(plan.windows.windows(2).all(|w| w[0].hi == w[1].lo), "contiguous");
        assert!(plan.windows.iter().all(|w| w.len_secs() == 300));
        assert_eq!(plan.due_at, now, "more is due: look again next tick");
    }

    #[test]
    fn coalesce_catch_up_merges_due_intervals_into_bounded_windows() {
        let now = T0.plus_secs(10 * 300 + 60);
        let plan = cut_windows(now, &spec(json!({"mode": "coalesce", "max_intervals": 4}), 4), T0, 0);
        let lens: Vec<i64> = plan.windows.iter().map(Window::len_secs).collect();
        assert_eq!(lens, vec![1200, 1200, 600]);
        assert_eq!(plan.next_window_lo, T0.plus_secs(3000));
        assert_eq!(plan.due_at, T0.plus_secs(3360));
    }

    #[test]
    fn a_full_in_flight_budget_cuts_nothing_and_asks_to_look_again() {
        let now = T0.plus_secs(2000);
        let plan = cut_windows(now, &spec(json!({"mode": "sequential"}), 2), T0, 2);
        assert!(plan.windows.is_empty());
        assert_eq!(plan.next_window_lo, T0);
        assert_eq!(plan.due_at, now);
    }
}
