//! RBAC as Kubernetes evaluates it: a request's attributes read off its URL (verb, group, resource,
//! subresource, namespace, name, or a non-resource path), the rules of every Role and ClusterRole bound
//! to the user, and the API server's `Forbidden` message; plus the bootstrap policy a cluster starts with.

use axum::http::Method;
use serde_json::{Value, json};

use super::{AUTHENTICATED_GROUP, MASTERS_GROUP, UserInfo};
use crate::admission::StoreView;
use crate::error::ApiError;
use crate::registry;

/// What a request asks to do (a SubjectAccessReview's `resourceAttributes` or `nonResourceAttributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// `None` for a resource request; the path for a non-resource one (`/version`, `/apis`, ...).
    pub path: Option<String>,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    /// From a review's `spec.resourceAttributes` / `spec.nonResourceAttributes`.
    pub fn from_review_spec(spec: &Value) -> Attributes {
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
            return Attributes {
                verb: text(r, "verb"),
                path: None,
                group: text(r, "group"),
                resource: text(r, "resource"),
                subresource: text(r, "subresource"),
                namespace: text(r, "namespace"),
                name: text(r, "name"),
            };
        }
        let n = spec
            .get("nonResourceAttributes")
            .cloned()
            .unwrap_or_default();
        Attributes {
            verb: text(&n, "verb"),
            path: Some(text(&n, "path")),
            ..Attributes::default()
        }
    }
}

/// RBAC's answer, with the reason a SubjectAccessReview reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
}

fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The attributes of a request, read off its method and URL the way the API server's request-info
/// parser reads them (no knowledge of which resources exist is needed).
pub fn request_attributes(method: &Method, path: &str, query: Option<&str>) -> Attributes {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let non_resource = || Attributes {
        verb: method.as_str().to_ascii_lowercase(),
        path: Some(path.to_string()),
        ..Attributes::default()
    };
    let (group, rest): (&str, &[&str]) = match parts.as_slice() {
        ["api", "v1", rest @ ..] if !rest.is_empty() => ("", rest),
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => (group, rest),
        _ => return non_resource(),
    };
    let mut verb = verb_of(method).to_string();
    let mut rest = rest;
    if rest.first() == Some(&"watch") {
        verb = "watch".into();
        rest = &rest[1..];
    }
    let mut namespace = String::new();
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = rest[1].to_string();
        // `namespaces/<ns>/status|finalize` are subresources of the namespace itself.
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    let resource = rest.first().copied().unwrap_or_default().to_string();
    let mut name = rest.get(1).copied().unwrap_or_default().to_string();
    let subresource = rest.get(2).copied().unwrap_or_default().to_string();
    if name.is_empty() {
        verb = match verb.as_str() {
            "get" if matches!(query_value(query, "watch"), Some("true" | "1")) => "watch".into(),
            "get" => "list".into(),
            "delete" => "deletecollection".into(),
            other => other.to_string(),
        };
        // A list or watch of one object by name is authorized as that object.
        if matches!(verb.as_str(), "list" | "watch")
            && let Some(selector) = query_value(query, "fieldSelector")
        {
            let selector = selector.replace("%3D", "=").replace("%3d", "=");
            if let Some(one) = selector.strip_prefix("metadata.name=")
                && !one.contains(',')
            {
                name = one.to_string();
            }
        }
    } else if verb == "get" && matches!(query_value(query, "watch"), Some("true" | "1")) {
        verb = "watch".into();
    }
    Attributes {
        verb,
        path: None,
        group: group.to_string(),
        resource,
        subresource,
        namespace,
        name,
    }
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    crate::store::strings_at(value, &format!("/{key}"))
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|item| item == "*" || item == wanted)
}

/// Whether one PolicyRule allows the request.
fn rule_allows(rule: &Value, attributes: &Attributes) -> bool {
    if !has(&strings(rule, "verbs"), &attributes.verb) {
        return false;
    }
    if let Some(path) = &attributes.path {
        return strings(rule, "nonResourceURLs").iter().any(|url| {
            url == path
                || url
                    .strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        });
    }
    if !has(&strings(rule, "apiGroups"), &attributes.group) {
        return false;
    }
    let resources = strings(rule, "resources");
    let resource_matches = if attributes.subresource.is_empty() {
        has(&resources, &attributes.resource)
    } else {
        let combined = format!("{}/{}", attributes.resource, attributes.subresource);
        let any_resource = format!("*/{}", attributes.subresource);
        resources
            .iter()
            .any(|r| r == "*" || *r == combined || *r == any_resource)
    };
    if !resource_matches {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attributes.name)
}

