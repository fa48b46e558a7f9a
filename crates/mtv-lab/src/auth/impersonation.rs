//! Impersonation as the API server's filter does it (`kubectl --as`, `--as-group`, `--as-uid`): the
//! `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-*` headers, each
//! allowed only when the caller may `impersonate` that user (or ServiceAccount), group, uid or extra.

use axum::http::HeaderMap;

use super::rbac::{self, Attributes, Decision};
use super::{AUTHENTICATED_GROUP, Auth, UserInfo};
use crate::error::ApiError;

const USER_HEADER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID_HEADER: &str = "impersonate-uid";
const EXTRA_HEADER_PREFIX: &str = "impersonate-extra-";
const ANONYMOUS_USER: &str = "system:anonymous";

/// Who the request acts as: `caller` itself without impersonation headers, else the impersonated user
/// once every part of the impersonation is allowed (403 with the API server's message otherwise).
pub fn acting_user(
    auth: &Auth,
    caller: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values(USER_HEADER).into_iter().next();
    let groups = values(GROUP_HEADER);
    let uid = values(UID_HEADER).into_iter().next();
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix(EXTRA_HEADER_PREFIX)?;
            Some((key.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let Some(user) = user else {
        if groups.is_empty() && uid.is_none() && extras.is_empty() {
            return Ok(caller);
        }
        // The API server answers this with an internal error, not a 4xx.
        let mut error = ApiError::bad_request(format!(
            "requested impersonation of groups {groups:?} without impersonating a user"
        ));
        error.code = 500;
        error.reason = "InternalError".into();
        return Err(error);
    };
    let mut checks = Vec::new();
    let service_account = user
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    checks.push(match service_account {
        Some((namespace, name)) => impersonate("", "serviceaccounts", "", namespace, name),
        None => impersonate("", "users", "", "", &user),
    });
    checks.extend(
        groups
            .iter()
            .map(|group| impersonate("", "groups", "", "", group)),
    );
    if let Some(uid) = &uid {
        checks.push(impersonate("authentication.k8s.io", "uids", "", "", uid));
    }
    for (key, value) in &extras {
        checks.push(impersonate(
            "authentication.k8s.io",
            "userextras",
            key,
            "",
            value,
        ));
    }
    for attributes in &checks {
        if !matches!(auth.authorize(&caller, attributes), Decision::Allow(_)) {
            return Err(rbac::forbidden(&caller, attributes));
        }
    }
    let mut impersonated_groups = groups;
    if impersonated_groups.is_empty()
        && let Some((namespace, _)) = service_account
    {
        impersonated_groups = vec![
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
        ];
    }
    if user != ANONYMOUS_USER && !impersonated_groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        impersonated_groups.push(AUTHENTICATED_GROUP.to_string());
    }
    Ok(UserInfo {
        username: user,
        uid: uid.unwrap_or_default(),
        groups: impersonated_groups,
    })
}

fn impersonate(
    group: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> Attributes {
    Attributes {
        verb: "impersonate".to_string(),
        path: None,
        group: group.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use crate::store::Store;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_the_impersonate_verb_lets_a_caller_act_as_someone_else() {
        let store = Store::new(100);
        for (resource, object) in rbac::bootstrap_policy() {
            store.create(resource, None, object).unwrap();
        }
        let auth = Auth::new(store.clone(), "admin-secret", "");
        let admin = auth.authenticate("admin-secret").unwrap();
        let bob = acting_user(
            &auth,
            admin.clone(),
            &headers(&[(USER_HEADER, "bob"), (GROUP_HEADER, "devs")]),
        )
        .unwrap();
        assert_eq!(bob.username, "bob");
        assert_eq!(bob.groups, vec!["devs", AUTHENTICATED_GROUP]);
        let robot = acting_user(
            &auth,
            admin.clone(),
            &headers(&[(USER_HEADER, "system:serviceaccount:team:robot")]),
        )
        .unwrap();
        assert!(
            robot
                .groups
                .contains(&"system:serviceaccounts:team".to_string())
        );
        // bob himself may not impersonate anyone.
        let refused =
            acting_user(&auth, bob.clone(), &headers(&[(USER_HEADER, "alice")])).unwrap_err();
        assert_eq!(refused.code, 403);
        assert_eq!(
            refused.message,
            r#"users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#
        );
        store
            .create(
                &registry::CLUSTER_ROLE,
                None,
                json!({"metadata": {"name": "impersonator"},
                       "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}]}),
            )
            .unwrap();
        store
            .create(
                &registry::CLUSTER_ROLE_BINDING,
                None,
                json!({"metadata": {"name": "bob-impersonates"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "impersonator"},
                       "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]}),
            )
            .unwrap();
        let alice = acting_user(&auth, bob.clone(), &headers(&[(USER_HEADER, "alice")])).unwrap();
        assert_eq!(alice.username, "alice");
        // Groups need their own permission.
        let refused = acting_user(
            &auth,
            bob,
            &headers(&[(USER_HEADER, "alice"), (GROUP_HEADER, "system:masters")]),
        )
        .unwrap_err();
        assert!(
            refused
                .message
                .starts_with(r#"groups "system:masters" is forbidden"#),
            "{}",
            refused.message
        );
        let orphan = acting_user(&auth, admin, &headers(&[(GROUP_HEADER, "devs")])).unwrap_err();
        assert_eq!(orphan.code, 500);
    }
}
