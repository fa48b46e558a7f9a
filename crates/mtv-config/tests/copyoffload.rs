mod common;

use common::{VSPHERE_FIELDS, parse_ok, render};
use mtv_config::{ConfigError, CopyOffload, EsxiCloneMethod, MapEnv, ProvidersFile, StorageVendor};

/// A file with one vSphere profile `vc` whose copyoffload section holds `section` (JSON members
/// without braces).
fn file_with_section(section: &str) -> ProvidersFile {
    parse_ok(&format!(
        "{{\n  \"vc\": {{\n    {VSPHERE_FIELDS},\n    \"copyoffload\": {{\n      {section}\n    }}\n  }}\n}}\n"
    ))
}

const BASE: &str = r#""storage_vendor_product": "primera3par",
      "datastore_id": "datastore-1",
      "storage_hostname": "array.example",
      "storage_username": "array-admin",
      "storage_password": "array-secret-pw""#;

fn resolve(section: &str, env: &MapEnv) -> Result<CopyOffload, ConfigError> {
    let file = file_with_section(section);
    file.profile("vc")
        .unwrap()
        .copyoffload(env)
        .map(|c| c.expect("section present"))
}

fn env<const N: usize>(pairs: [(&str, &str); N]) -> MapEnv {
    pairs.into_iter().collect()
}

fn problems(error: &ConfigError) -> Vec<String> {
    let ConfigError::CopyOffload { problems, .. } = error else {
        panic!("expected a copy-offload error, got {error:?}");
    };
    problems.iter().map(|p| p.to_string()).collect()
}

