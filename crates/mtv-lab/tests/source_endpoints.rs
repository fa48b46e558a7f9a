//! Each lab source on its own HTTPS endpoint, and Forklift's connection test against it as on a
//! cluster: the Provider Secret's `cacert` (or `ca.crt`) must verify the certificate the source
//! presents for the URL's host, or the Provider is `ConnectionFailed` with Go's x509 reason;
//! `insecureSkipVerify` bypasses the check; wrong credentials are `ConnectionAuthFailed`. A Provider
//! finds its source by the served address as well as by the lab file's URL.

mod common;

use common::{NS, b64, cond, s};
use mtv_lab::{LabOptions, LabServer};
use serde_json::{Value, json};

const LAB: &str = r#"
version: 1
providers:
  - name: vc-trusted
    type: vsphere
    url: https://vc-trusted.lab.example/sdk
    username: administrator@vsphere.local
    password: lab-password
    hosts: [{id: host-1, name: esx1, cluster: c1}]
    networks: [{id: network-1, name: VM Network}]
    datastores: [{id: datastore-1, name: ds1, capacity_gib: 100, free_gib: 80}]
    vms:
      - {id: vm-1, name: one, power_state: off, host: host-1, memory_mib: 1024, guest_os: rhel8_64Guest, uuid: 4201-1,
         disks: [{key: 2000, file: "[ds1] one/one.vmdk", datastore: datastore-1, capacity_gib: 10, unit_number: 0}],
         nics: [{mac: "00:50:56:00:00:01", network: network-1}]}
  - name: vc-own-ca
    type: vsphere
    url: https://vc-own-ca.lab.example/sdk
    username: administrator@vsphere.local
    password: lab-password
    tls: {own_ca: true}
    vms: []
  - name: vc-misnamed
    type: vsphere
    url: https://vc-misnamed.lab.example/sdk
    username: administrator@vsphere.local
    password: lab-password
    tls: {names: [elsewhere.lab.example]}
    vms: []
"#;

