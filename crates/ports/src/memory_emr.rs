//! An in-memory model of EMR for tests and the simulator, with EMR's semantics: RunJobFlow has no
//! client token (each call launches another cluster), tags are found only by describing, states
//! move only when the world says so (boot, spot loss), and a response can be lost after the
//! side effect.

use crate::emr::{EmrError, EmrService, InstancePlacement};
use norris_model::emr::tags;
use norris_model::{EmrCluster, EmrState, LaunchRequest, UnixTime};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Inner {
    clusters: BTreeMap<String, EmrCluster>,
    next_id: u64,
    lose_next_response: bool,
    unavailable: bool,
    now: i64,
    launches: u64,
}

/// EMR in memory.
#[derive(Debug, Default)]
pub struct MemoryEmr {
    inner: Mutex<Inner>,
}

impl MemoryEmr {
    /// No clusters yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the time new clusters are created at.
    pub fn set_now(&self, now: UnixTime) {
        self.lock().now = now.secs();
    }

    /// Moves a cluster to `state` (boot progress, spot loss); false if EMR does not know it.
    pub fn set_state(&self, id: &str, state: EmrState, reason: Option<&str>) -> bool {
        match self.lock().clusters.get_mut(id) {
            Some(c) => {
                c.state = state;
                c.state_reason = reason.map(str::to_string);
                true
            }
            None => false,
        }
    }

    /// Every cluster EMR knows, in any state.
    pub fn clusters(&self) -> Vec<EmrCluster> {
        self.lock().clusters.values().cloned().collect()
    }

    /// The clusters `keep` accepts: a simulated world looks at the few live ones many times a
    /// minute, not at every cluster it ever had.
    pub fn clusters_where(&self, keep: impl Fn(&EmrCluster) -> bool) -> Vec<EmrCluster> {
        self.lock().clusters.values().filter(|c| keep(c)).cloned().collect()
    }

    /// How many RunJobFlow calls launched a cluster.
    pub fn launches(&self) -> u64 {
        self.lock().launches
    }

    /// The next call takes effect and its response is lost.
    pub fn lose_next_response(&self) {
        self.lock().lose_next_response = true;
    }

    /// Every call fails before taking effect (or works again).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// The EC2 instance id of a cluster's primary node in this model.
    pub fn primary_instance(id: &str) -> String {
        format!("i-{id}-primary")
    }

    /// The EC2 instance id of one of a cluster's core nodes in this model.
    pub fn core_instance(id: &str) -> String {
        format!("i-{id}-core")
    }

    fn call<T>(&self, operation: &'static str, op: impl FnOnce(&mut Inner) -> T) -> Result<T, EmrError> {
        let mut inner = self.lock();
        if inner.unavailable {
            return Err(EmrError::Unavailable { operation, message: "unavailable (model)".into() });
        }
        let out = op(&mut inner);
        if std::mem::take(&mut inner.lose_next_response) {
            return Err(EmrError::Unavailable { operation, message: "response lost (model)".into() });
        }
        Ok(out)
    }
}

impl EmrService for MemoryEmr {
    async fn launch(&self, request: &LaunchRequest) -> Result<String, EmrError> {
        crate::memory::yield_now().await;
        self.call("RunJobFlow", |inner| {
            inner.next_id += 1;
            inner.launches += 1;
            let id = format!("j-MEM{:08}", inner.next_id);
            let cluster = EmrCluster {
                id: id.clone(),
                name: request.name(),
                state: EmrState::Starting,
                state_reason: None,
                primary_dns: Some(format!("{}.emr.internal", id.to_lowercase())),
                tags: request.tags(),
                created_at: Some(UnixTime(inner.now)),
            };
            inner.clusters.insert(id.clone(), cluster);
            id
        })
    }

    async fn find_by_launch_key(&self, deployment: &str, key: &str) -> Result<Option<EmrCluster>, EmrError> {
        crate::memory::yield_now().await;
        self.call("ListClusters", |inner| {
            inner
                .clusters
                .values()
                .filter(|c| {
                    c.tags.get(tags::DEPLOYMENT).map(String::as_str) == Some(deployment)
                        && c.tags.get(tags::LAUNCH_KEY).map(String::as_str) == Some(key)
                })
                .max_by_key(|c| c.created_at)
                .cloned()
        })
    }

    async fn describe(&self, id: &str) -> Result<Option<EmrCluster>, EmrError> {
        crate::memory::yield_now().await;
        self.call("DescribeCluster", |inner| inner.clusters.get(id).cloned())
    }

    async fn list_deployment_clusters(&self, deployment: &str) -> Result<Vec<EmrCluster>, EmrError> {
        crate::memory::yield_now().await;
        self.call("ListClusters", |inner| {
            inner
                .clusters
                .values()
                .filter(|c| {
                    !matches!(c.state, EmrState::Terminated | EmrState::TerminatedWithErrors)
                        && c.tags.get(tags::DEPLOYMENT).map(String::as_str) == Some(deployment)
                })
                .cloned()
                .collect()
        })
    }

    async fn terminate(&self, id: &str) -> Result<(), EmrError> {
        crate::memory::yield_now().await;
        self.call("TerminateJobFlows", |inner| {
            if let Some(c) = inner.clusters.get_mut(id) {
                if !c.state.is_ending() {
                    c.state = EmrState::Terminated;
                    c.state_reason = Some("USER_REQUEST".into());
                }
            }
        })
    }

    async fn locate_instance(
        &self,
        cluster_ids: &[String],
        instance_id: &str,
    ) -> Result<Option<InstancePlacement>, EmrError> {
        crate::memory::yield_now().await;
        self.call("ListInstances", |inner| {
            cluster_ids.iter().filter(|id| inner.clusters.contains_key(*id)).find_map(|id| {
                if instance_id == Self::primary_instance(id) {
                    Some(InstancePlacement { cluster_id: id.clone(), primary: true })
                } else if instance_id == Self::core_instance(id) {
                    Some(InstancePlacement { cluster_id: id.clone(), primary: false })
                } else {
                    None
                }
            })
        })
    }
}