#[test]
fn profile_without_section_is_none() {
    let file = parse_ok(&format!("{{\"vc\": {{{VSPHERE_FIELDS}}}}}"));
    assert!(
        file.profile("vc")
            .unwrap()
            .copyoffload(&MapEnv::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn minimal_section_resolves_with_defaults() {
    let c = resolve(BASE, &MapEnv::default()).unwrap();
    assert_eq!(c.storage_vendor_product, StorageVendor::Primera3par);
    assert_eq!(c.datastore_id, "datastore-1");
    assert_eq!(c.storage_hostname, "array.example");
    assert_eq!(c.storage_username, "array-admin");
    assert_eq!(c.storage_password.expose(), "array-secret-pw");
    assert_eq!(c.esxi_clone_method, EsxiCloneMethod::Vib);
    assert!(c.vendor_fields.is_empty());
    assert!(!c.storage_skip_ssl_verification);
    assert!(c.dedicated_migration_hosts.is_empty());
    let data = c.storage_secret_data();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["STORAGE_HOSTNAME", "STORAGE_PASSWORD", "STORAGE_USERNAME"]
    );
    assert_eq!(data["STORAGE_PASSWORD"].expose(), "array-secret-pw");
}

/// (vendor spelling, [(json field, secret key)])
const VENDORS: &[(&str, &[(&str, &str)])] = &[
    ("ontap", &[("ontap_svm", "ONTAP_SVM")]),
    (
        "vantara",
        &[
            ("vantara_storage_id", "STORAGE_ID"),
            ("vantara_storage_port", "STORAGE_PORT"),
            ("vantara_hostgroup_id_list", "HOSTGROUP_ID_LIST"),
        ],
    ),
    ("primera3par", &[]),
    (
        "pureFlashArray",
        &[("pure_cluster_prefix", "PURE_CLUSTER_PREFIX")],
    ),
    (
        "powerflex",
        &[("powerflex_system_id", "POWERFLEX_SYSTEM_ID")],
    ),
    (
        "powermax",
        &[("powermax_symmetrix_id", "POWERMAX_SYMMETRIX_ID")],
    ),
    ("powerstore", &[]),
    ("infinibox", &[]),
    ("flashsystem", &[]),
];

#[test]
fn every_vendor_requires_exactly_its_extra_fields() {
    assert_eq!(VENDORS.len(), StorageVendor::ALL.len());
    for (vendor, fields) in VENDORS {
        let parsed: StorageVendor = vendor.parse().unwrap();
        assert_eq!(parsed.as_str(), *vendor);
        let expected_fields: Vec<(&str, &str)> = parsed.secret_fields().to_vec();
        assert_eq!(expected_fields, fields.to_vec(), "{vendor}");

        let base = BASE.replace("primera3par", vendor);
        // Without the vendor fields: each one is reported, naming its env var.
        if fields.is_empty() {
            resolve(&base, &MapEnv::default()).unwrap();
        } else {
            let error = resolve(&base, &MapEnv::default()).unwrap_err();
            let found = problems(&error);
            assert_eq!(found.len(), fields.len(), "{vendor}: {found:?}");
            for ((field, _), problem) in fields.iter().zip(&found) {
                assert!(problem.contains(&format!("missing `{field}`")), "{problem}");
                assert!(
                    problem.contains(&format!("COPYOFFLOAD_{}", field.to_uppercase())),
                    "{problem}"
                );
                assert!(
                    problem.contains(&format!("storage_vendor_product `{vendor}`")),
                    "{problem}"
                );
            }
        }
        // With them in the file: they land in vendor_fields and the Secret.
        let with_fields: String = fields
            .iter()
            .map(|(field, _)| format!(",\n      \"{field}\": \"{field}-value\""))
            .collect();
        let c = resolve(&format!("{base}{with_fields}"), &MapEnv::default()).unwrap();
        let data = c.storage_secret_data();
        for (field, secret_key) in *fields {
            assert_eq!(c.vendor_fields[*field], format!("{field}-value"));
            assert_eq!(data[*secret_key].expose(), format!("{field}-value"));
        }
        assert_eq!(data.len(), 3 + fields.len(), "{vendor}");
    }
}

#[test]
fn vendor_fields_can_come_from_the_environment() {
    let base = BASE.replace("primera3par", "vantara");
    let e = env([
        ("COPYOFFLOAD_VANTARA_STORAGE_ID", "id-1"),
        ("COPYOFFLOAD_VANTARA_STORAGE_PORT", "CL1-A"),
        ("COPYOFFLOAD_VANTARA_HOSTGROUP_ID_LIST", "CL1-A,1"),
    ]);
    let c = resolve(&base, &e).unwrap();
    let data = c.storage_secret_data();
    assert_eq!(data["STORAGE_ID"].expose(), "id-1");
    assert_eq!(data["STORAGE_PORT"].expose(), "CL1-A");
    assert_eq!(data["HOSTGROUP_ID_LIST"].expose(), "CL1-A,1");
}

#[test]
fn numbers_are_accepted_for_vendor_ids() {
    let c = resolve(
        &format!(
            "{},\n      \"vantara_storage_id\": 12345, \"vantara_storage_port\": 1, \"vantara_hostgroup_id_list\": \"a\"",
            BASE.replace("primera3par", "vantara")
        ),
        &MapEnv::default(),
    )
    .unwrap();
    assert_eq!(c.vendor_fields["vantara_storage_id"], "12345");
}

#[test]
fn unknown_vendor_lists_the_spellings_with_a_hint() {
    let error = resolve(
        &BASE.replace("primera3par", "PureFlashArray"),
        &MapEnv::default(),
    )
    .unwrap_err();
    let found = problems(&error);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(
            "unknown storage_vendor_product `PureFlashArray` (did you mean `pureFlashArray`?)"
        ),
        "{found:?}"
    );
    assert!(found[0].contains("ontap, vantara, primera3par, pureFlashArray, powerflex, powermax, powerstore, infinibox, flashsystem"));
    // It points at the field's own line.
    assert!(found[0].starts_with("providers.json:10:7: "), "{found:?}");
}

#[test]
fn ssh_clone_method_requires_esxi_credentials() {
    let section = format!("{BASE},\n      \"esxi_clone_method\": \"ssh\"");
    let error = resolve(&section, &MapEnv::default()).unwrap_err();
    let found = problems(&error);
    assert_eq!(found.len(), 3, "{found:?}");
    for (field, problem) in ["esxi_host", "esxi_user", "esxi_password"]
        .iter()
        .zip(&found)
    {
        assert!(
            problem.contains(&format!(
                "missing `{field}`, required when esxi_clone_method is `ssh`"
            )),
            "{problem}"
        );
        assert!(
            problem.contains(&format!("COPYOFFLOAD_{}", field.to_uppercase())),
            "{problem}"
        );
    }

    let e = env([("COPYOFFLOAD_ESXI_PASSWORD", "esxi-secret-pw")]);
    let c = resolve(
        &format!("{section},\n      \"esxi_host\": \"esx1.example\", \"esxi_user\": \"root\""),
        &e,
    )
    .unwrap();
    assert_eq!(c.esxi_clone_method, EsxiCloneMethod::Ssh);
    assert_eq!(c.esxi_host.as_deref(), Some("esx1.example"));
    assert_eq!(c.esxi_password.as_ref().unwrap().expose(), "esxi-secret-pw");

    let error = resolve(
        &format!("{BASE},\n      \"esxi_clone_method\": \"scp\""),
        &MapEnv::default(),
    )
    .unwrap_err();
    assert!(
        problems(&error)[0].contains("`esxi_clone_method` must be `vib` or `ssh`, found `scp`")
    );
}

#[test]
fn environment_wins_and_empty_environment_falls_through() {
    let e = env([
        ("COPYOFFLOAD_STORAGE_PASSWORD", "from-env"),
        ("COPYOFFLOAD_STORAGE_HOSTNAME", ""),
        ("COPYOFFLOAD_STORAGE_SKIP_SSL_VERIFICATION", "YES"),
    ]);
    let c = resolve(BASE, &e).unwrap();
    assert_eq!(c.storage_password.expose(), "from-env");
    assert_eq!(c.storage_hostname, "array.example");
    assert!(c.storage_skip_ssl_verification);
    assert_eq!(
        c.storage_secret_data()["STORAGE_SKIP_SSL_VERIFICATION"].expose(),
        "true"
    );

    // Credentials missing from the file entirely are satisfied by the environment.
    let no_creds = r#""storage_vendor_product": "infinibox", "datastore_id": "d""#;
    let e = env([
        ("COPYOFFLOAD_STORAGE_HOSTNAME", "h"),
        ("COPYOFFLOAD_STORAGE_USERNAME", "u"),
        ("COPYOFFLOAD_STORAGE_PASSWORD", "p"),
    ]);
    let c = resolve(no_creds, &e).unwrap();
    assert_eq!(
        (c.storage_hostname.as_str(), c.storage_username.as_str()),
        ("h", "u")
    );

    // File-only fields ignore the environment.
    let e = env([
        ("COPYOFFLOAD_DATASTORE_ID", "from-env"),
        ("COPYOFFLOAD_STORAGE_VENDOR_PRODUCT", "ontap"),
    ]);
    let c = resolve(BASE, &e).unwrap();
    assert_eq!(c.datastore_id, "datastore-1");
    assert_eq!(c.storage_vendor_product, StorageVendor::Primera3par);
}

#[test]
fn skip_ssl_verification_from_the_file() {
    for (value, expected) in [
        ("true", true),
        ("\"yes\"", true),
        ("\"1\"", true),
        ("false", false),
        ("\"no\"", false),
    ] {
        let c = resolve(
            &format!("{BASE},\n      \"storage_skip_ssl_verification\": {value}"),
            &MapEnv::default(),
        )
        .unwrap();
        assert_eq!(c.storage_skip_ssl_verification, expected, "{value}");
        assert_eq!(
            c.storage_secret_data()
                .contains_key("STORAGE_SKIP_SSL_VERIFICATION"),
            expected
        );
    }
    let error = resolve(
        &format!("{BASE},\n      \"storage_skip_ssl_verification\": \"sometimes\""),
        &MapEnv::default(),
    )
    .unwrap_err();
    assert!(problems(&error)[0].contains("storage_skip_ssl_verification"));
}

#[test]
fn storage_secret_extra_merges_last_and_env_overrides_file() {
    let section = format!(
        "{},\n      \"ontap_svm\": \"svm-file\",\n      \"storage_secret_extra\": {{\"ONTAP_SVM\": \"svm-extra\", \"POWERMAX_PORT_GROUP_NAME\": \"pg-file\", \"FLAG\": true}}",
        BASE.replace("primera3par", "ontap")
    );
    let c = resolve(&section, &MapEnv::default()).unwrap();
    let data = c.storage_secret_data();
    // Extras override vendor keys.
    assert_eq!(data["ONTAP_SVM"].expose(), "svm-extra");
    assert_eq!(data["FLAG"].expose(), "true");
    assert_eq!(c.vendor_fields["ontap_svm"], "svm-file");

    let e = env([(
        "COPYOFFLOAD_STORAGE_SECRET_EXTRA",
        r#"{"POWERMAX_PORT_GROUP_NAME": "pg-env", "EXTRA_ONLY_IN_ENV": false}"#,
    )]);
    let data = resolve(&section, &e).unwrap().storage_secret_data();
    assert_eq!(data["POWERMAX_PORT_GROUP_NAME"].expose(), "pg-env");
    assert_eq!(data["EXTRA_ONLY_IN_ENV"].expose(), "false");
    assert_eq!(data["ONTAP_SVM"].expose(), "svm-extra");
}

#[test]
fn malformed_storage_secret_extra_is_an_error() {
    let e = env([(
        "COPYOFFLOAD_STORAGE_SECRET_EXTRA",
        "{\"K\": \"leaky-value\",",
    )]);
    let error = resolve(BASE, &e).unwrap_err();
    let found = problems(&error);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("COPYOFFLOAD_STORAGE_SECRET_EXTRA is not valid JSON"),
        "{found:?}"
    );
    assert!(!format!("{error:?}{error}").contains("leaky-value"));

    for (text, expected) in [
        ("[1]", "must be a JSON object, found an array"),
        ("{\"\": \"x\"}", "keys must be non-empty strings"),
        (
            "{\"K\": {\"a\": 1}}",
            "value of `K` must be a string, number or boolean",
        ),
    ] {
        let e = env([("COPYOFFLOAD_STORAGE_SECRET_EXTRA", text)]);
        let found = problems(&resolve(BASE, &e).unwrap_err());
        assert!(found[0].contains(expected), "{text}: {found:?}");
    }
    let error = resolve(
        &format!("{BASE},\n      \"storage_secret_extra\": \"K=V\""),
        &MapEnv::default(),
    )
    .unwrap_err();
    assert!(
        problems(&error)[0]
            .contains("`storage_secret_extra` must be a JSON object, found a string")
    );
}

