//! Forklift's condition model (forklift-api.md §0.1): `status: "True"` only, categories, durable flags,
//! `items`, recomputed on each reconcile; `lastTransitionTime` kept while nothing else changes.

use serde_json::{Map, Value, json};

use crate::clock;

pub const CRITICAL: &str = "Critical";
pub const ERROR: &str = "Error";
pub const WARN: &str = "Warn";
pub const REQUIRED: &str = "Required";
pub const ADVISORY: &str = "Advisory";

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: String,
    pub category: &'static str,
    pub reason: String,
    pub message: String,
    pub items: Vec<String>,
    pub durable: bool,
    pub suggestion: String,
}

impl Condition {
    pub fn new(kind: &str, category: &'static str, reason: &str, message: &str) -> Self {
        Self {
            kind: kind.to_string(),
            category,
            reason: reason.to_string(),
            message: message.to_string(),
            items: Vec::new(),
            durable: false,
            suggestion: String::new(),
        }
    }

    pub fn items(mut self, items: Vec<String>) -> Self {
        self.items = items;
        self
    }

    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    pub fn is_blocker(&self) -> bool {
        self.category == CRITICAL || self.category == ERROR
    }

    /// Reads a condition written earlier (for durable conditions copied between objects).
    pub fn from_json(v: &Value) -> Option<Self> {
        let category = match v.get("category").and_then(Value::as_str)? {
            "Critical" => CRITICAL,
            "Error" => ERROR,
            "Warn" => WARN,
            "Required" => REQUIRED,
            _ => ADVISORY,
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        Some(Self {
            kind: text("type").to_string(),
            category,
            reason: text("reason").to_string(),
            message: text("message").to_string(),
            items: v
                .get("items")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            durable: v.get("durable").and_then(Value::as_bool).unwrap_or(false),
            suggestion: text("suggestion").to_string(),
        })
    }
}

/// The conditions asserted by one reconcile, in the order they were set.
#[derive(Debug, Clone, Default)]
pub struct Conditions(pub Vec<Condition>);

impl Conditions {
    /// Sets a condition, replacing one of the same type.
    pub fn set(&mut self, c: Condition) {
        if let Some(old) = self.0.iter_mut().find(|o| o.kind == c.kind) {
            *old = c;
        } else {
            self.0.push(c);
        }
    }

    pub fn has(&self, kind: &str) -> bool {
        self.0.iter().any(|c| c.kind == kind)
    }

    pub fn get(&self, kind: &str) -> Option<&Condition> {
        self.0.iter().find(|c| c.kind == kind)
    }

    pub fn remove(&mut self, kind: &str) {
        self.0.retain(|c| c.kind != kind);
    }

    pub fn has_blocker(&self) -> bool {
        self.0.iter().any(Condition::is_blocker)
    }

    /// The `conditions` array, keeping `lastTransitionTime` of conditions that did not change.
    pub fn to_json(&self, previous: Option<&Value>) -> Value {
        let prev: Vec<&Value> = previous
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let now = clock::now_rfc3339();
        let out: Vec<Value> = self
            .0
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("type".into(), json!(c.kind));
                m.insert("status".into(), json!("True"));
                if !c.reason.is_empty() {
                    m.insert("reason".into(), json!(c.reason));
                }
                m.insert("category".into(), json!(c.category));
                m.insert("message".into(), json!(c.message));
                if !c.suggestion.is_empty() {
                    m.insert("suggestion".into(), json!(c.suggestion));
                }
                if c.durable {
                    m.insert("durable".into(), json!(true));
                }
                if !c.items.is_empty() {
                    m.insert("items".into(), json!(c.items));
                }
                let unchanged = prev.iter().find(|p| {
                    p.get("type").and_then(Value::as_str) == Some(c.kind.as_str())
                        && Condition::from_json(p).as_ref() == Some(c)
                });
                let ltt = unchanged
                    .and_then(|p| p.get("lastTransitionTime").cloned())
                    .unwrap_or_else(|| json!(now));
                m.insert("lastTransitionTime".into(), ltt);
                Value::Object(m)
            })
            .collect();
        Value::Array(out)
    }
}

/// Reads a `conditions` array.
pub fn parse(v: Option<&Value>) -> Conditions {
    Conditions(
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Condition::from_json).collect())
            .unwrap_or_default(),
    )
}

/// True when a `conditions` array holds a condition of this type.
pub fn has(v: Option<&Value>, kind: &str) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| {
        a.iter()
            .any(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    })
}

/// Forklift's `Ref.String()` (pkg/apis/forklift/v1beta1/ref/ref.go): `"(<type>) id:<id> name:'<name>' "`;
/// the type part only when set (so a ref without type starts with a space), `id:` and `name:` always, even
/// empty.
pub fn ref_string(kind: &str, id: &str, name: &str) -> String {
    let typed = if kind.is_empty() {
        String::new()
    } else {
        format!("({kind})")
    };
    format!("{typed} id:{id} name:'{name}' ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_strings_match_forklift() {
        assert_eq!(ref_string("", "vm-1", "rhel8"), " id:vm-1 name:'rhel8' ");
        assert_eq!(
            ref_string("vm", "vm-1", "rhel8"),
            "(vm) id:vm-1 name:'rhel8' "
        );
        assert_eq!(ref_string("", "", "x"), " id: name:'x' ");
    }

    #[test]
    fn transition_time_survives_unchanged_conditions() {
        let mut set = Conditions::default();
        set.set(Condition::new("Ready", REQUIRED, "", "ok"));
        let mut first = set.to_json(None);
        first[0]["lastTransitionTime"] = json!("2000-01-01T00:00:00Z");
        let again = set.to_json(Some(&first));
        assert_eq!(again[0]["lastTransitionTime"], "2000-01-01T00:00:00Z");
        set.set(Condition::new("Ready", REQUIRED, "", "changed"));
        let changed = set.to_json(Some(&first));
        assert_ne!(changed[0]["lastTransitionTime"], "2000-01-01T00:00:00Z");
    }
}
