//! The Provider controller (forklift-api.md §2): type, URL, Secret, connection test, inventory load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use regex::Regex;
use serde_json::{Map, Value, json};

use super::conditions::{ADVISORY, CRITICAL, Condition, Conditions, REQUIRED, WARN};
use super::{Controller, generation, meta, text_at};
use crate::registry;
use crate::source::ConnectError;

/// The provider types a Provider may have (Forklift's order); the inventory lists all but the last.
pub(crate) const TYPES: &[&str] = &[
    "openshift",
    "vsphere",
    "ovirt",
    "openstack",
    "ova",
    "ec2",
    "hyperv",
    "nutanix",
];

/// Decoded `data` plus `stringData` of a Secret.
pub(crate) fn secret_values(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let text = v.as_str().unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            out.insert(k.clone(), decoded);
        }
    }
    if let Some(data) = secret.get("stringData").and_then(Value::as_object) {
        for (k, v) in data {
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    out
}

fn parse_bool(v: Option<&String>) -> bool {
    matches!(
        v.map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

/// Go's `url.Parse` rejects little; what it rejects, a URL with spaces or control characters, fails here.
fn url_parses(url: &str) -> bool {
    !url.chars().any(|c| c.is_whitespace() || c.is_control()) && !url.starts_with(':')
}

/// The SHA-1-shaped fingerprint the lab's simulated vCenter certificate has (stable per host).
fn fingerprint(url: &str) -> String {
    let mut bytes = Vec::with_capacity(20);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..20u64 {
        for c in url.bytes().chain(round.to_le_bytes()) {
            h ^= u64::from(c);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        bytes.push((h >> 24) as u8);
    }
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Controller {
    pub(crate) fn reconcile_provider(&mut self, provider: &Value) -> Option<Duration> {
        let uid = meta(provider, "uid").to_string();
        let ns = meta(provider, "namespace").to_string();
        let kind = text_at(provider, "/spec/type").to_string();
        let url = text_at(provider, "/spec/url").to_string();
        let mut conds = Conditions::default();
        let mut requeue = None;
        let mut phase = "Staging";
        let host_cluster = kind == "openshift" && url.is_empty();

        if !TYPES.contains(&kind.as_str()) {
            conds.set(Condition::new(
                "ProviderTypeNotSupported",
                CRITICAL,
                "NotSupported",
                &format!("The provider type: {kind} is not supported."),
            ));
        } else if url.is_empty() && kind != "openshift" {
            conds.set(Condition::new(
                "UrlNotValid",
                CRITICAL,
                "NotSet",
                "The provider URL is not valid.",
            ));
        } else if !url_parses(&url)
            || (kind == "ova" && !Regex::new(r"^[^:]+:/[^:].*$").is_ok_and(|r| r.is_match(&url)))
        {
            conds.set(Condition::new(
                "UrlNotValid",
                CRITICAL,
                "Malformed",
                "The provider URL is not valid.",
            ));
        }

        // Secret checks (§2.4).
        let mut secret = BTreeMap::new();
        let mut secret_version = String::new();
        if !host_cluster && !conds.has_blocker() {
            let secret_name = text_at(provider, "/spec/secret/name");
            let secret_ns = Some(text_at(provider, "/spec/secret/namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or(&ns)
                .to_string();
            if secret_name.is_empty() {
                conds.set(Condition::new(
                    "SecretNotValid",
                    CRITICAL,
                    "NotSet",
                    "The provider secret is not valid.",
                ));
            } else {
                match self
                    .store
                    .get(&registry::SECRET, Some(&secret_ns), secret_name)
                {
                    Err(_) => conds.set(Condition::new(
                        "SecretNotValid",
                        CRITICAL,
                        "NotFound",
                        "The provider secret is not valid.",
                    )),
                    Ok(sec) => {
                        secret = secret_values(&sec);
                        secret_version = meta(&sec, "resourceVersion").to_string();
                        let insecure = parse_bool(secret.get("insecureSkipVerify"));
                        let has_ca = secret.contains_key("ca.crt") || secret.contains_key("cacert");
                        let mut required: Vec<&str> = match kind.as_str() {
                            "vsphere" | "ovirt" | "nutanix" => vec!["user", "password"],
                            "openshift" => vec!["token"],
                            "ova" => vec!["url"],
                            "hyperv" => vec!["username", "password", "smbUrl"],
                            "ec2" => vec!["region", "accessKeyId", "secretAccessKey"],
                            _ => vec![],
                        };
                        if matches!(kind.as_str(), "vsphere" | "ovirt" | "nutanix" | "hyperv")
                            && !insecure
                            && !has_ca
                        {
                            required.push("ca.crt");
                        }
                        let missing: Vec<String> = required
                            .iter()
                            .filter(|k| secret.get(**k).is_none_or(|v| v.is_empty()))
                            .map(|k| k.to_string())
                            .collect();
                        if !missing.is_empty() {
                            conds.set(
                                Condition::new(
                                    "SecretNotValid",
                                    CRITICAL,
                                    "DataErr",
                                    "The provider secret is missing required keys.",
                                )
                                .items(missing),
                            );
                        }
                        if insecure && kind != "ova" && kind != "ec2" {
                            conds.set(Condition::new(
                                "ConnectionInsecure",
                                WARN,
                                "SkipTLSVerification",
                                "TLS is susceptible to machine-in-the-middle attacks when certificate verification is skipped.",
                            ));
                        }
                    }
                }
            }
        }

        if conds.has_blocker() {
            phase = "ValidationFailed";
        } else {
            // Connection test (§2.5).
            let version_key = format!("{}/{}", generation(provider), secret_version);
            let faulted = self
                .opts
                .faults()
                .provider_connection_failures
                .iter()
                .any(|p| p == meta(provider, "name"));
            let result: Result<(), (bool, String)> = if host_cluster {
                Ok(())
            } else if faulted {
                Err((
                    false,
                    format!("dial tcp: connect to {}: connection refused", host_of(&url)),
                ))
            } else if self.auth_failed.get(&uid) == Some(&version_key) {
                Err((true, ConnectError::AuthFailed.to_string()))
            } else if kind == "openshift" {
                // A remote cluster is the lab itself; its API accepts any bearer token.
                Ok(())
            } else {
                self.test_connection(&kind, &url, &secret)
            };
            match result {
                Err((true, message)) => {
                    self.auth_failed.insert(uid.clone(), version_key);
                    conds.set(Condition::new(
                        "ConnectionAuthFailed",
                        CRITICAL,
                        "Tested",
                        &message,
                    ));
                    phase = "ConnectionFailed";
                }
                Err((false, message)) => {
                    conds.set(Condition::new(
                        "ConnectionTestFailed",
                        CRITICAL,
                        "Tested",
                        &message,
                    ));
                    phase = "ConnectionFailed";
                    requeue = Some(self.opts.real(Duration::from_secs(30)));
                    self.inventory_started.remove(&uid);
                }
                Ok(()) => {
                    self.auth_failed.remove(&uid);
                    conds.set(Condition::new(
                        "ConnectionTestSucceeded",
                        REQUIRED,
                        "Tested",
                        "Connection test, succeeded.",
                    ));
                    let started = *self
                        .inventory_started
                        .entry(uid.clone())
                        .or_insert_with(Instant::now);
                    let load = if host_cluster {
                        Duration::ZERO
                    } else {
                        self.opts.real(self.opts.inventory_delay)
                    };
                    let elapsed = started.elapsed();
                    if elapsed < load {
                        conds.set(Condition::new(
                            "LoadInventory",
                            ADVISORY,
                            "Started",
                            "Loading the inventory.",
                        ));
                        requeue = Some(load - elapsed);
                    } else {
                        conds.set(Condition::new(
                            "InventoryCreated",
                            REQUIRED,
                            "Completed",
                            "The inventory has been loaded.",
                        ));
                        requeue = Some(self.opts.real(Duration::from_secs(30)));
                    }
                }
            }
        }
        if !conds.has_blocker() {
            conds.set(Condition::new(
                "Validated",
                ADVISORY,
                "Completed",
                "Validation has been completed.",
            ));
        }
        if !conds.has_blocker()
            && conds.has("ConnectionTestSucceeded")
            && conds.has("InventoryCreated")
        {
            conds.set(Condition::new(
                "Ready",
                REQUIRED,
                "",
                "The provider is ready.",
            ));
            phase = "Ready";
        }

        let old = provider.get("status");
        let mut status = Map::new();
        status.insert("phase".into(), json!(phase));
        status.insert(
            "conditions".into(),
            conds.to_json(old.and_then(|o| o.get("conditions"))),
        );
        status.insert("observedGeneration".into(), json!(generation(provider)));
        if kind == "vsphere" && phase == "Ready" {
            // The served certificate's own fingerprint; a source the lab does not serve has a stable
            // stand-in.
            let served = self
                .source
                .endpoint(&kind, &url)
                .and_then(|name| self.source.served_fingerprint(&name));
            status.insert(
                "fingerprint".into(),
                json!(served.unwrap_or_else(|| fingerprint(&url))),
            );
        }
        if !secret_version.is_empty() {
            status.insert("secretResourceVersion".into(), json!(secret_version));
        }
        self.write_status(&registry::PROVIDER, provider, Value::Object(status));
        requeue
    }
}

impl Controller {
    /// Forklift's connection test of a source: it must answer at the URL, its certificate must be
    /// trusted (the Secret's `cacert`, or `ca.crt`, unless `insecureSkipVerify`), then the credentials
    /// must log in. `Err((auth_failed, message))`.
    fn test_connection(
        &self,
        kind: &str,
        url: &str,
        secret: &BTreeMap<String, String>,
    ) -> Result<(), (bool, String)> {
        let name = self.source.endpoint(kind, url).ok_or_else(|| {
            (
                false,
                ConnectError::Unreachable { host: host_of(url) }.to_string(),
            )
        })?;
        let ca = secret.get("cacert").or_else(|| secret.get("ca.crt"));
        let insecure = parse_bool(secret.get("insecureSkipVerify"));
        self.source
            .verify_tls(&name, url, ca.map(String::as_str), insecure)
            .map_err(|reason| (false, format!("Get \"{url}\": {reason}")))?;
        let user = secret.get("user").or_else(|| secret.get("username"));
        self.source
            .connect(
                kind,
                url,
                user.map(String::as_str),
                secret.get("password").map(String::as_str),
            )
            .map(|_| ())
            .map_err(|e| (matches!(e, ConnectError::AuthFailed), e.to_string()))
    }
}

pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split(['/', ':']).next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_look_like_sha1() {
        let f = fingerprint("https://vcenter/sdk");
        assert_eq!(f.len(), 59);
        assert_eq!(f, fingerprint("https://vcenter/sdk"));
    }
}
