//! No secret value may reach Debug, Display, Serialize or a rendered diagnostic.

mod common;

use common::{VSPHERE_FIELDS, parse, parse_ok, render};
use mtv_config::{ConfigError, MapEnv, ProvidersFile};

const SECRETS: &[&str] = &[
    "vsphere-secret-pw",
    "guest-secret-pw",
    "luks-secret-pp",
    "array-secret-pw",
    "esxi-secret-pw",
    "extra-secret-val",
    "env-secret-pw",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret}:\n{text}");
    }
}

fn check_error(error: &ConfigError) {
    assert_clean("Display", &error.to_string());
    assert_clean("Debug", &format!("{error:?}"));
    assert_clean("render", &render(error));
}

fn profile_text(extra: &str) -> String {
    format!(
        r#"{{
  "vc": {{
    {VSPHERE_FIELDS},
    "guest_vm_linux_password": "guest-secret-pw",
    "luks_passphrase": "luks-secret-pp",
    "copyoffload": {{
      "storage_vendor_product": "ontap",
      "storage_hostname": "h",
      "storage_username": "u",
      "storage_password": "array-secret-pw",
      "esxi_password": "esxi-secret-pw",
      "esxi_clone_method": "ssh",
      "storage_secret_extra": {{"X": "extra-secret-val"}}
    }}{extra}
  }}
}}"#
    )
}

#[test]
fn profiles_and_resolved_sections_hide_secrets() {
    let file = parse_ok(&profile_text(""));
    let profile = file.profile("vc").unwrap();
    assert_clean("profile Debug", &format!("{profile:?}"));
    assert_clean("file Debug", &format!("{file:?}"));
    assert_clean("redacted_json", &profile.redacted_json().to_string());
    assert_eq!(
        profile.field_secret("luks_passphrase").unwrap().expose(),
        "luks-secret-pp"
    );

    let env: MapEnv = [
        ("COPYOFFLOAD_ESXI_USER", "root"),
        ("COPYOFFLOAD_ESXI_HOST", "esx"),
        ("COPYOFFLOAD_ONTAP_SVM", "svm"),
    ]
    .into_iter()
    .collect();
    let resolved = profile.copyoffload(&env).unwrap_err();
    // datastore_id is missing: the error must not show the section's secrets.
    check_error(&resolved);

    let file = parse_ok(&profile_text("").replace(
        "\"storage_vendor_product\"",
        "\"datastore_id\": \"d\", \"storage_vendor_product\"",
    ));
    let copy_offload = file
        .profile("vc")
        .unwrap()
        .copyoffload(&env)
        .unwrap()
        .unwrap();
    assert_clean("CopyOffload Debug", &format!("{copy_offload:?}"));
    assert_clean(
        "secret data Debug",
        &format!("{:?}", copy_offload.storage_secret_data()),
    );
    assert_eq!(
        copy_offload.storage_secret_data()["X"].expose(),
        "extra-secret-val"
    );
    assert_clean("env Debug", &format!("{env:?}"));
}

#[test]
fn file_errors_hide_secrets_even_near_the_error() {
    // A syntax error right after the secrets: the rendered snippet shows those lines masked.
    let broken = profile_text(",\n    \"oops\": }");
    let error = parse(&broken).unwrap_err();
    assert!(matches!(error, ConfigError::JsonSyntax { .. }), "{error:?}");
    check_error(&error);
    let near = parse("{\"vc\": {\"password\": \"vsphere-secret-pw\",\n  \"x\": }}").unwrap_err();
    check_error(&near);
    assert!(
        render(&near).contains("\"password\": \"*****************\""),
        "{}",
        render(&near)
    );

    // Schema errors whose labels sit on secret lines.
    let wrong = profile_text(",\n    \"guest_vm_win_password\": 5, \"endpoint_type\": 1");
    let error = parse(&wrong).unwrap_err();
    check_error(&error);

    let env: MapEnv = [(
        "COPYOFFLOAD_STORAGE_SECRET_EXTRA",
        "{\"A\": \"env-secret-pw\"",
    )]
    .into_iter()
    .collect();
    let file = parse_ok(&profile_text(""));
    let error = file.profile("vc").unwrap().copyoffload(&env).unwrap_err();
    check_error(&error);
}

#[test]
fn unknown_profile_and_builtin_debug_are_clean() {
    let file = ProvidersFile::builtin();
    assert!(!format!("{file:?}").contains("lab-password"));
    let error = file.profile("nope").unwrap_err();
    assert!(!format!("{error:?}{error}").contains("lab-password"));
}
