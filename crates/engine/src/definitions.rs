//! What a job's state should say about its definition: valid and scheduled, invalid (with every
//! problem), quarantined, disabled, or gone.

use norris_model::{DefinitionError, JobDefinition, JobKind, JobState, UnixTime, Validity, Version};

/// A job's definition as read from the jobs table.
#[derive(Debug, Clone, Copy)]
pub enum DefinitionView<'a> {
    /// No item for this job (deleted).
    Missing,
    /// The item, parsed or refused.
    Present {
        /// Fingerprint of the document.
        hash: &'a str,
        /// The definition or every problem in it.
        parsed: Result<&'a JobDefinition, &'a DefinitionError>,
    },
}

/// A change to write to a job's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobChange {
    /// The job has no state yet: create this one.
    Create(JobState),
    /// Replace the state with this one (same version as read; the store bumps it).
    Update(JobState),
}

impl JobChange {
    /// The state the change writes.
    pub fn state(&self) -> &JobState {
        match self {
            JobChange::Create(s) | JobChange::Update(s) => s,
        }
    }
}

/// When a window starting at `lo` becomes due: after it ends and the job's lag has passed.
pub fn due_time(def: &JobDefinition, lo: UnixTime) -> Option<UnixTime> {
    def.extraction().map(|e| lo.plus_secs(e.interval_secs + e.lag_secs))
}

/// Decides how a job's state must change given its definition. Returns `None` when the state
/// already agrees (the common case: the hash is unchanged and the schedule is in place).
///
/// Rules: a new valid job starts at `start_at` aligned down to its interval; a changed definition
/// is validated again (which also lifts a quarantine: the person has looked); the watermark and
/// the next window are never moved back by a definition change; disabled, invalid, quarantined or
/// deleted jobs leave the due index (`due_at = None`) and keep their watermark.
pub fn reconcile_job(now: UnixTime, view: DefinitionView<'_>, state: Option<&JobState>) -> Option<JobChange> {
    let (hash, parsed) = match view {
        DefinitionView::Missing => {
            let s = state?;
            // Already unscheduled: nothing to change.
            s.due_at?;
            let mut next = s.clone();
            next.due_at = None;
            return Some(JobChange::Update(next));
        }
        DefinitionView::Present { hash, parsed } => (hash, parsed),
    };
    let Some(state) = state else {
        let (validity, start, due_at) = match parsed {
            Ok(def) => {
                let start = first_window_lo(def, now);
                (Validity::Valid, start, schedule(def, start, None))
            }
            Err(e) => (Validity::Invalid { problems: e.problems.clone() }, JobState::NOT_STARTED, None),
        };
        return Some(JobChange::Create(JobState {
            job_id: match parsed {
                Ok(def) => def.id.clone(),
                Err(e) => norris_model::JobId::new(e.id.clone()),
            },
            definition_hash: hash.to_string(),
            validity,
            watermark: start,
            next_window_lo: start,
            due_at,
            accepted_schema: None,
            version: Version::INITIAL,
        }));
    };
    let changed = state.definition_hash != hash;
    let mut next = state.clone();
    next.definition_hash = hash.to_string();
    match parsed {
        Err(e) => {
            next.validity = Validity::Invalid { problems: e.problems.clone() };
            next.due_at = None;
        }
        Ok(_) if !changed && matches!(state.validity, Validity::Quarantined { .. }) => {
            next.due_at = None;
        }
        Ok(def) => {
            if state.next_window_lo == JobState::NOT_STARTED {
                // Never valid before, so nothing was cut: start where the definition says.
                next.watermark = first_window_lo(def, now);
                next.next_window_lo = next.watermark;
            }
            next.validity = Validity::Valid;
            next.due_at = schedule(def, next.next_window_lo, state.due_at);
        }
    }
    (next != *state).then_some(JobChange::Update(next))
}

fn first_window_lo(def: &JobDefinition, now: UnixTime) -> UnixTime {
    match &def.kind {
        JobKind::BatchExtraction(e) => e.start_at.align_down(e.interval_secs),
        JobKind::Streaming(_) => now,
    }
}

/// The due time to keep for an enabled extraction job: the current one if it is already
/// scheduled, else when its next window becomes due. Streaming jobs are supervised elsewhere.
fn schedule(def: &JobDefinition, next_window_lo: UnixTime, current: Option<UnixTime>) -> Option<UnixTime> {
    if !def.enabled {
        return None;
    }
    current.or_else(|| due_time(def, next_window_lo))
}

#[cfg(test)]
pub(crate) mod tests_support {
    use norris_model::{DefinitionError, FieldProblem, JobDefinition, UnixTime};
    use serde_json::json;

    pub const NOW: UnixTime = UnixTime(1_795_306_000);

