mod common;

use common::{VSPHERE_FIELDS, parse_ok, render};
use mtv_config::{
    ConfigError, LAB_DEFAULT_SOURCE_PROVIDER, LAB_DEFAULT_STORAGE_CLASS, ProvidersFile, Settings,
    resolve_run_config,
};

fn settings(source_provider: Option<&str>, storage_class: Option<&str>) -> Settings {
    Settings {
        source_provider: source_provider.map(str::to_string),
        storage_class: storage_class.map(str::to_string),
        ..Settings::default()
    }
}

#[test]
fn builtin_profiles_default_both_settings() {
    let run = resolve_run_config(settings(None, None), ProvidersFile::builtin()).unwrap();
    assert_eq!(run.source_provider, LAB_DEFAULT_SOURCE_PROVIDER);
    assert_eq!(run.storage_class, LAB_DEFAULT_STORAGE_CLASS);
    assert_eq!(run.profile.name, "vsphere");

    let run = resolve_run_config(
        settings(Some("ovirt"), Some("other-sc")),
        ProvidersFile::builtin(),
    )
    .unwrap();
    assert_eq!(run.profile.name, "ovirt");
    assert_eq!(run.storage_class, "other-sc");
}

#[test]
fn providers_file_requires_both_and_reports_them_together() {
    let file = parse_ok(&format!("{{\"vsphere-8\": {{{VSPHERE_FIELDS}}}}}"));
    let error = resolve_run_config(settings(None, None), file.clone()).unwrap_err();
    assert!(matches!(error, ConfigError::MissingRunSettings { .. }));
    assert_eq!(
        error.to_string(),
        "missing required settings: source_provider, storage_class"
    );
    let ConfigError::MissingRunSettings { hint, .. } = &error else {
        unreachable!()
    };
    assert!(
        hint.contains("--source-provider NAME or --tc source_provider:NAME"),
        "{hint}"
    );
    assert!(
        hint.contains("(profiles in providers.json: vsphere-8)"),
        "{hint}"
    );
    assert!(hint.contains("--tc storage_class:NAME"), "{hint}");
    let rendered = render(&error);
    insta::assert_snapshot!("missing_run_settings", rendered);

    let error = resolve_run_config(settings(Some("vsphere-8"), None), file.clone()).unwrap_err();
    assert_eq!(error.to_string(), "missing required setting: storage_class");

    let run = resolve_run_config(settings(Some("vsphere-8"), Some("sc")), file.clone()).unwrap();
    assert_eq!(run.profile.version.as_deref(), Some("8.0.3"));

    // A type is not a profile key.
    let error = resolve_run_config(settings(Some("vsphere"), Some("sc")), file).unwrap_err();
    assert!(
        error.to_string().contains("available profiles: vsphere-8"),
        "{error}"
    );
}
