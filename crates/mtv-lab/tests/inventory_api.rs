//! The Forklift inventory REST service: provider listing, each type's shapes, query parameters, the
//! not-found window after a Provider's creation, the token check (TokenReview and SubjectAccessReview, as
//! Forklift does; none of it through the API server's service proxy, which drops the token) and the
//! OpenShift inventory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use mtv_lab::auth::Auth;
use mtv_lab::inventory::{
    INVENTORY_PROXY_PREFIXES, InventoryOptions, inventory_router, seed_inventory_service,
};
use mtv_lab::registry;
use mtv_lab::source::{CloneSpec, SourceLab};
use mtv_lab::store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "openshift-mtv";
const PROXY: &str = "/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:8443/proxy";
/// The cluster admin's token in these tests.
const ADMIN: &str = "admin-token";

struct Lab {
    store: Store,
    source: SourceLab,
    auth: Arc<Auth>,
    /// One router for the whole test, as the lab serves one: it remembers when it first saw a Provider.
    router: axum::Router,
}

impl Lab {
    fn new(options: InventoryOptions) -> Lab {
        let store = Store::default();
        seed_inventory_service(&store).unwrap();
        let source = SourceLab::builtin();
        let auth = Auth::new(store.clone(), ADMIN, "");
        let options = InventoryOptions {
            auth: Some(auth.clone()),
            ..options
        };
        let router = inventory_router(store.clone(), source.clone(), options);
        Lab {
            store,
            source,
            auth,
            router,
        }
    }

    /// No not-found window, token required.
    fn synced() -> Lab {
        Lab::new(InventoryOptions {
            provider_sync_delay: Duration::ZERO,
            ..InventoryOptions::default()
        })
    }

    fn secret(&self, name: &str, keys: &[(&str, &str)]) {
        let data: serde_json::Map<String, Value> = keys
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_string(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        self.store
            .create(
                &registry::SECRET,
                Some(NS),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}),
            )
            .unwrap();
    }

    /// Creates a Provider (and its Secret) reaching the built-in source of `kind`; returns its uid.
    fn provider(&self, name: &str, kind: &str, password: &str) -> String {
        let (url, user) = match kind {
            "vsphere" => (
                "https://vcenter.lab.mtv-tests.internal/sdk",
                "administrator@vsphere.local",
            ),
            "ovirt" => (
                "https://engine.lab.mtv-tests.internal/ovirt-engine/api",
                "admin@internal",
            ),
            "openstack" => ("https://keystone.lab.mtv-tests.internal:5000/v3", "admin"),
            "ova" => ("nfs.lab.mtv-tests.internal:/ova", ""),
            _ => ("", ""),
        };
        let mut spec = json!({"type": kind, "url": url});
        if kind != "openshift" {
            let secret = format!("{name}-secret");
            let mut keys = vec![("url", url)];
            if !user.is_empty() {
                keys.push(("user", user));
                keys.push(("password", password));
            }
            self.secret(&secret, &keys);
            spec["secret"] = json!({"name": secret, "namespace": NS});
        } else {
            spec["secret"] = json!({});
        }
        let created = self
            .store
            .create(
                &registry::PROVIDER,
                Some(NS),
                json!({
                    "apiVersion": "forklift.konveyor.io/v1beta1",
                    "kind": "Provider",
                    "metadata": {"name": name},
                    "spec": spec,
                }),
            )
            .unwrap();
        created["metadata"]["uid"].as_str().unwrap().to_string()
    }

    async fn get_with(
        &self,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = Request::builder().method("GET").uri(uri);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let reason = response
            .headers()
            .get("x-reason")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, reason, value)
    }

    async fn get(&self, path: &str) -> Value {
        let (status, _, value) = self.get_with(path, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {value}");
        value
    }
}

/// A JSON value with the provider uid replaced, for snapshots.
fn redact(value: &Value, uid: &str) -> Value {
    serde_json::from_str(&value.to_string().replace(uid, "<provider-uid>")).unwrap()
}

