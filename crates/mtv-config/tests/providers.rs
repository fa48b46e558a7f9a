mod common;

use std::path::{Path, PathBuf};

use common::{VSPHERE_FIELDS, fixture, parse, parse_err, parse_ok, render};
use mtv_api::ProviderType;
use mtv_config::{ConfigError, MapEnv, ProfileValue, ProvidersFile, ProvidersOrigin};

#[test]
fn comments_and_trailing_commas_are_tolerated_but_not_inside_strings() {
    let file = parse_ok(&format!(
        r#"// leading comment
{{
  # hash comment
  "vc": {{
    {VSPHERE_FIELDS}, # pragma: allowlist secret
    "vddk_init_image": "quay.io/x/vddk#8 // not a comment", // trailing
    "guest_vm_linux_user": "root#1",
  }},
}}
"#
    ));
    let vc = file.profile("vc").unwrap();
    assert_eq!(
        vc.field_str("vddk_init_image"),
        Some("quay.io/x/vddk#8 // not a comment")
    );
    assert_eq!(vc.field_str("guest_vm_linux_user"), Some("root#1"));
    assert_eq!(vc.api_url.as_deref(), Some("https://vc.example/sdk"));
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
}

#[test]
fn escaped_quotes_do_not_end_a_string() {
    let file = parse_ok(&format!(
        "{{\"vc\": {{{VSPHERE_FIELDS}, \"guest_vm_linux_user\": \"a\\\" # b\"}}}}"
    ));
    assert_eq!(
        file.profile("vc").unwrap().field_str("guest_vm_linux_user"),
        Some("a\" # b")
    );
}

#[test]
fn malformed_json_names_line_and_column() {
    let text = "{\n  \"vc\": {\n    \"type\": \"vsphere\"\n    \"version\": \"8\"\n  }\n}\n";
    let error = parse_err(text);
    assert!(matches!(error, ConfigError::JsonSyntax { .. }));
    let message = error.to_string();
    assert!(message.starts_with("providers.json:4:5: "), "{message}");
    assert!(message.contains("expected `,` or `}`"), "{message}");
    insta::assert_snapshot!("malformed_json", render(&error));
}

#[test]
fn malformed_json_after_a_comment_keeps_the_original_column() {
    let text = "{ # comment with ünïcode\n  \"vc\": [1, 2,, 3]\n}";
    let message = parse_err(text).to_string();
    assert!(message.starts_with("providers.json:2:15: "), "{message}");
}

#[test]
fn empty_file_is_a_clear_error() {
    for text in ["", "   \n\t", "// only a comment\n# and another\n"] {
        let error = parse_err(text);
        assert!(
            matches!(error, ConfigError::EmptyProvidersFile { .. }),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "providers file providers.json is empty");
    }
}

