//! The forklift-api admission webhooks (forklift-api.md §0.3), as the lab's admission plug-in:
//! - Plan (create/update, not archived): both Providers must exist; warm Plans from OpenStack are
//!   rejected; LUKS only from vSphere or OVA; new Plans get the annotation `populatorLabels: "True"`.
//! - Migration (create): its Plan must exist.
//! - Provider: vSphere without `settings.sdkEndpoint` gets `vcenter`; any other value than `vcenter` or
//!   `esxi` is rejected.

use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionRequest, Operation, StoreView};
use crate::error::ApiError;
use crate::registry;

/// The webhook names the real deployment registers (they appear in denial messages).
const PLAN_WEBHOOK: &str = "plan-validator.forklift.konveyor.io";
const MIGRATION_WEBHOOK: &str = "migration-validator.forklift.konveyor.io";
const PROVIDER_WEBHOOK: &str = "provider-validator.forklift.konveyor.io";

pub struct ForkliftWebhooks;

fn provider_ref(view: &dyn StoreView, reference: &Value, plan_namespace: &str) -> Option<Value> {
    let name = reference["name"].as_str()?;
    let namespace = reference["namespace"].as_str().unwrap_or(plan_namespace);
    view.get(
        registry::find("forklift.konveyor.io", "v1beta1", "providers")?,
        Some(namespace),
        name,
    )
}

impl ForkliftWebhooks {
    fn plan(
        request: &AdmissionRequest<'_>,
        plan: &mut Value,
        view: &dyn StoreView,
    ) -> Result<(), ApiError> {
        if plan["spec"]["archived"] == true {
            return Ok(());
        }
        let namespace = plan["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut source_type = None;
        for side in ["source", "destination"] {
            let reference = &plan["spec"]["provider"][side];
            match provider_ref(view, reference, &namespace) {
                Some(provider) => {
                    if side == "source" {
                        source_type = provider["spec"]["type"].as_str().map(str::to_string);
                    }
                }
                None => {
                    return Err(ApiError::webhook_denied(
                        PLAN_WEBHOOK,
                        &format!(
                            "the {side} provider {}/{} does not exist",
                            reference["namespace"].as_str().unwrap_or(&namespace),
                            reference["name"].as_str().unwrap_or("")
                        ),
                    ));
                }
            }
        }
        let warm = plan["spec"]["warm"] == true || plan["spec"]["type"] == "warm";
        if warm && source_type.as_deref() == Some("openstack") {
            return Err(ApiError::webhook_denied(
                PLAN_WEBHOOK,
                "warm migration from OpenStack is not supported",
            ));
        }
        let luks = plan["spec"]["vms"].as_array().is_some_and(|vms| {
            vms.iter()
                .any(|vm| vm["luks"]["name"].as_str().is_some_and(|n| !n.is_empty()))
        });
        if luks && !matches!(source_type.as_deref(), Some("vsphere") | Some("ova")) {
            return Err(ApiError::webhook_denied(
                PLAN_WEBHOOK,
                "LUKS disk decryption is supported for vSphere and OVA sources only",
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

    fn migration(migration: &Value, view: &dyn StoreView) -> Result<(), ApiError> {
        let namespace = migration["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default();
        let reference = &migration["spec"]["plan"];
        let name = reference["name"].as_str().unwrap_or_default();
        let plan_namespace = reference["namespace"].as_str().unwrap_or(namespace);
        let exists = registry::find("forklift.konveyor.io", "v1beta1", "plans")
            .and_then(|rt| view.get(rt, Some(plan_namespace), name))
            .is_some();
        if exists {
            Ok(())
        } else {
            Err(ApiError::webhook_denied(
                MIGRATION_WEBHOOK,
                &format!("the plan {plan_namespace}/{name} does not exist"),
            ))
        }
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
            Some(other) => Err(ApiError::webhook_denied(
                PROVIDER_WEBHOOK,
                &format!("settings.sdkEndpoint must be vcenter or esxi, not {other:?}"),
            )),
        }
    }
}

impl Admission for ForkliftWebhooks {
    fn admit(
        &self,
        request: &AdmissionRequest<'_>,
        object: &mut Value,
        view: &dyn StoreView,
    ) -> Result<(), ApiError> {
        // Webhooks see spec writes; the controllers' status writes never go through them.
        if request.status || request.resource.group != "forklift.konveyor.io" {
            return Ok(());
        }
        match request.resource.plural {
            "plans" => ForkliftWebhooks::plan(request, object, view),
            "migrations" if request.operation == Operation::Create => {
                ForkliftWebhooks::migration(object, view)
            }
            "providers" => ForkliftWebhooks::provider(object),
            _ => Ok(()),
        }
    }
}
