//! The OpenStack adapter against the lab's OpenStack APIs (Keystone, Nova, Cinder, Glance, Neutron
//! over HTTPS with a certificate from the lab's CA): every trait method, and what a wrong password,
//! an unknown CA and an unreachable URL give.

use std::time::Duration;

use mtv_lab::source::SourceLab;
use mtv_lab::tls::LabTls;
use mtv_providers::openstack::{OpenstackConfig, OpenstackSource};
use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider};

/// The built-in lab's `openstack` source on its own TLS listener.
struct Served {
    lab: SourceLab,
    tls: LabTls,
    auth_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve() -> Served {
    let lab = SourceLab::builtin();
    let tls = LabTls::generate().unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = tls.listener(tcp).unwrap();
    let router = mtv_lab::source::openstack::router(lab.clone(), "openstack".to_string());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Served {
        lab,
        tls,
        auth_url: format!("https://127.0.0.1:{port}/v3"),
        server,
    }
}

/// The profile the built-in providers file gives the lab's OpenStack, at `auth_url`.
fn config(auth_url: &str, password: &str, ca: Option<&str>) -> OpenstackConfig {
    let mut config = OpenstackConfig::new("lab-openstack", auth_url, "admin", password, "admin");
    config.user_domain_name = Some("Default".into());
    config.project_domain_id = Some("default".into());
    config.region = Some("regionOne".into());
    config.ca_certificate = ca.map(str::to_string);
    config.poll_interval = Duration::from_millis(20);
    config.request_timeout = Duration::from_secs(20);
    config.task_timeout = Duration::from_secs(20);
    config
}

async fn connect(served: &Served) -> OpenstackSource {
    OpenstackSource::connect(config(
        &served.auth_url,
        "lab-password",
        Some(served.tls.ca_pem()),
    ))
    .await
    .unwrap()
}

/// The lab's cloud holds no volume and no volume snapshot: what clones made is gone.
fn assert_no_volume_or_snapshot(lab: &SourceLab) {
    let spec = lab.provider("openstack").unwrap();
    assert!(
        spec.openstack.volumes.is_empty(),
        "{:?}",
        spec.openstack.volumes
    );
    assert!(
        spec.openstack.snapshots.is_empty(),
        "{:?}",
        spec.openstack.snapshots
    );
}

#[tokio::test]
async fn find_and_facts_read_nova_cinder_and_neutron() {
    let served = serve().await;
    let source = connect(&served).await;
    let vm = source
        .find("mtv-tests-rhel8")
        .await
        .unwrap()
        .expect("found");
    let model = served
        .lab
        .vms_named("openstack", "mtv-tests-rhel8")
        .unwrap()
        .remove(0);
    assert_eq!(vm.id, model.id);
    assert!(!vm.powered_on);
    assert_eq!(
        (vm.cpu_sockets * vm.cores_per_socket, vm.memory_mib),
        (2, 4096)
    );
    assert!(vm.guest_agent);
    assert_eq!(vm.firmware, "bios");
    assert_eq!(vm.host.as_deref(), Some("compute-0.lab.mtv-tests.internal"));
    let disks: Vec<(&str, &str, u64)> = vm
        .disks
        .iter()
        .map(|d| (d.file.as_str(), d.datastore.as_str(), d.capacity_gib))
        .collect();
    let expected: Vec<(&str, &str, u64)> = model
        .disks
        .iter()
        .map(|d| (d.file.as_str(), d.datastore.as_str(), d.capacity_gib))
        .collect();
    assert_eq!(disks, expected);
    let macs: Vec<&str> = vm.nics.iter().map(|n| n.mac.as_str()).collect();
    assert_eq!(macs, ["fa:16:3e:10:00:01", "fa:16:3e:10:00:02"]);
    assert_eq!(vm.nics[0].network, model.nics[0].network);
    assert_eq!(
        (
            vm.nics[0].ips[0].ip.as_str(),
            vm.nics[0].ips[0].prefix,
            vm.nics[0].ips[0].gateway.as_deref()
        ),
        ("10.50.1.21", 24, Some("10.50.1.1"))
    );
    assert_eq!(source.facts(&vm.id).await.unwrap(), vm);
    assert!(source.find("no-such-server").await.unwrap().is_none());
    assert!(matches!(
        source.facts("no-such-id").await,
        Err(SourceError::NotFound(_))
    ));
    assert_eq!(source.ca_certificate().await.unwrap(), served.tls.ca_pem());
    assert!(
        source
            .write_guest_file(&vm.id, "/tmp/x", "y")
            .await
            .is_err()
    );
    assert!(source.read_guest_file(&vm.id, "/tmp/x").await.is_err());
}

#[tokio::test]
async fn a_clone_is_volumes_from_snapshots_booted_with_the_flavor_and_is_deleted_with_them() {
    let served = serve().await;
    let source = connect(&served).await;
    let lab = &served.lab;
    let original = lab
        .vms_named("openstack", "mtv-win2019-3disks")
        .unwrap()
        .remove(0);
    let request = CloneRequest {
        name: "mtv-clone-3disks".into(),
        add_disks: vec![NewDisk {
            size_gib: 5,
            provisioning: "thin".into(),
            mode: "persistent".into(),
            datastore: None,
            rdm: None,
            lun: None,
        }],
        ..CloneRequest::default()
    };
    let clone = source.clone_vm(&original.id, &request).await.unwrap();

    // Boot order and volume types kept, new volumes, the added disk last; powered off by default.
    assert!(!clone.powered_on);
    let sizes: Vec<(u64, &str)> = clone
        .disks
        .iter()
        .map(|d| (d.capacity_gib, d.datastore.as_str()))
        .collect();
    let mut expected: Vec<(u64, &str)> = original
        .disks
        .iter()
        .map(|d| (d.capacity_gib, d.datastore.as_str()))
        .collect();
    expected.push((5, original.disks[0].datastore.as_str()));
    assert_eq!(sizes, expected);
    assert!(
        clone
            .disks
            .iter()
            .all(|d| original.disks.iter().all(|o| o.file != d.file))
    );
    // The source's flavor and guest; fresh MACs on the source's networks.
    let model = lab.vm("openstack", &clone.id).unwrap();
    assert_eq!(model.flavor, original.flavor);
    assert_eq!(model.guest_os, original.guest_os);
    assert_eq!((clone.cpu_sockets, clone.memory_mib), (4, 8192));
    assert_eq!(clone.nics.len(), original.nics.len());
    assert_eq!(clone.nics[0].network, original.nics[0].network);
    assert_ne!(clone.nics[0].mac, original.nics[0].mac);
    let spec = lab.provider("openstack").unwrap();
    assert_eq!(
        spec.openstack.snapshots.len(),
        3,
        "one snapshot per source volume"
    );
    assert!(
        spec.openstack
            .snapshots
            .iter()
            .all(|s| s.metadata["mtv-tests.clone"] == "mtv-clone-3disks")
    );

    // Power, disks, NICs, snapshots.
    source.set_power(&clone.id, true).await.unwrap();
    assert!(lab.vm("openstack", &clone.id).unwrap().power_state == mtv_lab::source::PowerState::On);
    source.set_power(&clone.id, true).await.unwrap();
    source.set_power(&clone.id, false).await.unwrap();
    assert!(!source.facts(&clone.id).await.unwrap().powered_on);
    let disk = NewDisk {
        size_gib: 2,
        provisioning: "thin".into(),
        mode: "persistent".into(),
        datastore: Some(spec.datastores[1].id.clone()),
        rdm: None,
        lun: None,
    };
    source.add_disk(&clone.id, &disk).await.unwrap();
    let facts = source.facts(&clone.id).await.unwrap();
    assert_eq!(facts.disks.len(), 5);
    assert_eq!(
        (
            facts.disks[4].capacity_gib,
            facts.disks[4].datastore.as_str()
        ),
        (2, spec.datastores[1].id.as_str())
    );
    let network = original.nics[0].network.clone();
    let mac = source
        .add_nic(&clone.id, &NewNic::new(&network, true))
        .await
        .unwrap();
    assert!(
        lab.vm("openstack", &clone.id)
            .unwrap()
            .nics
            .iter()
            .any(|n| n.mac == mac && n.network == network)
    );
    let snapshot = source
        .create_snapshot(&clone.id, "before-migration")
        .await
        .unwrap();
    assert_eq!(snapshot.name, "before-migration");
    assert_eq!(
        source.facts(&clone.id).await.unwrap().snapshots,
        vec![snapshot]
    );

    // Deleting the clone deletes its server, volumes, images and the snapshots it made, no more.
    source.delete_vm(&clone.id).await.unwrap();
    assert!(lab.vm("openstack", &clone.id).is_err());
    assert_no_volume_or_snapshot(lab);
    let spec = lab.provider("openstack").unwrap();
    assert!(
        spec.openstack.images.is_empty(),
        "{:?}",
        spec.openstack.images
    );
    assert_eq!(lab.vm("openstack", &original.id).unwrap(), original);
    // Deleting what is gone is not an error.
    source.delete_vm(&clone.id).await.unwrap();
}

#[tokio::test]
async fn a_clone_can_start_powered_on() {
    let served = serve().await;
    let source = connect(&served).await;
    let original = source.find("mtv-tests-rhel8").await.unwrap().unwrap();
    let request = CloneRequest {
        name: "mtv-clone-on".into(),
        power_on: Some(true),
        host: Some("compute-1.lab.mtv-tests.internal".into()),
        ..CloneRequest::default()
    };
    let clone = source.clone_vm(&original.id, &request).await.unwrap();
    assert!(clone.powered_on);
    assert_eq!(clone.disks.len(), 1);
    assert_eq!(
        clone.host.as_deref(),
        Some("compute-1.lab.mtv-tests.internal")
    );
    source.delete_vm(&clone.id).await.unwrap();
}

#[tokio::test]
async fn a_clone_that_fails_midway_leaves_no_volume_or_snapshot_behind() {
    let served = serve().await;
    let source = connect(&served).await;
    let original = source.find("mtv-win2019-3disks").await.unwrap().unwrap();
    let request = CloneRequest {
        name: "mtv-clone-broken".into(),
        target_datastore: Some("no-such-volume-type".into()),
        ..CloneRequest::default()
    };
    let error = source.clone_vm(&original.id, &request).await.unwrap_err();
    assert!(error.to_string().contains("no-such-volume-type"), "{error}");
    assert_no_volume_or_snapshot(&served.lab);
    assert!(
        served
            .lab
            .vms_named("openstack", "mtv-clone-broken")
            .unwrap()
            .is_empty()
    );
    // Warm migrations need changed block tracking, which OpenStack volumes do not have.
    let warm = CloneRequest {
        name: "mtv-clone-warm".into(),
        cbt: true,
        ..CloneRequest::default()
    };
    let error = source.clone_vm(&original.id, &warm).await.unwrap_err();
    assert!(
        error.to_string().contains("changed block tracking"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_naming_the_profile_and_not_the_password() {
    let served = serve().await;
    let error = OpenstackSource::connect(config(
        &served.auth_url,
        "not-the-password",
        Some(served.tls.ca_pem()),
    ))
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, SourceError::LoginRefused { .. }), "{text}");
    assert!(text.contains("profile `lab-openstack`"), "{text}");
    assert!(text.contains(&served.auth_url), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
}

#[tokio::test]
async fn an_unknown_ca_is_refused_and_insecure_skips_the_check() {
    let served = serve().await;
    let other = LabTls::generate().unwrap();
    let error = OpenstackSource::connect(config(
        &served.auth_url,
        "lab-password",
        Some(other.ca_pem()),
    ))
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains(&served.auth_url), "{text}");
    assert!(text.to_ascii_lowercase().contains("certificate"), "{text}");
    let mut insecure = config(&served.auth_url, "lab-password", None);
    insecure.insecure_skip_verify = true;
    let source = OpenstackSource::connect(insecure).await.unwrap();
    assert!(source.find("mtv-tests-rhel8").await.unwrap().is_some());
    // Without a CA of its own, the adapter hands the CA the server presents to the Provider Secret.
    assert_eq!(
        source.ca_certificate().await.unwrap().trim(),
        served.tls.ca_pem().trim()
    );
}

#[tokio::test]
async fn an_unreachable_keystone_is_an_error_naming_the_url() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}/v3",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let error = OpenstackSource::connect(config(&url, "lab-password", None))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, SourceError::Request { .. }), "{text}");
    assert!(text.contains(&url), "{text}");
}