#[test]
fn root_must_be_an_object() {
    let error = parse_err("[1, 2]");
    assert_eq!(
        error.to_string(),
        "providers.json:1:1: the providers file must be a JSON object of profiles, found an array"
    );
    let error = parse_err("{}");
    assert!(
        error.to_string().contains("defines no provider profiles"),
        "{error}"
    );
    let error = parse_err(r#"{"$schema": "./providers_schema.json"}"#);
    assert!(
        error.to_string().contains("defines no provider profiles"),
        "{error}"
    );
}

#[test]
fn schema_key_is_not_a_profile() {
    let file = parse_ok(&format!(
        r#"{{"$schema": "./providers_schema.json", "vc": {{{VSPHERE_FIELDS}}}}}"#
    ));
    assert_eq!(file.profiles.keys().collect::<Vec<_>>(), ["vc"]);
}

#[test]
fn unknown_profile_lists_available_ones_with_a_hint() {
    let file = parse_ok(&format!(
        r#"{{"vsphere-8": {{{VSPHERE_FIELDS}}}, "vsphere-7": {{{VSPHERE_FIELDS}}}}}"#
    ));
    let error = file.profile("vsphere-80").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("unknown source provider profile `vsphere-80`"),
        "{message}"
    );
    assert!(message.contains("did you mean `vsphere-8`?"), "{message}");
    assert!(
        message.contains("available profiles: vsphere-7, vsphere-8"),
        "{message}"
    );
    // source_provider names a key, not a type; several candidates → no guess.
    let message = file.profile("vsphere").unwrap_err().to_string();
    assert!(!message.contains("did you mean"), "{message}");
    let single = parse_ok(&format!(r#"{{"vsphere-8.0.3-lab": {{{VSPHERE_FIELDS}}}}}"#));
    let message = single.profile("vsphere").unwrap_err().to_string();
    assert!(
        message.contains("(did you mean `vsphere-8.0.3-lab`?)"),
        "{message}"
    );
    insta::assert_snapshot!("unknown_profile", render(&error));
}

fn missing_fields_of(error: &ConfigError) -> Vec<String> {
    let ConfigError::InvalidProvidersFile { problems, .. } = error else {
        panic!("expected InvalidProvidersFile, got {error:?}");
    };
    problems
        .iter()
        .filter_map(|p| {
            p.message
                .split("missing required field `")
                .nth(1)
                .map(|rest| rest.trim_end_matches('`').to_string())
        })
        .collect()
}

#[test]
fn each_type_reports_all_its_missing_required_fields() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "vsphere",
            &["version", "fqdn", "api_url", "username", "password"],
        ),
        (
            "ovirt",
            &["version", "fqdn", "api_url", "username", "password"],
        ),
        (
            "openstack",
            &[
                "version",
                "fqdn",
                "api_url",
                "username",
                "password",
                "user_domain_name",
                "region_name",
                "project_name",
                "user_domain_id",
                "project_domain_id",
            ],
        ),
        (
            "openshift",
            &[
                "version",
                "host",
                "api_url",
                "username",
                "password",
                "storage_class",
            ],
        ),
        (
            "ova",
            &["version", "fqdn", "api_url", "username", "password"],
        ),
    ];
    for (provider_type, required) in cases {
        let error = parse_err(&format!(
            "{{\n  \"p\": {{\"type\": \"{provider_type}\"}}\n}}"
        ));
        let mut missing = missing_fields_of(&error);
        let mut expected: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        missing.sort();
        expected.sort();
        assert_eq!(missing, expected, "type {provider_type}");
        // Every problem points at the profile key.
        assert!(
            error
                .to_string()
                .contains("providers.json:2:3: profile `p`"),
            "{error}"
        );
    }
}

#[test]
fn complete_profiles_of_every_type_parse() {
    let file = ProvidersFile::load(&fixture("python-example.providers.json")).unwrap();
    let types: Vec<(&str, ProviderType)> = file
        .profiles
        .iter()
        .map(|(k, p)| (k.as_str(), p.provider_type))
        .collect();
    assert_eq!(
        types,
        [
            ("openshift", ProviderType::Openshift),
            ("openstack", ProviderType::Openstack),
            ("ova", ProviderType::Ova),
            ("ovirt", ProviderType::Ovirt),
            ("vsphere", ProviderType::Vsphere),
            ("vsphere-copy-offload", ProviderType::Vsphere),
        ]
    );
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
    assert_eq!(
        file.origin,
        ProvidersOrigin::File(fixture("python-example.providers.json"))
    );
    let openstack = file.profile("openstack").unwrap();
    assert_eq!(openstack.field_str("region_name"), Some("REGION NAME"));
    let openshift = file.profile("openshift").unwrap();
    assert_eq!(
        openshift.field_str("storage_class"),
        Some("<STORAGE CLASS>")
    );
    assert_eq!(openshift.fqdn, None);
    let vsphere = file.profile("vsphere").unwrap();
    assert_eq!(vsphere.version.as_deref(), Some("<SERVER VERSION>"));
    assert_eq!(vsphere.password.as_ref().unwrap().expose(), "PASSWORD");
    assert!(matches!(
        vsphere.fields.get("guest_vm_win_password"),
        Some(ProfileValue::Secret(_))
    ));
    assert!(
        file.profile("vsphere-copy-offload")
            .unwrap()
            .copyoffload
            .is_some()
    );
    assert!(vsphere.copyoffload.is_none());
}

