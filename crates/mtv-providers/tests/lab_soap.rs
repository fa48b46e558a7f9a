//! The vSphere adapter against the lab's vSphere source on its real protocol (vim25 SOAP at `/sdk`,
//! HTTPS with a certificate from the lab's CA), beside its tests against vcsim: facts, clone, disks,
//! NICs, snapshots, power, delete and Guest Operations, each change visible in the lab's one source
//! model (what its Forklift inventory reads).

mod common;

use std::future::Future;
use std::time::Duration;

use common::bounded;
use mtv_lab::source::SourceLab;
use mtv_lab::{LabOptions, LabServer};
use mtv_providers::vsphere::{VsphereConfig, VsphereSource};
use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceProvider};

/// Runs a test's body (bounded) against a fresh lab, given the lab's source model and a config for
/// its vSphere source; then shuts the lab down.
async fn on_lab<T: Future<Output = ()>>(test: impl FnOnce(SourceLab, VsphereConfig) -> T) {
    let lab = LabServer::start(LabOptions::default())
        .await
        .expect("lab starts");
    let source = lab.source().unwrap().clone();
    let served = source
        .served("vsphere")
        .expect("the vSphere source is served");
    let mut config = VsphereConfig::new(&served.url, "administrator@vsphere.local", "lab-password");
    config.ca_certificate = Some(lab.ca_pem().to_string());
    config.request_timeout = Duration::from_secs(30);
    config.task_timeout = Duration::from_secs(30);
    config.guest_credentials = Some(("cloud-user".into(), "lab-guest-password".into()));
    bounded(test(source, config)).await;
    lab.shutdown().await;
}

