//! The forklift-api admission webhooks (forklift-api.md §0.3; kubev2v/forklift
//! `pkg/forklift-api/webhooks`), as the lab's admission plug-in, with the names, codes and messages the
//! real ones give (a denial is a 400 `Status` without reason: `admission webhook "plans.forklift.konveyor"
//! denied the request: ...`):
//! - Plan (create/update): both Providers must exist (an archived Plan whose source is gone passes);
//!   cold Plans from a source other than vSphere into the host cluster must not map to static storage
//!   classes (`kubernetes.io/no-provisioner`); warm Plans from OpenStack are rejected; LUKS only from
//!   vSphere or OVA; new Plans get the annotation `populatorLabels: "True"`.
//! - Migration (create/update): its Plan and the Plan's destination Provider must exist.
//! - Plan and Migration: the requesting user's rights, as `util.PermitUser` checks them with a
//!   SubjectAccessReview: `get` on both Providers (Plan), `create` VirtualMachines in the target
//!   namespace when the destination is the host cluster, `get` on each source VM when the source is.
//! - Provider: vSphere without `settings.sdkEndpoint` gets `vcenter`; any other value than `vcenter` or
//!   `esxi` is rejected.

use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionRequest, Operation, StoreView};
use crate::auth::{Attributes, Decision, UserInfo};
use crate::error::ApiError;
use crate::registry;

/// The webhook names the real deployment registers (they appear in denial messages).
const PLAN_WEBHOOK: &str = "plans.forklift.konveyor";
const MIGRATION_WEBHOOK: &str = "migrations.forklift.konveyor";
const PROVIDER_WEBHOOK: &str = "providers.forklift.konveyor";

pub struct ForkliftWebhooks;

/// The controller-runtime client's not-found text, which Forklift's admitters pass on as the reason.
fn not_found(plural: &str, name: &str) -> String {
    format!("{plural}.forklift.konveyor.io \"{name}\" not found")
}

fn provider_ref(view: &dyn StoreView, reference: &Value, plan_namespace: &str) -> Option<Value> {
    let name = reference["name"].as_str()?;
    let namespace = reference["namespace"].as_str().unwrap_or(plan_namespace);
    view.get(&registry::PROVIDER, Some(namespace), name)
}

/// util.PermitUser: the webhook asks whether the requesting user may `verb` the resource, and denies
/// the write with Forklift's message if not. In-process controller writes carry no user.
#[allow(clippy::too_many_arguments)]
fn permit_user(
    webhook: &str,
    user: Option<&UserInfo>,
    view: &dyn StoreView,
    group: &str,
    resource: &str,
    name: &str,
    namespace: &str,
    verb: &str,
) -> Result<(), ApiError> {
    let Some(user) = user else {
        return Ok(());
    };
    let attributes = Attributes {
        verb: verb.to_string(),
        path: None,
        group: group.to_string(),
        resource: resource.to_string(),
        subresource: String::new(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    };
    if let Decision::Allow(_) = crate::auth::authorize_in(view, user, &attributes) {
        return Ok(());
    }
    let named = if name.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{name}")
    };
    // RBAC denies without a reason, so Forklift's message ends in ": ".
    Err(ApiError::webhook_denied(
        webhook,
        &format!(
            "Action is forbidden: User {:?} cannot {verb} resource {named:?} in API group {group:?} in the namespace {namespace:?}: ",
            user.username
        ),
    ))
}

