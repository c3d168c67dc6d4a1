//! `EmrService` on the EMR API.

use crate::config::EmrLaunchConfig;
use crate::launch;
use aws_sdk_emr::config::http::HttpResponse;
use aws_sdk_emr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_emr::types::{Cluster, ClusterState, InstanceFleetType, InstanceGroupType};
use aws_sdk_emr::Client;
use norris_model::emr::tags;
use norris_model::emr::{EmrCluster, EmrState, LaunchRequest};
use norris_model::UnixTime;
use norris_ports::{EmrError, EmrService, InstancePlacement};
use std::collections::BTreeMap;

/// EMR as norris uses it, for one deployment's launch settings.
#[derive(Debug, Clone)]
pub struct EmrClient {
    client: Client,
    config: EmrLaunchConfig,
}

impl EmrClient {
    /// A client over `client` that launches with `config`.
    pub fn new(client: Client, config: EmrLaunchConfig) -> Self {
        EmrClient { client, config }
    }

    /// The launch settings in use.
    pub fn config(&self) -> &EmrLaunchConfig {
        &self.config
    }
}

/// Error codes that mean "not now" rather than "not this request". EMR's JSON protocol names
/// throttling `ThrottlingException`; the others are the SDK's and AWS's common spellings.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Whether a service error is worth trying again: a transient code, or any 5xx (moto answers an
/// operation it does not implement with a bare 500, which is what an outage looks like too).
fn is_transient(code: Option<&str>, status: Option<u16>) -> bool {
    code.is_some_and(|c| TRANSIENT_CODES.contains(&c)) || status.is_some_and(|s| s >= 500 || s == 429)
}

/// Maps an SDK error (after the SDK's own retries) to the port's error. The message is the SDK's
/// error chain: error code, EMR's message and request id, never credentials.
fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> EmrError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(se) if !is_transient(se.err().code(), Some(se.raw().status().as_u16())) => {
            EmrError::Rejected { operation, message }
        }
        // A request the SDK could not even build will not build next time either.
        SdkError::ConstructionFailure(_) => EmrError::Rejected { operation, message },
        // Timeouts, dispatch failures, unreadable responses, transient service errors.
        _ => EmrError::Unavailable { operation, message },
    }
}

/// EMR's answer for a cluster id it does not know (or no longer shows: it keeps terminated
/// clusters for about two months). Real EMR says `InvalidRequestException: Cluster id 'j-…' is not
/// valid.` (moto the same, with error code `NoSuchCluster`); a malformed id draws a
/// `ValidationException` with "is not valid" too.
fn is_unknown_cluster<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    let SdkError::ServiceError(se) = err else { return false };
    let e = se.err();
    matches!(e.code(), Some("InvalidRequestException" | "ValidationException"))
        && e.message().is_some_and(|m| m.contains("is not valid") || m.contains("does not exist"))
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// EMR's description in norris's terms. A missing id or name (EMR always sends both) reads as
/// empty rather than failing the whole answer.
fn to_cluster(c: &Cluster, asked_id: &str) -> EmrCluster {
    let status = c.status();
    EmrCluster {
        id: non_empty(c.id()).unwrap_or_else(|| asked_id.to_string()),
        name: c.name().unwrap_or_default().to_string(),
        state: EmrState::parse(status.and_then(|s| s.state()).map(ClusterState::as_str).unwrap_or("")),
        state_reason: non_empty(
            status.and_then(|s| s.state_change_reason()).and_then(|r| r.code()).map(|code| code.as_str()),
        ),
        primary_dns: non_empty(c.master_public_dns_name()),
        tags: c
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect::<BTreeMap<_, _>>(),
        created_at: status.and_then(|s| s.timeline()).and_then(|t| t.creation_date_time()).map(|d| UnixTime(d.secs())),
    }
}

/// The states of a cluster that may still cost money or hold work.
const LIVE_STATES: &[ClusterState] = &[
    ClusterState::Starting,
    ClusterState::Bootstrapping,
    ClusterState::Running,
    ClusterState::Waiting,
    ClusterState::Terminating,
];

impl EmrClient {
    /// Ids of the clusters whose name passes `keep`, over every page of ListClusters (in
    /// `states`, or all states when empty). The summary carries the name but not the tags.
    async fn cluster_ids_named(
        &self,
        states: &[ClusterState],
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, EmrError> {
        let mut pages = self
            .client
            .list_clusters()
            .set_cluster_states((!states.is_empty()).then(|| states.to_vec()))
            .into_paginator()
            .send();
        let mut ids = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListClusters", e))?;
            for summary in page.clusters() {
                if let (Some(id), Some(name)) = (summary.id(), summary.name()) {
                    if keep(name) {
                        ids.push(id.to_string());
                    }
                }
            }
        }
        Ok(ids)
    }

