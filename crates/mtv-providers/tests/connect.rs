//! `mtv_providers::connect`, the one entry a run has to its source, against the lab's vSphere, oVirt
//! and OpenStack as its providers file describes them: each profile reaches its real adapter; wrong
//! credentials are the adapter's own `LoginRefused` naming the profile, and the Provider such a
//! Secret makes goes `ConnectionAuthFailed`; a source nothing answers for is an error naming its
//! URL; a CA that does not verify the source's certificate fails the adapter with the certificate
//! as the reason, and the Provider goes `ConnectionFailed` with Go's x509 reason.

use std::collections::BTreeMap;

use base64::Engine as _;
use mtv_api::ProviderType;
use mtv_lab::{LabOptions, LabServer};
use mtv_providers::{SourceConfig, SourceError, SourceProvider};
use serde_json::{Value, json};

const NS: &str = "openshift-mtv";

async fn lab() -> LabServer {
    LabServer::start(LabOptions {
        speed: 20.0,
        ..LabOptions::default()
    })
    .await
    .expect("lab starts")
}

async fn client(lab: &LabServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&lab.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The lab's profile `name`, as `lab serve --providers-out` writes it, as the run maps a profile.
fn config(lab: &LabServer, client: &kube::Client, name: &str) -> SourceConfig {
    let profiles = mtv_lab::cli::providers_json(lab);
    let profile = &profiles[name];
    let text = |key: &str| profile[key].as_str().unwrap_or_default().to_string();
    let fields: BTreeMap<String, String> = profile
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| !key.contains("password"))
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect();
    SourceConfig {
        provider_type: text("type").parse().unwrap(),
        url: text("api_url"),
        host: Some(text("fqdn")),
        username: text("username"),
        password: text("password"),
        insecure_skip_verify: false,
        ca_certificate: Some(text("cacert")),
        certificate_fingerprint: None,
        fields,
        guest_credentials: None,
        client: client.clone(),
        inventory: None,
        cluster_namespace: None,
        profile: name.to_string(),
    }
}

/// A Provider of `config`'s source with a Secret of `keys` (plus its URL and user), and its phase
/// and conditions once its connection test has a verdict.
async fn provider(
    lab: &LabServer,
    name: &str,
    config: &SourceConfig,
    keys: &[(&str, &str)],
) -> Value {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let user_key = match config.provider_type {
        ProviderType::Openstack => "username",
        _ => "user",
    };
    let mut data = serde_json::Map::new();
    data.insert("url".into(), json!(b64(&config.url)));
    data.insert(user_key.into(), json!(b64(&config.username)));
    if config.provider_type == ProviderType::Openstack {
        for (key, field) in [
            ("projectName", "project_name"),
            ("regionName", "region_name"),
            ("domainName", "user_domain_name"),
        ] {
            data.insert(key.into(), json!(b64(&config.fields[field])));
        }
    }
    for (key, value) in keys {
        data.insert(key.to_string(), json!(b64(value)));
    }
    lab.create_provider(
        NS,
        json!({"metadata": {"name": name}, "data": data}),
        json!({"metadata": {"name": name}, "spec": {"type": config.provider_type.as_str(),
               "url": config.url, "secret": {"name": name, "namespace": NS}}}),
    )
    .await
    .unwrap()
}

fn condition<'a>(provider: &'a Value, kind: &str) -> Option<&'a Value> {
    provider["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

const PROFILES: [&str; 3] = ["vsphere", "ovirt", "openstack"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_profile_reaches_its_real_adapter_and_finds_the_catalog_template() {
    let lab = lab().await;
    let client = client(&lab).await;
    for name in PROFILES {
        let config = config(&lab, &client, name);
        let source = mtv_providers::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(source.provider_type(), config.provider_type);
        assert!(
            source.source_ref().describe().starts_with(name),
            "{name}: {}",
            source.source_ref().describe()
        );
        assert!(
            source.find("mtv-tests-rhel8").await.unwrap().is_some(),
            "{name}: the catalog's template"
        );
        // The Provider Secret's `cacert`: the CA the source's certificate comes from.
        assert!(
            source
                .ca_certificate()
                .await
                .unwrap()
                .contains("BEGIN CERTIFICATE"),
            "{name}"
        );
    }
    assert_eq!(lab.source().unwrap().source_api_requests(), 0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_by_the_adapter_naming_the_profile_and_fail_the_provider() {
    let lab = lab().await;
    let client = client(&lab).await;
    for name in PROFILES {
        let mut config = config(&lab, &client, name);
        config.password = "not-the-password".into();
        let error = mtv_providers::connect(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: a wrong password logs in"));
        assert!(
            matches!(error, SourceError::LoginRefused { .. }),
            "{name}: {error:?}"
        );
        let shown = error.to_string();
        assert!(
            shown.contains(&format!("profile '{name}'"))
                || shown.contains(&format!("profile `{name}`")),
            "{shown}"
        );
        assert!(!shown.contains("not-the-password"), "{shown}");

        let cacert = config.ca_certificate.clone().unwrap();
        let provider = provider(
            &lab,
            &format!("{name}-wrong-password"),
            &config,
            &[("password", "not-the-password"), ("cacert", &cacert)],
        )
        .await;
        assert_eq!(
            provider["status"]["phase"], "ConnectionFailed",
            "{name}: {provider:#}"
        );
        assert!(
            condition(&provider, "ConnectionAuthFailed").is_some(),
            "{name}: {provider:#}"
        );
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_source_is_an_error_naming_its_url() {
    let lab = lab().await;
    let client = client(&lab).await;
    for name in PROFILES {
        let mut config = config(&lab, &client, name);
        let path = config
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_default();
        config.url = format!("https://127.0.0.1:1{path}");
        let error = mtv_providers::connect(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("{name}: nothing listens on port 1"))
            .to_string();
        assert!(error.contains("127.0.0.1:1"), "{name}: {error}");
        assert!(error.contains(name), "{name}: {error}");
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_does_not_verify_the_source_fails_adapter_and_provider_with_the_reason() {
    let lab = lab().await;
    let client = client(&lab).await;
    let other_ca = mtv_lab::tls::LabTls::generate_named("another CA")
        .unwrap()
        .ca_pem()
        .to_string();
    for name in PROFILES {
        let mut config = config(&lab, &client, name);
        config.ca_certificate = Some(other_ca.clone());
        let error = mtv_providers::connect(&config)
            .await
            .err()
            .unwrap_or_else(|| {
                panic!("{name}: a CA that did not issue the certificate verifies it")
            })
            .to_string();
        assert!(
            error.to_lowercase().contains("certificate") || error.contains("UnknownIssuer"),
            "{name}: {error}"
        );

        let provider = provider(
            &lab,
            &format!("{name}-other-ca"),
            &config,
            &[("password", &config.password), ("cacert", &other_ca)],
        )
        .await;
        assert_eq!(
            provider["status"]["phase"], "ConnectionFailed",
            "{name}: {provider:#}"
        );
        let failed = condition(&provider, "ConnectionTestFailed")
            .unwrap_or_else(|| panic!("{name}: {provider:#}"));
        assert!(
            failed["message"]
                .as_str()
                .unwrap_or_default()
                .contains("x509"),
            "{name}: {failed:#}"
        );
        assert!(
            condition(&provider, "ConnectionAuthFailed").is_none(),
            "{name}"
        );
    }
    lab.shutdown().await;
}
