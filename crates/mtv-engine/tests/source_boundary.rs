//! The engine maps a profile to a `SourceConfig` in one function (`session::source_config`) and
//! leaves the choice of adapter to `mtv_providers::connect`, which picks it by provider type: the
//! lab's sources, as its profiles point at them, get the real adapters (vSphere SOAP, oVirt REST,
//! OpenStack), and a source nothing serves is an error naming its URL. What the ledger keeps
//! (`SourceRef`) reaches the source again through `mtv_providers::reconnect` with the run's Provider
//! Secret. And the target's Forklift clock is read from what it serves.

mod common;

use std::sync::Arc;

use mtv_api::clock::ForkliftClock;
use mtv_config::{MapEnv, Settings, SettingsSources, resolve_run_config};
use mtv_engine::SessionContext;
use mtv_engine::cluster::Cluster;
use mtv_engine::ledger::Ledger;
use mtv_engine::session::source_config;
use mtv_engine::target::TargetTraits;
use mtv_providers::{CloneRequest, SourceProvider, SourceRefKind};

fn lab_profile(lab: &mtv_lab::LabServer, profile: &str) -> (mtv_config::RunConfig, SessionContext) {
    let env = MapEnv::new();
    let set = [format!("source_provider={profile}")];
    let (settings, _) = Settings::resolve(&SettingsSources {
        file: None,
        tc: &[],
        set: &set,
        env: &env,
    })
    .unwrap();
    let profiles = mtv_lab::cli::lab_profiles(lab).unwrap();
    let config = resolve_run_config(settings, profiles).unwrap();
    let context = SessionContext::from_run_config(&config, &env);
    (config, context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_config_reaches_each_lab_source_through_its_real_adapter() {
    let lab = common::lab("", None).await;
    let client = common::lab_client(&lab).await;
    let (config, context) = lab_profile(&lab, "vsphere");
    let vsphere = source_config(&context, &config.profile, client.clone(), None);
    assert_eq!(vsphere.provider_type, context.provider_type);
    assert_eq!(
        Some(vsphere.url.as_str()),
        config.profile.api_url.as_deref()
    );
    let shown = format!("{vsphere:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
    if !vsphere.password.is_empty() {
        assert!(!shown.contains(&vsphere.password), "{shown}");
    }

    // The lab serves this vSphere's SOAP API: the real adapter reaches it.
    let source = mtv_providers::connect(&vsphere).await.unwrap();
    let reference = source.source_ref();
    assert!(
        matches!(reference.kind, SourceRefKind::Vsphere { .. }),
        "{reference:?}"
    );
    let template = source
        .find("mtv-tests-rhel8")
        .await
        .unwrap()
        .expect("the lab's template");
    let clone = source
        .clone_vm(
            &template.id,
            &CloneRequest {
                name: "boundary-clone".into(),
                ..CloneRequest::default()
            },
        )
        .await
        .unwrap();

    // The ledger's reference, as JSON and back, reaches the same source for teardown, logging in
    // with the run's Provider Secret.
    let stored: mtv_providers::SourceRef =
        serde_json::from_str(&serde_json::to_string(&reference).unwrap()).unwrap();
    let secret = mtv_providers::ProviderSecret {
        provider_type: "vsphere".into(),
        data: [
            ("url", vsphere.url.clone()),
            ("user", vsphere.username.clone()),
            ("password", vsphere.password.clone()),
            ("cacert", vsphere.ca_certificate.clone().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let again = mtv_providers::reconnect(&stored, &client, &[secret])
        .await
        .unwrap();
    assert!(again.facts(&clone.id).await.is_ok());
    again.delete_vm(&clone.id).await.unwrap();
    assert!(source.find("boundary-clone").await.unwrap().is_none());

    // oVirt and OpenStack profiles reach their real adapters the same way.
    for (profile, template) in [
        ("ovirt", "mtv-tests-rhel8"),
        ("openstack", "mtv-tests-rhel8"),
    ] {
        let (config, context) = lab_profile(&lab, profile);
        let other = source_config(&context, &config.profile, client.clone(), None);
        let source = mtv_providers::connect(&other)
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
        assert_eq!(source.provider_type(), context.provider_type);
        assert!(
            source.source_ref().describe().starts_with(profile),
            "{:?}",
            source.source_ref()
        );
        let _ = template;
    }

    // A vSphere nothing serves: the same config says it cannot reach it, naming the URL and the
    // profile, never "not a lab".
    let mut elsewhere = vsphere.clone();
    elsewhere.url = "https://127.0.0.1:1/sdk".into();
    elsewhere.host = Some("127.0.0.1".into());
    elsewhere.insecure_skip_verify = true;
    let error = mtv_providers::connect(&elsewhere)
        .await
        .err()
        .expect("nothing listens there")
        .to_string();
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(error.contains("profile 'vsphere'"), "{error}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forklift_clock_is_what_the_target_serves() {
    let lab = mtv_lab::LabServer::start(mtv_lab::LabOptions {
        speed: 2.5,
        ..mtv_lab::LabOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::create(&dir.path().join("r.json"), "s", "t").unwrap());
    let cluster = Cluster::new(
        common::lab_client(&lab).await,
        ledger,
        Arc::new(common::Recorder::default()),
    );
    let traits = TargetTraits::read(&cluster, "openshift-mtv").await.unwrap();
    assert_eq!(traits.clock, ForkliftClock::Compressed { speed: 2.5 });

    // Without the ConfigMap (as on every real cluster) a Forklift minute lasts a minute.
    cluster
        .delete_until(
            &mtv_engine::cluster::kinds::CONFIG_MAP,
            Some("openshift-mtv"),
            mtv_api::clock::CLOCK_CONFIG_MAP,
            tokio::time::Instant::now() + std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    let traits = TargetTraits::read(&cluster, "openshift-mtv").await.unwrap();
    assert_eq!(traits.clock, ForkliftClock::Real);
    assert_eq!(
        traits.forklift_minutes(2.0),
        std::time::Duration::from_secs(120)
    );
    lab.shutdown().await;
}