    /// DescribeCluster; `None` when EMR does not know the id.
    async fn describe_cluster(&self, id: &str) -> Result<Option<EmrCluster>, EmrError> {
        match self.client.describe_cluster().cluster_id(id).send().await {
            Ok(out) => Ok(out.cluster().map(|c| to_cluster(c, id))),
            Err(e) if is_unknown_cluster(&e) => Ok(None),
            Err(e) => Err(classify("DescribeCluster", e)),
        }
    }

    /// Every instance of a cluster (all states: an interruption event may be handled after the
    /// instance is gone), as (EC2 instance id, instance fleet id, instance group id). `None` when
    /// EMR does not know the cluster.
    async fn instances(
        &self,
        cluster_id: &str,
        filter: Option<RoleFilter>,
    ) -> Result<Option<Vec<(String, Option<String>, Option<String>)>>, EmrError> {
        let mut req = self.client.list_instances().cluster_id(cluster_id);
        req = match filter {
            None => req,
            Some(RoleFilter::PrimaryFleet) => req.instance_fleet_type(InstanceFleetType::Master),
            Some(RoleFilter::PrimaryGroup) => req.instance_group_types(InstanceGroupType::Master),
        };
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) if is_unknown_cluster(&e) => return Ok(None),
                Err(e) => return Err(classify("ListInstances", e)),
            };
            for i in page.instances() {
                if let Some(ec2) = i.ec2_instance_id() {
                    out.push((ec2.to_string(), non_empty(i.instance_fleet_id()), non_empty(i.instance_group_id())));
                }
            }
        }
        Ok(Some(out))
    }
}

/// How to ask ListInstances for a cluster's primary node(s).
#[derive(Debug, Clone, Copy)]
enum RoleFilter {
    /// Instance-fleet clusters (what norris launches).
    PrimaryFleet,
    /// Instance-group clusters (launched by hand, or by moto, which drops fleets).
    PrimaryGroup,
}

/// Of several clusters launched under one key (RunJobFlow retried after a lost response), the one
/// to adopt: a live one before an ended one, then the oldest, then by id, so every caller picks
/// the same and the others show up as orphans.
fn preferred(mut found: Vec<EmrCluster>) -> Option<EmrCluster> {
    found.sort_by(|a, b| {
        (a.state.is_ending(), a.created_at.unwrap_or(UnixTime(i64::MAX)), &a.id).cmp(&(
            b.state.is_ending(),
            b.created_at.unwrap_or(UnixTime(i64::MAX)),
            &b.id,
        ))
    });
    found.into_iter().next()
}