#[tokio::test]
async fn providers_are_grouped_by_type_with_counts() {
    let lab = Lab::synced();
    let mut uids = Vec::new();
    for kind in ["vsphere", "ovirt", "openstack", "ova", "openshift"] {
        uids.push(lab.provider(&format!("lab-{kind}"), kind, "lab-password"));
    }
    let all = lab.get("/providers").await;
    let keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "openshift",
            "vsphere",
            "ovirt",
            "openstack",
            "ova",
            "ec2",
            "hyperv"
        ]
    );
    assert_eq!(all["ec2"], json!([]));
    let vsphere = &all["vsphere"][0];
    assert_eq!(vsphere["uid"], uids[0].as_str());
    assert_eq!(vsphere["id"], uids[0].as_str());
    assert_eq!(vsphere["name"], "lab-vsphere");
    assert_eq!(vsphere["namespace"], NS);
    assert_eq!(vsphere["type"], "vsphere");
    assert_eq!(
        vsphere["selfLink"],
        format!("providers/vsphere/{}", uids[0])
    );
    assert_eq!(vsphere["object"]["spec"]["type"], "vsphere");
    assert_eq!(vsphere["vmCount"], 6);
    assert_eq!(vsphere["hostCount"], 3);
    assert_eq!(vsphere["datastoreCount"], 4);
    assert_eq!(vsphere["networkCount"], 2);
    assert_eq!(all["ovirt"][0]["storageDomainCount"], 2);
    assert_eq!(all["openstack"][0]["vmCount"], 3);
    assert_eq!(all["ova"][0]["vmCount"], 3);
    assert_eq!(all["openshift"][0]["name"], "lab-openshift");

    let one_type = lab.get("/providers/ovirt").await;
    assert_eq!(one_type.as_array().unwrap().len(), 1);
    assert_eq!(one_type[0]["uid"], uids[1].as_str());
    let one = lab.get(&format!("/providers/openstack/{}", uids[2])).await;
    assert_eq!(one["name"], "lab-openstack");
    assert_eq!(
        lab.get("/providers?namespace=elsewhere").await["vsphere"],
        json!([])
    );

    // Every proxy spelling reaches the inventory, without the token: 401 while auth is required.
    for prefix in INVENTORY_PROXY_PREFIXES {
        let (status, _, _) = lab
            .get_with(&format!("{prefix}/providers/vsphere"), Some(ADMIN))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{prefix}");
    }
    let open = Lab::new(InventoryOptions {
        provider_sync_delay: Duration::ZERO,
        auth_required: false,
        auth: None,
    });
    let uid = open.provider("lab-vsphere", "vsphere", "lab-password");
    for prefix in INVENTORY_PROXY_PREFIXES.iter().copied().chain([""]) {
        let (status, _, value) = open
            .get_with(&format!("{prefix}/providers/vsphere"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{prefix}");
        assert_eq!(value[0]["uid"], uid.as_str(), "{prefix}");
    }
}

#[tokio::test]
async fn vsphere_vm_shape() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    let vm = lab
        .get(&format!("/providers/vsphere/{uid}/vms/vm-1001"))
        .await;
    insta::assert_json_snapshot!("vsphere_vm_powered_off", redact(&vm, &uid));

    // Powered on, the guest reports its networks; the snapshot reference follows the newest snapshot.
    lab.source
        .set_power("vsphere", "vm-1001", mtv_lab::source::PowerAction::Start)
        .unwrap();
    let snapshot = lab
        .source
        .create_snapshot("vsphere", "vm-1001", "before")
        .unwrap();
    let vm = lab
        .get(&format!("/providers/vsphere/{uid}/vms/vm-1001"))
        .await;
    assert_eq!(vm["powerState"], "poweredOn");
    assert_eq!(vm["toolsStatus"], "toolsOk");
    assert_eq!(vm["ipAddress"], "10.10.1.21");
    assert_eq!(
        vm["snapshot"],
        json!({"kind": "VirtualMachineSnapshot", "id": snapshot.id})
    );
    let guest: Vec<(&str, &str, &str)> = vm["guestNetworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["mac"].as_str().unwrap(),
                g["ip"].as_str().unwrap(),
                g["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        guest,
        [
            ("00:50:56:a1:10:01", "10.10.1.21", "manual"),
            ("00:50:56:a1:10:02", "10.20.1.21", "dhcp")
        ]
    );

    // The list answers full objects, templates included.
    let list = lab.get(&format!("/providers/vsphere/{uid}/vms")).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert!(list.iter().all(|vm| vm.get("disks").is_some()));
    assert!(list.iter().any(|vm| vm["isTemplate"] == true));
}

#[tokio::test]
async fn vsphere_collections_and_workload() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    let datastores = lab
        .get(&format!("/providers/vsphere/{uid}/datastores?detail=all"))
        .await;
    let xcopy = datastores
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "datastore-xcopy-1")
        .unwrap();
    assert_eq!(xcopy["name"], "xcopy-datastore-1");
    assert_eq!(xcopy["type"], "VMFS");
    assert_eq!(xcopy["capacity"], 8192u64 * 1024 * 1024 * 1024);
    let summary = lab
        .get(&format!("/providers/vsphere/{uid}/datastores"))
        .await;
    assert!(
        summary[0].get("capacity").is_none(),
        "detail=0 is a summary"
    );
    assert!(summary[0].get("name").is_some());

    let networks = lab
        .get(&format!("/providers/vsphere/{uid}/networks?detail=1"))
        .await;
    assert_eq!(networks[0]["name"], "VM Network");
    assert_eq!(networks[0]["variant"], "Standard");
    assert_eq!(networks[1]["variant"], "DvPortGroup");
    let network = lab
        .get(&format!("/providers/vsphere/{uid}/networks/network-11"))
        .await;
    assert_eq!(network["name"], "VM Network");

    let hosts = lab
        .get(&format!("/providers/vsphere/{uid}/hosts?detail=1"))
        .await;
    assert_eq!(hosts.as_array().unwrap().len(), 3);
    assert_eq!(hosts[0]["cluster"], "mtv-cluster");

    let workload = lab
        .get(&format!("/providers/vsphere/{uid}/workloads/vm-1001"))
        .await;
    assert_eq!(workload["id"], "vm-1001");
    assert_eq!(workload["host"]["id"], "host-101");
    assert_eq!(workload["host"]["cluster"]["datacenter"]["name"], "mtv-dc");

    let (status, _, _) = lab
        .get_with(
            &format!("/providers/vsphere/{uid}/vms/vm-424242"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, reason, _) = lab
        .get_with(&format!("/providers/vsphere/{uid}/nothing"), Some(ADMIN))
        .await;
    assert_eq!((status, reason), (StatusCode::NOT_FOUND, None));
}

