//! Pools: one per size class, the recipe for launching its clusters and the bounds on them.

use crate::document::{join, DefinitionError, Reader};
use crate::ids::{check_id_text, SizeClass};
use serde_json::{json, Map, Value};

/// What to do when spot capacity cannot be had within the provisioning timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotTimeoutAction {
    /// Fall back to on-demand (only at launch: EMR does not replace spot lost later).
    SwitchToOnDemand,
    /// Give up the launch.
    TerminateCluster,
}

/// Spot settings of a fleet. No max price on purpose (AWS advises against one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotSpec {
    /// EMR allocation strategy, e.g. `price-capacity-optimized`.
    pub allocation_strategy: String,
    /// Provisioning timeout, 5 to 1440 minutes.
    pub timeout_minutes: u32,
    /// What happens at the timeout.
    pub timeout_action: SpotTimeoutAction,
}

/// One instance type a fleet may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTypeSpec {
    /// EC2 instance type, e.g. `m6g.xlarge`.
    pub instance_type: String,
    /// Units of capacity one instance counts for.
    pub weighted_capacity: u32,
}

/// An EMR instance fleet: a capacity target split between on-demand and spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSpec {
    /// Candidate instance types (up to 30).
    pub instance_types: Vec<InstanceTypeSpec>,
    /// On-demand capacity units.
    pub on_demand_capacity: u32,
    /// Spot capacity units.
    pub spot_capacity: u32,
    /// Spot settings, required when `spot_capacity > 0`.
    pub spot: Option<SpotSpec>,
}

/// A size class's pool definition (operator-owned document in the pools table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDefinition {
    /// The size class jobs ask for.
    pub size_class: SizeClass,
    /// EMR release label, e.g. `emr-7.5.0`.
    pub emr_release: String,
    /// Primary node fleet: on-demand only, since its loss ends the cluster.
    pub primary: FleetSpec,
    /// Core fleet (HDFS, YARN).
    pub core: FleetSpec,
    /// Optional task fleet (compute only, the natural home of spot).
    pub task: Option<FleetSpec>,
    /// Clusters older than this are rotated.
    pub max_age_secs: i64,
    /// Clusters kept even without work.
    pub min_clusters: u32,
    /// Upper bound on clusters of this size.
    pub max_clusters: u32,
    /// Batches one cluster runs at once (each costs a spark-submit JVM on the primary node).
    pub max_concurrent_batches: u32,
    /// A cluster with no work for this long is scaled down (above `min_clusters`).
    pub idle_scale_down_secs: i64,
}

const POOL_FIELDS: &[&str] = &[
    "size_class",
    "emr_release",
    "primary",
    "core",
    "task",
    "max_age_secs",
    "min_clusters",
    "max_clusters",
    "max_concurrent_batches",
    "idle_scale_down_secs",
];

impl PoolDefinition {
    /// Parses and validates a pool document, collecting every problem.
    pub fn from_document(doc: &Value) -> Result<PoolDefinition, DefinitionError> {
        let id = doc.get("size_class").and_then(Value::as_str).unwrap_or("<no size_class>").to_string();
        let mut r = Reader::default();
        let parsed = parse_pool(&mut r, doc);
        match parsed {
            Some(p) if r.is_clean() => Ok(p),
            _ => Err(DefinitionError { id, problems: r.into_problems() }),
        }
    }

    /// The document form, as stored in the pools table.
    pub fn to_document(&self) -> Value {
        let mut doc = json!({
            "size_class": self.size_class.as_str(),
            "emr_release": self.emr_release,
            "primary": fleet_doc(&self.primary),
            "core": fleet_doc(&self.core),
            "max_age_secs": self.max_age_secs,
            "min_clusters": self.min_clusters,
            "max_clusters": self.max_clusters,
            "max_concurrent_batches": self.max_concurrent_batches,
            "idle_scale_down_secs": self.idle_scale_down_secs,
        });
        if let Some(task) = &self.task {
            doc["task"] = fleet_doc(task);
        }
        doc
    }
}

fn fleet_doc(f: &FleetSpec) -> Value {
    let mut doc = json!({
        "instance_types": f.instance_types.iter().map(|t| json!({"instance_type": t.instance_type, "weighted_capacity": t.weighted_capacity})).collect::<Vec<_>>(),
        "on_demand_capacity": f.on_demand_capacity,
        "spot_capacity": f.spot_capacity,
    });
    if let Some(s) = &f.spot {
        doc["spot"] = json!({
            "allocation_strategy": s.allocation_strategy,
            "timeout_minutes": s.timeout_minutes,
            "timeout_action": match s.timeout_action {
                SpotTimeoutAction::SwitchToOnDemand => "switch_to_on_demand",
                SpotTimeoutAction::TerminateCluster => "terminate_cluster",
            },
        });
    }
    doc
}

