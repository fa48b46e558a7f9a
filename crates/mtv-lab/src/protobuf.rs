//! Decoding of the Kubernetes protobuf request bodies that kubectl's typed commands send
//! (`kubectl create namespace|configmap|secret|serviceaccount|role|rolebinding|token|...`): the `k8s\0`
//! envelope around `runtime.Unknown`, and the wire layout of Namespace, ConfigMap, Secret, ServiceAccount,
//! ObjectMeta (`k8s.io/api/core/v1/generated.proto`), the RBAC kinds (`k8s.io/api/rbac/v1`) and
//! TokenRequest (`k8s.io/api/authentication/v1`).
//! Responses stay JSON (clients accept it), and other kinds in protobuf are answered 415.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::{self, ResourceType};

const MAGIC: &[u8] = b"k8s\0";

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

#[derive(Debug)]
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(format!("malformed protobuf body: {why}"))
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| malformed("length overflow"))?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                let end = end.ok_or_else(|| malformed("length past the end"))?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(bytes)
            }
            other => return Err(malformed(&format!("unsupported wire type {other}"))),
        };
        if self.pos > self.buf.len() {
            return Err(malformed("truncated field"));
        }
        Ok(Some((key >> 3, field)))
    }
}

fn text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("string is not UTF-8"))
}

/// A map entry message `{1: key, 2: value}`; `as_base64` renders a bytes value as base64.
fn map_entry(bytes: &[u8], as_base64: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader::new(bytes);
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) if as_base64 => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (2, Field::Bytes(b)) => value = json!(text(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(obj: &mut Map<String, Value>, field: &str, entry: (String, Value)) {
    let map = obj
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = map {
        m.insert(entry.0, entry.1);
    }
}

fn push(obj: &mut Map<String, Value>, field: &str, value: Value) {
    let list = obj.entry(field).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        a.push(value);
    }
}

fn owner_reference(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(bytes);
    let mut out = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => drop(out.insert("kind".into(), json!(text(b)?))),
            (3, Field::Bytes(b)) => drop(out.insert("name".into(), json!(text(b)?))),
            (4, Field::Bytes(b)) => drop(out.insert("uid".into(), json!(text(b)?))),
            (5, Field::Bytes(b)) => drop(out.insert("apiVersion".into(), json!(text(b)?))),
            (6, Field::Varint(v)) => drop(out.insert("controller".into(), json!(v != 0))),
            (7, Field::Varint(v)) => drop(out.insert("blockOwnerDeletion".into(), json!(v != 0))),
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

fn object_meta(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(bytes);
    let mut out = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => drop(out.insert("name".into(), json!(text(b)?))),
            (2, Field::Bytes(b)) => drop(out.insert("generateName".into(), json!(text(b)?))),
            (3, Field::Bytes(b)) => drop(out.insert("namespace".into(), json!(text(b)?))),
            (5, Field::Bytes(b)) => drop(out.insert("uid".into(), json!(text(b)?))),
            (6, Field::Bytes(b)) => drop(out.insert("resourceVersion".into(), json!(text(b)?))),
            (11, Field::Bytes(b)) => insert_entry(&mut out, "labels", map_entry(b, false)?),
            (12, Field::Bytes(b)) => insert_entry(&mut out, "annotations", map_entry(b, false)?),
            (13, Field::Bytes(b)) => push(&mut out, "ownerReferences", owner_reference(b)?),
            (14, Field::Bytes(b)) => push(&mut out, "finalizers", json!(text(b)?)),
            _ => {}
        }
    }
    out.retain(|_, v| v.as_str() != Some(""));
    Ok(Value::Object(out))
}

