//! What norris knows of an EMR cluster as EMR reports it, and what it asks EMR to launch. The
//! ledger's `Cluster` is norris's decision; this is EMR's observation, re-read every time.

use crate::ids::{ClusterKey, SizeClass};
use crate::pool::PoolDefinition;
use crate::time::UnixTime;
use std::collections::BTreeMap;

/// Tag keys norris puts on every cluster it launches (EMR propagates them to the instances).
pub mod tags {
    /// The deployment (`NORRIS_DEPLOYMENT`): IAM conditions and orphan detection use it.
    pub const DEPLOYMENT: &str = "norris:deployment";
    /// The pool (size class) the cluster serves.
    pub const POOL: &str = "norris:pool";
    /// The ledger key of the launch: finds a cluster whose RunJobFlow response was lost.
    pub const LAUNCH_KEY: &str = "norris:launch-key";
    /// The generation within the pool (rotation replaces generation n with n + 1).
    pub const GENERATION: &str = "norris:generation";
    /// Overrides the Livy endpoint (a load balancer in AWS, the Livy stand-in locally).
    pub const LIVY_ENDPOINT: &str = "norris:livy-endpoint";
}

/// EMR's cluster states (`ClusterState` in the EMR API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmrState {
    /// `STARTING`: provisioning instances.
    Starting,
    /// `BOOTSTRAPPING`: running bootstrap actions.
    Bootstrapping,
    /// `RUNNING`: running a step.
    Running,
    /// `WAITING`: up, no step running (how a Livy cluster idles).
    Waiting,
    /// `TERMINATING`: shutting down.
    Terminating,
    /// `TERMINATED`: gone, by request or completion.
    Terminated,
    /// `TERMINATED_WITH_ERRORS`: gone after a failure (spot loss of the primary, bootstrap failure).
    TerminatedWithErrors,
    /// A state this version of norris does not know.
    Other(String),
}

impl EmrState {
    /// From the API's spelling.
    pub fn parse(text: &str) -> EmrState {
        match text {
            "STARTING" => EmrState::Starting,
            "BOOTSTRAPPING" => EmrState::Bootstrapping,
            "RUNNING" => EmrState::Running,
            "WAITING" => EmrState::Waiting,
            "TERMINATING" => EmrState::Terminating,
            "TERMINATED" => EmrState::Terminated,
            "TERMINATED_WITH_ERRORS" => EmrState::TerminatedWithErrors,
            other => EmrState::Other(other.to_string()),
        }
    }

    /// The API's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            EmrState::Starting => "STARTING",
            EmrState::Bootstrapping => "BOOTSTRAPPING",
            EmrState::Running => "RUNNING",
            EmrState::Waiting => "WAITING",
            EmrState::Terminating => "TERMINATING",
            EmrState::Terminated => "TERMINATED",
            EmrState::TerminatedWithErrors => "TERMINATED_WITH_ERRORS",
            EmrState::Other(s) => s,
        }
    }

    /// Up and able to run work (WAITING or RUNNING).
    pub fn is_up(&self) -> bool {
        matches!(self, EmrState::Running | EmrState::Waiting)
    }

    /// Going or gone: nothing on it will finish.
    pub fn is_ending(&self) -> bool {
        matches!(self, EmrState::Terminating | EmrState::Terminated | EmrState::TerminatedWithErrors)
    }
}

/// One cluster as EMR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmrCluster {
    /// EMR's id (`j-…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its state now.
    pub state: EmrState,
    /// Why it is in that state (`StateChangeReason.Code`, e.g. `INSTANCE_FAILURE`), if EMR says.
    pub state_reason: Option<String>,
    /// The primary node's public or private DNS name, once known.
    pub primary_dns: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// When EMR created it.
    pub created_at: Option<UnixTime>,
}

impl EmrCluster {
    /// The ledger key it was launched under, if it is norris's.
    pub fn launch_key(&self) -> Option<ClusterKey> {
        self.tags.get(tags::LAUNCH_KEY).map(ClusterKey::new)
    }

    /// Where its Livy answers: the endpoint tag when set, else the primary node on Livy's port.
    pub fn livy_endpoint(&self) -> Option<String> {
        if let Some(e) = self.tags.get(tags::LIVY_ENDPOINT) {
            return Some(e.clone());
        }
        self.primary_dns.as_ref().map(|dns| format!("http://{dns}:8998"))
    }
}

/// What norris asks EMR to launch: one cluster of a pool, under a ledger key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    /// The ledger key (also the `norris:launch-key` tag): one launch per key, ever.
    pub key: ClusterKey,
    /// The deployment it belongs to.
    pub deployment: String,
    /// Its pool's size class.
    pub size_class: SizeClass,
    /// Its generation within the pool.
    pub generation: u32,
    /// The pool definition (release, fleets, spot settings).
    pub pool: PoolDefinition,
    /// Extra tags (for example the Livy endpoint override in the local world).
    pub extra_tags: BTreeMap<String, String>,
}

impl LaunchRequest {
    /// The cluster's name in the EMR console.
    pub fn name(&self) -> String {
        format!("{}-{}", self.deployment, self.key)
    }

    /// Every tag the cluster carries.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut t = self.extra_tags.clone();
        t.insert(tags::DEPLOYMENT.into(), self.deployment.clone());
        t.insert(tags::POOL.into(), self.size_class.to_string());
        t.insert(tags::LAUNCH_KEY.into(), self.key.to_string());
        t.insert(tags::GENERATION.into(), self.generation.to_string());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_classify() {
        for s in
            ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING", "TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"]
        {
            assert_eq!(EmrState::parse(s).as_str(), s);
        }
        assert_eq!(EmrState::parse("NEW_THING"), EmrState::Other("NEW_THING".into()));
        assert!(EmrState::Waiting.is_up() && !EmrState::Starting.is_up());
        assert!(EmrState::TerminatedWithErrors.is_ending() && !EmrState::Running.is_ending());
    }

    #[test]
    fn livy_endpoint_prefers_the_tag() {
        let mut c = EmrCluster {
            id: "j-1".into(),
            name: "n".into(),
            state: EmrState::Waiting,
            state_reason: None,
            primary_dns: Some("ip-10-0-0-1.ec2.internal".into()),
            tags: BTreeMap::new(),
            created_at: None,
        };
        assert_eq!(c.livy_endpoint().as_deref(), Some("http://ip-10-0-0-1.ec2.internal:8998"));
        c.tags.insert(tags::LIVY_ENDPOINT.into(), "http://127.0.0.1:9001".into());
        assert_eq!(c.livy_endpoint().as_deref(), Some("http://127.0.0.1:9001"));
    }
}