fn parse_pool(r: &mut Reader, doc: &Value) -> Option<PoolDefinition> {
    let obj = r.object(doc, "")?;
    r.unknown_keys(obj, "", POOL_FIELDS);
    let size_class = r.required(obj, "", "size_class").and_then(|v| r.string(v, "size_class"));
    if let Some(sc) = &size_class {
        if let Err(reason) = check_id_text(sc) {
            r.problem("size_class", reason);
        }
    }
    let emr_release = r.required(obj, "", "emr_release").and_then(|v| r.string(v, "emr_release"));
    if let Some(rel) = &emr_release {
        if !rel.starts_with("emr-") {
            r.problem("emr_release", format!("must be an EMR release label like emr-7.5.0, is {rel:?}"));
        }
    }
    let primary = r.required(obj, "", "primary").and_then(|v| parse_fleet(r, v, "primary"));
    // Checked on the raw document too, so the rule is reported even when the fleet has other errors.
    let raw_primary = obj.get("primary");
    let raw_count = |key: &str| raw_primary.and_then(|p| p.get(key)).and_then(Value::as_i64).unwrap_or(0);
    if raw_primary.is_some_and(Value::is_object)
        && (raw_count("spot_capacity") > 0 || raw_count("on_demand_capacity") != 1)
    {
        r.problem("primary", "the primary fleet must be exactly 1 on-demand unit: losing it ends the cluster");
    }
    let core = r.required(obj, "", "core").and_then(|v| parse_fleet(r, v, "core"));
    let task = match r.optional(obj, "task") {
        Some(v) => parse_fleet(r, v, "task").map(Some),
        None => Some(None),
    };
    let num = |r: &mut Reader, key: &str, min: i64, max: i64, default: i64| match r.optional(obj, key) {
        Some(v) => r.integer(v, key, min, max),
        None => Some(default),
    };
    let max_age_secs = num(r, "max_age_secs", 3600, 30 * 86_400, 86_400);
    let min_clusters = num(r, "min_clusters", 0, 100, 1);
    let max_clusters = num(r, "max_clusters", 1, 100, 4);
    let max_concurrent_batches = num(r, "max_concurrent_batches", 1, 200, 8);
    let idle_scale_down_secs = num(r, "idle_scale_down_secs", 60, 7 * 86_400, 1800);
    if let (Some(lo), Some(hi)) = (min_clusters, max_clusters) {
        if hi < lo {
            r.problem("max_clusters", format!("must be at least min_clusters ({lo}), is {hi}"));
        }
    }
    Some(PoolDefinition {
        size_class: SizeClass::new(size_class?),
        emr_release: emr_release?,
        primary: primary?,
        core: core?,
        task: task?,
        max_age_secs: max_age_secs?,
        min_clusters: min_clusters? as u32,
        max_clusters: max_clusters? as u32,
        max_concurrent_batches: max_concurrent_batches? as u32,
        idle_scale_down_secs: idle_scale_down_secs?,
    })
}

fn parse_fleet(r: &mut Reader, v: &Value, path: &str) -> Option<FleetSpec> {
    let obj: &Map<String, Value> = r.object(v, path)?;
    r.unknown_keys(obj, path, &["instance_types", "on_demand_capacity", "spot_capacity", "spot"]);
    let types_path = join(path, "instance_types");
    let instance_types = r.required(obj, path, "instance_types").and_then(|v| match v {
        Value::Array(items) if (1..=30).contains(&items.len()) => {
            let out: Vec<Option<InstanceTypeSpec>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let p = format!("{types_path}[{i}]");
                    let o = r.object(item, &p)?;
                    r.unknown_keys(o, &p, &["instance_type", "weighted_capacity"]);
                    let t = r.required(o, &p, "instance_type").and_then(|v| r.string(v, &join(&p, "instance_type")));
                    let w = match r.optional(o, "weighted_capacity") {
                        Some(v) => r.integer(v, &join(&p, "weighted_capacity"), 1, 1000),
                        None => Some(1),
                    };
                    Some(InstanceTypeSpec { instance_type: t?, weighted_capacity: w? as u32 })
                })
                .collect();
            out.into_iter().collect::<Option<Vec<_>>>()
        }
        Value::Array(items) => {
            r.problem(&types_path, format!("must list 1 to 30 instance types, lists {}", items.len()));
            None
        }
        _ => {
            r.problem(&types_path, "must be a list of {instance_type, weighted_capacity}");
            None
        }
    });
    let on_demand = match r.optional(obj, "on_demand_capacity") {
        Some(v) => r.integer(v, &join(path, "on_demand_capacity"), 0, 10_000),
        None => Some(0),
    };
    let spot_capacity = match r.optional(obj, "spot_capacity") {
        Some(v) => r.integer(v, &join(path, "spot_capacity"), 0, 10_000),
        None => Some(0),
    };
    let spot = match r.optional(obj, "spot") {
        Some(v) => parse_spot(r, v, &join(path, "spot")).map(Some),
        None => Some(None),
    };
    if let (Some(0), Some(0)) = (on_demand, spot_capacity) {
        r.problem(path, "must ask for some capacity (on_demand_capacity or spot_capacity)");
    }
    if let (Some(sc), Some(None)) = (spot_capacity, &spot) {
        if sc > 0 {
            r.problem(join(path, "spot"), "is required when spot_capacity > 0");
        }
    }
    Some(FleetSpec {
        instance_types: instance_types?,
        on_demand_capacity: on_demand? as u32,
        spot_capacity: spot_capacity? as u32,
        spot: spot?,
    })
}

