//! The vSphere adapter against vcsim: govmomi's simulator, a real vim25 SOAP server over HTTPS, built
//! from Debian's packages by `scripts/build-vcsim.sh` (which `scripts/install-test-deps.sh` runs).
//! Each test starts its own vcsim (the VPX model: datacenter DC0, hosts DC0_H0 and DC0_C0_H0..2,
//! datastore LocalDS_0, networks "VM Network" and DC0_DVPG0, VMs DC0_H0_VM0 and DC0_C0_RP0_VM0/1,
//! and DC0_H0_VM1 turned into a template) on a free loopback port; it exits with the test.

mod common;

use std::time::Duration;

use common::bounded;
use mtv_providers::vsphere::{VsphereConfig, VsphereSource};
use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider};

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "vcsim-Secret-9f3k";
/// The VM of the model that vcsim serves as a template.
const TEMPLATE: &str = "DC0_H0_VM1";

/// A running vcsim with the tests' credentials and [`TEMPLATE`].
struct Vcsim(mtv_test_peers::vcsim::Vcsim);

impl Vcsim {
    fn start() -> Vcsim {
        Vcsim(mtv_test_peers::vcsim::Vcsim::start(&[
            "-username",
            USER,
            "-password",
            PASSWORD,
            "-template",
            TEMPLATE,
        ]))
    }

    fn config(&self) -> VsphereConfig {
        let mut config = VsphereConfig::new(self.0.url(), USER, PASSWORD);
        config.insecure_skip_verify = true;
        config.request_timeout = Duration::from_secs(30);
        config.task_timeout = Duration::from_secs(60);
        config
    }

    async fn connect(&self) -> VsphereSource {
        VsphereSource::connect(self.config())
            .await
            .unwrap_or_else(|e| panic!("log in to vcsim at {}: {e}", self.0.url()))
    }
}

