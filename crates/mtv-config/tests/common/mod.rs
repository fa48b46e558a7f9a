#![allow(dead_code)]

use std::path::Path;

use mtv_config::{ConfigError, ProvidersFile};

/// Renders a diagnostic the way the CLI shows it, without colour, for stable snapshots.
pub fn render(error: &ConfigError) -> String {
    render_width(error, 100)
}

/// Like `render`, wide enough that a temporary path is never wrapped (so it can be replaced).
pub fn render_width(error: &ConfigError, width: usize) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(width)
        .render_report(&mut out, error)
        .expect("rendering into a String cannot fail");
    out
}

pub fn parse(text: &str) -> Result<ProvidersFile, ConfigError> {
    ProvidersFile::parse(Path::new("providers.json"), text)
}

pub fn parse_ok(text: &str) -> ProvidersFile {
    match parse(text) {
        Ok(file) => file,
        Err(e) => panic!("expected the file to parse:\n{}", render(&e)),
    }
}

pub fn parse_err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(file) => panic!("expected an error, got {:?}", file.profiles.keys()),
        Err(e) => e,
    }
}

/// A valid vSphere profile body (without braces) to build test files from.
pub const VSPHERE_FIELDS: &str = r#""type": "vsphere",
    "version": "8.0.3",
    "fqdn": "vc.example",
    "api_url": "https://vc.example/sdk",
    "username": "administrator@vsphere.local",
    "password": "vsphere-secret-pw""#;

pub fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
