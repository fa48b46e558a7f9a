//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`exists) and field selectors (`=`, `==`, `!=` on
//! dotted paths such as `metadata.name` or `status.phase`).

use serde_json::Value;

/// One parsed requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelRequirement>);

/// A field selector: all requirements must hold. `(path, value, equal)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, String, bool)>);

/// A selector that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut out = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            out.push(parse_label_term(term)?);
        }
        Ok(Self(out))
    }

    /// Whether `labels` (a JSON object or null) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::NotExists(k) => get(k).is_none(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_label_term(term: &str) -> Result<LabelRequirement, SelectorError> {
    let err = || SelectorError(term.to_string());
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return if valid_key(key) {
            Ok(LabelRequirement::NotExists(key.to_string()))
        } else {
            Err(err())
        };
    }
    for (op, ctor) in [
        (
            "!=",
            LabelRequirement::NotEquals as fn(String, String) -> LabelRequirement,
        ),
        ("==", LabelRequirement::Equals),
        ("=", LabelRequirement::Equals),
    ] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || !valid_value(v) {
                return Err(err());
            }
            return Ok(ctor(k.to_string(), v.to_string()));
        }
    }
    for (op, is_in) in [(" notin ", false), (" in ", true)] {
        if let Some((k, set)) = term.split_once(op) {
            let k = k.trim();
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(err)?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if !valid_key(k) || values.iter().any(|v| !valid_value(v)) {
                return Err(err());
            }
            return Ok(if is_in {
                LabelRequirement::In(k.to_string(), values)
            } else {
                LabelRequirement::NotIn(k.to_string(), values)
            });
        }
    }
    if valid_key(term) {
        Ok(LabelRequirement::Exists(term.to_string()))
    } else {
        Err(err())
    }
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter syntax.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut out = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (path, value, equal) = if let Some((p, v)) = term.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = term.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = term.split_once('=') {
                (p, v, true)
            } else {
                return Err(SelectorError(term.to_string()));
            };
            let path = path.trim();
            if path.is_empty() || !path.split('.').all(|s| !s.is_empty()) {
                return Err(SelectorError(term.to_string()));
            }
            out.push((path.to_string(), value.trim().to_string(), equal));
        }
        Ok(Self(out))
    }

    /// Whether `object` satisfies every requirement. A missing field compares as the empty string.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, value, equal)| {
            let mut cur = Some(object);
            for seg in path.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let actual = match cur {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_operators() {
        let labels = json!({"app": "web", "tier": "front", "env": "prod"});
        let ok = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&labels));
        assert!(ok("app=web"));
        assert!(ok("app==web,tier=front"));
        assert!(!ok("app!=web"));
        assert!(ok("env in (prod, staging)"));
        assert!(!ok("env notin (prod)"));
        assert!(ok("missing notin (x)"));
        assert!(ok("app"));
        assert!(ok("!missing"));
        assert!(!ok("!app"));
        assert!(ok("env in (prod),app"));
        assert!(ok(""));
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
        assert!(!LabelSelector::parse("app").unwrap().matches(None));
    }

    #[test]
    fn field_selector_paths() {
        let obj = json!({"metadata": {"name": "p1", "namespace": "ns"}, "status": {"phase": "Running"}, "spec": {"replicas": 2}});
        let ok = |s: &str| FieldSelector::parse(s).unwrap().matches(&obj);
        assert!(ok("metadata.name=p1"));
        assert!(ok("metadata.namespace==ns,status.phase=Running"));
        assert!(ok("metadata.name!=p2"));
        assert!(ok("spec.replicas=2"));
        assert!(ok("spec.nodeName="));
        assert!(!ok("status.phase!=Running"));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