#[tokio::test]
async fn finds_vms_and_reads_their_facts() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let vm = source
            .find("DC0_H0_VM0")
            .await
            .unwrap()
            .expect("vcsim's VPX model has DC0_H0_VM0");
        assert!(vm.id.starts_with("vm-"), "{}", vm.id);
        assert_eq!(vm.name, "DC0_H0_VM0");
        assert!(!vm.template);
        // The VPX model powers its VMs on; 1 vCPU and 32 MiB each.
        assert!(vm.powered_on);
        assert_eq!((vm.cpu_sockets, vm.cores_per_socket), (1, 1));
        assert_eq!(vm.memory_mib, 32);
        assert_eq!(vm.firmware, "bios");
        assert!(!vm.uuid.is_empty());
        assert!(vm.host.as_deref().is_some_and(|h| h.starts_with("host-")));
        assert_eq!(vm.disks.len(), 1, "{:?}", vm.disks);
        let disk = &vm.disks[0];
        assert_eq!(disk.file, "[LocalDS_0] DC0_H0_VM0/disk1.vmdk");
        assert!(!disk.datastore.is_empty());
        assert_eq!(disk.capacity_gib, 1, "1 MiB rounds up to 1 GiB");
        assert_eq!(
            (disk.provisioning.as_str(), disk.mode.as_str()),
            ("thin", "persistent")
        );
        assert_eq!(disk.rdm, None);
        assert!(disk.controller_key > 0);
        assert_eq!(vm.nics.len(), 1, "{:?}", vm.nics);
        let nic = &vm.nics[0];
        assert_eq!(nic.mac.len(), 17, "{}", nic.mac);
        assert!(nic.network.starts_with("dvportgroup-"), "{}", nic.network);
        assert!(nic.start_connected);
        assert!(vm.snapshots.is_empty());

        assert_eq!(source.facts(&vm.id).await.unwrap(), vm);
        let other = source.find("DC0_C0_RP0_VM1").await.unwrap().unwrap();
        assert_ne!(other.id, vm.id);
        assert_eq!(source.find("no-such-vm").await.unwrap(), None);
        match source.facts("vm-999999").await {
            Err(SourceError::NotFound(id)) => assert_eq!(id, "vm-999999"),
            other => panic!("expected NotFound, got {other:?}"),
        }
        source.logout().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn clones_and_prepares_a_vm_then_deletes_it() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let original = source.find("DC0_H0_VM0").await.unwrap().unwrap();
        let request = CloneRequest {
            name: "mtv-tests-clone-1".into(),
            power_on: Some(true),
            cbt: true,
            disk_type: Some("thin".into()),
            target_datastore: Some("LocalDS_0".into()),
            host: original.host.clone(),
            add_disks: vec![NewDisk {
                size_gib: 1,
                provisioning: "thin".into(),
                mode: "persistent".into(),
                datastore: None,
                rdm: None,
                lun: None,
            }],
        };
        let clone = source.clone_vm(&original.id, &request).await.unwrap();
        assert_ne!(clone.id, original.id);
        assert_eq!(clone.name, "mtv-tests-clone-1");
        assert!(clone.powered_on, "power_on: Some(true)");
        assert!(clone.cbt, "cbt requested");
        assert_eq!(clone.host, original.host);
        assert_eq!(
            clone.disks.len(),
            original.disks.len() + 1,
            "{:?}",
            clone.disks
        );
        assert!(
            clone
                .disks
                .iter()
                .all(|d| d.file.contains("mtv-tests-clone-1"))
        );
        assert_eq!(
            source.find("mtv-tests-clone-1").await.unwrap(),
            Some(clone.clone())
        );

        source.set_power(&clone.id, false).await.unwrap();
        assert!(!source.facts(&clone.id).await.unwrap().powered_on);
        source.set_power(&clone.id, false).await.unwrap();
        source.set_power(&clone.id, true).await.unwrap();
        assert!(source.facts(&clone.id).await.unwrap().powered_on);

        source
            .add_disk(
                &clone.id,
                &NewDisk {
                    size_gib: 2,
                    provisioning: "thick-eager".into(),
                    mode: "independent_persistent".into(),
                    datastore: Some("LocalDS_0".into()),
                    rdm: None,
                    lun: None,
                },
            )
            .await
            .unwrap();
        let facts = source.facts(&clone.id).await.unwrap();
        assert_eq!(facts.disks.len(), clone.disks.len() + 1);
        let added = facts.disks.last().unwrap();
        assert_eq!(added.capacity_gib, 2);
        assert_eq!(added.provisioning, "thick-eager");
        assert_eq!(added.mode, "independent_persistent");
        assert!(added.file.starts_with("[LocalDS_0] "), "{}", added.file);
        let units: Vec<(i64, i64)> = facts
            .disks
            .iter()
            .map(|d| (d.controller_key, d.unit_number))
            .collect();
        let mut unique = units.clone();
        unique.dedup();
        assert_eq!(units, unique, "every disk on its own unit");

        let rdm = source
            .add_disk(
                &clone.id,
                &NewDisk {
                    size_gib: 0,
                    provisioning: "thin".into(),
                    mode: "persistent".into(),
                    datastore: None,
                    rdm: Some("physical".into()),
                    lun: None,
                },
            )
            .await
            .unwrap_err();
        assert!(rdm.to_string().contains("LUN"), "{rdm}");

        let mac = source
            .add_nic(&clone.id, &NewNic::new("DC0_DVPG0", false))
            .await
            .unwrap();
        let facts = source.facts(&clone.id).await.unwrap();
        let nic = facts
            .nics
            .iter()
            .find(|n| n.mac == mac)
            .unwrap_or_else(|| panic!("MAC {mac} not in {:?}", facts.nics));
        assert!(nic.network.starts_with("dvportgroup-"), "{}", nic.network);
        assert!(!nic.start_connected);
        let standard_mac = source
            .add_nic(&clone.id, &NewNic::new("VM Network", true))
            .await
            .unwrap();
        assert_ne!(standard_mac, mac);
        let facts = source.facts(&clone.id).await.unwrap();
        let nic = facts.nics.iter().find(|n| n.mac == standard_mac).unwrap();
        assert!(nic.network.starts_with("network-"), "{}", nic.network);
        assert!(nic.start_connected);
        let missing = source
            .add_nic(&clone.id, &NewNic::new("no-such-network", true))
            .await
            .unwrap_err();
        assert!(
            missing.to_string().contains("no Network `no-such-network`"),
            "{missing}"
        );

        let first = source
            .create_snapshot(&clone.id, "before-migration")
            .await
            .unwrap();
        assert!(first.id.starts_with("snapshot-"), "{}", first.id);
        assert_eq!(first.name, "before-migration");
        assert!(first.created.len() >= 16, "{}", first.created);
        let second = source.create_snapshot(&clone.id, "second").await.unwrap();
        let snapshots = source.facts(&clone.id).await.unwrap().snapshots;
        assert_eq!(snapshots, vec![first, second]);

        source.delete_vm(&clone.id).await.unwrap();
        assert!(matches!(
            source.facts(&clone.id).await,
            Err(SourceError::NotFound(_))
        ));
        assert_eq!(source.find("mtv-tests-clone-1").await.unwrap(), None);
        // Deleting a missing VM is not an error.
        source.delete_vm(&clone.id).await.unwrap();
        // The original is still there. (Not its disk file name: vcsim 0.24's clone shares the
        // source's device objects and rewrites the source disk's backing file name to the clone's.)
        let after = source.facts(&original.id).await.unwrap();
        assert_eq!(
            (after.name, after.memory_mib),
            (original.name, original.memory_mib)
        );
        assert_eq!(after.disks.len(), original.disks.len());
    })
    .await;
}