fn decode_object(rt: &'static ResourceType, raw: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(raw);
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(rt.api_version()));
    out.insert("kind".into(), json!(rt.kind));
    let is = |other: &ResourceType| std::ptr::eq(rt, other);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => drop(out.insert("metadata".into(), object_meta(b)?)),
            (2, Field::Bytes(b)) if is(&registry::NAMESPACE) => {
                let mut spec = Map::new();
                let mut s = Reader::new(b);
                while let Some((sn, sf)) = s.next()? {
                    if let (1, Field::Bytes(fin)) = (sn, sf) {
                        push(&mut spec, "finalizers", json!(text(fin)?));
                    }
                }
                out.insert("spec".into(), Value::Object(spec));
            }
            (2, Field::Bytes(b)) if is(&registry::CONFIG_MAP) => {
                insert_entry(&mut out, "data", map_entry(b, false)?)
            }
            (3, Field::Bytes(b)) if is(&registry::CONFIG_MAP) => {
                insert_entry(&mut out, "binaryData", map_entry(b, true)?)
            }
            (4, Field::Varint(v)) if is(&registry::CONFIG_MAP) => {
                drop(out.insert("immutable".into(), json!(v != 0)))
            }
            (2, Field::Bytes(b)) if is(&registry::SECRET) => {
                insert_entry(&mut out, "data", map_entry(b, true)?)
            }
            (3, Field::Bytes(b)) if is(&registry::SECRET) => {
                drop(out.insert("type".into(), json!(text(b)?)))
            }
            (4, Field::Bytes(b)) if is(&registry::SECRET) => {
                insert_entry(&mut out, "stringData", map_entry(b, false)?)
            }
            (5, Field::Varint(v)) if is(&registry::SECRET) => {
                drop(out.insert("immutable".into(), json!(v != 0)))
            }
            (4, Field::Varint(v)) if is(&registry::SERVICE_ACCOUNT) => {
                drop(out.insert("automountServiceAccountToken".into(), json!(v != 0)))
            }
            (2, Field::Bytes(b)) if is(&registry::ROLE) || is(&registry::CLUSTER_ROLE) => {
                push(&mut out, "rules", policy_rule(b)?)
            }
            (2, Field::Bytes(b))
                if is(&registry::ROLE_BINDING) || is(&registry::CLUSTER_ROLE_BINDING) =>
            {
                push(
                    &mut out,
                    "subjects",
                    strings_message(
                        b,
                        &[(1, "kind"), (2, "apiGroup"), (3, "name"), (4, "namespace")],
                    )?,
                )
            }
            (3, Field::Bytes(b))
                if is(&registry::ROLE_BINDING) || is(&registry::CLUSTER_ROLE_BINDING) =>
            {
                drop(out.insert(
                    "roleRef".into(),
                    strings_message(b, &[(1, "apiGroup"), (2, "kind"), (3, "name")])?,
                ))
            }
            (2, Field::Bytes(b)) if is_review(rt) => {
                drop(out.insert("spec".into(), review_spec(rt, b)?))
            }
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

fn is_review(rt: &ResourceType) -> bool {
    registry::REVIEW_TYPES.iter().any(|r| std::ptr::eq(*r, rt))
}

/// The spec of a review (`kubectl auth can-i` sends a SelfSubjectAccessReview): SubjectAccessReviewSpec
/// numbers its fields resourceAttributes 1, nonResourceAttributes 2, user 3, groups 4, uid 6;
/// TokenReviewSpec token 1, audiences 2.
fn review_spec(rt: &ResourceType, bytes: &[u8]) -> Result<Value, ApiError> {
    let mut spec = Map::new();
    let mut r = Reader::new(bytes);
    let token_review = std::ptr::eq(rt, &registry::TOKEN_REVIEW);
    while let Some((n, f)) = r.next()? {
        let Field::Bytes(b) = f else { continue };
        match n {
            1 if token_review => drop(spec.insert("token".into(), json!(text(b)?))),
            2 if token_review => push(&mut spec, "audiences", json!(text(b)?)),
            1 => drop(spec.insert("resourceAttributes".into(), resource_attributes(b)?)),
            2 => drop(spec.insert(
                "nonResourceAttributes".into(),
                strings_message(b, &[(1, "path"), (2, "verb")])?,
            )),
            3 => drop(spec.insert("user".into(), json!(text(b)?))),
            4 => push(&mut spec, "groups", json!(text(b)?)),
            6 => drop(spec.insert("uid".into(), json!(text(b)?))),
            _ => {}
        }
    }
    Ok(Value::Object(spec))
}

fn resource_attributes(bytes: &[u8]) -> Result<Value, ApiError> {
    strings_message(
        bytes,
        &[
            (1, "namespace"),
            (2, "verb"),
            (3, "group"),
            (4, "version"),
            (5, "resource"),
            (6, "subresource"),
            (7, "name"),
        ],
    )
}

/// An RBAC PolicyRule: verbs, apiGroups, resources, resourceNames, nonResourceURLs (all repeated).
fn policy_rule(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut rule = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((n, f)) = r.next()? {
        let field = match n {
            1 => "verbs",
            2 => "apiGroups",
            3 => "resources",
            4 => "resourceNames",
            5 => "nonResourceURLs",
            _ => continue,
        };
        if let Field::Bytes(b) = f {
            push(&mut rule, field, json!(text(b)?));
        }
    }
    Ok(Value::Object(rule))
}

/// A message of string fields only (RBAC's Subject and RoleRef).
fn strings_message(bytes: &[u8], fields: &[(u64, &str)]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((n, f)) = r.next()? {
        if let (Some((_, name)), Field::Bytes(b)) = (fields.iter().find(|(k, _)| *k == n), f) {
            out.insert((*name).to_string(), json!(text(b)?));
        }
    }
    Ok(Value::Object(out))
}

