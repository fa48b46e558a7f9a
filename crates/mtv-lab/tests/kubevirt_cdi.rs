//! The lab's KubeVirt and CDI controllers in process, through the store: start/stop requests of the
//! subresource API carried out by the VM controller, the VM status shapes, DataVolume templates, and CDI
//! leaving Forklift's DataVolumes to the Forklift simulation while binding their volumes.

mod common;

use common::{PollsObjects, s};
use mtv_lab::kubevirt::subresources;
use mtv_lab::registry;
use mtv_lab::store::Store;
use mtv_lab::{LabOptions, LabServer};
use serde_json::{Value, json};

const NS: &str = "kv";

async fn lab() -> LabServer {
    let lab = LabServer::start(LabOptions::default()).await.unwrap();
    lab.store()
        .create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": NS}}),
        )
        .unwrap();
    lab
}

fn vm(name: &str, strategy: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"runStrategy": strategy, "template": {"spec": {
        "domain": {"cpu": {"cores": 1}, "memory": {"guest": "1Gi"}, "devices": {"interfaces": [{"name": "default", "masquerade": {}}]}},
        "networks": [{"name": "default", "pod": {}}]}}}})
}

/// The PersistentVolume a claim is bound to (`spec.volumeName`).
fn volume_of(store: &Store, pvc: &Value) -> Value {
    store
        .get(
            &registry::PERSISTENT_VOLUME,
            None,
            s(pvc, "/spec/volumeName"),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_requests_run_and_remove_the_instance_of_a_manual_vm() {
    let lab = lab().await;
    let store = lab.store();
    store
        .create(&registry::VIRTUAL_MACHINE, Some(NS), vm("m", "Manual"))
        .unwrap();
    let stopped = store
        .wait(&registry::VIRTUAL_MACHINE, NS, "m", "Stopped", |v| {
            s(v, "/status/printableStatus") == "Stopped"
        })
        .await;
    assert!(stopped["status"].get("ready").is_none());
    assert!(stopped["status"].get("created").is_none());

    subresources::handle(store, NS, "m", "start", &json!({})).unwrap();
    let running = store
        .wait(&registry::VIRTUAL_MACHINE, NS, "m", "Running", |v| {
            v.pointer("/status/ready") == Some(&json!(true))
        })
        .await;
    assert_eq!(s(&running, "/status/printableStatus"), "Running");
    assert_eq!(running["status"]["created"], true);
    assert!(
        running["status"].get("stateChangeRequests").is_none(),
        "the request was consumed: {:#}",
        running["status"]
    );
    assert_eq!(s(&running, "/spec/runStrategy"), "Manual");
    let vmi = store
        .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(NS), "m")
        .unwrap();
    assert_eq!(s(&vmi, "/status/phase"), "Running");
    assert_eq!(s(&vmi, "/status/interfaces/0/mac").len(), 17);

    // Dry run changes nothing.
    subresources::handle(store, NS, "m", "stop", &json!({"dryRun": ["All"]})).unwrap();
    assert!(
        store
            .get(&registry::VIRTUAL_MACHINE, Some(NS), "m")
            .unwrap()
            .pointer("/status/stateChangeRequests")
            .is_none()
    );
    subresources::handle(store, NS, "m", "stop", &json!({})).unwrap();
    let stopped = store
        .wait(&registry::VIRTUAL_MACHINE, NS, "m", "Stopped", |v| {
            s(v, "/status/printableStatus") == "Stopped"
        })
        .await;
    assert!(stopped["status"].get("ready").is_none());
    assert!(
        store
            .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(NS), "m")
            .is_err()
    );
    let missing = subresources::handle(store, NS, "nope", "start", &json!({})).unwrap_err();
    assert_eq!(missing.code, 404);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_waits_for_its_data_volume_templates_then_runs() {
    let lab = lab().await;
    let store = lab.store();
    let mut body = vm("t", "Always");
    body["spec"]["dataVolumeTemplates"] = json!([{"metadata": {"name": "t-root"},
        "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "2Gi"}}}}}]);
    body["spec"]["template"]["spec"]["volumes"] =
        json!([{"name": "root", "dataVolume": {"name": "t-root"}}]);
    store
        .create(&registry::VIRTUAL_MACHINE, Some(NS), body)
        .unwrap();
    let dv = store
        .wait(
            &registry::DATA_VOLUME,
            NS,
            "t-root",
            "the template's DataVolume",
            |_| true,
        )
        .await;
    assert_eq!(s(&dv, "/metadata/ownerReferences/0/kind"), "VirtualMachine");
    let vm = store
        .wait(&registry::VIRTUAL_MACHINE, NS, "t", "Running", |v| {
            s(v, "/status/printableStatus") == "Running"
        })
        .await;
    assert_eq!(vm["status"]["ready"], true);
    let dv = store
        .get(&registry::DATA_VOLUME, Some(NS), "t-root")
        .unwrap();
    assert_eq!(s(&dv, "/status/phase"), "Succeeded");
    let pvc = store
        .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(NS), "t-root")
        .unwrap();
    let pv = volume_of(store, &pvc);
    assert_eq!(s(&pv, "/spec/claimRef/uid"), s(&pvc, "/metadata/uid"));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forklift_data_volumes_are_left_to_forklift_and_get_a_volume_once_bound() {
    let lab = lab().await;
    let store = lab.store();
    let labels = json!({"migration": "m-uid", "vmID": "vm-1"});
    store
        .create(
            &registry::DATA_VOLUME,
            Some(NS),
            json!({"metadata": {"name": "fk", "labels": labels},
                   "spec": {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Gi"}}}}}),
        )
        .unwrap();
    store
        .update_status(
            &registry::DATA_VOLUME,
            Some(NS),
            "fk",
            json!({"phase": "ImportScheduled", "progress": "N/A"}),
        )
        .unwrap();
    // Forklift's own claim, created after its DataVolume: CDI neither races it nor binds it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    store
        .create(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(NS),
            json!({"metadata": {"name": "fk", "labels": labels}, "spec": {"accessModes": ["ReadWriteOnce"],
                   "storageClassName": "lab-ceph-rbd", "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dv = store.get(&registry::DATA_VOLUME, Some(NS), "fk").unwrap();
    assert_eq!(s(&dv, "/status/phase"), "ImportScheduled");
    let pvc = store
        .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(NS), "fk")
        .unwrap();
    assert_eq!(s(&pvc, "/status/phase"), "Pending");
    // Forklift binds it as its copy starts; CDI gives it a volume.
    store
        .update_status(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(NS),
            "fk",
            json!({"phase": "Bound", "capacity": {"storage": "1Gi"}}),
        )
        .unwrap();
    let pvc = store
        .wait(
            &registry::PERSISTENT_VOLUME_CLAIM,
            NS,
            "fk",
            "a volume",
            |p| !s(p, "/spec/volumeName").is_empty(),
        )
        .await;
    let pv = volume_of(store, &pvc);
    assert_eq!(s(&pv, "/status/phase"), "Bound");
    assert_eq!(
        s(
            &store.get(&registry::DATA_VOLUME, Some(NS), "fk").unwrap(),
            "/status/phase"
        ),
        "ImportScheduled"
    );
    // The claim goes, its volume with it.
    store
        .delete(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(NS),
            "fk",
            &Default::default(),
        )
        .unwrap();
    let name = s(&pv, "/metadata/name").to_string();
    for _ in 0..300 {
        if store
            .get(&registry::PERSISTENT_VOLUME, None, &name)
            .is_err()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        store
            .get(&registry::PERSISTENT_VOLUME, None, &name)
            .is_err()
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_carries_its_install_strategy_and_related_images() {
    let lab = lab().await;
    let csv = lab
        .store()
        .list(
            &registry::CLUSTER_SERVICE_VERSION,
            Some(mtv_lab::MTV_NAMESPACE),
            &Default::default(),
        )
        .unwrap()
        .items
        .remove(0);
    assert_eq!(s(&csv, "/spec/install/strategy"), "deployment");
    assert!(
        csv.pointer("/spec/relatedImages")
            .and_then(Value::as_array)
            .is_some_and(|r| r.len() > 5)
    );
    assert_eq!(s(&csv, "/status/phase"), "Succeeded");
    lab.shutdown().await;
}
