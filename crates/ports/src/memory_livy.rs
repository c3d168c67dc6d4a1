//! An in-memory model of Livy servers (one per endpoint) with Livy's semantics: names are unique
//! among the batches a server holds, finished batches can be forgotten, a restart forgets
//! everything and ids start again at 0, a submission can fail before its effect, and a call can
//! lose its response after it. Tests and the simulator drive it; batches only change phase when
//! told to.

use crate::batch::{BatchError, BatchService};
use norris_model::{BatchObservation, BatchPhase, BatchSubmission};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Clone)]
struct HeldBatch {
    submission: BatchSubmission,
    phase: BatchPhase,
}

#[derive(Debug, Default)]
struct Server {
    next_id: i64,
    batches: BTreeMap<i64, HeldBatch>,
    unreachable: bool,
    lose_next_response: bool,
    fail_next_submission: Option<BatchError>,
    submissions: u64,
}

/// Livy servers in memory, keyed by endpoint.
#[derive(Debug, Default)]
pub struct MemoryLivy {
    servers: Mutex<BTreeMap<String, Server>>,
}

impl MemoryLivy {
    /// No servers yet; one appears at an endpoint on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Server>> {
        self.servers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the phase of the batch named `name` at `endpoint`; false if the server does not hold it.
    pub fn set_phase(&self, endpoint: &str, name: &str, phase: BatchPhase) -> bool {
        let mut servers = self.lock();
        let Some(server) = servers.get_mut(endpoint) else { return false };
        match server.batches.values_mut().find(|b| b.submission.name == name) {
            Some(b) => {
                b.phase = phase;
                true
            }
            None => false,
        }
    }

    /// Every batch the server at `endpoint` holds: (id, submission, phase).
    pub fn batches(&self, endpoint: &str) -> Vec<(i64, BatchSubmission, BatchPhase)> {
        self.lock()
            .get(endpoint)
            .map(|s| s.batches.iter().map(|(id, b)| (*id, b.submission.clone(), b.phase.clone())).collect())
            .unwrap_or_default()
    }

    /// How many submissions created a batch at `endpoint` (adoptions of an existing name excluded).
    pub fn submissions(&self, endpoint: &str) -> u64 {
        self.lock().get(endpoint).map_or(0, |s| s.submissions)
    }

    /// Restarts the server (recovery off): every batch is forgotten, ids start again at 0.
    pub fn restart(&self, endpoint: &str) {
        let mut servers = self.lock();
        let server = servers.entry(endpoint.to_string()).or_default();
        server.batches.clear();
        server.next_id = 0;
    }

    /// Forgets the finished batches (what Livy does after its retain period).
    pub fn forget_finished(&self, endpoint: &str) {
        if let Some(server) = self.lock().get_mut(endpoint) {
            server.batches.retain(|_, b| !b.phase.is_final());
        }
    }

    /// Makes the server unreachable (or reachable again).
    pub fn set_unreachable(&self, endpoint: &str, unreachable: bool) {
        self.lock().entry(endpoint.to_string()).or_default().unreachable = unreachable;
    }

    /// The next call at `endpoint` takes effect but its response is lost (the caller sees a
    /// timeout).
    pub fn lose_next_response(&self, endpoint: &str) {
        self.lock().entry(endpoint.to_string()).or_default().lose_next_response = true;
    }

    /// The next submission at `endpoint` fails with `error` before it takes effect.
    pub fn fail_next_submission(&self, endpoint: &str, error: BatchError) {
        self.lock().entry(endpoint.to_string()).or_default().fail_next_submission = Some(error);
    }

    fn unreachable(endpoint: &str) -> BatchError {
        BatchError::Unreachable { endpoint: endpoint.into(), message: "connection refused (model)".into() }
    }

    /// Runs `op` against the server, applying reachability and lost responses.
    fn with_server<T>(
        &self,
        endpoint: &str,
        op: impl FnOnce(&mut Server) -> Result<T, BatchError>,
    ) -> Result<T, BatchError> {
        let mut servers = self.lock();
        let server = servers.entry(endpoint.to_string()).or_default();
        if server.unreachable {
            return Err(Self::unreachable(endpoint));
        }
        let out = op(server);
        if std::mem::take(&mut server.lose_next_response) {
            return Err(BatchError::Unreachable { endpoint: endpoint.into(), message: "response lost (model)".into() });
        }
        out
    }
}

fn observe(id: i64, b: &HeldBatch) -> BatchObservation {
    BatchObservation { id, name: Some(b.submission.name.clone()), phase: b.phase.clone(), log_tail: Vec::new() }
}

impl BatchService for MemoryLivy {
    async fn submit(&self, endpoint: &str, batch: &BatchSubmission) -> Result<BatchObservation, BatchError> {
        crate::memory::yield_now().await;
        self.with_server(endpoint, |server| {
            if let Some(error) = server.fail_next_submission.take() {
                return Err(error);
            }
            if let Some((id, held)) = server.batches.iter().find(|(_, b)| b.submission.name == batch.name) {
                return Ok(observe(*id, held));
            }
            let id = server.next_id;
            server.next_id += 1;
            server.submissions += 1;
            let held = HeldBatch { submission: batch.clone(), phase: BatchPhase::Starting };
            let obs = observe(id, &held);
            server.batches.insert(id, held);
            Ok(obs)
        })
    }

    async fn find(&self, endpoint: &str, name: &str) -> Result<Option<BatchObservation>, BatchError> {
        crate::memory::yield_now().await;
        self.with_server(endpoint, |server| {
            Ok(server.batches.iter().find(|(_, b)| b.submission.name == name).map(|(id, b)| observe(*id, b)))
        })
    }

    async fn kill(&self, endpoint: &str, id: i64) -> Result<bool, BatchError> {
        crate::memory::yield_now().await;
        self.with_server(endpoint, |server| Ok(server.batches.remove(&id).is_some()))
    }

    async fn ping(&self, endpoint: &str) -> Result<(), BatchError> {
        crate::memory::yield_now().await;
        self.with_server(endpoint, |_| Ok(()))
    }
}
