//! The RunJobFlow request of a launch, built without IO so its shape can be tested here: moto
//! accepts instance fleets but drops them, so nothing downstream would notice a wrong fleet.

use crate::config::EmrLaunchConfig;
use aws_sdk_emr::types::{
    Application, InstanceFleetConfig, InstanceFleetProvisioningSpecifications, InstanceFleetType, InstanceTypeConfig,
    JobFlowInstancesConfig, OnDemandProvisioningAllocationStrategy, OnDemandProvisioningSpecification,
    SpotProvisioningAllocationStrategy, SpotProvisioningSpecification, SpotProvisioningTimeoutAction, Tag,
};
use norris_model::pool::{FleetSpec, PoolDefinition, SpotTimeoutAction};
use std::collections::BTreeMap;

/// The applications every norris cluster runs: Spark, and Livy to submit to it.
pub(crate) const APPLICATIONS: &[&str] = &["Spark", "Livy"];

pub(crate) fn applications() -> Vec<Application> {
    APPLICATIONS.iter().map(|name| Application::builder().name(*name).build()).collect()
}

pub(crate) fn tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn int(value: u32, what: &str) -> Result<i32, String> {
    i32::try_from(value).map_err(|_| format!("{what} is {value}, more than EMR accepts"))
}

/// One instance fleet. The primary fleet is on-demand only, whatever the pool says, and its
/// instance types weigh 1 (EMR's rule for the primary fleet: exactly one node).
fn fleet(kind: InstanceFleetType, name: &str, spec: &FleetSpec) -> Result<InstanceFleetConfig, String> {
    let primary = kind == InstanceFleetType::Master;
    let mut fleet = InstanceFleetConfig::builder().name(name).instance_fleet_type(kind);
    for t in &spec.instance_types {
        let weight = if primary { 1 } else { int(t.weighted_capacity, &format!("{name} {} weight", t.instance_type))? };
        fleet = fleet.instance_type_configs(
            InstanceTypeConfig::builder().instance_type(&t.instance_type).weighted_capacity(weight).build(),
        );
    }
    if primary {
        return Ok(fleet
            .target_on_demand_capacity(int(spec.on_demand_capacity, "primary on-demand capacity")?)
            .build());
    }
    fleet = fleet
        .target_on_demand_capacity(int(spec.on_demand_capacity, &format!("{name} on-demand capacity"))?)
        .target_spot_capacity(int(spec.spot_capacity, &format!("{name} spot capacity"))?);
    if spec.spot_capacity > 0 {
        let Some(spot) = &spec.spot else {
            return Err(format!("the {name} fleet asks for spot capacity without spot settings"));
        };
        let action = match spot.timeout_action {
            SpotTimeoutAction::SwitchToOnDemand => SpotProvisioningTimeoutAction::SwitchToOnDemand,
            SpotTimeoutAction::TerminateCluster => SpotProvisioningTimeoutAction::TerminateCluster,
        };
        fleet = fleet.launch_specifications(
            InstanceFleetProvisioningSpecifications::builder()
                .spot_specification(
                    SpotProvisioningSpecification::builder()
                        .allocation_strategy(SpotProvisioningAllocationStrategy::from(
                            spot.allocation_strategy.as_str(),
                        ))
                        .timeout_duration_minutes(int(spot.timeout_minutes, &format!("{name} spot timeout"))?)
                        .timeout_action(action)
                        .build(),
                )
                .on_demand_specification(
                    OnDemandProvisioningSpecification::builder()
                        .allocation_strategy(OnDemandProvisioningAllocationStrategy::LowestPrice)
                        .build(),
                )
                .build(),
        );
    }
    Ok(fleet.build())
}