#[tokio::test]
async fn finds_templates_and_clones_vms_from_them() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let template = source.find(TEMPLATE).await.unwrap().unwrap();
        assert!(template.template && !template.powered_on);
        // A template has no resource pool: the clone goes to its host's.
        let vm = source
            .clone_vm(
                &template.id,
                &CloneRequest {
                    name: "mtv-tests-from-template".into(),
                    power_on: Some(true),
                    ..CloneRequest::default()
                },
            )
            .await
            .unwrap();
        assert!(!vm.template && vm.powered_on);
        assert_eq!(vm.host, template.host);
        assert_eq!(vm.disks.len(), template.disks.len());
        source.delete_vm(&vm.id).await.unwrap();
        assert!(source.find(TEMPLATE).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_clone_can_stay_off_and_failures_name_the_vm() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let original = source.find("DC0_C0_RP0_VM0").await.unwrap().unwrap();
        let clone = source
            .clone_vm(
                &original.id,
                &CloneRequest {
                    name: "mtv-tests-off".into(),
                    power_on: Some(false),
                    ..CloneRequest::default()
                },
            )
            .await
            .unwrap();
        assert!(!clone.powered_on);
        assert!(!clone.cbt);
        source.delete_vm(&clone.id).await.unwrap();

        let error = source
            .clone_vm("vm-999999", &CloneRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, SourceError::NotFound(ref id) if id == "vm-999999"),
            "{error}"
        );
        let error = source.set_power("vm-999999", true).await.unwrap_err();
        assert!(matches!(error, SourceError::NotFound(_)), "{error}");
        let error = source.create_snapshot("vm-999999", "x").await.unwrap_err();
        assert!(error.to_string().contains("vm-999999"), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_share_one_session_concurrently() {
    let vcsim = Vcsim::start();
    bounded(async {
        // As a run's scenarios do (-j 4): one adapter, one session, several clones at once.
        let source = vcsim.connect().await;
        let original = source.find("DC0_C0_RP0_VM1").await.unwrap().unwrap();
        let mut clones = tokio::task::JoinSet::new();
        for n in 0..4 {
            let (source, id) = (source.clone(), original.id.clone());
            clones.spawn(async move {
                let request = CloneRequest {
                    name: format!("mtv-tests-parallel-{n}"),
                    power_on: Some(n % 2 == 0),
                    ..CloneRequest::default()
                };
                let clone = source.clone_vm(&id, &request).await.unwrap();
                source.create_snapshot(&clone.id, "s").await.unwrap();
                clone
            });
        }
        let mut ids = Vec::new();
        while let Some(clone) = clones.join_next().await {
            ids.push(clone.unwrap().id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        let mut deletions = tokio::task::JoinSet::new();
        for id in ids {
            let source = source.clone();
            deletions.spawn(async move { source.delete_vm(&id).await });
        }
        while let Some(deleted) = deletions.join_next().await {
            deleted.unwrap().unwrap();
        }
        for n in 0..4 {
            let name = format!("mtv-tests-parallel-{n}");
            assert_eq!(source.find(&name).await.unwrap(), None);
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    let vcsim = Vcsim::start();
    bounded(async {
        let mut config = vcsim.config();
        config.password = "wrong-Password-77x".into();
        assert!(!format!("{config:?}").contains("wrong-Password-77x"));
        let error = VsphereSource::connect(config).await.unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("refused the user name or password"),
            "{message}"
        );
        assert!(message.contains(USER), "{message}");
        assert!(!message.contains("wrong-Password-77x"), "{message}");
        assert!(!message.contains(PASSWORD), "{message}");
        assert!(!format!("{error:?}").contains("wrong-Password-77x"));
    })
    .await;
}

#[tokio::test]
async fn tls_is_verified_unless_skipped() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let pem = source.ca_certificate().await.unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");

        // vcsim's certificate is trusted by no system: verification fails, and says why.
        let mut verified = vcsim.config();
        verified.insecure_skip_verify = false;
        let error = VsphereSource::connect(verified.clone()).await.unwrap_err();
        assert!(
            error.to_string().to_lowercase().contains("certificate"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("source_provider_insecure_skip_verify"),
            "{error}"
        );
        // Read before any session, as a run's bootstrap does, it is the same certificate.
        let presented = VsphereSource::presented_ca_certificate(
            &verified.server,
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(presented, pem);
        // With the certificate the server presents, it connects.
        verified.ca_certificate = Some(pem);
        let pinned = VsphereSource::connect(verified).await.unwrap();
        assert!(pinned.find("DC0_H0_VM0").await.unwrap().is_some());
    })
    .await;
}

/// A CA certificate that did not sign vcsim's: the first PEM of the system's store.
fn unrelated_ca_pem() -> Option<String> {
    let dir = std::fs::read_dir("/etc/ssl/certs").ok()?;
    dir.filter_map(Result::ok)
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .find(|text| text.starts_with("-----BEGIN CERTIFICATE-----"))
}

#[tokio::test]
async fn a_pinned_fingerprint_or_cacert_is_the_only_trust() {
    let vcsim = Vcsim::start();
    bounded(async {
        let timeout = Duration::from_secs(10);
        let mut verified = vcsim.config();
        verified.insecure_skip_verify = false;

        // The default: trust what is presented, and tell its fingerprint.
        let fingerprint = VsphereSource::presented_fingerprint(&verified.server, timeout)
            .await
            .unwrap();
        assert_eq!(fingerprint.len(), 95, "{fingerprint}");
        assert!(
            fingerprint
                .chars()
                .all(|c| c == ':' || c.is_ascii_hexdigit()),
            "{fingerprint}"
        );
        let mut default = verified.clone();
        let told = VsphereSource::trust_presented_certificate(&mut default)
            .await
            .unwrap();
        assert_eq!(told, fingerprint);
        assert!(default.ca_certificate.is_some());
        VsphereSource::connect(default).await.unwrap();

        // Pinned by fingerprint (any case, with or without colons): only that certificate.
        let mut pinned = verified.clone();
        pinned.certificate_fingerprint = Some(fingerprint.replace(':', "").to_lowercase());
        let source = VsphereSource::connect(pinned.clone()).await.unwrap();
        assert!(source.find("DC0_H0_VM0").await.unwrap().is_some());
        // The Provider Secret's cacert is what the server presents, checked against the pin.
        let pem = source.ca_certificate().await.unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

        let wrong = "00:".repeat(31) + "00";
        pinned.certificate_fingerprint = Some(wrong.clone());
        let error = VsphereSource::connect(pinned.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("(SHA-256 {fingerprint})")),
            "{error}"
        );
        assert!(
            error.contains(&format!("pins with certificate_fingerprint ({wrong})")),
            "{error}"
        );
        pinned.certificate_fingerprint = Some("not-a-fingerprint".into());
        let error = VsphereSource::connect(pinned)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a SHA-256 fingerprint"), "{error}");

        // A cacert that did not sign the server's certificate: refused, system roots or not.
        if let Some(unrelated) = unrelated_ca_pem() {
            let mut other_ca = verified.clone();
            other_ca.ca_certificate = Some(unrelated);
            let error = VsphereSource::connect(other_ca)
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("certificate_fingerprint"), "{error}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_ended_session_is_renewed_and_guest_files_are_refused() {
    let vcsim = Vcsim::start();
    bounded(async {
        let source = vcsim.connect().await;
        let vm = source.find("DC0_H0_VM0").await.unwrap().unwrap();
        source.logout().await.unwrap();
        // The next call gets NotAuthenticated, logs in again and goes through.
        assert_eq!(source.facts(&vm.id).await.unwrap().id, vm.id);

        let error = source
            .write_guest_file(&vm.id, "/tmp/marker", "x")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("Guest Operations"), "{error}");
        let error = source
            .read_guest_file(&vm.id, "/tmp/marker")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("Guest Operations"), "{error}");
    })
    .await;
}