impl EmrService for EmrClient {
    async fn launch(&self, request: &LaunchRequest) -> Result<String, EmrError> {
        const OP: &str = "RunJobFlow";
        let pool = &request.pool;
        let instances = launch::instances(pool, &self.config).map_err(|message| EmrError::Rejected {
            operation: OP,
            message: format!("pool {}: {message}", pool.size_class),
        })?;
        let out = self
            .client
            .run_job_flow()
            .name(request.name())
            .release_label(&pool.emr_release)
            .set_applications(Some(launch::applications()))
            .instances(instances)
            .service_role(&self.config.service_role)
            .job_flow_role(&self.config.instance_profile)
            .set_security_configuration(self.config.security_configuration.clone())
            .set_log_uri(self.config.log_uri.clone())
            .set_tags(Some(launch::tags(&request.tags())))
            .visible_to_all_users(true)
            // RunJobFlow has no client token: an SDK retry after a timeout or a 5xx can start a
            // second cluster. No retries here; the caller looks the key up before launching again.
            .customize()
            .config_override(
                aws_sdk_emr::config::Builder::default()
                    .retry_config(aws_sdk_emr::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        match out.job_flow_id() {
            Some(id) if !id.is_empty() => {
                tracing::info!(cluster_id = id, name = %request.name(), pool = %pool.size_class, "launched EMR cluster");
                Ok(id.to_string())
            }
            // The cluster may exist all the same: the caller finds it by its key.
            _ => Err(EmrError::Unavailable { operation: OP, message: "the answer carried no cluster id".into() }),
        }
    }

    async fn find_by_launch_key(&self, deployment: &str, key: &str) -> Result<Option<EmrCluster>, EmrError> {
        let name = format!("{deployment}-{key}");
        // All states: a launch that failed (or was terminated) is still the launch of this key.
        let ids = self.cluster_ids_named(&[], |n| n == name).await?;
        let mut found = Vec::new();
        for id in ids {
            // The name is ambiguous ("a-b" + "c" and "a" + "b-c"): the tags decide.
            if let Some(c) = self.describe_cluster(&id).await? {
                if c.tags.get(tags::LAUNCH_KEY).map(String::as_str) == Some(key)
                    && c.tags.get(tags::DEPLOYMENT).map(String::as_str) == Some(deployment)
                {
                    found.push(c);
                }
            }
        }
        if found.len() > 1 {
            let ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
            tracing::warn!(deployment, key, ?ids, "several EMR clusters carry one launch key");
        }
        Ok(preferred(found))
    }

    async fn describe(&self, id: &str) -> Result<Option<EmrCluster>, EmrError> {
        self.describe_cluster(id).await
    }

    async fn list_deployment_clusters(&self, deployment: &str) -> Result<Vec<EmrCluster>, EmrError> {
        let prefix = format!("{deployment}-");
        let ids = self.cluster_ids_named(LIVE_STATES, |n| n.starts_with(&prefix)).await?;
        // One at a time: DescribeCluster has a low request rate limit, and a deployment runs tens
        // of clusters, not thousands.
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(c) = self.describe_cluster(&id).await? {
                let ours = c.tags.get(tags::DEPLOYMENT).map(String::as_str) == Some(deployment);
                let gone = matches!(c.state, EmrState::Terminated | EmrState::TerminatedWithErrors);
                if ours && !gone {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    async fn terminate(&self, id: &str) -> Result<(), EmrError> {
        // EMR accepts TerminateJobFlows on a terminating or terminated cluster; an id it no longer
        // knows is as gone as it gets.
        match self.client.terminate_job_flows().job_flow_ids(id).send().await {
            Ok(_) => {
                tracing::info!(cluster_id = id, "terminating EMR cluster");
                Ok(())
            }
            Err(e) if is_unknown_cluster(&e) => Ok(()),
            Err(e) => Err(classify("TerminateJobFlows", e)),
        }
    }

    async fn locate_instance(
        &self,
        cluster_ids: &[String],
        instance_id: &str,
    ) -> Result<Option<InstancePlacement>, EmrError> {
        for cluster_id in cluster_ids {
            let Some(instances) = self.instances(cluster_id, None).await? else { continue };
            let Some((_, fleet, group)) = instances.into_iter().find(|(ec2, _, _)| ec2 == instance_id) else {
                continue;
            };
            // The instance's fleet (or group) id says which filter finds the primary: ListInstances
            // with InstanceFleetType=MASTER, or InstanceGroupTypes=[MASTER]. Checked against moto
            // 5.2.5: it drops instance fleets (no fleets, no instances, ListInstanceFleets answers
            // 500) and ignores the InstanceFleetType filter, but creates instances for instance
            // groups and honours InstanceGroupTypes; so the group path is tested there and the
            // fleet path only against EMR's documented API.
            let filter = match (fleet, group) {
                (Some(_), _) => RoleFilter::PrimaryFleet,
                (None, Some(_)) => RoleFilter::PrimaryGroup,
                (None, None) => {
                    tracing::warn!(cluster_id = %cluster_id, instance_id, "EMR instance without fleet or group");
                    return Ok(Some(InstancePlacement { cluster_id: cluster_id.clone(), primary: false }));
                }
            };
            let primaries = self.instances(cluster_id, Some(filter)).await?.unwrap_or_default();
            let primary = primaries.iter().any(|(ec2, _, _)| ec2 == instance_id);
            return Ok(Some(InstancePlacement { cluster_id: cluster_id.clone(), primary }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_transient_validation_and_denial_are_not() {
        assert!(is_transient(Some("ThrottlingException"), Some(400)));
        assert!(is_transient(None, Some(503)));
        assert!(is_transient(Some("InternalServerException"), Some(500)));
        assert!(!is_transient(Some("ValidationException"), Some(400)));
        assert!(!is_transient(Some("AccessDeniedException"), Some(400)));
        assert!(!is_transient(Some("InvalidRequestException"), Some(400)));
    }

    fn cluster(id: &str, state: EmrState, created: i64) -> EmrCluster {
        EmrCluster {
            id: id.into(),
            name: "d-k".into(),
            state,
            state_reason: None,
            primary_dns: None,
            tags: BTreeMap::new(),
            created_at: Some(UnixTime(created)),
        }
    }

    #[test]
    fn of_duplicate_launches_the_live_oldest_is_adopted() {
        let pick = preferred(vec![
            cluster("j-3", EmrState::Waiting, 30),
            cluster("j-1", EmrState::TerminatedWithErrors, 10),
            cluster("j-2", EmrState::Starting, 20),
        ]);
        assert_eq!(pick.map(|c| c.id), Some("j-2".to_string()));
        assert_eq!(preferred(Vec::new()), None);
    }
}
