//! Reading human-written documents: every problem is collected with its field path and a reason,
//! so one look at an error tells the operator everything to fix, not just the first mistake.

use serde_json::{Map, Value};
use std::fmt;

/// One thing wrong with a definition: where (`source.primary_key[1]`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path of the field, with `[i]` for list positions; empty for the document itself.
    pub path: String,
    /// What is wrong, in words an operator can act on.
    pub reason: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// A definition that could not be accepted, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid definition {id}: {}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct DefinitionError {
    /// The item's key as written (it may itself be the problem).
    pub id: String,
    /// Every problem found, in document order.
    pub problems: Vec<FieldProblem>,
}

/// Collects problems while reading a document. Readers return `None` for a missing or bad value
/// and record why; the caller turns a non-empty list into a [`DefinitionError`].
#[derive(Debug, Default)]
pub struct Reader {
    problems: Vec<FieldProblem>,
}

/// Joins a parent path and a key.
pub fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl Reader {
    /// Records a problem at `path`.
    pub fn problem(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(FieldProblem { path: path.into(), reason: reason.into() });
    }

    /// True when nothing was wrong so far.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems found, consuming the reader.
    pub fn into_problems(self) -> Vec<FieldProblem> {
        self.problems
    }

    /// The document at `path` as a map.
    pub fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.problem(path, format!("must be a map, is {}", kind_of(other)));
                None
            }
        }
    }

    /// Reports keys of `obj` that are not in `known` (typos would otherwise be silently ignored).
    /// Keys starting with `norris_` are norris's own annotations and always allowed.
    pub fn unknown_keys(&mut self, obj: &Map<String, Value>, base: &str, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) && !key.starts_with("norris_") {
                self.problem(join(base, key), format!("unknown field; known fields are: {}", known.join(", ")));
            }
        }
    }

    /// A field that must be present (and not null).
    pub fn required<'v>(&mut self, obj: &'v Map<String, Value>, base: &str, key: &str) -> Option<&'v Value> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.problem(join(base, key), "is required");
                None
            }
            Some(v) => Some(v),
        }
    }

    /// A field that may be absent (null counts as absent).
    pub fn optional<'v>(&mut self, obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// A non-empty string.
    pub fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) if s.trim().is_empty() => {
                self.problem(path, "must not be empty");
                None
            }
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(path, format!("must be a string, is {}", kind_of(other)));
                None
            }
        }
    }

    /// A boolean.
    pub fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.problem(path, format!("must be a boolean (true or false), is {}", kind_of(other)));
                None
            }
        }
    }

    /// A whole number within `min..=max`.
    pub fn integer(&mut self, v: &Value, path: &str, min: i64, max: i64) -> Option<i64> {
        let n = match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            other => {
                self.problem(path, format!("must be a number, is {}", kind_of(other)));
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.problem(path, format!("must be between {min} and {max}, is {n}"));
                None
            }
            None => {
                self.problem(path, format!("must be a whole number, is {v}"));
                None
            }
        }
    }

    /// A list of non-empty strings; a single string is accepted as a list of one, since that is
    /// what people type in the console for a one-column key.
    pub fn string_list(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        match v {
            Value::String(_) => self.string(v, path).map(|s| vec![s]),
            Value::Array(items) => {
                let before = self.problems.len();
                let out: Vec<String> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.string(item, &format!("{path}[{i}]")))
                    .collect();
                (self.problems.len() == before).then_some(out)
            }
            other => {
                self.problem(path, format!("must be a list of strings, is {}", kind_of(other)));
                None
            }
        }
    }

    /// A map of strings to strings (Spark conf).
    pub fn string_map(&mut self, v: &Value, path: &str) -> Option<Vec<(String, String)>> {
        let obj = self.object(v, path)?;
        let before = self.problems.len();
        let out: Vec<(String, String)> = obj
            .iter()
            .filter_map(|(k, val)| match val {
                Value::String(s) => Some((k.clone(), s.clone())),
                other => {
                    self.problem(join(path, k), format!("must be a string, is {}", kind_of(other)));
                    None
                }
            })
            .collect();
        (self.problems.len() == before).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_list_names_the_bad_position() {
        let mut r = Reader::default();
        assert_eq!(r.string_list(&json!(["id", 3]), "source.primary_key"), None);
        let problems = r.into_problems();
        assert_eq!(problems[0].path, "source.primary_key[1]");
        assert!(problems[0].reason.contains("must be a string, is a number"));
    }

    #[test]
    fn integer_outside_range_says_the_range() {
        let mut r = Reader::default();
        assert_eq!(r.integer(&json!(5), "interval_secs", 60, 86_400), None);
        assert_eq!(r.into_problems()[0].reason, "must be between 60 and 86400, is 5");
    }
}