/// The `Instances` of RunJobFlow: the pool's fleets in the deployment's network. Kept alive with
/// no steps (Livy batches are not steps) and without termination protection (norris terminates
/// its own clusters on rotation and scale-down). An error names what the pool asks that EMR
/// cannot take.
pub(crate) fn instances(pool: &PoolDefinition, cfg: &EmrLaunchConfig) -> Result<JobFlowInstancesConfig, String> {
    let mut fleets = vec![
        fleet(InstanceFleetType::Master, "primary", &pool.primary)?,
        fleet(InstanceFleetType::Core, "core", &pool.core)?,
    ];
    if let Some(task) = &pool.task {
        fleets.push(fleet(InstanceFleetType::Task, "task", task)?);
    }
    Ok(JobFlowInstancesConfig::builder()
        .set_instance_fleets(Some(fleets))
        .set_ec2_subnet_ids(Some(cfg.subnet_ids.clone()))
        .emr_managed_master_security_group(&cfg.primary_security_group)
        .emr_managed_slave_security_group(&cfg.core_security_group)
        .set_service_access_security_group(cfg.service_access_security_group.clone())
        .set_additional_master_security_groups(cfg.additional_primary_security_group.clone().map(|sg| vec![sg]))
        .keep_job_flow_alive_when_no_steps(true)
        .termination_protected(false)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(task: serde_json::Value) -> PoolDefinition {
        let mut doc = json!({
            "size_class": "small",
            "emr_release": "emr-7.5.0",
            "primary": {"instance_types": [{"instance_type": "m7g.xlarge", "weighted_capacity": 4}, {"instance_type": "m6g.xlarge"}], "on_demand_capacity": 1},
            "core": {"instance_types": [{"instance_type": "m7g.2xlarge", "weighted_capacity": 2}], "on_demand_capacity": 2},
        });
        if !task.is_null() {
            doc["task"] = task;
        }
        PoolDefinition::from_document(&doc).expect("valid pool")
    }

    fn cfg() -> EmrLaunchConfig {
        EmrLaunchConfig {
            service_role: "svc".into(),
            instance_profile: "prof".into(),
            security_configuration: None,
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            primary_security_group: "sg-primary".into(),
            core_security_group: "sg-core".into(),
            service_access_security_group: Some("sg-service".into()),
            additional_primary_security_group: Some("sg-livy".into()),
            log_uri: None,
        }
    }

    #[test]
    fn fleets_follow_the_pool_with_spot_only_where_asked() {
        let p = pool(json!({
            "instance_types": [{"instance_type": "r7g.2xlarge", "weighted_capacity": 2}, {"instance_type": "r6g.2xlarge", "weighted_capacity": 2}],
            "on_demand_capacity": 2,
            "spot_capacity": 6,
            "spot": {"allocation_strategy": "capacity-optimized", "timeout_minutes": 15, "timeout_action": "terminate_cluster"}
        }));
        let i = instances(&p, &cfg()).expect("instances");
        let fleets = i.instance_fleets();
        let kinds: Vec<_> = fleets.iter().map(|f| f.instance_fleet_type().cloned()).collect();
        assert_eq!(
            kinds,
            vec![Some(InstanceFleetType::Master), Some(InstanceFleetType::Core), Some(InstanceFleetType::Task)]
        );

        let primary = &fleets[0];
        assert_eq!(primary.target_on_demand_capacity(), Some(1));
        assert_eq!(primary.target_spot_capacity(), None, "the primary is on-demand only");
        assert!(primary.launch_specifications().is_none());
        let weights: Vec<_> = primary.instance_type_configs().iter().map(|t| t.weighted_capacity()).collect();
        assert_eq!(weights, vec![Some(1), Some(1)], "primary instance types weigh 1");

        let core = &fleets[1];
        assert_eq!((core.target_on_demand_capacity(), core.target_spot_capacity()), (Some(2), Some(0)));
        assert!(core.launch_specifications().is_none(), "no spot, no launch specification");
        assert_eq!(core.instance_type_configs()[0].weighted_capacity(), Some(2));

        let task = &fleets[2];
        assert_eq!((task.target_on_demand_capacity(), task.target_spot_capacity()), (Some(2), Some(6)));
        let types: Vec<_> = task.instance_type_configs().iter().map(|t| t.instance_type()).collect();
        assert_eq!(types, vec![Some("r7g.2xlarge"), Some("r6g.2xlarge")]);
        let launch = task.launch_specifications().expect("launch specification");
        let spot = launch.spot_specification().expect("spot");
        assert_eq!(spot.allocation_strategy(), Some(&SpotProvisioningAllocationStrategy::CapacityOptimized));
        assert_eq!(spot.timeout_duration_minutes(), Some(15));
        assert_eq!(spot.timeout_action(), Some(&SpotProvisioningTimeoutAction::TerminateCluster));
        assert_eq!(spot.block_duration_minutes(), None);
        let on_demand = launch.on_demand_specification().expect("on-demand");
        assert_eq!(on_demand.allocation_strategy(), Some(&OnDemandProvisioningAllocationStrategy::LowestPrice));

        assert_eq!(i.ec2_subnet_ids(), ["subnet-a", "subnet-b"]);
        assert_eq!(i.emr_managed_master_security_group(), Some("sg-primary"));
        assert_eq!(i.emr_managed_slave_security_group(), Some("sg-core"));
        assert_eq!(i.service_access_security_group(), Some("sg-service"));
        assert_eq!(i.additional_master_security_groups(), ["sg-livy"]);
        assert_eq!(i.keep_job_flow_alive_when_no_steps(), Some(true));
        assert_eq!(i.termination_protected(), Some(false));
        assert!(i.instance_groups().is_empty() && i.master_instance_type().is_none());
    }

    #[test]
    fn default_spot_settings_switch_to_on_demand_and_no_task_fleet_means_two_fleets() {
        let p = pool(json!({"instance_types": [{"instance_type": "m7g.xlarge"}], "spot_capacity": 1, "spot": {}}));
        let i = instances(&p, &cfg()).expect("instances");
        let spot = i.instance_fleets()[2].launch_specifications().and_then(|l| l.spot_specification()).expect("spot");
        assert_eq!(spot.allocation_strategy(), Some(&SpotProvisioningAllocationStrategy::PriceCapacityOptimized));
        assert_eq!(spot.timeout_action(), Some(&SpotProvisioningTimeoutAction::SwitchToOnDemand));
        assert_eq!(spot.timeout_duration_minutes(), Some(10));

        let i = instances(&pool(serde_json::Value::Null), &cfg()).expect("instances");
        assert_eq!(i.instance_fleets().len(), 2);
    }

    #[test]
    fn spot_capacity_without_spot_settings_is_refused_by_name() {
        let mut p = pool(serde_json::Value::Null);
        p.core.spot_capacity = 2;
        let err = instances(&p, &cfg()).expect_err("refused");
        assert!(err.contains("core fleet asks for spot capacity"), "{err}");
    }

    #[test]
    fn tags_and_applications() {
        let t = tags(&BTreeMap::from([("norris:pool".to_string(), "small".to_string())]));
        assert_eq!((t[0].key(), t[0].value()), (Some("norris:pool"), Some("small")));
        let names: Vec<_> = applications().iter().map(|a| a.name().map(str::to_string)).collect();
        assert_eq!(names, vec![Some("Spark".to_string()), Some("Livy".to_string())]);
    }
}