/// Whether a binding names the user (directly, by a group, or as its ServiceAccount).
fn binds(binding: &Value, user: &UserInfo) -> bool {
    let binding_namespace = binding
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|subject| {
        let name = subject
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match subject.get("kind").and_then(Value::as_str) {
            Some("User") => user.username == name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let namespace = subject
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(binding_namespace);
                user.username == format!("system:serviceaccount:{namespace}:{name}")
            }
            _ => false,
        }
    })
}

fn all(
    store: &dyn StoreView,
    rt: &'static registry::ResourceType,
    namespace: Option<&str>,
) -> Vec<Value> {
    store.list(rt, namespace)
}

/// The rules of a binding's `roleRef` (a ClusterRole, or a Role of the binding's namespace).
fn role_rules(store: &dyn StoreView, binding: &Value) -> (String, String, Vec<Value>) {
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let name = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let role = match kind.as_str() {
        "ClusterRole" => store.get(&registry::CLUSTER_ROLE, None, &name),
        "Role" => {
            let namespace = binding
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            store.get(&registry::ROLE, namespace, &name)
        }
        _ => None,
    };
    let rules = role
        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    (kind, name, rules)
}

fn binding_name(binding: &Value) -> &str {
    binding
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// RBAC over the store: ClusterRoleBindings grant everywhere, RoleBindings in the request's namespace.
/// Reads through a [`StoreView`], so that an admission plug-in can ask while the store is locked.
pub fn evaluate(store: &dyn StoreView, user: &UserInfo, attributes: &Attributes) -> Decision {
    let who = format!("User {:?}", user.username);
    for binding in all(store, &registry::CLUSTER_ROLE_BINDING, None) {
        if !binds(&binding, user) {
            continue;
        }
        let (kind, role, rules) = role_rules(store, &binding);
        if rules.iter().any(|rule| rule_allows(rule, attributes)) {
            return Decision::Allow(format!(
                "RBAC: allowed by ClusterRoleBinding {:?} of {kind} {role:?} to {who}",
                binding_name(&binding)
            ));
        }
    }
    if attributes.path.is_none() && !attributes.namespace.is_empty() {
        for binding in all(
            store,
            &registry::ROLE_BINDING,
            Some(attributes.namespace.as_str()),
        ) {
            if !binds(&binding, user) {
                continue;
            }
            let (kind, role, rules) = role_rules(store, &binding);
            if rules.iter().any(|rule| rule_allows(rule, attributes)) {
                return Decision::Allow(format!(
                    "RBAC: allowed by RoleBinding \"{}/{}\" of {kind} {role:?} to {who}",
                    attributes.namespace,
                    binding_name(&binding)
                ));
            }
        }
    }
    Decision::Deny(String::new())
}

/// The 403 the API server answers: `secrets "x" is forbidden: User "..." cannot get resource "secrets"
/// in API group "" in the namespace "ns"`.
pub fn forbidden(user: &UserInfo, attributes: &Attributes) -> ApiError {
    if let Some(path) = &attributes.path {
        let mut e = ApiError::forbidden(format!(
            "forbidden: User {:?} cannot {} path {path:?}",
            user.username, attributes.verb
        ));
        e.reason = "Forbidden".into();
        return e;
    }
    let resource = if attributes.subresource.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}/{}", attributes.resource, attributes.subresource)
    };
    let scope = if attributes.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", attributes.namespace)
    };
    let why = format!(
        "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.username, attributes.verb, attributes.group
    );
    let qualified = if attributes.group.is_empty() {
        attributes.resource.clone()
    } else {
        format!("{}.{}", attributes.resource, attributes.group)
    };
    let message = if attributes.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {:?} is forbidden: {why}", attributes.name)
    };
    ApiError::forbidden(message).with_details(
        &attributes.group,
        &attributes.resource,
        &attributes.name,
    )
}

