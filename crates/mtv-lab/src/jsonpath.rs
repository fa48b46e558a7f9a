//! The subset of Kubernetes JSONPath used by printer columns: `.a.b`, `['a.b']`, `[n]`, `[*]` and filters
//! `[?(@.x=='v')]` / `[?(@.x!='v')]` (string, number or boolean literals).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        literal: Value,
    },
}

/// A JSONPath expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JSONPath {0:?}")]
pub struct JsonPathError(pub String);

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses an expression, with or without the `{...}` template braces and the leading `$`.
    pub fn parse(expr: &str) -> Result<Self, JsonPathError> {
        let err = || JsonPathError(expr.to_string());
        let mut s = expr.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            s = inner.trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let chars: Vec<char> = s.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    let name: String = chars[start..i].iter().collect();
                    if name.is_empty() {
                        if i >= chars.len() {
                            break;
                        }
                        return Err(err());
                    }
                    steps.push(Step::Field(name));
                }
                '[' => {
                    let close = find_close(&chars, i).ok_or_else(err)?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    steps.push(parse_bracket(inner.trim()).ok_or_else(err)?);
                    i = close + 1;
                }
                _ => {
                    // A bare leading field name (`status.phase`).
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    steps.push(Step::Field(chars[start..i].iter().collect()));
                }
            }
        }
        Ok(Self(steps))
    }

    /// Every value the expression selects, in order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => {
                        if let Some(x) = v.get(name) {
                            next.push(x);
                        }
                    }
                    Step::Index(n) => {
                        if let Value::Array(a) = v {
                            let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                            if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                        }
                    }
                    Step::All => match v {
                        Value::Array(a) => next.extend(a.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter {
                        path,
                        equal,
                        literal,
                    } => {
                        if let Value::Array(a) = v {
                            for item in a {
                                let got = path.iter().try_fold(item, |cur, seg| cur.get(seg));
                                let matched = got.is_some_and(|g| g == literal);
                                if matched == *equal && (got.is_some() || !*equal) {
                                    next.push(item);
                                }
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Some(Step::Index(n));
    }
    if let Some(name) = unquote(inner) {
        return Some(Step::Field(name));
    }
    let cond = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, rhs, equal) = if let Some((l, r)) = cond.split_once("==") {
        (l, r, true)
    } else {
        let (l, r) = cond.split_once("!=")?;
        (l, r, false)
    };
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_string)
        .collect();
    let rhs = rhs.trim();
    let literal = match unquote(rhs) {
        Some(s) => Value::String(s),
        None => serde_json::from_str(rhs).ok()?,
    };
    Some(Step::Filter {
        path,
        equal,
        literal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let plan = json!({
            "metadata": {"creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"a.b/c": "x"}},
            "status": {"conditions": [
                {"type": "Executing", "status": "True"},
                {"type": "Ready", "status": "True"}
            ]},
            "spec": {"vms": [{"id": "1"}, {"id": "2"}], "n": 3}
        });
        let first = |e: &str| {
            JsonPath::parse(e)
                .unwrap()
                .find(&plan)
                .first()
                .map(|v| (*v).clone())
        };
        assert_eq!(
            first(".status.conditions[?(@.type=='Ready')].status"),
            Some(json!("True"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type==\"Missing\")].status"),
            None
        );
        assert_eq!(
            first("{.metadata.creationTimestamp}"),
            Some(json!("2026-01-01T00:00:00Z"))
        );
        assert_eq!(first(".spec.vms[1].id"), Some(json!("2")));
        assert_eq!(first(".spec.vms[-1].id"), Some(json!("2")));
        assert_eq!(first(".metadata.labels['a.b/c']"), Some(json!("x")));
        assert_eq!(
            JsonPath::parse(".spec.vms[*].id")
                .unwrap()
                .find(&plan)
                .len(),
            2
        );
        assert_eq!(first("$.spec.n"), Some(json!(3)));
        assert_eq!(
            JsonPath::parse(".status.conditions[?(@.type!='Ready')].type")
                .unwrap()
                .find(&plan),
            vec![&json!("Executing")]
        );
        assert!(JsonPath::parse(".a[?(weird)]").is_err());
    }
}
