//! The API server's own rules, as the real one applies them (k8s.io/apimachinery validation, the registry
//! strategies, the request handlers): object names per kind, label and annotation syntax, which fields a
//! field selector may name, which kinds take an update without `resourceVersion`, which patch types a
//! kind accepts. The store and the HTTP layer ask here; messages are the real ones, word for word.

// The formats are the suite's one set of naming rules (mtv_api::naming); the messages are the API
// server's.
use mtv_api::naming::{
    DNS1035_LABEL_MAX_LEN, DNS1123_LABEL_MAX_LEN, DNS1123_SUBDOMAIN_MAX_LEN,
    matches_dns1035_label_format, matches_dns1123_label_format, matches_dns1123_subdomain_format,
};

use crate::error::{ApiError, StatusCause};
use crate::registry::{self, ResourceType};
use crate::selector::FieldSelector;

/// API groups served by the API server itself (built-in types, with a registry strategy); every other
/// group the lab serves comes from a CustomResourceDefinition (or OpenShift's aggregated servers).
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "storage.k8s.io",
    "rbac.authorization.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "policy",
    "networking.k8s.io",
    "coordination.k8s.io",
    "events.k8s.io",
];

/// Whether objects of this kind are custom resources (served through a CRD by the apiextensions server).
pub fn is_custom_resource(rt: &ResourceType) -> bool {
    !BUILT_IN_GROUPS.contains(&rt.group) && rt.group != "apiextensions.k8s.io"
}

/// `AllowUnconditionalUpdate` of the kind's strategy: built-in kinds take a PUT without
/// `metadata.resourceVersion` (a blind overwrite); custom resources and CustomResourceDefinitions do not.
pub fn allows_unconditional_update(rt: &ResourceType) -> bool {
    BUILT_IN_GROUPS.contains(&rt.group)
}

/// The 422 a PUT without `resourceVersion` gets where the strategy refuses unconditional updates. The
/// generic registry names the resource (plural) where other 422s name the kind.
pub fn resource_version_required(rt: &ResourceType, name: &str) -> ApiError {
    ApiError::invalid(
        &rt.qualified_plural(),
        rt.group,
        rt.plural,
        name,
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            // The apiserver prints the uint64 zero with %#v.
            message: "Invalid value: 0x0: must be specified for an update".into(),
            field: "metadata.resourceVersion".into(),
        }],
    )
}

/// The patch content types the kind accepts, in the apiserver's order: custom resources have no
/// strategic merge patch (there is no Go struct with patch strategies behind them).
pub fn patch_types(rt: &ResourceType) -> &'static [&'static str] {
    if is_custom_resource(rt) {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }
}

/// 415 for a patch content type the kind does not accept.
pub fn unsupported_patch_type(rt: &ResourceType) -> ApiError {
    ApiError::unsupported_media_type(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        patch_types(rt).join(", ")
    ))
}

/// The fields a field selector may name for a kind, and how an unsupported one is reported.
struct SelectableFields {
    fields: &'static [&'static str],
    /// Kinds with their own conversion function say `field label not supported: X`; the others use the
    /// scheme's default, which lists what it supports.
    own_conversion: bool,
}

fn selectable_fields(rt: &ResourceType) -> SelectableFields {
    const NAME_AND_NAMESPACE: &[&str] = &["metadata.name", "metadata.namespace"];
    let own = |fields| SelectableFields {
        fields,
        own_conversion: true,
    };
    if is_custom_resource(rt) {
        // crConverter: metadata.namespace only for namespaced kinds (no CRD of ours has selectableFields).
        return own(if rt.namespaced {
            NAME_AND_NAMESPACE
        } else {
            &["metadata.name"]
        });
    }
    match (rt.group, rt.kind) {
        ("", "Pod") => own(&[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ]),
        ("", "Node") => own(&["metadata.name", "spec.unschedulable"]),
        ("", "Namespace") => own(&["metadata.name", "status.phase"]),
        ("", "Secret") => own(&["metadata.name", "metadata.namespace", "type"]),
        ("", "Service") => own(&[
            "metadata.name",
            "metadata.namespace",
            "spec.clusterIP",
            "spec.type",
        ]),
        ("", "Event") => own(&[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]),
        ("batch", "Job") => own(&["metadata.name", "metadata.namespace", "status.successful"]),
        _ => SelectableFields {
            fields: NAME_AND_NAMESPACE,
            own_conversion: false,
        },
    }
}