#[tokio::test]
async fn name_lookup_matches_names_and_trailing_paths() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    for query in [
        "mtv-tests-rhel8",
        "mtv-dc/vm/mtv-tests-rhel8",
        "/mtv-dc/vm/mtv-tests-rhel8",
        "vm/mtv-tests-rhel8",
    ] {
        let found = lab
            .get(&format!("/providers/vsphere/{uid}/vms?name={query}"))
            .await;
        let ids: Vec<&str> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["vm-1001"], "name={query}");
    }
    let none = lab
        .get(&format!("/providers/vsphere/{uid}/vms?name=tests-rhel8"))
        .await;
    assert_eq!(none, json!([]));
    let network = lab
        .get(&format!(
            "/providers/vsphere/{uid}/networks?name=mtv-secondary"
        ))
        .await;
    assert_eq!(network[0]["id"], "dvportgroup-21");
}

#[tokio::test]
async fn ovirt_lists_vms_not_templates_in_its_shape() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-ovirt", "ovirt", "lab-password");
    let base = format!("/providers/ovirt/{uid}");
    // The lab's oVirt sources are templates; the inventory lists the VMs made from them.
    assert_eq!(lab.get(&format!("{base}/vms")).await, json!([]));
    let template = lab.source.vms_named("ovirt", "mtv-tests-rhel8").unwrap()[0].clone();
    let mut spec = CloneSpec::named("auto-ab12-rhel8");
    spec.power_state = Some(mtv_lab::source::PowerState::On);
    let vm = lab.source.clone_vm("ovirt", &template.id, &spec).unwrap();

    let list = lab.get(&format!("{base}/vms")).await;
    assert_eq!(
        list,
        json!([{
            "id": vm.id,
            "parent": {"kind": "Cluster", "id": "mtv-cluster"},
            "revision": 1,
            "name": "auto-ab12-rhel8",
            "selfLink": format!("providers/ovirt/{uid}/vms/{}", vm.id),
        }])
    );
    let full = lab.get(&format!("{base}/vms/{}", vm.id)).await;
    assert_eq!(full["status"], "up");
    assert_eq!(full["memory"], 4096u64 * 1024 * 1024);
    assert_eq!(full["cpuSockets"], 2);
    assert_eq!(full["osType"], "rhel_8x64");
    assert_eq!(full["nics"][0]["mac"], vm.nics[0].mac.as_str());
    assert_eq!(
        full["nics"][0]["profile"],
        "0b1e6f7a-2c3d-4e5f-8a9b-0c1d2e3f4b01"
    );
    assert_eq!(full["nics"][0]["ipAddress"][0]["address"], "10.30.1.21");
    let disk_id = full["diskAttachments"][0]["disk"].as_str().unwrap();
    assert_eq!(full["diskAttachments"][0]["bootable"], true);
    let disk = lab.get(&format!("{base}/disks/{disk_id}")).await;
    assert_eq!(
        disk["storageDomain"],
        "5d0a9c8b-1e2f-4a3b-8c4d-5e6f7a8b9c01"
    );
    assert_eq!(disk["provisionedSize"], 30u64 * 1024 * 1024 * 1024);
    assert_eq!(disk["storageType"], "image");
    let detailed = lab.get(&format!("{base}/vms?detail=1")).await;
    assert_eq!(detailed[0]["diskAttachments"].as_array().unwrap().len(), 1);
    let profile = lab
        .get(&format!(
            "{base}/nicprofiles/0b1e6f7a-2c3d-4e5f-8a9b-0c1d2e3f4b01"
        ))
        .await;
    assert_eq!(profile["network"], "0b1e6f7a-2c3d-4e5f-8a9b-0c1d2e3f4a01");
    let domains = lab.get(&format!("{base}/storagedomains?detail=1")).await;
    assert_eq!(domains[0]["name"], "mtv-data-nfs");
    assert_eq!(domains[0]["type"], "data");
}

