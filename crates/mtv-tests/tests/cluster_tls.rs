//! TLS to the cluster's API server, as a user meets it: a kubeconfig pointing at an HTTPS server whose
//! self-signed certificate nobody vouches for (vcsim's, started here) fails with a message that says
//! the certificate was refused, names the server and says what to do; `insecure_verify_skip` (and
//! `CLUSTER_VERIFY_SSL`) turn the check off or force it over the kubeconfig's own choice.

use std::process::{Command, Output};

use mtv_test_peers::vcsim::Vcsim;

const BIN: &str = env!("CARGO_BIN_EXE_mtv-tests");

fn kubeconfig(server: &str, insecure: bool) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: {insecure}\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
    )
}

fn run(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut command = Command::new(BIN);
    command
        .args([
            "run",
            "-m",
            "tier0",
            "--no-progress",
            "--results",
            "out",
            "--kubeconfig",
            "k.yaml",
        ])
        .args(extra)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("mtv-tests runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, text)
}

#[test]
fn a_refused_cluster_certificate_says_so_and_insecure_verify_skip_works_both_ways() {
    let vcsim = Vcsim::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");

    // The kubeconfig verifies, and nothing vouches for vcsim's certificate.
    std::fs::write(dir.path().join("k.yaml"), kubeconfig(&vcsim.base(), false)).unwrap();
    let (output, text) = run(dir.path(), &[], &[]);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "the TLS certificate of the cluster's API server {} (k.yaml) was not accepted",
            vcsim.base()
        )),
        "{text}"
    );
    assert!(text.contains("insecure_verify_skip"), "{text}");
    assert!(!text.contains("not-a-real-token"), "{text}");

    // insecure_verify_skip=true: the handshake succeeds; vcsim is no Kubernetes API server, so the
    // request fails otherwise, never on the certificate.
    let (output, text) = run(dir.path(), &["--tc", "insecure_verify_skip:true"], &[]);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(!text.contains("TLS certificate"), "{text}");
    assert!(text.contains(&vcsim.base()), "{text}");
    let (_, text) = run(dir.path(), &[], &[("CLUSTER_VERIFY_SSL", "false")]);
    assert!(!text.contains("TLS certificate"), "{text}");

    // The kubeconfig says insecure; false (or CLUSTER_VERIFY_SSL=true) verifies anyway.
    std::fs::write(dir.path().join("k.yaml"), kubeconfig(&vcsim.base(), true)).unwrap();
    let (_, text) = run(dir.path(), &[], &[]);
    assert!(!text.contains("TLS certificate"), "{text}");
    let (_, text) = run(dir.path(), &["--set", "insecure_verify_skip=false"], &[]);
    assert!(text.contains("TLS certificate"), "{text}");
    let (_, text) = run(dir.path(), &[], &[("CLUSTER_VERIFY_SSL", "yes")]);
    assert!(text.contains("TLS certificate"), "{text}");
}