/// 400 for a field selector naming a field the kind does not support, as the list/watch handler answers.
pub fn check_field_selector(rt: &ResourceType, selector: &FieldSelector) -> Result<(), ApiError> {
    let supported = selectable_fields(rt);
    for (field, _, _) in &selector.0 {
        if supported.fields.contains(&field.as_str()) {
            continue;
        }
        let message = if supported.own_conversion {
            format!("field label not supported: {field}")
        } else {
            format!(
                "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )
        };
        return Err(ApiError::bad_request(message));
    }
    Ok(())
}

/// `ValidateConfigMapUpdate` / `ValidateSecretUpdate`: once `immutable` is true, it and the data stay
/// as they are; a Secret's `type` never changes.
pub fn immutability_causes(
    rt: &ResourceType,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Vec<StatusCause> {
    let is_secret = std::ptr::eq(rt, &registry::SECRET);
    if !is_secret && !std::ptr::eq(rt, &registry::CONFIG_MAP) {
        return Vec::new();
    }
    let forbidden = |field: &str| StatusCause {
        reason: "FieldValueForbidden".into(),
        message: "Forbidden: field is immutable when `immutable` is set".into(),
        field: field.into(),
    };
    let mut causes = Vec::new();
    if is_secret && old.get("type") != new.get("type") {
        causes.push(invalid_cause(
            "type",
            new.get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
            "field is immutable",
        ));
    }
    if old.get("immutable").and_then(serde_json::Value::as_bool) == Some(true) {
        if new.get("immutable").and_then(serde_json::Value::as_bool) != Some(true) {
            causes.push(forbidden("immutable"));
        }
        let data_fields: &[&str] = if is_secret {
            &["data"]
        } else {
            &["data", "binaryData"]
        };
        for field in data_fields {
            if old.get(*field) != new.get(*field) {
                causes.push(forbidden(field));
            }
        }
    }
    causes
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// The most bytes all annotations of an object (keys and values) may take together.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// apimachinery's `RegexError`: the message, examples, and the pattern.
fn regex_error(message: &str, pattern: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{pattern}')",
        examples.join(" or ")
    )
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `IsDNS1123Label`: the problems of a value that must be a DNS-1123 label.
fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_LABEL_MAX_LEN {
        errors.push(max_len_error(DNS1123_LABEL_MAX_LEN));
    }
    if !matches_dns1123_label_format(s) {
        errors.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errors
}

/// `IsDNS1123Subdomain`.
fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !matches_dns1123_subdomain_format(s) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `IsDNS1035Label` (Service names): must start with a letter.
fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1035_LABEL_MAX_LEN {
        errors.push(max_len_error(DNS1035_LABEL_MAX_LEN));
    }
    if !matches_dns1035_label_format(s) {
        errors.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errors
}

/// The name rule of a kind's `ValidateObjectMeta`: Namespaces are DNS-1123 labels, Services DNS-1035
/// labels, CustomResourceDefinitions `<plural>.<group>` (checked elsewhere), everything else DNS-1123
/// subdomains.
pub fn name_causes(rt: &ResourceType, name: &str) -> Vec<StatusCause> {
    let errors = if rt.group == registry::rbac_group() {
        // RBAC objects only need a valid path segment (`system:discovery` is a valid ClusterRole name).
        path_segment_name_errors(name)
    } else if std::ptr::eq(rt, &registry::NAMESPACE) {
        dns1123_label_errors(name)
    } else if std::ptr::eq(rt, &registry::SERVICE) {
        dns1035_label_errors(name)
    } else {
        dns1123_subdomain_errors(name)
    };
    errors
        .into_iter()
        .map(|e| invalid_cause("metadata.name", name, &e))
        .collect()
}

/// The rule of kinds whose names need only be a valid path segment (the RBAC kinds).
fn path_segment_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '%']) {
        vec!["may not contain '/' or '%' and may not be '.' or '..'".to_string()]
    } else {
        Vec::new()
    }
}

