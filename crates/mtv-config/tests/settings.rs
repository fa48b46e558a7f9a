mod common;

use std::path::{Path, PathBuf};

use common::{render, render_width};
use mtv_config::{
    ConfigError, ConfigWarning, MapEnv, SETTINGS, SettingKind, Settings, SettingsSources,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn resolve_with(
    file: Option<&Path>,
    tc: &[&str],
    set: &[&str],
    env: &MapEnv,
) -> Result<(Settings, Vec<ConfigWarning>), ConfigError> {
    let tc = strings(tc);
    let set = strings(set);
    Settings::resolve(&SettingsSources {
        file,
        tc: &tc,
        set: &set,
        env,
    })
}

/// A settings file in its own temporary directory (so parallel tests never share one), removed
/// when dropped.
struct TempSettings(PathBuf);

impl std::ops::Deref for TempSettings {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempSettings {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A settings file `name` holding `text` fails to resolve, with an error that says `wanted`.
fn assert_file_error(name: &str, text: &str, wanted: &str) {
    let file = settings_file(name, text);
    let error = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap_err();
    assert!(error.to_string().contains(wanted), "{error}");
}

fn settings_file(name: &str, text: &str) -> TempSettings {
    let dir =
        std::env::temp_dir().join(format!("mtv-config-settings-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    TempSettings(path)
}

#[test]
fn defaults_match_the_python_suite() {
    let (s, warnings) = resolve_with(None, &[], &[], &MapEnv::default()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(s.source_provider, None);
    assert_eq!(s.storage_class, None);
    assert_eq!(s.target_namespace_prefix, "auto");
    assert_eq!(s.mtv_namespace, "openshift-mtv");
    assert_eq!(s.remote_ocp_cluster, None);
    assert_eq!(s.snapshots_interval, 2);
    assert_eq!(s.mins_before_cutover, 5);
    assert_eq!(s.plan_wait_timeout, 3600);
    // Unset: the kubeconfig decides whether the cluster's certificate is verified.
    assert_eq!(s.insecure_verify_skip, None);
    assert!(!s.source_provider_insecure_skip_verify);
    assert_eq!(s.cluster_host, None);
    assert_eq!(s.cluster_password, None);
    assert_eq!(s, Settings::default());
    assert_eq!(s.origin("plan_wait_timeout"), Some("default"));
}

#[test]
fn layers_apply_in_order_defaults_file_env_tc_set() {
    let file = settings_file(
        "layers.yaml",
        "version: 1\ncluster_host: https://file:6443\nplan_wait_timeout: 100\nmtv_namespace: from-file\nstorage_class: sc-file\nsnapshots_interval: 9\n",
    );
    let env: MapEnv = [
        ("CLUSTER_HOST", "https://env:6443"),
        ("CLUSTER_USERNAME", "env-user"),
    ]
    .into_iter()
    .collect();

    let (s, _) = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap();
    assert_eq!(s.cluster_host.as_deref(), Some("https://file:6443"));
    assert_eq!(s.plan_wait_timeout, 100);
    assert!(
        s.origin("plan_wait_timeout")
            .unwrap()
            .ends_with("layers.yaml:3:20"),
        "{:?}",
        s.origins
    );

    let (s, _) = resolve_with(Some(&file), &[], &[], &env).unwrap();
    assert_eq!(s.cluster_host.as_deref(), Some("https://env:6443"));
    assert_eq!(s.cluster_username.as_deref(), Some("env-user"));
    assert_eq!(s.origin("cluster_host"), Some("env CLUSTER_HOST"));

    let (s, _) = resolve_with(
        Some(&file),
        &[
            "cluster_host:https://tc:6443",
            "plan_wait_timeout:200",
            "storage_class:sc-tc",
        ],
        &[],
        &env,
    )
    .unwrap();
    // --tc keeps the colons of the value.
    assert_eq!(s.cluster_host.as_deref(), Some("https://tc:6443"));
    assert_eq!(s.plan_wait_timeout, 200);
    assert_eq!(s.storage_class.as_deref(), Some("sc-tc"));
    assert_eq!(s.mtv_namespace, "from-file");
    assert_eq!(s.snapshots_interval, 9);

    let (s, _) = resolve_with(
        Some(&file),
        &["cluster_host:https://tc:6443", "plan_wait_timeout:200"],
        &[
            "plan_wait_timeout=300",
            "cluster_host=https://set:6443",
            "source_provider=vsphere-8",
        ],
        &env,
    )
    .unwrap();
    assert_eq!(s.plan_wait_timeout, 300);
    assert_eq!(s.cluster_host.as_deref(), Some("https://set:6443"));
    assert_eq!(s.source_provider.as_deref(), Some("vsphere-8"));
    assert_eq!(s.origin("plan_wait_timeout"), Some("--set"));
}

#[test]
fn cluster_verify_ssl_inverts_and_wins_over_everything() {
    for (value, insecure) in [
        ("true", false),
        ("1", false),
        ("YES", false),
        ("false", true),
        ("0", true),
        ("no", true),
        (" False ", true),
    ] {
        let env: MapEnv = [("CLUSTER_VERIFY_SSL", value)].into_iter().collect();
        let (s, _) = resolve_with(
            None,
            &["insecure_verify_skip:true"],
            &["insecure_verify_skip=true"],
            &env,
        )
        .unwrap();
        assert_eq!(
            s.insecure_verify_skip,
            Some(insecure),
            "CLUSTER_VERIFY_SSL={value}"
        );
        assert_eq!(
            s.origin("insecure_verify_skip"),
            Some("env CLUSTER_VERIFY_SSL")
        );
    }
    // Unset (or empty) leaves the flags in charge.
    let env: MapEnv = [("CLUSTER_VERIFY_SSL", "")].into_iter().collect();
    let (s, _) = resolve_with(None, &["insecure_verify_skip:FALSE"], &[], &env).unwrap();
    assert_eq!(s.insecure_verify_skip, Some(false));
}

#[test]
fn cluster_verify_ssl_accepts_only_the_six_spellings() {
    for value in ["maybe", "on", "2", "ture", "verify"] {
        let env: MapEnv = [("CLUSTER_VERIFY_SSL", value)].into_iter().collect();
        let error = resolve_with(None, &[], &[], &env).unwrap_err().to_string();
        assert!(
            error.contains("CLUSTER_VERIFY_SSL") && error.contains("true, false, 1, 0, yes or no"),
            "{value}: {error}"
        );
    }
}

#[test]
fn booleans_are_case_insensitive_true_false_only() {
    let (s, _) = resolve_with(
        None,
        &["source_provider_insecure_skip_verify:TRUE"],
        &[],
        &MapEnv::default(),
    )
    .unwrap();
    assert!(s.source_provider_insecure_skip_verify);
    let error =
        resolve_with(None, &["insecure_verify_skip:yes"], &[], &MapEnv::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value for setting `insecure_verify_skip` (from --tc insecure_verify_skip:yes): expected a boolean (true or false)"
    );
}

#[test]
fn bad_values_name_key_origin_and_type() {
    let error =
        resolve_with(None, &["plan_wait_timeout:abc"], &[], &MapEnv::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value for setting `plan_wait_timeout` (from --tc plan_wait_timeout:abc): expected a non-negative integer"
    );
    let error =
        resolve_with(None, &[], &["mins_before_cutover=-1"], &MapEnv::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("(from --set mins_before_cutover=-1)"),
        "{error}"
    );

    let file = settings_file(
        "bad.yaml",
        "version: 1\nmtv_namespace: openshift-mtv\nplan_wait_timeout: soon\n",
    );
    let error = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("bad.yaml:3:20): expected a non-negative integer"),
        "{message}"
    );
    let rendered = render_width(&error, 400).replace(&file.display().to_string(), "bad.yaml");
    insta::assert_snapshot!("settings_bad_value", rendered);

    assert_file_error(
        "nested.yaml",
        "insecure_verify_skip: [true]\n",
        "nested.yaml:1:23): expected a boolean",
    );
}

#[test]
fn unknown_settings_get_a_hint_and_the_key_list() {
    let error = resolve_with(None, &["storage_clas:sc"], &[], &MapEnv::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown setting `storage_clas` (from --tc storage_clas) (did you mean `storage_class`?)"
    );
    let rendered = render(&error);
    assert!(
        rendered.contains("known settings: source_provider, storage_class,"),
        "{rendered}"
    );

    assert_file_error(
        "unknown.yaml",
        "version: 1\nplan_wait_timout: 5\n",
        "unknown.yaml:2:1) (did you mean `plan_wait_timeout`?)",
    );
}

#[test]
fn legacy_keys_are_accepted_with_a_warning() {
    let file = settings_file("legacy.yaml", "number_of_vms: 1\ncheck_vms_signals: true\n");
    let (_, warnings) = resolve_with(
        Some(&file),
        &["vm_name_search_pattern:"],
        &[],
        &MapEnv::default(),
    )
    .unwrap();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].message.contains("`number_of_vms`"));
    assert!(
        warnings[0]
            .location
            .as_deref()
            .unwrap()
            .ends_with("legacy.yaml:1:1")
    );
    assert!(
        warnings[2]
            .message
            .contains("`vm_name_search_pattern` (from --tc) is a legacy key")
    );
}

#[test]
fn malformed_arguments_and_files() {
    let error = resolve_with(None, &["storage_class"], &[], &MapEnv::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed --tc argument `storage_class`: expected KEY:VALUE"
    );
    let error = resolve_with(None, &[], &["storage_class:x"], &MapEnv::default()).unwrap_err();
    assert!(matches!(
        error,
        ConfigError::MalformedSettingArgument { .. }
    ));

    let error = resolve_with(
        Some(Path::new("/nonexistent/s.yaml")),
        &[],
        &[],
        &MapEnv::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "settings file /nonexistent/s.yaml does not exist"
    );

    assert_file_error(
        "version.yaml",
        "version: 2\n",
        "version.yaml:1:10): expected 1",
    );

    let file = settings_file("syntax.yaml", "storage_class: sc\n  bad: [\n");
    let error = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap_err();
    assert!(
        matches!(error, ConfigError::SettingsSyntax { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("syntax.yaml:2:6: "), "{error}");
    let rendered = render_width(&error, 400).replace(&file.display().to_string(), "syntax.yaml");
    insta::assert_snapshot!("settings_syntax", rendered);

    let file = settings_file("list.yaml", "- a\n- b\n");
    let error = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap_err();
    assert!(
        matches!(error, ConfigError::SettingsSyntax { .. }),
        "{error:?}"
    );

    let file = settings_file("empty.yaml", "\n# nothing\n");
    let (s, _) = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap();
    assert_eq!(s, Settings::default());
}

#[test]
fn yaml_numbers_keep_their_text_for_string_settings() {
    let file = settings_file(
        "numbers.yaml",
        "target_ocp_version: 4.20\nmtv_version: 2.10\nstorage_class: 'sc'\n",
    );
    let (s, _) = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap();
    assert_eq!(s.target_ocp_version.as_deref(), Some("4.20"));
    assert_eq!(s.mtv_version.as_deref(), Some("2.10"));
    assert_eq!(s.storage_class.as_deref(), Some("sc"));
}

#[test]
fn secrets_never_appear() {
    let file = settings_file(
        "secret.yaml",
        "cluster_password: file-secret-pw\nplan_wait_timeout: x\n",
    );
    let error = resolve_with(Some(&file), &[], &[], &MapEnv::default()).unwrap_err();
    let rendered = render(&error);
    assert!(rendered.contains("plan_wait_timeout"), "{rendered}");
    assert!(!rendered.contains("file-secret-pw"), "{rendered}");
    assert!(!format!("{error:?}").contains("file-secret-pw"));

    let env: MapEnv = [("CLUSTER_PASSWORD", "env-secret-pw")]
        .into_iter()
        .collect();
    let (s, _) = resolve_with(None, &[], &[], &env).unwrap();
    assert_eq!(
        s.cluster_password.as_ref().unwrap().expose(),
        "env-secret-pw"
    );
    assert!(!format!("{s:?}").contains("env-secret-pw"));
    let json = s.redacted_json();
    assert_eq!(json["cluster_password"], "<redacted>");
    assert!(!json.to_string().contains("env-secret-pw"));

    // A mistyped secret key (or a `--tc` without its colon) does not echo its value.
    for tc in [
        "cluster_pasword:tc-secret-pw",
        "cluster_password-tc-secret-pw",
    ] {
        let error = resolve_with(None, &[tc], &[], &MapEnv::default()).unwrap_err();
        assert!(!error.to_string().contains("tc-secret-pw"), "{tc}: {error}");
        assert!(!render(&error).contains("tc-secret-pw"), "{tc}");
    }
}

#[test]
fn redacted_json_lists_every_key() {
    let (s, _) = resolve_with(None, &["storage_class:sc"], &[], &MapEnv::default()).unwrap();
    let json = s.redacted_json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(keys, expected);
    assert_eq!(json["storage_class"], "sc");
    assert_eq!(json["plan_wait_timeout"], 3600);
    assert!(json["insecure_verify_skip"].is_null());
    assert!(json["cluster_password"].is_null());
}

#[test]
fn settings_table_is_consistent() {
    for spec in SETTINGS {
        assert!(!spec.description.is_empty(), "{}", spec.key);
        if spec.key.contains("password") {
            assert_eq!(spec.kind, SettingKind::Secret);
        }
    }
    let envs: Vec<&str> = SETTINGS.iter().filter_map(|s| s.env).collect();
    assert_eq!(
        envs,
        [
            "CLUSTER_VERIFY_SSL",
            "CLUSTER_HOST",
            "CLUSTER_USERNAME",
            "CLUSTER_PASSWORD"
        ]
    );
}
