//! The EMR adapter against a real EMR API: the moto server of the local world, reached through
//! the standard `AWS_ENDPOINT_URL`. Each test uses its own deployment name, so the tests can run
//! in parallel against one server that other suites share.
//!
//! What moto 5.2.5 does with EMR, and so what these tests can show: RunJobFlow accepts instance
//! fleets but drops them (no fleets, no instances; ListInstanceFleets answers 500), so the fleet
//! request is checked by the crate's unit tests (`launch.rs`) instead. Clusters are WAITING at
//! once and TERMINATED at once after TerminateJobFlows, with an empty StateChangeReason. Instance
//! groups do get fake EC2 instances, so instance lookup is tested on an instance-group cluster
//! made with the SDK directly. ListClusters pages at 100 clusters.

use aws_sdk_emr::types::{InstanceGroupConfig, InstanceRoleType, JobFlowInstancesConfig, Tag};
use norris_emr::{EmrClient, EmrLaunchConfig};
use norris_model::emr::{tags, EmrState, LaunchRequest};
use norris_model::{ClusterKey, PoolDefinition, SizeClass};
use norris_ports::{EmrError, EmrService, InstancePlacement};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn launch_env() -> HashMap<String, String> {
    [
        ("NORRIS_EMR_SERVICE_ROLE", "norris-emr-service"),
        ("NORRIS_EMR_INSTANCE_PROFILE", "norris-emr-nodes"),
        ("NORRIS_EMR_SECURITY_CONFIGURATION", "norris-emr-security"),
        ("NORRIS_EMR_SUBNET_IDS", "subnet-0a1,subnet-0b2"),
        ("NORRIS_EMR_PRIMARY_SECURITY_GROUP", "sg-0primary"),
        ("NORRIS_EMR_CORE_SECURITY_GROUP", "sg-0core"),
        ("NORRIS_EMR_SERVICE_ACCESS_SECURITY_GROUP", "sg-0service"),
        ("NORRIS_EMR_ADDITIONAL_PRIMARY_SECURITY_GROUP", "sg-0livy"),
        ("NORRIS_EMR_LOG_URI", "s3://norris-logs/emr/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The adapter and a raw SDK client (for what only the wire can show), on the local world.
async fn world() -> (EmrClient, aws_sdk_emr::Client) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "these tests need the local world's moto server: run `make test`, or `make up` and `eval \"$(bash tests/local/world.sh env)\"` (AWS_ENDPOINT_URL is {endpoint:?})"
    );
    let client = norris_emr::client_from_env().await;
    let config = EmrLaunchConfig::from_env_map(&launch_env()).expect("launch config");
    (EmrClient::new(client.clone(), config), client)
}

/// A deployment name no other test (or earlier run against the same server) uses.
fn deployment(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    format!("t{}-{name}", nanos % 1_000_000_000_000)
}

fn pool() -> PoolDefinition {
    PoolDefinition::from_document(&serde_json::json!({
        "size_class": "small",
        "emr_release": "emr-7.5.0",
        "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
        "task": {
            "instance_types": [{"instance_type": "m7g.2xlarge", "weighted_capacity": 2}, {"instance_type": "m6g.2xlarge", "weighted_capacity": 2}],
            "spot_capacity": 4,
            "spot": {"allocation_strategy": "price-capacity-optimized", "timeout_minutes": 10}
        }
    }))
    .expect("valid pool")
}

fn request(deployment: &str, key: &str) -> LaunchRequest {
    LaunchRequest {
        key: ClusterKey::new(key),
        deployment: deployment.to_string(),
        size_class: SizeClass::new("small"),
        generation: 3,
        pool: pool(),
        extra_tags: BTreeMap::from([(tags::LIVY_ENDPOINT.to_string(), "http://127.0.0.1:8998".to_string())]),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

#[tokio::test]
async fn a_launch_is_described_back_with_its_tags_and_found_by_its_key() {
    let (emr, raw) = world().await;
    let d = deployment("launch");
    let req = request(&d, "x-small-g3");
    let id = emr.launch(&req).await.expect("launch");

    let c = emr.describe(&id).await.expect("describe").expect("known");
    assert_eq!(c.id, id);
    assert_eq!(c.name, format!("{d}-x-small-g3"));
    assert_eq!(c.tags, req.tags(), "every tag, the extra ones included");
    assert_eq!(c.launch_key(), Some(ClusterKey::new("x-small-g3")));
    assert_eq!(c.livy_endpoint().as_deref(), Some("http://127.0.0.1:8998"));
    assert!(!c.state.is_ending(), "a fresh cluster is not ending: {:?}", c.state);
    assert_eq!(c.state_reason, None, "moto gives no reason code");
    assert!(c.primary_dns.is_some(), "moto makes up a primary DNS name");
    let created = c.created_at.expect("creation time").secs();
    assert!((now_secs() - created).abs() < 300, "created at {created}, now {}", now_secs());

    // What moto keeps of the request (it drops the fleets and subnets).
    let wire = raw.describe_cluster().cluster_id(&id).send().await.expect("raw describe");
    let wire = wire.cluster().expect("cluster");
    assert_eq!(wire.release_label(), Some("emr-7.5.0"));
    let apps: BTreeSet<_> = wire.applications().iter().filter_map(|a| a.name()).collect();
    assert_eq!(apps, BTreeSet::from(["Spark", "Livy"]));
    assert_eq!(wire.service_role(), Some("norris-emr-service"));
    assert_eq!(wire.security_configuration(), Some("norris-emr-security"));
    assert_eq!(wire.log_uri(), Some("s3://norris-logs/emr/"));
    assert_eq!((wire.auto_terminate(), wire.termination_protected()), (Some(false), Some(false)));
    assert_eq!(wire.visible_to_all_users(), Some(true));
    let ec2 = wire.ec2_instance_attributes().expect("instance attributes");
    assert_eq!(ec2.iam_instance_profile(), Some("norris-emr-nodes"));
    assert_eq!(ec2.emr_managed_master_security_group(), Some("sg-0primary"));
    assert_eq!(ec2.emr_managed_slave_security_group(), Some("sg-0core"));
    assert_eq!(ec2.service_access_security_group(), Some("sg-0service"));
    assert_eq!(ec2.additional_master_security_groups(), ["sg-0livy"]);

    let found = emr.find_by_launch_key(&d, "x-small-g3").await.expect("find").expect("found");
    assert_eq!(found, c);
    assert_eq!(emr.find_by_launch_key(&d, "x-small-g4").await.expect("find"), None);
    // "<d>-x" + "small-g3" spells the same cluster name; its tags say it is not that launch.
    assert_eq!(emr.find_by_launch_key(&format!("{d}-x"), "small-g3").await.expect("find"), None);
}

#[tokio::test]
async fn deployments_are_kept_apart_by_tag_not_just_by_name() {
    let (emr, raw) = world().await;
    let a = deployment("apart");
    // A deployment whose name extends the first one's: its clusters' names start with "<a>-".
    let b = format!("{a}-b");
    let a1 = emr.launch(&request(&a, "small-g1")).await.expect("launch a1");
    let a2 = emr.launch(&request(&a, "small-g2")).await.expect("launch a2");
    let b1 = emr.launch(&request(&b, "small-g1")).await.expect("launch b1");
    // A stray cluster named like one of a's, without norris's tags (launched by hand).
    let stray = raw
        .run_job_flow()
        .name(format!("{a}-stray"))
        .release_label("emr-7.5.0")
        .instances(JobFlowInstancesConfig::builder().keep_job_flow_alive_when_no_steps(true).build())
        .job_flow_role("p")
        .service_role("s")
        .send()
        .await
        .expect("stray launch");
    assert!(stray.job_flow_id().is_some());

    let ids = |cs: Vec<norris_model::EmrCluster>| cs.into_iter().map(|c| c.id).collect::<BTreeSet<_>>();
    assert_eq!(ids(emr.list_deployment_clusters(&a).await.expect("list a")), BTreeSet::from([a1, a2]));
    assert_eq!(ids(emr.list_deployment_clusters(&b).await.expect("list b")), BTreeSet::from([b1]));
    assert!(emr.list_deployment_clusters(&deployment("empty")).await.expect("list none").is_empty());
}

#[tokio::test]
async fn terminate_ends_a_cluster_drops_it_from_the_list_and_can_be_repeated() {
    let (emr, _) = world().await;
    let d = deployment("term");
    let keep = emr.launch(&request(&d, "small-g1")).await.expect("launch");
    let end = emr.launch(&request(&d, "small-g2")).await.expect("launch");
    assert_eq!(emr.list_deployment_clusters(&d).await.expect("list").len(), 2);

    emr.terminate(&end).await.expect("terminate");
    let c = emr.describe(&end).await.expect("describe").expect("still known");
    assert!(matches!(c.state, EmrState::Terminating | EmrState::Terminated), "{:?}", c.state);
    let listed: Vec<String> = emr.list_deployment_clusters(&d).await.expect("list").into_iter().map(|c| c.id).collect();
    assert_eq!(listed, vec![keep]);
    emr.terminate(&end).await.expect("terminating twice is done, not an error");
    // A launch that ended is still the launch of its key.
    let found = emr.find_by_launch_key(&d, "small-g2").await.expect("find").expect("found");
    assert_eq!((found.id, found.state.is_ending()), (end, true));
}

#[tokio::test]
async fn an_unknown_cluster_id_describes_as_none() {
    let (emr, _) = world().await;
    assert_eq!(emr.describe("j-NOSUCHCLUSTER1").await.expect("describe"), None);
}

#[tokio::test]
async fn a_protected_cluster_is_a_rejection_naming_the_operation() {
    let (emr, raw) = world().await;
    let d = deployment("protected");
    let id = emr.launch(&request(&d, "small-g1")).await.expect("launch");
    raw.set_termination_protection().job_flow_ids(&id).termination_protected(true).send().await.expect("protect");
    let err = emr.terminate(&id).await.expect_err("refused");
    assert!(matches!(err, EmrError::Rejected { operation: "TerminateJobFlows", .. }), "{err:?}");
    assert!(err.to_string().contains("termination protected"), "{err}");
    raw.set_termination_protection().job_flow_ids(&id).termination_protected(false).send().await.expect("unprotect");
    emr.terminate(&id).await.expect("terminate");
}

/// moto creates no instances for instance fleets (what norris launches), so lookup is shown on
/// an instance-group cluster, where moto makes fake EC2 instances; the fleet cluster in the list
/// is searched first and has none.
#[tokio::test]
async fn locate_instance_maps_an_instance_to_its_cluster_and_role() {
    let (emr, raw) = world().await;
    let d = deployment("locate");
    let fleet_cluster = emr.launch(&request(&d, "small-g1")).await.expect("launch");
    let group = |role: InstanceRoleType, count: i32| {
        InstanceGroupConfig::builder().instance_role(role).instance_type("m7g.xlarge").instance_count(count).build()
    };
    let groups_cluster = raw
        .run_job_flow()
        .name(format!("{d}-groups"))
        .release_label("emr-7.5.0")
        .instances(
            JobFlowInstancesConfig::builder()
                .instance_groups(group(InstanceRoleType::Master, 1))
                .instance_groups(group(InstanceRoleType::Core, 2))
                .keep_job_flow_alive_when_no_steps(true)
                .build(),
        )
        .job_flow_role("p")
        .service_role("s")
        .tags(Tag::builder().key(tags::DEPLOYMENT).value(&d).build())
        .send()
        .await
        .expect("groups launch")
        .job_flow_id()
        .expect("id")
        .to_string();

    // Which instance is the primary, told by its group, not by the filter the adapter uses.
    let groups = raw.list_instance_groups().cluster_id(&groups_cluster).send().await.expect("groups");
    let master_group = groups
        .instance_groups()
        .iter()
        .find(|g| g.instance_group_type().map(|t| t.as_str()) == Some("MASTER"))
        .and_then(|g| g.id())
        .expect("master group")
        .to_string();
    let instances = raw.list_instances().cluster_id(&groups_cluster).send().await.expect("instances");
    let (primary, core): (Vec<_>, Vec<_>) =
        instances.instances().iter().partition(|i| i.instance_group_id() == Some(master_group.as_str()));
    assert_eq!((primary.len(), core.len()), (1, 2), "moto made one primary and two core instances");
    let primary_ec2 = primary[0].ec2_instance_id().expect("ec2 id");
    let core_ec2 = core[1].ec2_instance_id().expect("ec2 id");

    let both = vec![fleet_cluster.clone(), groups_cluster.clone()];
    assert_eq!(
        emr.locate_instance(&both, primary_ec2).await.expect("locate"),
        Some(InstancePlacement { cluster_id: groups_cluster.clone(), primary: true })
    );
    assert_eq!(
        emr.locate_instance(&both, core_ec2).await.expect("locate"),
        Some(InstancePlacement { cluster_id: groups_cluster.clone(), primary: false })
    );
    assert_eq!(emr.locate_instance(&both, "i-0123456789abcdef0").await.expect("locate"), None);
    assert_eq!(emr.locate_instance(&[fleet_cluster], primary_ec2).await.expect("locate"), None, "not in that cluster");
}

/// ListClusters answers in pages (moto's are 100 clusters): a deployment with more clusters
/// than one page must still be listed whole.
#[tokio::test]
async fn listing_reads_every_page() {
    let (emr, raw) = world().await;
    let d = deployment("pages");
    let mut launched = BTreeSet::new();
    for n in 0..101 {
        launched.insert(emr.launch(&request(&d, &format!("small-g{n}"))).await.expect("launch"));
    }
    let listed: BTreeSet<String> =
        emr.list_deployment_clusters(&d).await.expect("list").into_iter().map(|c| c.id).collect();
    assert_eq!(listed.len(), 101);
    assert_eq!(listed, launched);
    // Leave the shared server as few live clusters as possible.
    let ids: Vec<String> = launched.into_iter().collect();
    for chunk in ids.chunks(10) {
        raw.terminate_job_flows().set_job_flow_ids(Some(chunk.to_vec())).send().await.expect("terminate");
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_naming_the_operation() {
    // A port nothing listens on, and no SDK retries, so the test is quick.
    let config = aws_sdk_emr::Config::builder()
        .behavior_version(aws_sdk_emr::config::BehaviorVersion::latest())
        .region(aws_sdk_emr::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_emr::config::Credentials::new("local", "local", None, None, "test"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_sdk_emr::config::retry::RetryConfig::disabled())
        .build();
    let emr = EmrClient::new(
        aws_sdk_emr::Client::from_conf(config),
        EmrLaunchConfig::from_env_map(&launch_env()).expect("config"),
    );
    let err = emr.describe("j-1").await.expect_err("unreachable");
    assert!(matches!(err, EmrError::Unavailable { operation: "DescribeCluster", .. }), "{err:?}");
    let err = emr.launch(&request("d", "k")).await.expect_err("unreachable");
    assert!(matches!(err, EmrError::Unavailable { operation: "RunJobFlow", .. }), "{err:?}");
    assert!(!err.to_string().contains("local-world") && !err.to_string().contains("\"local\""), "{err}");
}

#[test]
fn a_launch_config_with_missing_variables_names_each_of_them() {
    let mut env = launch_env();
    for key in ["NORRIS_EMR_SERVICE_ROLE", "NORRIS_EMR_SUBNET_IDS", "NORRIS_EMR_CORE_SECURITY_GROUP"] {
        env.remove(key);
    }
    let err = EmrLaunchConfig::from_env_map(&env).expect_err("invalid");
    assert_eq!(err.0.len(), 3, "{err}");
    for key in ["NORRIS_EMR_SERVICE_ROLE", "NORRIS_EMR_SUBNET_IDS", "NORRIS_EMR_CORE_SECURITY_GROUP"] {
        assert!(err.to_string().contains(&format!("{key} is required")), "{key}: {err}");
    }
}