/// A CustomResourceDefinition's name must be `<spec.names.plural>.<spec.group>`.
pub fn crd_name_causes(rt: &ResourceType, crd: &serde_json::Value, name: &str) -> Vec<StatusCause> {
    if !std::ptr::eq(rt, &registry::CUSTOM_RESOURCE_DEFINITION) {
        return Vec::new();
    }
    let text = |pointer: &str| {
        crd.pointer(pointer)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    if name == format!("{}.{}", text("/spec/names/plural"), text("/spec/group")) {
        return Vec::new();
    }
    vec![invalid_cause(
        "metadata.name",
        name,
        "must be spec.names.plural+\".\"+spec.group",
    )]
}

fn invalid_cause(field: &str, value: &str, message: &str) -> StatusCause {
    StatusCause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value:?}: {message}"),
        field: field.into(),
    }
}

/// `IsQualifiedName`: label keys and annotation keys (`[prefix/]name`).
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errors.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

fn is_qualified_name_part(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.chars()
            .all(|c| alnum(c) || c == '-' || c == '_' || c == '.')
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

/// `IsValidLabelValue`.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `ValidateLabels`: every cause names the field `metadata.labels`, like the apiserver's.
pub fn label_causes(labels: &serde_json::Map<String, serde_json::Value>) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    for (key, value) in labels {
        for e in qualified_name_errors(key) {
            causes.push(invalid_cause("metadata.labels", key, &e));
        }
        if let Some(value) = value.as_str() {
            for e in label_value_errors(value) {
                causes.push(invalid_cause("metadata.labels", value, &e));
            }
        }
    }
    causes
}

