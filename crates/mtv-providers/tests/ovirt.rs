//! The oVirt adapter against the lab's oVirt engine API (REST v4 over HTTPS with a certificate from a
//! lab CA): every trait method, and what a user gets wrong (password, CA, URL, data center). Each test
//! serves the built-in lab's oVirt source on its own loopback port; the lab model shows what the
//! adapter changed.

mod common;

use std::time::Duration;

use common::bounded;
use mtv_lab::source::ovirt::{EngineCa, router};
use mtv_lab::source::{PowerState, SourceLab};
use mtv_lab::tls::LabTls;
use mtv_providers::ovirt::{OvirtConfig, OvirtSource};
use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider};

const USER: &str = "admin@internal";
const PASSWORD: &str = "lab-password";
const TEMPLATE: &str = "mtv-tests-rhel8";
const PROFILE: &str = "rhv-lab";

/// The built-in lab's oVirt engine on a loopback HTTPS port.
struct Engine {
    lab: SourceLab,
    url: String,
    ca_pem: String,
}

impl Engine {
    async fn start() -> Engine {
        let lab = SourceLab::builtin();
        let tls = LabTls::generate().unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let app = router(lab.clone(), "ovirt".into())
            .layer(axum::Extension(EngineCa(tls.ca_pem().to_string())));
        let listener = tls.listener(tcp).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Engine {
            lab,
            url: format!("https://127.0.0.1:{port}/ovirt-engine/api"),
            ca_pem: tls.ca_pem().to_string(),
        }
    }

    fn config(&self) -> OvirtConfig {
        let mut config = OvirtConfig::new(PROFILE, &self.url, USER, PASSWORD);
        config.task_timeout = Duration::from_secs(30);
        config
    }

    async fn connect(&self) -> OvirtSource {
        OvirtSource::connect(self.config()).await.unwrap()
    }
}

/// What a connection that must fail says.
async fn connect_error(config: OvirtConfig) -> String {
    OvirtSource::connect(config).await.unwrap_err().to_string()
}