#[test]
fn python_example_copyoffload_resolves_when_env_provides_missing_credentials() {
    let file = ProvidersFile::load(&fixture("python-example.providers.json")).unwrap();
    let profile = file.profile("vsphere-copy-offload").unwrap();
    let error = profile.copyoffload(&MapEnv::default()).unwrap_err();
    let message = error.to_string();
    for var in [
        "COPYOFFLOAD_STORAGE_PASSWORD",
        "COPYOFFLOAD_ONTAP_SVM",
        "COPYOFFLOAD_ESXI_PASSWORD",
    ] {
        assert!(message.contains(var), "{message}");
    }
    let env: MapEnv = [
        ("COPYOFFLOAD_STORAGE_PASSWORD", "array-pw"),
        ("COPYOFFLOAD_ONTAP_SVM", "svm1"),
        ("COPYOFFLOAD_ESXI_PASSWORD", "esxi-pw"),
    ]
    .into_iter()
    .collect();
    let resolved = profile.copyoffload(&env).unwrap().unwrap();
    assert_eq!(resolved.vendor_fields["ontap_svm"], "svm1");
    assert_eq!(resolved.storage_password.expose(), "array-pw");
    assert_eq!(resolved.esxi_password.as_ref().unwrap().expose(), "esxi-pw");
    assert_eq!(resolved.datastore_id, "datastore-12345");
    assert!(!resolved.storage_skip_ssl_verification);
}