/// `ValidateAnnotations`: keys are qualified names (checked lower-cased), and all keys and values
/// together fit in 256 KiB.
pub fn annotation_causes(
    annotations: &serde_json::Map<String, serde_json::Value>,
) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in annotations {
        for e in qualified_name_errors(&key.to_ascii_lowercase()) {
            causes.push(invalid_cause("metadata.annotations", key, &e));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(StatusCause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
            field: "metadata.annotations".into(),
        });
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_keys_and_values_follow_the_qualified_name_rules() {
        let labels = json!({"app": "web", "example.com/tier": "front_end-1", "": "x"});
        let causes = label_causes(labels.as_object().unwrap());
        // Like the apiserver: an empty name part is both empty and not matching the pattern.
        assert_eq!(causes.len(), 2, "{causes:?}");
        assert_eq!(causes[0].field, "metadata.labels");
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"\": name part must be non-empty")
        );

        let labels =
            json!({"bad key": "ok", "ok": "bad value!", "a/b/c": "x", "Upper.Example.com/x": "y"});
        let causes = label_causes(labels.as_object().unwrap());
        let messages: Vec<&str> = causes.iter().map(|c| c.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.starts_with("Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")), "{messages:#?}");
        assert!(
            messages.iter().any(|m| m.starts_with(
                "Invalid value: \"bad value!\": a valid label must be an empty string"
            )),
            "{messages:#?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("a qualified name must consist")),
            "{messages:#?}"
        );
        assert!(
            messages.iter().any(|m| m.starts_with(
                "Invalid value: \"Upper.Example.com/x\": prefix part a lowercase RFC 1123 subdomain"
            )),
            "{messages:#?}"
        );
        let long = "a".repeat(64);
        let causes = label_causes(json!({"k": long}).as_object().unwrap());
        assert!(
            causes[0]
                .message
                .ends_with("must be no more than 63 characters")
        );
    }

    #[test]
    fn annotations_check_keys_case_insensitively_and_total_size() {
        let ok = json!({"Example.com/Key": "v", "kubectl.kubernetes.io/last-applied-configuration": "{}"});
        assert!(annotation_causes(ok.as_object().unwrap()).is_empty());
        let big = json!({"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)});
        let causes = annotation_causes(big.as_object().unwrap());
        assert_eq!(causes[0].reason, "FieldValueTooLong");
        assert_eq!(
            causes[0].message,
            "Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn names_per_kind() {
        assert!(
            name_causes(&registry::SERVICE, "1abc")[0]
                .message
                .contains("DNS-1035")
        );
        assert!(
            name_causes(&registry::NAMESPACE, "a.b")[0]
                .message
                .contains("RFC 1123 label")
        );
        assert!(name_causes(&registry::CONFIG_MAP, "a.b").is_empty());
        assert!(
            name_causes(&registry::PLAN, "Bad_Name")[0]
                .message
                .contains("RFC 1123 subdomain")
        );
    }

    #[test]
    fn immutable_config_maps_and_secrets_keep_their_data() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        assert!(immutability_causes(&registry::CONFIG_MAP, &old, &old).is_empty());
        let changed = json!({"immutable": true, "data": {"a": "2"}});
        let causes = immutability_causes(&registry::CONFIG_MAP, &old, &changed);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data");
        assert_eq!(
            causes[0].message,
            "Forbidden: field is immutable when `immutable` is set"
        );
        let retyped = immutability_causes(
            &registry::SECRET,
            &json!({"type": "Opaque"}),
            &json!({"type": "kubernetes.io/tls"}),
        );
        assert_eq!(
            retyped[0].message,
            "Invalid value: \"kubernetes.io/tls\": field is immutable"
        );
        assert!(immutability_causes(&registry::PLAN, &old, &changed).is_empty());
    }

    #[test]
    fn crd_names_are_plural_dot_group() {
        let crd = json!({"spec": {"group": "example.com", "names": {"plural": "widgets"}}});
        let crd_rt = &registry::CUSTOM_RESOURCE_DEFINITION;
        assert!(crd_name_causes(crd_rt, &crd, "widgets.example.com").is_empty());
        assert_eq!(
            crd_name_causes(crd_rt, &crd, "widget.example.com")[0].message,
            "Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group"
        );
    }

    #[test]
    fn field_selectors_per_kind() {
        let sel = |s: &str| FieldSelector::parse(s).unwrap();
        assert!(check_field_selector(&registry::POD, &sel("status.phase=Running")).is_ok());
        assert_eq!(
            check_field_selector(&registry::PLAN, &sel("spec.warm=true"))
                .unwrap_err()
                .message,
            "field label not supported: spec.warm"
        );
        assert_eq!(
            check_field_selector(&registry::CONFIG_MAP, &sel("data.x=1"))
                .unwrap_err()
                .message,
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(check_field_selector(&registry::PLAN, &sel("metadata.namespace=a")).is_ok());
    }

    #[test]
    fn custom_resources_refuse_unconditional_updates_and_strategic_patches() {
        assert!(!allows_unconditional_update(&registry::PLAN));
        assert!(allows_unconditional_update(&registry::CONFIG_MAP));
        assert!(
            !patch_types(&registry::VIRTUAL_MACHINE)
                .contains(&"application/strategic-merge-patch+json")
        );
        let e = resource_version_required(&registry::PLAN, "p");
        assert_eq!(
            e.message,
            "plans.forklift.konveyor.io \"p\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        );
    }
}