#[tokio::test]
async fn facts_are_the_source_models() {
    on_lab(|source, config| async move {
        let vsphere = VsphereSource::connect(config).await.unwrap();
        let vm = vsphere
            .find("mtv-tests-rhel8")
            .await
            .unwrap()
            .expect("found");
        let model = source.vm("vsphere", "vm-1001").unwrap();
        assert_eq!(vm.id, "vm-1001");
        assert_eq!(
            (vm.cpu_sockets, vm.memory_mib),
            (model.cpu_sockets, model.memory_mib)
        );
        assert_eq!(vm.uuid, model.uuid);
        assert_eq!(vm.host.as_deref(), model.host.as_deref());
        let macs: Vec<&str> = vm.nics.iter().map(|n| n.mac.as_str()).collect();
        assert_eq!(macs, ["00:50:56:a1:10:01", "00:50:56:a1:10:02"]);
        assert_eq!(vm.nics[1].network, "dvportgroup-21");
        assert_eq!(vm.disks[0].file, model.disks[0].file);
        assert_eq!(vm.disks[0].datastore, "datastore-11");
        assert_eq!(
            (vm.disks[0].capacity_gib, vm.disks[0].provisioning.as_str()),
            (30, "thin")
        );
        assert!(vsphere.find("no-such-vm").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn clones_prepares_snapshots_and_deletes_through_soap() {
    on_lab(|source, config| async move {
        let vsphere = VsphereSource::connect(config).await.unwrap();
        let request = CloneRequest {
            name: "adapter-clone".into(),
            power_on: Some(true),
            cbt: true,
            disk_type: Some("thick-eager".into()),
            target_datastore: Some("datastore-xcopy-1".into()),
            host: Some("esxi-02.lab.mtv-tests.internal".into()),
            add_disks: vec![NewDisk {
                size_gib: 4,
                provisioning: "thin".into(),
                mode: "independent_persistent".into(),
                datastore: None,
                rdm: None,
                lun: None,
            }],
        };
        let clone = vsphere.clone_vm("vm-1001", &request).await.unwrap();
        let model = source.vm("vsphere", &clone.id).unwrap();
        assert_eq!(model.name, "adapter-clone");
        assert!(clone.powered_on && clone.cbt && model.cbt);
        assert_eq!(model.host.as_deref(), Some("host-102"));
        assert_eq!(model.disks.len(), 2);
        assert!(
            model
                .disks
                .iter()
                .all(|d| d.datastore == "datastore-xcopy-1")
        );
        assert_eq!(clone.disks[0].provisioning, "thick-eager");
        assert_eq!(
            (clone.disks[1].capacity_gib, clone.disks[1].mode.as_str()),
            (4, "independent_persistent")
        );
        // A powered-on clone with tools running reports its guest's addresses.
        assert!(
            clone.nics[0]
                .ips
                .iter()
                .any(|ip| ip.is_static && ip.gateway.as_deref() == Some("10.10.1.1"))
        );

        let mac = vsphere
            .add_nic(&clone.id, &NewNic::new("VM Network", true))
            .await
            .unwrap();
        assert!(
            source
                .vm("vsphere", &clone.id)
                .unwrap()
                .nics
                .iter()
                .any(|n| n.mac == mac)
        );
        let snapshot = vsphere.create_snapshot(&clone.id, "before").await.unwrap();
        assert_eq!(
            source.vm("vsphere", &clone.id).unwrap().snapshots[0].id,
            snapshot.id
        );

        vsphere.delete_vm(&clone.id).await.unwrap();
        assert!(source.vm("vsphere", &clone.id).is_err());
        // Deleting what is gone is not an error.
        vsphere.delete_vm(&clone.id).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn guest_files_and_commands_go_through_guest_operations() {
    on_lab(|source, config| async move {
        let vsphere = VsphereSource::connect(config.clone()).await.unwrap();
        let clone = vsphere
            .clone_vm(
                "vm-1001",
                &CloneRequest {
                    name: "guest-ops".into(),
                    power_on: Some(true),
                    ..CloneRequest::default()
                },
            )
            .await
            .unwrap();
        vsphere
            .write_guest_file(&clone.id, "/root/marker", "data 42\n")
            .await
            .unwrap();
        assert_eq!(
            source
                .vm("vsphere", &clone.id)
                .unwrap()
                .guest_files
                .get("/root/marker")
                .map(String::as_str),
            Some("data 42\n")
        );
        assert_eq!(
            vsphere
                .read_guest_file(&clone.id, "/root/marker")
                .await
                .unwrap()
                .as_deref(),
            Some("data 42\n")
        );
        assert_eq!(
            vsphere
                .read_guest_file(&clone.id, "/root/none")
                .await
                .unwrap(),
            None
        );
        let (code, output) = vsphere
            .run_in_guest(&clone.id, "nmcli device show")
            .await
            .unwrap();
        assert_eq!(code, 0, "{output}");
        assert!(
            output.contains(&clone.nics[0].mac.to_uppercase()),
            "{output}"
        );
        assert!(
            output.contains("IP4.GATEWAY:                            10.10.1.1"),
            "{output}"
        );
        let (code, _) = vsphere.run_in_guest(&clone.id, "frobnicate").await.unwrap();
        assert_eq!(code, 127);

        // Powered off, the guest answers no operations; without credentials the adapter says what to give.
        vsphere.set_power(&clone.id, false).await.unwrap();
        let error = vsphere
            .read_guest_file(&clone.id, "/root/marker")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("InvalidPowerState"), "{error}");
        let mut anonymous = config;
        anonymous.guest_credentials = None;
        let error = VsphereSource::connect(anonymous)
            .await
            .unwrap()
            .write_guest_file(&clone.id, "/root/x", "x")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("guest_vm_linux_user"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn the_lab_ca_is_the_trust_and_a_wrong_password_is_refused_without_showing_it() {
    on_lab(|_, config| async move {
        let mut untrusted = config.clone();
        untrusted.ca_certificate = None;
        let error = VsphereSource::connect(untrusted)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("cacert"), "{error}");
        let mut insecure = config.clone();
        insecure.ca_certificate = None;
        insecure.insecure_skip_verify = true;
        VsphereSource::connect(insecure).await.unwrap();
        let mut wrong = config;
        wrong.password = "not-the-Password-7".into();
        let error = VsphereSource::connect(wrong).await.unwrap_err().to_string();
        assert!(
            error.contains("InvalidLogin") && !error.contains("not-the-Password-7"),
            "{error}"
        );
    })
    .await;
}
