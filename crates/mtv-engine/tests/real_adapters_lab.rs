//! A run on the lab reaches its sources exactly as a run on a cluster does: for every built-in
//! profile, tier0 passes through the real adapters (vSphere SOAP, oVirt REST, OpenStack, the OVA
//! inventory, KubeVirt), the ledger's source VMs name those adapters, teardown deletes them again
//! through `reconnect`, the lab counts the run's requests on the source's own endpoint, and the lab's
//! own source API (`/lab/v1/sources`) answers not one request.

mod common;

use common::{RunRequest, lab, run_on_lab, source_vm_count};
use serde_json::Value;

/// The built-in profiles, and the adapter the ledger must name for their source VMs (OVA clones
/// nothing).
const PROFILES: [(&str, Option<&str>); 6] = [
    ("vsphere", Some("vsphere")),
    ("vsphere-copy-offload", Some("vsphere")),
    ("ovirt", Some("ovirt")),
    ("openstack", Some("openstack")),
    ("ova", None),
    ("openshift", Some("openshift")),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_of_every_builtin_profile_uses_the_real_adapters_and_no_lab_only_endpoint() {
    for (profile, adapter) in PROFILES {
        let lab = lab("", None).await;
        let vms_before = source_vm_count(&lab);
        let run = run_on_lab(
            &lab,
            RunRequest {
                profile,
                ..RunRequest::default()
            },
        )
        .await;
        let outcomes = run.recorder.outcomes();
        let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
        assert!(failed.is_empty(), "{profile}: {failed:#?}");
        assert_eq!(run.outcome.exit_code, 0, "{profile}");
        assert_eq!(run.outcome.leftovers, 0, "{profile}");
        assert_eq!(source_vm_count(&lab), vms_before, "{profile}: clones left");

        let ledger: Value =
            serde_json::from_str(&std::fs::read_to_string(&run.ledger).unwrap()).unwrap();
        let adapters: Vec<&str> = ledger["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "source_vm")
            .map(|e| e["source"]["adapter"].as_str().unwrap_or_default())
            .collect();
        match adapter {
            Some(adapter) => {
                assert!(
                    !adapters.is_empty(),
                    "{profile}: no source VM in the ledger"
                );
                assert!(
                    adapters.iter().all(|a| *a == adapter),
                    "{profile}: {adapters:?}"
                );
            }
            None => assert!(adapters.is_empty(), "{profile}: {adapters:?}"),
        }
        assert_eq!(
            lab.source().unwrap().source_api_requests(),
            0,
            "{profile}: the run called the lab-only source API"
        );
        // The source's own endpoint served the run (the lab counts requests by endpoint).
        if let Some(endpoint) = adapter.filter(|a| ["vsphere", "ovirt", "openstack"].contains(a)) {
            let counts = lab.request_counts();
            assert!(
                counts.get(endpoint).is_some_and(|n| *n > 0),
                "{profile}: no request on the {endpoint} endpoint: {counts:?}"
            );
        }
        lab.shutdown().await;
    }
}