#[test]
fn all_missing_fields_are_reported_at_once() {
    let error = resolve(r#""storage_vendor_product": "ontap""#, &MapEnv::default()).unwrap_err();
    let found = problems(&error);
    let fields: Vec<&str> = found.iter().map(|p| p.split('`').nth(1).unwrap()).collect();
    assert_eq!(
        fields,
        [
            "datastore_id",
            "storage_hostname",
            "storage_username",
            "storage_password",
            "ontap_svm"
        ]
    );
    // Every problem names the section's file:line and its variable.
    for problem in &found {
        assert!(
            problem.starts_with("providers.json:9:5: missing `"),
            "{problem}"
        );
    }
    assert!(found[0].contains("there is no COPYOFFLOAD_DATASTORE_ID override"));
    assert!(found[3].contains("export COPYOFFLOAD_STORAGE_PASSWORD"));
    let message = error.to_string();
    assert!(
        message.starts_with(
            "copy-offload section of profile `vc` at providers.json:9:5 is not usable:"
        ),
        "{message}"
    );
    insta::assert_snapshot!("copyoffload_all_missing", render(&error));

    let error = resolve("", &MapEnv::default()).unwrap_err();
    assert_eq!(problems(&error).len(), 5, "{error}");
}

#[test]
fn file_only_optional_fields_are_checked() {
    let section = format!(
        "{BASE},\n      \"rdm_lun_uuid\": \"600a0980\",\n      \"dedicated_migration_hosts\": [],\n      \"secondary_datastore_id\": 7"
    );
    let error = resolve(&section, &MapEnv::default()).unwrap_err();
    let found = problems(&error);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("`rdm_lun_uuid` must be an NAA LUN id starting with `naa.`"))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("`dedicated_migration_hosts` must be a non-empty list"))
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("`secondary_datastore_id` must be a string, found a number"))
    );

    let c = resolve(
        &format!(
            "{BASE},\n      \"rdm_lun_uuid\": \"naa.6000\", \"dedicated_migration_hosts\": [\"host-1\", \"host-2\"], \"resource_pool\": \"rp\", \"default_vm_name\": \"tmpl\", \"non_xcopy_datastore_id\": \"ds-n\""
        ),
        &MapEnv::default(),
    )
    .unwrap();
    assert_eq!(c.dedicated_migration_hosts, ["host-1", "host-2"]);
    assert_eq!(c.resource_pool.as_deref(), Some("rp"));
    assert_eq!(c.default_vm_name.as_deref(), Some("tmpl"));
    assert_eq!(c.non_xcopy_datastore_id.as_deref(), Some("ds-n"));
    assert_eq!(c.rdm_lun_uuid.as_deref(), Some("naa.6000"));
}