/// The policy every cluster starts with: `cluster-admin` for `system:masters`, discovery and the
/// self-reviews for every authenticated user (what `kubectl` needs before anything else).
pub fn bootstrap_policy() -> Vec<(&'static registry::ResourceType, Value)> {
    let cluster_role = |name: &str, rules: Value| {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
               "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}, "rules": rules})
    };
    let binding = |name: &str, group: &str| {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
    };
    vec![
        (
            &registry::CLUSTER_ROLE,
            cluster_role(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]}
                ]),
            ),
        ),
        (
            &registry::CLUSTER_ROLE,
            cluster_role(
                "system:discovery",
                json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            ),
        ),
        (
            &registry::CLUSTER_ROLE,
            cluster_role(
                "system:basic-user",
                json!([
                    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}
                ]),
            ),
        ),
        (
            &registry::CLUSTER_ROLE_BINDING,
            binding("cluster-admin", MASTERS_GROUP),
        ),
        (
            &registry::CLUSTER_ROLE_BINDING,
            binding("system:discovery", AUTHENTICATED_GROUP),
        ),
        (
            &registry::CLUSTER_ROLE_BINDING,
            binding("system:basic-user", AUTHENTICATED_GROUP),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: Option<&str>) -> Attributes {
        request_attributes(&method, path, query)
    }

    #[test]
    fn urls_read_as_the_api_server_reads_them() {
        let a = attrs(Method::GET, "/api/v1/namespaces/ns/secrets/s", None);
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.namespace.as_str(),
                a.name.as_str()
            ),
            ("get", "secrets", "ns", "s")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/ns/secrets", None);
        assert_eq!(a.verb, "list");
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/ns/secrets",
            Some("watch=true"),
        );
        assert_eq!(a.verb, "watch");
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/ns/pods", None);
        assert_eq!((a.verb.as_str(), a.resource.as_str()), ("watch", "pods"));
        let a = attrs(
            Method::DELETE,
            "/apis/forklift.konveyor.io/v1beta1/namespaces/ns/plans",
            None,
        );
        assert_eq!(
            (a.verb.as_str(), a.group.as_str(), a.resource.as_str()),
            ("deletecollection", "forklift.konveyor.io", "plans")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/ns", None);
        assert_eq!(
            (a.resource.as_str(), a.namespace.as_str(), a.name.as_str()),
            ("namespaces", "ns", "ns")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:8443/proxy/providers",
            None,
        );
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str(), a.name.as_str()),
            ("services", "proxy", "https:forklift-inventory:8443")
        );
        let a = attrs(
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/sa/token",
            None,
        );
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("create", "token")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/ns/secrets",
            Some("fieldSelector=metadata.name%3Done&watch=1"),
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "one"));
        for path in [
            "/api",
            "/api/v1",
            "/apis/rbac.authorization.k8s.io/v1",
            "/version",
        ] {
            assert_eq!(attrs(Method::GET, path, None).path.as_deref(), Some(path));
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule = json!({"apiGroups": [""], "resources": ["secrets", "pods/log"], "verbs": ["get", "list"], "resourceNames": []});
        let secret = attrs(Method::GET, "/api/v1/namespaces/ns/secrets/s", None);
        assert!(rule_allows(&rule, &secret));
        let delete = attrs(Method::DELETE, "/api/v1/namespaces/ns/secrets/s", None);
        assert!(!rule_allows(&rule, &delete));
        let log = attrs(Method::GET, "/api/v1/namespaces/ns/pods/p/log", None);
        assert!(rule_allows(&rule, &log));
        let pod = attrs(Method::GET, "/api/v1/namespaces/ns/pods/p", None);
        assert!(!rule_allows(&rule, &pod));
        let named = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["other"]});
        assert!(!rule_allows(&named, &secret));
        let discovery = json!({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]});
        assert!(rule_allows(
            &discovery,
            &attrs(Method::GET, "/apis/batch/v1", None)
        ));
        assert!(!rule_allows(
            &discovery,
            &attrs(Method::GET, "/version", None)
        ));
    }

    #[test]
    fn forbidden_messages_have_the_api_servers_shape() {
        let user = UserInfo::service_account("a", "robot", "u");
        let e = forbidden(
            &user,
            &attrs(Method::GET, "/api/v1/namespaces/b/secrets/s", None),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "secrets \"s\" is forbidden: User \"system:serviceaccount:a:robot\" cannot get resource \"secrets\" in API group \"\" in the namespace \"b\""
        );
        let e = forbidden(
            &user,
            &attrs(
                Method::GET,
                "/apis/forklift.konveyor.io/v1beta1/plans",
                None,
            ),
        );
        assert_eq!(
            e.message,
            "plans.forklift.konveyor.io is forbidden: User \"system:serviceaccount:a:robot\" cannot list resource \"plans\" in API group \"forklift.konveyor.io\" at the cluster scope"
        );
    }
}