/// A TokenRequest body (`kubectl create token` sends protobuf): its spec's audiences and
/// expirationSeconds; JSON and YAML bodies are parsed as usual by the caller.
pub fn decode_token_request(body: &[u8]) -> Result<Value, ApiError> {
    let raw = envelope_object(body, "TokenRequest")?;
    let mut spec = Map::new();
    let mut r = Reader::new(raw);
    while let Some((n, f)) = r.next()? {
        if let (2, Field::Bytes(b)) = (n, f) {
            let mut s = Reader::new(b);
            while let Some((sn, sf)) = s.next()? {
                match (sn, sf) {
                    (1, Field::Bytes(a)) => push(&mut spec, "audiences", json!(text(a)?)),
                    (4, Field::Varint(v)) => {
                        drop(spec.insert("expirationSeconds".into(), json!(v)))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}))
}

/// Decodes a protobuf request body for `rt` into the JSON object it stands for.
pub fn decode(rt: &'static ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    let supported = [
        &registry::NAMESPACE,
        &registry::CONFIG_MAP,
        &registry::SECRET,
        &registry::SERVICE_ACCOUNT,
        &registry::ROLE,
        &registry::CLUSTER_ROLE,
        &registry::ROLE_BINDING,
        &registry::CLUSTER_ROLE_BINDING,
    ];
    if !supported.iter().any(|s| std::ptr::eq(rt, *s)) && !is_review(rt) {
        return Err(ApiError::unsupported_media_type(format!(
            "the lab decodes protobuf bodies only for namespaces, configmaps, secrets, serviceaccounts and the RBAC kinds; send {} as application/json",
            rt.plural
        )));
    }
    decode_object(rt, envelope_object(body, rt.kind)?)
}

/// The object bytes inside the `k8s\0` envelope, checking the kind it names.
fn envelope_object<'a>(body: &'a [u8], expected_kind: &str) -> Result<&'a [u8], ApiError> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing the k8s envelope"))?;
    let mut r = Reader::new(envelope);
    let mut raw = None;
    let mut kind = None;
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while let Some((tn, tf)) = t.next()? {
                    if let (2, Field::Bytes(k)) = (tn, tf) {
                        kind = Some(text(k)?);
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    if let Some(k) = kind.filter(|k| !k.is_empty() && k != expected_kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({expected_kind})"
        )));
    }
    raw.ok_or_else(|| malformed("no object in the envelope"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(n: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        bytes_field(1, k.as_bytes(), &mut e);
        bytes_field(2, v, &mut e);
        e
    }

    fn envelope(kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut type_meta = Vec::new();
        bytes_field(1, b"v1", &mut type_meta);
        bytes_field(2, kind.as_bytes(), &mut type_meta);
        let mut unknown = Vec::new();
        bytes_field(1, &type_meta, &mut unknown);
        bytes_field(2, raw, &mut unknown);
        bytes_field(4, MEDIA_TYPE.as_bytes(), &mut unknown);
        let mut out = MAGIC.to_vec();
        out.extend(unknown);
        out
    }

    #[test]
    fn decodes_a_secret_like_kubectl_create_secret_sends() {
        let mut meta = Vec::new();
        bytes_field(1, b"creds", &mut meta);
        bytes_field(3, b"ns", &mut meta);
        bytes_field(11, &entry("app", b"mtv"), &mut meta);
        let mut raw = Vec::new();
        bytes_field(1, &meta, &mut raw);
        bytes_field(2, &entry("password", b"p@ss"), &mut raw);
        bytes_field(3, b"Opaque", &mut raw);
        let v = decode(&registry::SECRET, &envelope("Secret", &raw)).unwrap();
        assert_eq!(v["metadata"]["name"], "creds");
        assert_eq!(v["metadata"]["labels"]["app"], "mtv");
        assert_eq!(v["data"]["password"], "cEBzcw==");
        assert_eq!(v["type"], "Opaque");
        assert_eq!(v["kind"], "Secret");
    }

    #[test]
    fn decodes_namespaces_and_configmaps_and_rejects_the_rest() {
        let mut meta = Vec::new();
        bytes_field(1, b"scratch", &mut meta);
        let mut raw = Vec::new();
        bytes_field(1, &meta, &mut raw);
        let ns = decode(&registry::NAMESPACE, &envelope("Namespace", &raw)).unwrap();
        assert_eq!(ns["metadata"]["name"], "scratch");
        bytes_field(2, &entry("k", b"v"), &mut raw);
        let cm = decode(&registry::CONFIG_MAP, &envelope("ConfigMap", &raw)).unwrap();
        assert_eq!(cm["data"]["k"], "v");
        assert_eq!(
            decode(&registry::POD, &envelope("Pod", &raw))
                .unwrap_err()
                .code,
            415
        );
        assert_eq!(
            decode(&registry::SECRET, &envelope("ConfigMap", &raw))
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(decode(&registry::SECRET, b"garbage").unwrap_err().code, 400);
        let mut truncated = envelope("Secret", &raw);
        truncated.truncate(truncated.len() - 3);
        assert!(decode(&registry::SECRET, &truncated).is_err());
    }
}
