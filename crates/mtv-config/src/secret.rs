//! A string that never shows up in logs, reports or diagnostics.

use std::fmt;

use serde::{Serialize, Serializer};

/// What every secret prints as.
pub const REDACTED: &str = "<redacted>";

/// A secret string: Debug, Display and Serialize all print `<redacted>`; [`Secret::expose`]
/// gives the value to the one place that needs it (a Kubernetes Secret, a login).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// Fields the profile schema marks secret (the providers file and its `copyoffload` section).
/// [`is_secret_key`] covers them by name too; the list keeps the schema's word explicit.
pub const SCHEMA_SECRET_FIELDS: &[&str] = &[
    "password",
    "guest_vm_linux_password",
    "guest_vm_win_password",
    "luks_passphrase",
    "storage_password",
    "esxi_password",
    "cluster_password",
];

/// Words that make a key read as a credential, matched against the key's words (split at `_`, `-`,
/// `.`, spaces and lower-to-upper case changes), so `api_key`, `apiKey`, `ssh-key` and
/// `AccessToken` count and `keyboard_layout` or `monkey` do not.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "token",
    "secret",
    "key",
    "apikey",
    "credential",
    "credentials",
    "creds",
    "auth",
    "authorization",
    "cookie",
    "privatekey",
];

/// Substrings that make a key secret wherever they appear (`adminpassword`, `xtoken`).
const CREDENTIAL_SUBSTRINGS: &[&str] = &["password", "passphrase", "token", "secret", "credential"];

/// Whether a field's value is a credential: such values are held as `Secret`, shown as
/// `<redacted>` and masked in diagnostics, whatever their JSON or YAML type. `storage_secret_extra`
/// is the one exception: its values, not the object itself, are secrets (masked one by one).
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    if lower == "storage_secret_extra" {
        return false;
    }
    SCHEMA_SECRET_FIELDS.contains(&lower.as_str())
        || CREDENTIAL_SUBSTRINGS
            .iter()
            .any(|word| lower.contains(word))
        || key_words(key).any(|word| CREDENTIAL_WORDS.contains(&word.as_str()))
}

/// A key's words, lower-case: `apiKey` → `api`, `key`; `ssh-key` → `ssh`, `key`.
fn key_words(key: &str) -> impl Iterator<Item = String> + '_ {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    words.push(current);
    words.into_iter().filter(|w| !w.is_empty())
}

/// A JSON value with the value of every credential-looking key (at any depth) replaced by
/// `<redacted>`, whatever its type.
pub fn redact_json(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let shown = if is_secret_key(key) {
                        serde_json::Value::String(REDACTED.into())
                    } else {
                        redact_json(value)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(redact_json).collect())
        }
        other => other.clone(),
    }
}

/// A message that may quote lines of a file another parser read (a kubeconfig's YAML error
/// snippet): in each line, whatever follows a credential-looking `key:` or `key=` is replaced by
/// `<redacted>`.
pub fn redact_credential_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches('\n');
            let newline = &line[body.len()..];
            for (index, separator) in body.char_indices().filter(|(_, c)| *c == ':' || *c == '=') {
                let key: String = body[..index]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                if !key.is_empty() && is_secret_key(&key) {
                    return format!("{}{separator} {REDACTED}{newline}", &body[..index]);
                }
            }
            line.to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_lines_lose_their_credentials() {
        let text = "5 |     token: [tok-S3CRET\n6 |   client-key-data: QUJD\n7 |   server: https://x:6443\n";
        let shown = redact_credential_lines(text);
        assert!(
            !shown.contains("tok-S3CRET") && !shown.contains("QUJD"),
            "{shown}"
        );
        assert!(shown.contains("server: https://x:6443"), "{shown}");
        assert!(shown.contains("token: <redacted>"), "{shown}");
    }

    #[test]
    fn credential_keys_are_recognised_by_their_words() {
        for key in [
            "password",
            "api_key",
            "apiKey",
            "ssh-key",
            "AccessToken",
            "luks_passphrase",
            "credentials",
            "storage_password",
            "guest_vm_win_password",
            "client_secret",
            "private_key",
            "auth",
            "db_pwd",
            "cluster_password",
            "adminpassword",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "username",
            "fqdn",
            "api_url",
            "keyboard_layout",
            "monkey",
            "storage_secret_extra",
            "datastore_id",
            "vddk_init_image",
            "region_name",
            "cacert",
            "storage_vendor_product",
            "esxi_clone_method",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
        for field in SCHEMA_SECRET_FIELDS {
            assert!(is_secret_key(field), "{field}");
        }
    }

    #[test]
    fn redact_json_hides_every_type_at_every_depth() {
        let value = serde_json::json!({
            "user": "u",
            "password": 12345,
            "nested": {"api_key": {"a": "b"}, "list": [{"token": true}], "plain": 7},
        });
        let shown = redact_json(&value).to_string();
        for leaked in ["12345", "\"b\"", "true"] {
            assert!(!shown.contains(leaked), "{shown}");
        }
        assert!(
            shown.contains("\"plain\":7") && shown.contains("\"user\":\"u\""),
            "{shown}"
        );
    }

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s:#?}"), REDACTED);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