    pub fn def(enabled: bool) -> JobDefinition {
        JobDefinition::from_document(&json!({
            "job_id": "shop.orders", "kind": "batch_extraction", "enabled": enabled, "size_class": "small",
            "interval_secs": 300, "lag_secs": 60, "start_at": "2026-11-22T00:02:00Z",
            "source": {"jdbc_url": "jdbc:mysql://db/shop",
                "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:s", "table": "orders",
                "watermark_column": "updated_at", "primary_key": "id"},
            "lake_uri": "s3://lake/orders", "livy": {"file": "s3://code/extract.py"}
        }))
        .expect("valid")
    }

    pub fn state_at(watermark: UnixTime) -> norris_model::JobState {
        norris_model::JobState {
            job_id: norris_model::JobId::new("orders"),
            definition_hash: "h".into(),
            validity: norris_model::Validity::Valid,
            watermark,
            next_window_lo: watermark,
            due_at: None,
            accepted_schema: None,
            version: norris_model::Version::INITIAL,
        }
    }

    pub fn error() -> DefinitionError {
        DefinitionError {
            id: "shop.orders".into(),
            problems: vec![FieldProblem { path: "interval_secs".into(), reason: "must be a number".into() }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_new_valid_job_starts_at_its_aligned_start_and_is_due_after_its_first_window_and_lag() {
        let d = def(true);
        let change = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, None).expect("create");
        let JobChange::Create(s) = change else { panic!("create") };
        assert_eq!(s.next_window_lo, UnixTime(1_795_305_600), "00:02 aligned down to 00:00");
        assert_eq!(s.watermark, s.next_window_lo);
        assert_eq!(s.due_at, Some(UnixTime(1_795_305_600 + 360)));
        assert_eq!(s.validity, Validity::Valid);
    }

    #[test]
    fn a_new_invalid_job_is_recorded_with_its_problems_and_not_scheduled() {
        let e = error();
        let JobChange::Create(s) =
            reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Err(&e) }, None).expect("create")
        else {
            panic!("create")
        };
        assert_eq!(s.due_at, None);
        assert_eq!(s.validity, Validity::Invalid { problems: e.problems.clone() });
    }

    #[test]
    fn an_unchanged_definition_changes_nothing() {
        let d = def(true);
        let created = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, None).expect("c");
        assert_eq!(
            reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, Some(created.state())),
            None
        );
    }

    #[test]
    fn disabling_unschedules_and_keeps_the_watermark_and_enabling_reschedules_from_it() {
        let mut s = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&def(true)) }, None)
            .expect("c")
            .state()
            .clone();
        s.watermark = s.watermark.plus_secs(3000);
        s.next_window_lo = s.watermark;
        let off = def(false);
        let disabled = reconcile_job(NOW, DefinitionView::Present { hash: "h2", parsed: Ok(&off) }, Some(&s))
            .expect("update")
            .state()
            .clone();
        assert_eq!(disabled.due_at, None);
        assert_eq!(disabled.watermark, s.watermark);
        let on = def(true);
        let enabled = reconcile_job(NOW, DefinitionView::Present { hash: "h3", parsed: Ok(&on) }, Some(&disabled))
            .expect("update")
            .state()
            .clone();
        assert_eq!(enabled.due_at, Some(s.watermark.plus_secs(360)), "continues where it stopped, no gap");
    }

    #[test]
    fn a_quarantine_holds_until_the_definition_changes() {
        let d = def(true);
        let mut s = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, None)
            .expect("c")
            .state()
            .clone();
        s.validity = Validity::Quarantined { reason: "column price changed from int to varchar".into() };
        s.due_at = None;
        assert_eq!(reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, Some(&s)), None);
        let lifted = reconcile_job(NOW, DefinitionView::Present { hash: "h2", parsed: Ok(&d) }, Some(&s)).expect("u");
        assert_eq!(lifted.state().validity, Validity::Valid);
        assert!(lifted.state().due_at.is_some());
    }

    #[test]
    fn a_deleted_definition_unschedules_the_job() {
        let d = def(true);
        let s = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Ok(&d) }, None).expect("c");
        let gone = reconcile_job(NOW, DefinitionView::Missing, Some(s.state())).expect("update");
        assert_eq!(gone.state().due_at, None);
        assert_eq!(reconcile_job(NOW, DefinitionView::Missing, Some(gone.state())), None);
        assert_eq!(reconcile_job(NOW, DefinitionView::Missing, None), None);
    }
}

#[cfg(test)]
mod first_valid_tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn a_job_created_invalid_starts_at_its_start_once_fixed() {
        let e = error();
        let created = reconcile_job(NOW, DefinitionView::Present { hash: "h1", parsed: Err(&e) }, None).expect("c");
        assert_eq!(created.state().next_window_lo, JobState::NOT_STARTED);
        let d = def(true);
        let fixed = reconcile_job(NOW, DefinitionView::Present { hash: "h2", parsed: Ok(&d) }, Some(created.state()))
            .expect("u");
        assert_eq!(fixed.state().next_window_lo, UnixTime(1_795_305_600));
        assert_eq!(fixed.state().watermark, UnixTime(1_795_305_600));
        assert_eq!(fixed.state().validity, Validity::Valid);
    }
}
