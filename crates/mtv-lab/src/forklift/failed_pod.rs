//! What a failed VM's pod says. When an injected `vm-fail` stops a VM in a step whose work the
//! guest conversion pod does (`ImageConversion`, `DiskTransferV2v`), the VM's virt-v2v pod ends
//! `Failed` with the error as the last line of its log, as virt-v2v's own pod does: diagnostics find
//! there the log line that says why. Forklift makes that pod in `CreateGuestConversionPod`; a VM that
//! failed before that phase ended gets it then, so the failure always has a pod to show it.

use serde_json::{Value, json};

use super::inventory::InvVm;
use super::plan::PlanCtx;
use super::{Controller, meta, text_at};
use crate::registry::{self, POD_LOG_ANNOTATION};
use crate::selector::LabelSelector;
use crate::store::ListOptions;

/// The pipeline steps a guest conversion pod works in.
const CONVERSION_STEPS: [&str; 2] = ["ImageConversion", "DiskTransferV2v"];

impl Controller {
    /// Writes `virt-v2v: error: <message>` at the end of the VM's conversion pod's log and marks
    /// the pod Failed, when the VM failed in a conversion step.
    pub(crate) fn fail_conversion_pod(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        inventory_vm: &InvVm,
        step: &str,
        message: &str,
    ) {
        if !CONVERSION_STEPS.contains(&step) {
            return;
        }
        let pod = match self.conversion_pod(plan, ctx, inventory_vm) {
            Some(pod) => pod,
            None => {
                let _ = self.create_conversion_pod(plan, ctx, migration, inventory_vm);
                let Some(pod) = self.conversion_pod(plan, ctx, inventory_vm) else {
                    return;
                };
                pod
            }
        };
        let name = meta(&pod, "name").to_string();
        let pointer = format!(
            "/metadata/annotations/{}",
            POD_LOG_ANNOTATION.replace('/', "~1")
        );
        let mut log = text_at(&pod, &pointer).replace("virt-v2v: finished\n", "");
        log.push_str(&format!("virt-v2v: error: {message}\n"));
        self.amend(&registry::POD, Some(ctx.target_ns()), &name, |o| {
            o["metadata"]["annotations"][POD_LOG_ANNOTATION] = json!(log);
        });
        let _ = self.store.update_status(
            &registry::POD,
            Some(ctx.target_ns()),
            &name,
            json!({"phase": "Failed"}),
        );
    }

    /// The VM's virt-v2v pod of this Plan, if there is one.
    fn conversion_pod(&self, plan: &Value, ctx: &PlanCtx, inventory_vm: &InvVm) -> Option<Value> {
        let selector = format!(
            "plan={},vmID={},forklift.app=virt-v2v",
            meta(plan, "uid"),
            inventory_vm.id
        );
        let options = ListOptions {
            label_selector: LabelSelector::parse(&selector).ok()?,
            ..ListOptions::default()
        };
        let list = self
            .store
            .list(&registry::POD, Some(ctx.target_ns()), &options)
            .ok()?;
        list.items.into_iter().next()
    }
}
