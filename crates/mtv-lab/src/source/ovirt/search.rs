//! The engine's `search` query parameter, in the forms clients send: `name=rhel8`, `name=rhel8
//! cluster=Default`, `name=mtv-*`, `Vms.id = <id>`, terms joined by spaces or `and`.

/// A parsed search: every term must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    /// (field, lower-cased and without an entity prefix; pattern, `*` matching anything).
    terms: Vec<(String, String)>,
}

impl Search {
    pub fn parse(query: &str) -> Result<Search, String> {
        // `a = b` and `a=b` are the same term.
        let normalized = query
            .replace(" = ", "=")
            .replace("= ", "=")
            .replace(" =", "=");
        let mut terms = Vec::new();
        for token in normalized.split_whitespace() {
            if token.eq_ignore_ascii_case("and") {
                continue;
            }
            let (field, value) = token.split_once('=').ok_or_else(|| {
                format!("the search `{query}` is not `field=value` terms (at `{token}`)")
            })?;
            let field = field.to_ascii_lowercase();
            // `Vms.id` and `vm.id` both mean the VM's id (of an event); a bare field is the entity's.
            let field = match field.split_once('.') {
                Some((entity, rest)) if entity.starts_with("vm") => format!("vm.{rest}"),
                Some(_) => field,
                None => field,
            };
            terms.push((field, value.trim_matches(['"', '\'']).to_string()));
        }
        Ok(Search { terms })
    }

    /// Whether an object matches: `field` gives an object's values for a field name, `None` for a
    /// field the object type cannot be searched by (an error, as the engine's).
    pub fn matches(&self, field: impl Fn(&str) -> Option<Vec<String>>) -> Result<bool, String> {
        let mut all = true;
        for (name, pattern) in &self.terms {
            let values = field(name).ok_or_else(|| format!("cannot search by `{name}` here"))?;
            all &= values.iter().any(|value| glob(pattern, value));
        }
        Ok(all)
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> Option<Vec<String>> {
        match name {
            "name" => Some(vec!["mtv-tests-rhel8".into()]),
            "cluster" => Some(vec!["mtv-cluster".into()]),
            "vm.id" => Some(vec!["v-1".into()]),
            _ => None,
        }
    }

    #[test]
    fn terms_match_all_together() {
        let ok = |q: &str| Search::parse(q).unwrap().matches(fields).unwrap();
        assert!(ok("name=mtv-tests-rhel8"));
        assert!(ok("name=mtv-tests-rhel8 cluster=mtv-cluster"));
        assert!(ok("name=mtv-* and cluster=*cluster"));
        assert!(ok("Vms.id = v-1"));
        assert!(ok(""));
        assert!(!ok("name=rhel8"));
        assert!(!ok("name=mtv-tests-rhel8 cluster=other"));
        assert!(
            Search::parse("name=x color=red")
                .unwrap()
                .matches(fields)
                .is_err()
        );
        assert!(Search::parse("rhel8").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbc"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
        assert!(!glob("ab*ba", "aba"));
    }
}