/// `get` on a Provider the Plan references.
fn permit_provider(
    webhook: &str,
    user: Option<&UserInfo>,
    view: &dyn StoreView,
    provider: &Value,
) -> Result<(), ApiError> {
    permit_user(
        webhook,
        user,
        view,
        "forklift.konveyor.io",
        "providers",
        provider["metadata"]["name"].as_str().unwrap_or_default(),
        provider["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default(),
        "get",
    )
}

/// Into the host cluster the user must be able to create VirtualMachines in the target namespace;
/// from it, to read each source VM.
fn permit_virtual_machines(
    webhook: &str,
    user: Option<&UserInfo>,
    view: &dyn StoreView,
    plan: &Value,
    source: Option<&Value>,
    destination: &Value,
) -> Result<(), ApiError> {
    let permit_vm = |name: &Value, namespace: &Value, verb: &str| {
        permit_user(
            webhook,
            user,
            view,
            "kubevirt.io",
            "virtualmachines",
            name.as_str().unwrap_or_default(),
            namespace.as_str().unwrap_or_default(),
            verb,
        )
    };
    if is_host(destination) {
        permit_vm(&Value::Null, &plan["spec"]["targetNamespace"], "create")?;
    }
    if source.is_some_and(is_host) {
        for vm in plan["spec"]["vms"].as_array().into_iter().flatten() {
            permit_vm(&vm["name"], &vm["namespace"], "get")?;
        }
    }
    Ok(())
}

fn is_host(provider: &Value) -> bool {
    provider["spec"]["type"] == "openshift"
        && provider["spec"]["url"].as_str().unwrap_or("").is_empty()
}

impl ForkliftWebhooks {
    fn plan(
        request: &AdmissionRequest<'_>,
        plan: &mut Value,
        view: &dyn StoreView,
    ) -> Result<(), ApiError> {
        let namespace = plan["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let deny = |reason: String| Err(ApiError::webhook_denied(PLAN_WEBHOOK, &reason));
        let source_ref = &plan["spec"]["provider"]["source"];
        let Some(source) = provider_ref(view, source_ref, &namespace) else {
            if plan["spec"]["archived"] == true {
                return Ok(());
            }
            return deny(not_found(
                "providers",
                source_ref["name"].as_str().unwrap_or(""),
            ));
        };
        permit_provider(PLAN_WEBHOOK, request.user, view, &source)?;
        let destination_ref = &plan["spec"]["provider"]["destination"];
        let Some(destination) = provider_ref(view, destination_ref, &namespace) else {
            return deny(not_found(
                "providers",
                destination_ref["name"].as_str().unwrap_or(""),
            ));
        };
        permit_provider(PLAN_WEBHOOK, request.user, view, &destination)?;
        permit_virtual_machines(
            PLAN_WEBHOOK,
            request.user,
            view,
            plan,
            Some(&source),
            &destination,
        )?;
        let source_type = source["spec"]["type"].as_str().unwrap_or_default();
        let warm = plan["spec"]["warm"] == true || plan["spec"]["type"] == "warm";
        if !warm && source_type != "vsphere" && is_host(&destination) {
            Self::static_storage_classes(plan, &namespace, view)?;
        }
        if warm && source_type == "openstack" {
            return deny("warm migration is not supported by the provider".into());
        }
        let luks = plan["spec"]["vms"].as_array().is_some_and(|vms| {
            vms.iter()
                .any(|vm| vm["luks"]["name"].as_str().is_some_and(|n| !n.is_empty()))
        });
        if luks && !matches!(source_type, "vsphere" | "ova") {
            return deny(format!(
                "migration of encrypted disks from source provider of type {source_type} is not supported"
            ));
        }
        if request.operation == Operation::Create {
            let annotations = &mut plan["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations["populatorLabels"] = json!("True");
        }
        Ok(())
    }

    /// Cold copies through CDI cannot fill statically provisioned classes: Forklift refuses a StorageMap
    /// that names one (or answers the StorageMap lookup's error).
    fn static_storage_classes(
        plan: &Value,
        namespace: &str,
        view: &dyn StoreView,
    ) -> Result<(), ApiError> {
        let map_ref = &plan["spec"]["map"]["storage"];
        let map_name = map_ref["name"].as_str().unwrap_or_default();
        let Some(map) = view.get(
            &registry::STORAGE_MAP,
            Some(map_ref["namespace"].as_str().unwrap_or(namespace)),
            map_name,
        ) else {
            return Err(ApiError::webhook_denied(
                PLAN_WEBHOOK,
                &not_found("storagemaps", map_name),
            ));
        };
        let classes = view.list(&registry::STORAGE_CLASS, None);
        let mut bad = Vec::new();
        for pair in map["spec"]["map"].as_array().into_iter().flatten() {
            let wanted = pair["destination"]["storageClass"]
                .as_str()
                .unwrap_or_default();
            for class in &classes {
                if class["metadata"]["name"] == wanted
                    && class["provisioner"] == "kubernetes.io/no-provisioner"
                {
                    bad.push(wanted.to_string());
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(ApiError::webhook_denied(
                PLAN_WEBHOOK,
                &format!("Static storage class(es) found: [{}]", bad.join(" ")),
            ))
        }
    }

    fn migration(
        request: &AdmissionRequest<'_>,
        migration: &Value,
        view: &dyn StoreView,
    ) -> Result<(), ApiError> {
        let namespace = migration["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        let reference = &migration["spec"]["plan"];
        let name = reference["name"].as_str().unwrap_or_default();
        let plan_namespace = reference["namespace"].as_str().unwrap_or(namespace);
        let deny = |reason: String| Err(ApiError::webhook_denied(MIGRATION_WEBHOOK, &reason));
        let Some(plan) = view.get(&registry::PLAN, Some(plan_namespace), name) else {
            return deny(not_found("plans", name));
        };
        let destination_ref = &plan["spec"]["provider"]["destination"];
        let Some(destination) = provider_ref(view, destination_ref, plan_namespace) else {
            return deny(not_found(
                "providers",
                destination_ref["name"].as_str().unwrap_or(""),
            ));
        };
        let source = provider_ref(view, &plan["spec"]["provider"]["source"], plan_namespace);
        permit_virtual_machines(
            MIGRATION_WEBHOOK,
            request.user,
            view,
            &plan,
            source.as_ref(),
            &destination,
        )
    }

    fn provider(provider: &mut Value) -> Result<(), ApiError> {
        if provider["spec"]["type"] != "vsphere" {
            return Ok(());
        }
        let settings = &mut provider["spec"]["settings"];
        if !settings.is_object() {
            *settings = json!({});
        }
        match settings["sdkEndpoint"].as_str() {
            None => {
                settings["sdkEndpoint"] = json!("vcenter");
                Ok(())
            }
            Some("vcenter") | Some("esxi") => Ok(()),
            Some(_) => Err(ApiError::webhook_denied(
                PROVIDER_WEBHOOK,
                "vSphere provider is set with an invalid SDK endpoint type",
            )),
        }
    }
}

impl Admission for ForkliftWebhooks {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        // Webhooks see spec writes; the controllers' status writes never go through them.
        if request.status || request.resource.group != "forklift.konveyor.io" {
            return Ok(());
        }
        match request.resource.plural {
            "plans" => ForkliftWebhooks::plan(request, object, request.view),
            "migrations" => ForkliftWebhooks::migration(request, object, request.view),
            "providers" => ForkliftWebhooks::provider(object),
            _ => Ok(()),
        }
    }
}
