//! The OpenStack profile's keys (mtv-api-tests-inventory.md §2.2): project, region, user and
//! project domains required, the project domain by name and the CA certificate optional, each
//! checked with an error naming the profile and the key.

mod common;

use common::{parse_err, parse_ok, render};

const OPENSTACK_FIELDS: &str = r#""type": "openstack",
    "version": "17.1",
    "fqdn": "keystone.example",
    "api_url": "https://keystone.example:5000/v3",
    "username": "admin",
    "password": "openstack-secret-pw",
    "user_domain_name": "Default",
    "region_name": "regionOne",
    "project_name": "admin",
    "user_domain_id": "default",
    "project_domain_id": "default""#;

#[test]
fn an_openstack_profile_carries_its_project_region_domains_and_ca() {
    let file = parse_ok(&format!(
        r#"{{"os": {{{OPENSTACK_FIELDS}, "project_domain_name": "Default",
              "cacert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}}}"#
    ));
    let profile = &file.profiles["os"];
    assert_eq!(profile.field_str("project_name"), Some("admin"));
    assert_eq!(profile.field_str("region_name"), Some("regionOne"));
    assert_eq!(profile.field_str("user_domain_name"), Some("Default"));
    assert_eq!(profile.field_str("project_domain_id"), Some("default"));
    assert_eq!(profile.field_str("project_domain_name"), Some("Default"));
    assert!(
        profile
            .field_str("cacert")
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----"))
    );
}

#[test]
fn openstack_keys_are_checked_with_clear_errors() {
    let without_region = OPENSTACK_FIELDS.replace(r#""region_name": "regionOne","#, "");
    let error = render(&parse_err(&format!(r#"{{"os": {{{without_region}}}}}"#)));
    assert!(error.contains("region_name"), "{error}");
    assert!(error.contains("os"), "{error}");

    let error = render(&parse_err(&format!(
        r#"{{"os": {{{OPENSTACK_FIELDS}, "cacert": "not a certificate"}}}}"#
    )));
    assert!(
        error.contains("`cacert` of profile `os` must be PEM"),
        "{error}"
    );

    let error = render(&parse_err(&format!(
        r#"{{"os": {{{OPENSTACK_FIELDS}, "project_domain_name": 7}}}}"#
    )));
    assert!(
        error.contains("`project_domain_name` of profile `os` must be a string"),
        "{error}"
    );
}