#[tokio::test]
async fn a_vm_made_from_a_template_is_powered_extended_snapshotted_and_deleted() {
    bounded(async {
        let engine = Engine::start().await;
        let source = engine.connect().await;
        // The CA for the Provider Secret is the one the engine serves.
        assert_eq!(source.ca_certificate().await.unwrap(), engine.ca_pem);
        let template = source
            .find(TEMPLATE)
            .await
            .unwrap()
            .expect("template found");
        assert!(template.template);
        assert_eq!(template.memory_mib, 4096);
        assert_eq!(template.nics.len(), 2);
        let disk = NewDisk {
            size_gib: 2,
            provisioning: "thin".into(),
            mode: "persistent".into(),
            datastore: None,
            rdm: None,
            lun: None,
        };
        let request = CloneRequest {
            name: "rhv-clone-1".into(),
            power_on: Some(true),
            add_disks: vec![disk.clone()],
            ..CloneRequest::default()
        };
        let vm = source.clone_vm(&template.id, &request).await.unwrap();
        assert!(!vm.template && vm.powered_on, "{vm:?}");
        assert_eq!(vm.disks.len(), template.disks.len() + 1);
        assert_eq!(vm.disks[1].capacity_gib, 2);
        assert_eq!(vm.disks[1].datastore, template.disks[0].datastore);
        assert_eq!(vm.cpu_sockets, template.cpu_sockets);
        let networks = |v: &mtv_providers::SourceVm| -> Vec<String> {
            v.nics.iter().map(|n| n.network.clone()).collect()
        };
        assert_eq!(networks(&vm), networks(&template));
        assert!(
            vm.nics
                .iter()
                .all(|n| !template.nics.iter().any(|t| t.mac == n.mac))
        );
        // A running guest with an agent reports its addresses.
        assert!(vm.guest_agent && !vm.nics[0].ips.is_empty(), "{vm:?}");
        // The lab model, which the Forklift inventory reads, holds the same VM.
        let model = engine.lab.vm("ovirt", &vm.id).unwrap();
        assert_eq!(model.name, "rhv-clone-1");
        assert_eq!(model.power_state, PowerState::On);
        assert_eq!(model.disks.len(), vm.disks.len());
        assert_eq!(source.find("rhv-clone-1").await.unwrap().unwrap().id, vm.id);

        // Powered off the Python suite's way: a guest shutdown, never USER_STOP_VM.
        source.set_power(&vm.id, false).await.unwrap();
        source.set_power(&vm.id, false).await.unwrap();
        let off = source.facts(&vm.id).await.unwrap();
        assert!(!off.powered_on);
        let kinds: Vec<(&str, Option<u32>)> = off
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.code))
            .collect();
        assert_eq!(
            kinds,
            [
                ("USER_RUN_VM", Some(32)),
                ("USER_INITIATED_SHUTDOWN_VM", Some(73))
            ]
        );

        let mac = source
            .add_nic(&vm.id, &NewNic::new("mtv-secondary", false))
            .await
            .unwrap();
        let nic = source
            .facts(&vm.id)
            .await
            .unwrap()
            .nics
            .into_iter()
            .find(|n| n.mac == mac);
        let nic = nic.expect("the new NIC is in the facts");
        assert!(!nic.start_connected);
        assert_eq!(nic.network, "0b1e6f7a-2c3d-4e5f-8a9b-0c1d2e3f4a02");
        source
            .add_disk(
                &vm.id,
                &NewDisk {
                    size_gib: 1,
                    provisioning: "thick-eager".into(),
                    ..disk
                },
            )
            .await
            .unwrap();
        let snapshot = source
            .create_snapshot(&vm.id, "before-migration")
            .await
            .unwrap();
        let facts = source.facts(&vm.id).await.unwrap();
        assert_eq!(facts.disks.len(), template.disks.len() + 2);
        assert_eq!(facts.disks.last().unwrap().provisioning, "thick-lazy");
        assert_eq!(facts.snapshots, vec![snapshot.clone()]);
        assert_eq!(snapshot.name, "before-migration");
        assert!(source.write_guest_file(&vm.id, "/m", "x").await.is_err());
        assert!(source.read_guest_file(&vm.id, "/m").await.is_err());

        source.set_power(&vm.id, true).await.unwrap();
        source.delete_vm(&vm.id).await.unwrap();
        assert!(engine.lab.vm("ovirt", &vm.id).is_err());
        assert!(source.find("rhv-clone-1").await.unwrap().is_none());
        source.delete_vm(&vm.id).await.unwrap();
        assert!(matches!(
            source.facts(&vm.id).await,
            Err(SourceError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn clones_come_from_templates_only_and_refuse_what_a_template_decides() {
    bounded(async {
        let engine = Engine::start().await;
        let source = engine.connect().await;
        let template = source.find(TEMPLATE).await.unwrap().unwrap();
        let request = CloneRequest {
            name: "rhv-clone-2".into(),
            ..CloneRequest::default()
        };
        let vm = source.clone_vm(&template.id, &request).await.unwrap();
        assert!(!vm.powered_on);
        let again = CloneRequest {
            name: "rhv-clone-3".into(),
            ..CloneRequest::default()
        };
        let placed = CloneRequest {
            name: "rhv-clone-4".into(),
            target_datastore: Some("x".into()),
            ..CloneRequest::default()
        };
        // A clone of a VM, a placement the template decides, and a duplicate name (the engine's
        // refusal, which leaves nothing behind).
        for (from, refused, reason) in [
            (&vm.id, &again, "must name a template"),
            (&template.id, &placed, "target_datastore"),
            (&template.id, &request, "already exists"),
        ] {
            let error = source.clone_vm(from, refused).await.unwrap_err();
            let error = error.to_string();
            assert!(error.contains(reason), "{}: {error}", refused.name);
        }
        assert_eq!(
            engine.lab.vms_named("ovirt", "rhv-clone-2").unwrap().len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_naming_the_profile_and_never_showing_it() {
    bounded(async {
        let engine = Engine::start().await;
        let mut config = engine.config();
        config.password = "Wr0ng-S3cret".into();
        let error = connect_error(config).await;
        assert!(error.contains(PROFILE), "{error}");
        assert!(error.contains("access_denied"), "{error}");
        assert!(error.contains("username and password"), "{error}");
        assert!(!error.contains("Wr0ng-S3cret"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn an_unknown_ca_is_refused_unless_verification_is_off() {
    bounded(async {
        let engine = Engine::start().await;
        let mut config = engine.config();
        config.ca_certificate = Some(LabTls::generate().unwrap().ca_pem().to_string());
        let error = connect_error(config.clone()).await;
        assert!(error.contains("not trusted"), "{error}");
        assert!(error.contains(&engine.url), "{error}");
        config.insecure_skip_verify = true;
        let source = OvirtSource::connect(config).await.unwrap();
        assert!(source.find(TEMPLATE).await.unwrap().is_some());
        // The engine's own CA, given in the profile, verifies it.
        let mut config = engine.config();
        config.ca_certificate = Some(engine.ca_pem.clone());
        OvirtSource::connect(config).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_url_is_an_error_naming_it() {
    bounded(async {
        // A port nothing listens on: bound, then released.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("https://127.0.0.1:{port}/ovirt-engine/api");
        let config = OvirtConfig::new(PROFILE, &url, USER, PASSWORD);
        let error = connect_error(config).await;
        assert!(
            error.contains(&url) && error.contains("cannot reach"),
            "{error}"
        );
        let config = OvirtConfig::new(PROFILE, "http://engine/ovirt-engine/api", USER, PASSWORD);
        let error = connect_error(config).await;
        assert!(error.contains("https"), "{error}");
    })
    .await;
}

#[tokio::test]
async fn an_engine_without_the_required_data_center_is_refused() {
    bounded(async {
        let engine = Engine::start().await;
        let mut config = engine.config();
        config.required_datacenter = Some("OTHER-DC".into());
        let error = connect_error(config).await;
        assert!(
            error.contains("no data center OTHER-DC") && error.contains("MTV-CNV"),
            "{error}"
        );
    })
    .await;
}