async fn lab() -> LabServer {
    let dir = std::env::temp_dir().join(format!(
        "mtv-lab-endpoints-{}",
        mtv_lab::random::name_suffix(8)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lab.yaml");
    std::fs::write(&file, LAB).unwrap();
    let options = LabOptions {
        lab_file: Some(file),
        speed: 20.0,
        ..LabOptions::default()
    };
    LabServer::start(options).await.expect("lab starts")
}

/// Creates a vSphere Provider with a Secret of `keys` and waits for its connection test's verdict.
async fn provider(lab: &LabServer, name: &str, url: &str, keys: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = keys
        .iter()
        .map(|(k, v)| (k.to_string(), json!(b64(v))))
        .collect();
    lab.create_provider(
        NS,
        json!({"metadata": {"name": name}, "data": data}),
        json!({"metadata": {"name": name}, "spec": {"type": "vsphere", "url": url,
               "secret": {"name": name, "namespace": NS}}}),
    )
    .await
    .unwrap()
}

fn served_url(lab: &LabServer, source: &str) -> String {
    lab.source().unwrap().served(source).expect("served").url
}

#[tokio::test]
async fn each_source_listens_on_its_own_port_with_a_certificate_for_its_names() {
    let lab = lab().await;
    let source = lab.source().unwrap();
    let served = source.served_sources();
    assert_eq!(served.len(), 3);
    let ports: std::collections::BTreeSet<u16> = served.iter().map(|s| s.addr.port()).collect();
    assert_eq!(ports.len(), 3, "one port per source");
    let trusted = source.served("vc-trusted").unwrap();
    assert_eq!(
        trusted.tls.names,
        ["vc-trusted.lab.example", "127.0.0.1", "localhost"]
    );
    assert_eq!(trusted.tls.ca_pem, lab.ca_pem());
    assert_ne!(source.served("vc-own-ca").unwrap().tls.ca_pem, lab.ca_pem());
    assert_eq!(
        source.served("vc-misnamed").unwrap().tls.names,
        ["elsewhere.lab.example"]
    );
    // Found by its served address and by its lab-file URL.
    assert_eq!(
        source.endpoint("vsphere", &trusted.url).as_deref(),
        Some("vc-trusted")
    );
    assert_eq!(
        source
            .endpoint("vsphere", "https://vc-trusted.lab.example/sdk")
            .as_deref(),
        Some("vc-trusted")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn the_lab_ca_verifies_a_source_at_its_served_address_and_its_lab_file_url() {
    let lab = lab().await;
    let ca = lab.ca_pem().to_string();
    let url = served_url(&lab, "vc-trusted");
    let creds = [
        ("user", "administrator@vsphere.local"),
        ("password", "lab-password"),
    ];
    let served = provider(&lab, "served", &url, &[creds[0], creds[1], ("cacert", &ca)]).await;
    assert_eq!(s(&served, "/status/phase"), "Ready", "{served}");
    // Forklift's fingerprint is the SHA-1 of the certificate the source presents.
    let fingerprint = lab
        .source()
        .unwrap()
        .served_fingerprint("vc-trusted")
        .unwrap();
    assert_eq!(fingerprint.len(), 59);
    assert_eq!(s(&served, "/status/fingerprint"), fingerprint);
    let named = provider(
        &lab,
        "named",
        "https://vc-trusted.lab.example/sdk",
        &[creds[0], creds[1], ("ca.crt", &ca)],
    )
    .await;
    assert_eq!(s(&named, "/status/phase"), "Ready", "{named}");
    lab.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_are_connection_auth_failed() {
    let lab = lab().await;
    let ca = lab.ca_pem().to_string();
    let url = served_url(&lab, "vc-trusted");
    let provider = provider(
        &lab,
        "wrong-password",
        &url,
        &[
            ("user", "administrator@vsphere.local"),
            ("password", "nope"),
            ("cacert", &ca),
        ],
    )
    .await;
    assert_eq!(s(&provider, "/status/phase"), "ConnectionFailed");
    let condition = cond(&provider, "ConnectionAuthFailed").expect("ConnectionAuthFailed");
    assert_eq!(s(condition, "/category"), "Critical");
    assert!(
        s(condition, "/message").contains("incorrect user name or password"),
        "{condition}"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn a_certificate_the_ca_does_not_verify_fails_the_connection_test_unless_skipped() {
    let lab = lab().await;
    let ca = lab.ca_pem().to_string();
    let creds = [
        ("user", "administrator@vsphere.local"),
        ("password", "lab-password"),
    ];
    let own = served_url(&lab, "vc-own-ca");
    let untrusted = provider(
        &lab,
        "untrusted",
        &own,
        &[creds[0], creds[1], ("cacert", &ca)],
    )
    .await;
    assert_eq!(s(&untrusted, "/status/phase"), "ConnectionFailed");
    let failed = cond(&untrusted, "ConnectionTestFailed").expect("ConnectionTestFailed");
    assert!(
        s(failed, "/message").ends_with(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        "{failed}"
    );
    assert!(cond(&untrusted, "ConnectionAuthFailed").is_none());

    let misnamed = provider(
        &lab,
        "misnamed",
        &served_url(&lab, "vc-misnamed"),
        &[creds[0], creds[1], ("cacert", &ca)],
    )
    .await;
    let failed = cond(&misnamed, "ConnectionTestFailed").expect("ConnectionTestFailed");
    assert!(
        s(failed, "/message")
            .contains("x509: certificate is valid for elsewhere.lab.example, not 127.0.0.1"),
        "{failed}"
    );

    let skipped = provider(
        &lab,
        "skipped",
        &own,
        &[creds[0], creds[1], ("insecureSkipVerify", "true")],
    )
    .await;
    assert_eq!(s(&skipped, "/status/phase"), "Ready", "{skipped}");
    assert_eq!(
        s(cond(&skipped, "ConnectionInsecure").unwrap(), "/reason"),
        "SkipTLSVerification"
    );
    lab.shutdown().await;
}

/// Python's `ssl`, a real TLS client, agrees with the connection test on the certificates the sources
/// present: the lab's CA verifies the trusted source, not the one with its own CA (whose CA does), and
/// not the misnamed one at 127.0.0.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_tls_client_sees_the_same_certificates() {
    let lab = lab().await;
    let source = lab.source().unwrap();
    let dir = std::env::temp_dir().join(format!("mtv-lab-cas-{}", mtv_lab::random::name_suffix(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let lab_ca = dir.join("lab.pem");
    std::fs::write(&lab_ca, lab.ca_pem()).unwrap();
    let own_ca = dir.join("own.pem");
    std::fs::write(&own_ca, source.served("vc-own-ca").unwrap().tls.ca_pem).unwrap();
    let port = |name: &str| source.served(name).unwrap().addr.port().to_string();
    let script = r#"
import socket, ssl, sys
def handshake(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                return "ok"
    except ssl.SSLCertVerificationError as e:
        return e.verify_message
lab_ca, own_ca, trusted, own, misnamed = sys.argv[1:6]
print("trusted:", handshake(trusted, lab_ca))
print("own with lab CA:", handshake(own, lab_ca))
print("own with own CA:", handshake(own, own_ca))
print("misnamed:", handshake(misnamed, lab_ca))
"#;
    let args = [
        lab_ca.display().to_string(),
        own_ca.display().to_string(),
        port("vc-trusted"),
        port("vc-own-ca"),
        port("vc-misnamed"),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mtv_test_peers::run_python_ok(script, &args, &[])
    })
    .await
    .unwrap();
    assert!(out.contains("trusted: ok"), "{out}");
    // The source sends its own CA in its chain, which OpenSSL then calls self-signed.
    assert!(
        out.contains("own with lab CA: self-signed certificate in certificate chain"),
        "{out}"
    );
    assert!(out.contains("own with own CA: ok"), "{out}");
    assert!(out.contains("misnamed: IP address mismatch"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
    lab.shutdown().await;
}