fn parse_spot(r: &mut Reader, v: &Value, path: &str) -> Option<SpotSpec> {
    let obj = r.object(v, path)?;
    r.unknown_keys(obj, path, &["allocation_strategy", "timeout_minutes", "timeout_action", "max_price"]);
    if obj.contains_key("max_price") {
        r.problem(join(path, "max_price"), "is not supported: a spot max price only raises interruptions");
    }
    let strategy = match r.optional(obj, "allocation_strategy") {
        Some(v) => r.string(v, &join(path, "allocation_strategy")),
        None => Some("price-capacity-optimized".to_string()),
    };
    if let Some(s) = &strategy {
        const KNOWN: &[&str] = &[
            "price-capacity-optimized",
            "capacity-optimized",
            "capacity-optimized-prioritized",
            "lowest-price",
            "diversified",
        ];
        if !KNOWN.contains(&s.as_str()) {
            r.problem(join(path, "allocation_strategy"), format!("must be one of {}, is {s:?}", KNOWN.join(", ")));
        }
    }
    let timeout = match r.optional(obj, "timeout_minutes") {
        Some(v) => r.integer(v, &join(path, "timeout_minutes"), 5, 1440),
        None => Some(10),
    };
    let action = match r.optional(obj, "timeout_action").map(|v| r.string(v, &join(path, "timeout_action"))) {
        None => Some(SpotTimeoutAction::SwitchToOnDemand),
        Some(None) => None,
        Some(Some(s)) => match s.as_str() {
            "switch_to_on_demand" => Some(SpotTimeoutAction::SwitchToOnDemand),
            "terminate_cluster" => Some(SpotTimeoutAction::TerminateCluster),
            other => {
                r.problem(
                    join(path, "timeout_action"),
                    format!("must be switch_to_on_demand or terminate_cluster, is {other:?}"),
                );
                None
            }
        },
    };
    Some(SpotSpec { allocation_strategy: strategy?, timeout_minutes: timeout? as u32, timeout_action: action? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "size_class": "small",
            "emr_release": "emr-7.5.0",
            "primary": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
            "core": {"instance_types": [{"instance_type": "m7g.xlarge"}], "on_demand_capacity": 1},
            "task": {
                "instance_types": [{"instance_type": "m7g.2xlarge", "weighted_capacity": 2}, {"instance_type": "m6g.2xlarge", "weighted_capacity": 2}],
                "spot_capacity": 4,
                "spot": {"allocation_strategy": "price-capacity-optimized", "timeout_minutes": 10}
            },
            "max_age_secs": 86400
        })
    }

    #[test]
    fn a_pool_round_trips() {
        let pool = PoolDefinition::from_document(&doc()).expect("valid");
        assert_eq!(pool.task.as_ref().map(|t| t.spot_capacity), Some(4));
        assert_eq!(PoolDefinition::from_document(&pool.to_document()), Ok(pool));
    }

    #[test]
    fn spot_primary_and_max_price_are_refused_with_reasons() {
        let mut d = doc();
        d["primary"]["spot_capacity"] = json!(1);
        d["primary"]["spot"] = json!({"timeout_minutes": 2, "max_price": "0.1"});
        let err = PoolDefinition::from_document(&d).expect_err("invalid");
        let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"primary"), "{paths:?}");
        assert!(paths.contains(&"primary.spot.max_price"), "{paths:?}");
        assert!(paths.contains(&"primary.spot.timeout_minutes"), "{paths:?}");
    }
}