#[test]
fn type_problems() {
    let error = parse_err(r#"{"hv": {"type": "hyperv", "version": "2022"}}"#);
    let message = error.to_string();
    assert!(
        message.contains("type `hyperv`, which this suite does not support"),
        "{message}"
    );
    assert!(message.contains("providers.json:1:17"), "{message}");

    let message = parse_err(r#"{"r": {"type": "rhv"}}"#).to_string();
    assert!(
        message.contains("unknown type `rhv` (did you mean `ovirt`?)"),
        "{message}"
    );
    let message = parse_err(r#"{"r": {"type": "vspere"}}"#).to_string();
    assert!(message.contains("did you mean `vsphere`?"), "{message}");
    let message = parse_err(r#"{"r": {"version": "1"}}"#).to_string();
    assert!(message.contains("profile `r` has no `type`"), "{message}");
    let message = parse_err(r#"{"r": {"type": 3}}"#).to_string();
    assert!(
        message.contains("`type` of profile `r` must be a string, found a number"),
        "{message}"
    );
    let message = parse_err(r#"{"r": "vsphere"}"#).to_string();
    assert!(
        message.contains("profile `r` must be an object, found a string"),
        "{message}"
    );
}

#[test]
fn wrong_json_types_are_errors_with_locations_all_at_once() {
    let text = r#"{
  "vc": {
    "type": "vsphere",
    "version": 8,
    "fqdn": "vc",
    "api_url": "https://vc/sdk",
    "username": ["a"],
    "password": "p",
    "endpoint_type": "cluster"
  },
  "ocp": {
    "type": "openshift", "version": "4.20", "host": "h", "api_url": "u", "username": "u",
    "password": "p", "storage_class": "sc", "verify_ssl": "maybe"
  }
}"#;
    let error = parse_err(text);
    let message = error.to_string();
    assert!(message.contains("4 problems"), "{message}");
    assert!(
        message.contains(
            "providers.json:4:16: `version` of profile `vc` must be a string, found a number"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "providers.json:7:17: `username` of profile `vc` must be a string, found an array"
        ),
        "{message}"
    );
    assert!(message.contains("providers.json:9:22: `endpoint_type` of profile `vc` must be one of: vcenter, esxi; found `cluster`"), "{message}");
    assert!(
        message.contains("providers.json:13:59: `verify_ssl` of profile `ocp` must be a boolean"),
        "{message}"
    );
    insta::assert_snapshot!("wrong_types", render(&error));
}

#[test]
fn unknown_fields_are_warnings_with_their_line() {
    let file = parse_ok(&format!(
        "{{\n  \"vc\": {{\n    {VSPHERE_FIELDS},\n    \"vddk_image\": \"x\",\n    \"copyoffload\": {{\"datastore\": \"d\"}}\n  }}\n}}"
    ));
    let warnings: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("providers.json:9:5: unknown field `vddk_image` in profile `vc` (type vsphere) is ignored (did you mean `vddk_init_image`?)"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with(
            "providers.json:10:21: unknown field `datastore` in the copyoffload section"
        ),
        "{warnings:?}"
    );
    assert_eq!(
        file.warnings[0].location.as_deref(),
        Some("providers.json:9:5")
    );
    // Unknown fields are kept, not dropped.
    assert_eq!(
        file.profile("vc").unwrap().field_str("vddk_image"),
        Some("x")
    );
}

#[test]
fn copyoffload_on_a_non_vsphere_profile_is_an_error() {
    let error = parse_err(
        r#"{"rhv": {"type": "ovirt", "version": "4.5", "fqdn": "e", "api_url": "https://e/ovirt-engine/api",
        "username": "u", "password": "p", "copyoffload": {"storage_vendor_product": "ontap"}}}"#,
    );
    let message = error.to_string();
    assert!(
        message.contains("copy-offload is vSphere-only (type is ovirt)"),
        "{message}"
    );
}

#[test]
fn clone_provider_must_name_another_vsphere_profile() {
    let esxi = format!(
        r#"{{"esxi": {{{VSPHERE_FIELDS}, "endpoint_type": "esxi", "clone_provider": "vcentre"}}, "vcenter": {{{VSPHERE_FIELDS}}}}}"#
    );
    let message = parse_err(&esxi).to_string();
    assert!(message.contains("names unknown profile `vcentre` (did you mean `vcenter`?); available profiles: esxi, vcenter"), "{message}");

    let ok = esxi.replace("vcentre", "vcenter");
    let file = parse_ok(&ok);
    assert_eq!(
        file.profile("esxi").unwrap().field_str("clone_provider"),
        Some("vcenter")
    );
    assert_eq!(
        file.profile("esxi").unwrap().field_str("endpoint_type"),
        Some("esxi")
    );

    let to_ova = format!(
        r#"{{"esxi": {{{VSPHERE_FIELDS}, "clone_provider": "o"}}, "o": {{"type": "ova", "version": "1", "fqdn": "n", "api_url": "n:/ova", "username": "u", "password": "p"}}}}"#
    );
    let message = parse_err(&to_ova).to_string();
    assert!(
        message.contains("which is type ova (a vsphere profile is needed)"),
        "{message}"
    );
}

#[test]
fn duplicate_profiles_keep_the_last_with_a_warning() {
    let file = parse_ok(&format!(
        "{{\"vc\": {{{VSPHERE_FIELDS}}},\n\"vc\": {{{}}}}}",
        VSPHERE_FIELDS.replace("8.0.3", "7.0.3")
    ));
    assert_eq!(
        file.profile("vc").unwrap().version.as_deref(),
        Some("7.0.3")
    );
    assert_eq!(file.warnings.len(), 1);
    assert!(file.warnings[0].message.contains("defined more than once"));
}

#[test]
fn builtin_profiles_parse_without_warnings() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("builtin-providers.json"),
    )
    .unwrap();
    let file = ProvidersFile::parse(Path::new("builtin-providers.json"), &text).unwrap();
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);

    let builtin = ProvidersFile::builtin();
    assert_eq!(builtin.origin, ProvidersOrigin::Builtin);
    assert_eq!(
        builtin.profiles.keys().collect::<Vec<_>>(),
        [
            "openshift",
            "openstack",
            "ova",
            "ovirt",
            "vsphere",
            "vsphere-copy-offload"
        ]
    );
    let vsphere = builtin.profile("vsphere").unwrap();
    let openshift = builtin.profile("openshift").unwrap();
    let version = |name: &str| builtin.profile(name).unwrap().version.as_deref();
    for (fact, got, want) in [
        ("vsphere version", vsphere.version.as_deref(), "8.0.3"),
        (
            "vsphere fqdn",
            vsphere.fqdn.as_deref(),
            "vcenter.lab.mtv-tests.internal",
        ),
        (
            "vsphere api_url",
            vsphere.api_url.as_deref(),
            "https://vcenter.lab.mtv-tests.internal/sdk",
        ),
        (
            "vsphere username",
            vsphere.username.as_deref(),
            "administrator@vsphere.local",
        ),
        (
            "vsphere vddk_init_image",
            vsphere.field_str("vddk_init_image"),
            "registry.lab.mtv-tests.internal/vddk:8.0.3",
        ),
        ("ovirt version", version("ovirt"), "4.5"),
        ("openstack version", version("openstack"), "17.1"),
        ("openshift version", openshift.version.as_deref(), "4.20"),
        (
            "openshift host",
            openshift.field_str("host"),
            "https://api.lab.mtv-tests.internal:6443",
        ),
        (
            "openshift storage_class",
            openshift.field_str("storage_class"),
            "lab-ceph-rbd",
        ),
        (
            "ova api_url",
            builtin.profile("ova").unwrap().api_url.as_deref(),
            "nfs.lab.mtv-tests.internal:/ova",
        ),
    ] {
        assert_eq!(got, Some(want), "{fact}");
    }
    assert_eq!(vsphere.password.as_ref().unwrap().expose(), "lab-password");
    assert!(
        builtin
            .profile("ovirt")
            .unwrap()
            .api_url
            .as_deref()
            .unwrap()
            .ends_with("/ovirt-engine/api")
    );

    let offload = builtin
        .profile("vsphere-copy-offload")
        .unwrap()
        .copyoffload(&MapEnv::default())
        .unwrap()
        .unwrap();
    assert_eq!(offload.storage_vendor_product.as_str(), "ontap");
    assert_eq!(offload.vendor_fields["ontap_svm"], "svm-lab");
    assert_eq!(offload.datastore_id, "datastore-xcopy-1");
    for (field, got, want) in [
        (
            "secondary_datastore_id",
            &offload.secondary_datastore_id,
            "datastore-xcopy-2",
        ),
        (
            "non_xcopy_datastore_id",
            &offload.non_xcopy_datastore_id,
            "datastore-nonxcopy-1",
        ),
        (
            "rdm_lun_uuid",
            &offload.rdm_lun_uuid,
            "naa.600a098038314648593f517773636d01",
        ),
        (
            "default_vm_name",
            &offload.default_vm_name,
            "xcopy-template-test",
        ),
    ] {
        assert_eq!(got.as_deref(), Some(want), "{field}");
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtv-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn discovery_order_and_fallback() {
    let dir = temp_dir("discover");
    let body = |version: &str| {
        format!(
            "{{\"vc\": {{{}}}}}",
            VSPHERE_FIELDS.replace("8.0.3", version)
        )
    };
    std::fs::write(dir.join("flag.json"), body("flag")).unwrap();
    std::fs::write(dir.join("mtv.json"), body("mtv")).unwrap();
    std::fs::write(dir.join("legacy.json"), body("legacy")).unwrap();

    let version = |file: ProvidersFile| file.profile("vc").unwrap().version.clone().unwrap();
    let all_env: MapEnv = [
        ("MTV_PROVIDERS_FILE", "mtv.json"),
        ("PROVIDERS_JSON_PATH", "legacy.json"),
    ]
    .into_iter()
    .collect();

    // No file anywhere → built-in.
    let file = ProvidersFile::discover(None, &MapEnv::default(), &dir).unwrap();
    assert_eq!(file.origin, ProvidersOrigin::Builtin);

    // ./.providers.json relative to cwd.
    std::fs::write(dir.join(".providers.json"), body("cwd")).unwrap();
    let file = ProvidersFile::discover(None, &MapEnv::default(), &dir).unwrap();
    assert_eq!(version(file), "cwd");

    let legacy_only: MapEnv = [("PROVIDERS_JSON_PATH", "legacy.json")]
        .into_iter()
        .collect();
    assert_eq!(
        version(ProvidersFile::discover(None, &legacy_only, &dir).unwrap()),
        "legacy"
    );
    assert_eq!(
        version(ProvidersFile::discover(None, &all_env, &dir).unwrap()),
        "mtv"
    );
    assert_eq!(
        version(ProvidersFile::discover(Some(Path::new("flag.json")), &all_env, &dir).unwrap()),
        "flag"
    );
    // An empty variable counts as unset.
    let empty: MapEnv = [
        ("MTV_PROVIDERS_FILE", ""),
        ("PROVIDERS_JSON_PATH", "legacy.json"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        version(ProvidersFile::discover(None, &empty, &dir).unwrap()),
        "legacy"
    );

    // A named file that does not exist is an error, not a fallback.
    let error = ProvidersFile::discover(Some(Path::new("nope.json")), &all_env, &dir).unwrap_err();
    assert!(matches!(error, ConfigError::ProvidersFileNotFound { .. }));
    assert!(
        error
            .to_string()
            .contains("nope.json (named by --providers-file) does not exist")
    );
    let missing_env: MapEnv = [("MTV_PROVIDERS_FILE", "gone.json")].into_iter().collect();
    let error = ProvidersFile::discover(None, &missing_env, &dir).unwrap_err();
    assert!(
        error.to_string().contains("(named by MTV_PROVIDERS_FILE)"),
        "{error}"
    );
    let missing_legacy: MapEnv = [("PROVIDERS_JSON_PATH", "gone.json")].into_iter().collect();
    let error = ProvidersFile::discover(None, &missing_legacy, &dir).unwrap_err();
    assert!(
        error.to_string().contains("(named by PROVIDERS_JSON_PATH)"),
        "{error}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn redacted_json_hides_every_secret() {
    let file = ProvidersFile::load(&fixture("python-example.providers.json")).unwrap();
    let json = file
        .profile("vsphere-copy-offload")
        .unwrap()
        .redacted_json();
    assert_eq!(json["password"], "<redacted>");
    assert_eq!(json["guest_vm_linux_password"], "<redacted>");
    assert_eq!(json["copyoffload"]["esxi_password"], "<redacted>");
    assert_eq!(json["copyoffload"]["storage_password"], "<redacted>");
    assert_eq!(json["copyoffload"]["datastore_id"], "datastore-12345");
    assert_eq!(json["username"], "USERNAME");
    assert_eq!(json["type"], "vsphere");
    let text = json.to_string();
    assert!(!text.contains("PASSWORD"), "{text}");
}

#[test]
fn parse_is_unaffected_by_unused_path() {
    // parse never touches the file system.
    let file = parse(&format!("{{\"vc\": {{{VSPHERE_FIELDS}}}}}")).unwrap();
    assert_eq!(
        file.origin,
        ProvidersOrigin::File(PathBuf::from("providers.json"))
    );
}

#[test]
fn syntax_error_columns_count_characters() {
    // "ü" is two bytes; the column is in characters, as editors show it.
    let message = parse_err("{\"vc\": {\"a\": \"üü\", x}}").to_string();
    assert!(message.starts_with("providers.json:1:20: "), "{message}");
    // A byte-order mark is tolerated.
    parse_ok(&format!("\u{feff}{{\"vc\": {{{VSPHERE_FIELDS}}}}}"));
}

#[test]
fn a_vsphere_profile_may_pin_its_certificate_by_pem_or_fingerprint() {
    let fingerprint = "AB:".repeat(31) + "AB";
    let file = parse_ok(&format!(
        r#"{{"pinned": {{{VSPHERE_FIELDS}, "certificate_fingerprint": "{fingerprint}"}},
            "ca": {{{VSPHERE_FIELDS}, "cacert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}}}"#
    ));
    assert_eq!(
        file.profiles["pinned"].field_str("certificate_fingerprint"),
        Some(fingerprint.as_str())
    );
    assert!(
        file.profiles["ca"]
            .field_str("cacert")
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    let error = render(&parse_err(&format!(
        r#"{{"p": {{{VSPHERE_FIELDS}, "certificate_fingerprint": "sha256:abc"}}}}"#
    )));
    assert!(error.contains("must be a SHA-256 fingerprint"), "{error}");
}

#[test]
fn an_ovirt_profile_names_the_engine_api_and_may_give_its_ca() {
    let ovirt = |fqdn: &str, api_url: &str, extra: &str| {
        format!(
            r#"{{"rhv": {{"type": "ovirt", "version": "4.5", "fqdn": "{fqdn}", "api_url": "{api_url}",
               "username": "admin@internal", "password": "p"{extra}}}}}"#
        )
    };
    let file = parse_ok(&ovirt(
        "engine.example.com",
        "https://engine.example.com/ovirt-engine/api/",
        r#", "cacert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n""#,
    ));
    assert!(file.profiles["rhv"].field_str("cacert").is_some());
    assert!(file.warnings.is_empty(), "{:?}", file.warnings);
    let error = render(&parse_err(&ovirt(
        "engine.example.com",
        "https://engine.example.com/api",
        "",
    )));
    assert!(
        error.contains(
            "`api_url` of profile `rhv` must be the API URL, https://<host>/ovirt-engine/api"
        ),
        "{error}"
    );
    assert!(error.contains("providers.json:1:"), "{error}");
    let error = render(&parse_err(&ovirt(
        "engine.example.com",
        "http://engine.example.com/ovirt-engine/api",
        "",
    )));
    assert!(error.contains("must be the API URL"), "{error}");
    let error = render(&parse_err(&ovirt(
        "https://engine.example.com",
        "https://engine.example.com/ovirt-engine/api",
        "",
    )));
    assert!(
        error.contains("`fqdn` of profile `rhv` must be the host name or address alone"),
        "{error}"
    );
    let error = render(&parse_err(&ovirt(
        "engine.example.com",
        "https://engine.example.com/ovirt-engine/api",
        r#", "cacert": "not a certificate""#,
    )));
    assert!(
        error.contains("`cacert` of profile `rhv` must be PEM"),
        "{error}"
    );
}