#[tokio::test]
async fn openstack_vm_shape() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-openstack", "openstack", "lab-password");
    let base = format!("/providers/openstack/{uid}");
    let vm = lab
        .get(&format!("{base}/vms/2d4f6a8c-0e2a-4c4e-8a6c-0e2a4c6e8a01"))
        .await;
    assert_eq!(vm["status"], "SHUTOFF");
    assert_eq!(vm["tenantID"], "8f2e4d6c-0a1b-4c3d-9e5f-7a6b5c4d3e01");
    assert_eq!(vm["flavorID"], "1c3e5a7c-9e1a-4c3e-8a5c-7e9a1c3e5a02");
    assert_eq!(
        vm["addresses"]["mtv-private"][0],
        json!({
            "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:10:00:01",
            "OS-EXT-IPS:type": "fixed",
            "addr": "10.50.1.21",
            "version": "v4",
        })
    );
    let volume_id = vm["attachedVolumes"][0]["ID"].as_str().unwrap();
    let volume = lab.get(&format!("{base}/volumes/{volume_id}")).await;
    assert_eq!(volume["size"], 30);
    assert_eq!(volume["volumeType"], "tripleo");
    assert_eq!(volume["bootable"], "true");
    let flavor = lab
        .get(&format!(
            "{base}/flavors/1c3e5a7c-9e1a-4c3e-8a5c-7e9a1c3e5a02"
        ))
        .await;
    assert_eq!(
        (flavor["vcpus"].clone(), flavor["ram"].clone()),
        (json!(2), json!(4096))
    );
    let types = lab.get(&format!("{base}/volumetypes")).await;
    assert_eq!(types[0]["name"], "tripleo");
}

