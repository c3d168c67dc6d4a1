//! Definition documents ↔ DynamoDB attribute values. Definitions are plain attributes (S, N, BOOL,
//! L, M) so a person can read and edit them in the console; anything else is reported as a
//! problem with its field path rather than dropped.

use aws_sdk_dynamodb::types::AttributeValue;
use norris_model::FieldProblem;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Translates one attribute value to JSON, recording what cannot be translated under `path`.
pub fn attribute_to_json(av: &AttributeValue, path: &str, problems: &mut Vec<FieldProblem>) -> Value {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match av {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n).unwrap_or_else(|| {
            problems.push(FieldProblem { path: path.into(), reason: format!("is not a usable number: {n}") });
            Value::Null
        }),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| attribute_to_json(item, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute_to_json(v, &child(k), problems))).collect())
        }
        AttributeValue::Ss(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(items) => Value::Array(items.iter().map(|n| number(n).unwrap_or(Value::Null)).collect()),
        _ => {
            problems.push(FieldProblem {
                path: path.into(),
                reason: "has a binary or unknown attribute type; use a string, number, boolean, list or map".into(),
            });
            Value::Null
        }
    }
}

fn number(n: &str) -> Option<Value> {
    if let Ok(i) = n.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    n.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
}

/// Translates JSON to an attribute value (numbers as N, maps as M, lists as L).
pub fn json_to_attribute(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(json_to_attribute).collect()),
        Value::Object(m) => AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), json_to_attribute(v))).collect()),
    }
}

/// A whole item as a JSON document, with the problems found translating it.
pub(crate) fn item_to_document(item: &HashMap<String, AttributeValue>) -> (Value, Vec<FieldProblem>) {
    let mut problems = Vec::new();
    let doc: Map<String, Value> =
        item.iter().map(|(k, v)| (k.clone(), attribute_to_json(v, k, &mut problems))).collect();
    (Value::Object(doc), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_round_trip_through_attribute_values() {
        let doc = json!({"a": "x", "n": 300, "f": 1.5, "b": true, "l": ["id", 2], "m": {"k": "v"}});
        let AttributeValue::M(item) = json_to_attribute(&doc) else { panic!("a map") };
        let (back, problems) = item_to_document(&item);
        assert!(problems.is_empty());
        assert_eq!(back, doc);
    }

    #[test]
    fn a_binary_attribute_is_a_problem_at_its_path() {
        let item = HashMap::from([(
            "source".to_string(),
            AttributeValue::M(HashMap::from([(
                "table".to_string(),
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![1])),
            )])),
        )]);
        let (_, problems) = item_to_document(&item);
        assert_eq!(problems[0].path, "source.table");
    }
}