#[tokio::test]
async fn ova_vm_shape_has_pascal_case_nested_keys() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-ova", "ova", "");
    let base = format!("/providers/ova/{uid}");
    let found = lab.get(&format!("{base}/vms?name=mtv-ova-rhel9")).await;
    let id = found[0]["id"].as_str().unwrap();
    let vm = lab.get(&format!("{base}/vms/{id}")).await;
    insta::assert_json_snapshot!("ova_vm", redact(&vm, &uid));
    let storages = lab.get(&format!("{base}/storages")).await;
    assert!(
        storages
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "mtv-ova-rhel9-disk1.vmdk")
    );
}

#[tokio::test]
async fn a_new_provider_is_not_found_for_a_while_then_found() {
    let lab = Lab::new(InventoryOptions {
        provider_sync_delay: Duration::from_millis(400),
        ..InventoryOptions::default()
    });
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    let path = format!("/providers/vsphere/{uid}/vms");
    let (status, reason, _) = lab.get_with(&path, Some(ADMIN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reason.as_deref(), Some("ProviderNotFound"));
    assert_eq!(lab.get("/providers/vsphere").await, json!([]));
    // Retry as a harness does, until the inventory catches up.
    let mut found = None;
    for _ in 0..200 {
        let (status, _, value) = lab.get_with(&path, Some(ADMIN)).await;
        if status == StatusCode::OK {
            found = Some(value);
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let vms = found.expect("the provider never appeared in the inventory");
    assert_eq!(vms.as_array().unwrap().len(), 6);
    assert_eq!(lab.get("/providers/vsphere").await[0]["uid"], uid.as_str());
}

#[tokio::test]
async fn unknown_provider_uid_is_404_provider_not_found() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    for path in [
        "/providers/vsphere/00000000-0000-4000-8000-000000000000".to_string(),
        "/providers/vsphere/00000000-0000-4000-8000-000000000000/vms".to_string(),
        // The right uid under the wrong type.
        format!("/providers/ovirt/{uid}/vms"),
    ] {
        let (status, reason, _) = lab.get_with(&path, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reason.as_deref(), Some("ProviderNotFound"), "{path}");
    }
}

#[tokio::test]
async fn a_token_is_required_unless_auth_is_off() {
    let lab = Lab::synced();
    let (status, _, _) = lab.get_with("/providers", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = lab.get_with("/providers", Some("")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A token the TokenReview does not authenticate is refused as Forklift refuses it: 403.
    let (status, _, _) = lab.get_with("/providers", Some("anything")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = lab.get_with("/providers", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    // Through the API server's service proxy the token never arrives.
    let (status, _, _) = lab
        .get_with(&format!("{PROXY}/providers"), Some(ADMIN))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let open = Lab::new(InventoryOptions {
        provider_sync_delay: Duration::ZERO,
        auth_required: false,
        auth: None,
    });
    let (status, _, _) = open.get_with(&format!("{PROXY}/providers"), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_service_account_sees_the_providers_rbac_lets_it_get() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "lab-password");
    lab.store
        .create(
            &registry::SERVICE_ACCOUNT,
            Some(NS),
            json!({"metadata": {"name": "reader"}}),
        )
        .unwrap();
    let token = mtv_lab::auth::token_request(&lab.auth, NS, "reader", &json!({})).unwrap()
        ["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let vms = format!("/providers/vsphere/{uid}/vms");
    let (status, _, _) = lab.get_with(&vms, Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no role yet");
    lab.store
        .create(
            &registry::ROLE,
            Some(NS),
            json!({"metadata": {"name": "provider-reader"}, "rules": [
                {"apiGroups": ["forklift.konveyor.io"], "resources": ["providers"], "verbs": ["get", "list"]}
            ]}),
        )
        .unwrap();
    lab.store
        .create(
            &registry::ROLE_BINDING,
            Some(NS),
            json!({"metadata": {"name": "reader"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "provider-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]}),
        )
        .unwrap();
    let (status, _, value) = lab.get_with(&vms, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!value.as_array().unwrap().is_empty());
    // Its role is namespaced: listing every namespace's Providers is refused, its own namespace's not.
    let (status, _, _) = lab.get_with("/providers", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, value) = lab
        .get_with(&format!("/providers?namespace={NS}"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["vsphere"][0]["uid"], uid.as_str());
}

#[tokio::test]
async fn wrong_credentials_leave_the_inventory_empty() {
    let lab = Lab::synced();
    let uid = lab.provider("lab-vsphere", "vsphere", "wrong-password");
    assert_eq!(
        lab.get(&format!("/providers/vsphere/{uid}/vms")).await,
        json!([])
    );
    assert_eq!(lab.get("/providers/vsphere").await[0]["vmCount"], 0);
}

#[tokio::test]
async fn openshift_provider_lists_kubevirt_vms_of_the_store() {
    let lab = Lab::synced();
    let uid = lab.provider("host", "openshift", "");
    lab.store
        .create(
            &registry::NAMESPACE,
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "auto-ab12-source-vms"}}),
        )
        .unwrap();
    let created = lab
        .store
        .create(
            &registry::VIRTUAL_MACHINE,
            Some("auto-ab12-source-vms"),
            json!({
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "rhel9-source"},
                "spec": {"runStrategy": "Halted", "template": {"spec": {"domain": {"devices": {}}}}},
            }),
        )
        .unwrap();
    let vm_uid = created["metadata"]["uid"].as_str().unwrap();
    let base = format!("/providers/openshift/{uid}");
    let list = lab
        .get(&format!("{base}/vms?namespace=auto-ab12-source-vms"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["uid"], vm_uid);
    assert_eq!(list[0]["id"], vm_uid);
    assert_eq!(list[0]["namespace"], "auto-ab12-source-vms");
    assert_eq!(list[0]["name"], "rhel9-source");
    let one = lab.get(&format!("{base}/vms/{vm_uid}")).await;
    assert_eq!(one["object"]["kind"], "VirtualMachine");
    assert_eq!(one["object"]["spec"]["runStrategy"], "Halted");
    assert_eq!(one["instance"], Value::Null);
    let by_name = lab
        .get(&format!("{base}/vms?name=rhel9-source&detail=all"))
        .await;
    assert_eq!(by_name[0]["object"]["metadata"]["name"], "rhel9-source");
    assert_eq!(
        lab.get(&format!("{base}/vms?namespace=default")).await,
        json!([])
    );
    let namespaces = lab.get(&format!("{base}/namespaces")).await;
    assert!(
        namespaces
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "auto-ab12-source-vms")
    );
    assert_eq!(lab.get("/providers/openshift").await[0]["vmCount"], 1);
    // Instancetypes, as Forklift's OpenShift inventory lists them.
    lab.store
        .create(
            &registry::VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE,
            None,
            json!({"metadata": {"name": "u1.small"}, "spec": {"cpu": {"guest": 1}, "memory": {"guest": "2Gi"}}}),
        )
        .unwrap();
    let types = lab.get(&format!("{base}/clusterinstancetypes")).await;
    assert_eq!(types[0]["name"], "u1.small");
    assert_eq!(lab.get(&format!("{base}/instancetypes")).await, json!([]));
}

#[tokio::test]
async fn the_inventory_service_is_seeded() {
    let lab = Lab::synced();
    let service = lab
        .store
        .get(&registry::SERVICE, Some(NS), "forklift-inventory")
        .unwrap();
    assert_eq!(service["spec"]["ports"][0]["port"], 8443);
    // Seeding twice is harmless.
    seed_inventory_service(&lab.store).unwrap();
}
