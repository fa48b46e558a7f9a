//! Each source provider of the lab file on an HTTPS listener of its own (127.0.0.1, a free port),
//! speaking its platform's real protocol (vSphere's vim25 SOAP at `/sdk`, oVirt's REST API, OpenStack's
//! APIs), with a certificate from the lab's CA or, per the lab file, a CA of its own; and the TLS check
//! Forklift's connection test makes against that certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use tokio::task::JoinHandle;

use super::{SourceLab, SourceProviderSpec};
use crate::error::LabError;
use crate::tls::{LabTls, ServingTls, pem_certificates};

/// One source as the lab serves it.
#[derive(Debug, Clone)]
pub struct ServedSource {
    /// The lab file's provider name.
    pub name: String,
    pub provider_type: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The lab file's URL with its scheme and host replaced by the served address
    /// (`https://127.0.0.1:PORT/sdk`): what a client on this machine uses.
    pub url: String,
    /// The certificate it presents and the CA that issued it.
    pub tls: ServingTls,
}

/// The router a source type's protocol is served by, if the lab speaks it.
/// Whether the lab serves this provider type's own protocol (OVA has none: its provider server is
/// Forklift's; OpenShift sources are the lab's own API).
fn speaks_protocol(provider_type: &str) -> bool {
    matches!(provider_type, "vsphere" | "ovirt" | "openstack")
}

/// Each protocol's router is `router(SourceLab, provider name)`; the oVirt engine also hands out the CA
/// its serving certificate chains to (`pki-resource`), so it gets that CA as an extension.
fn router_for(
    lab: &SourceLab,
    provider_type: &str,
    name: &str,
    serving_ca_pem: &str,
) -> Option<axum::Router> {
    match provider_type {
        "vsphere" => Some(super::vsphere::router(lab.clone(), name.to_string())),
        "ovirt" => Some(super::ovirt::router(lab.clone(), name.to_string()).layer(
            axum::Extension(super::ovirt::EngineCa(serving_ca_pem.to_string())),
        )),
        "openstack" => Some(super::openstack::router(lab.clone(), name.to_string())),
        _ => None,
    }
}

/// The URL's host (no port, no brackets).
fn url_host(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    authority.split(':').next().unwrap_or(authority).to_string()
}

/// The URL's `host:port` (the scheme's default port when it has none).
fn url_authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        return Some(authority.to_string());
    }
    let port = if scheme == "http" { 80 } else { 443 };
    Some(format!("{authority}:{port}"))
}

/// The path (and query) of a URL, `""` when it has none.
fn url_path(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The names a source's certificate is valid for, and whether its CA is its own.
fn certificate_names(spec: &SourceProviderSpec) -> (Vec<String>, bool) {
    let tls = spec.tls.clone().unwrap_or_default();
    let names = tls.names.unwrap_or_else(|| {
        let mut names = vec![url_host(&spec.url), "127.0.0.1".into(), "localhost".into()];
        names.dedup();
        names.retain(|n| !n.is_empty());
        names
    });
    (names, tls.own_ca)
}

/// The listeners of the served sources; they stop when the lab's shutdown signal fires.
#[derive(Debug, Default)]
pub struct SourceEndpoints {
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl SourceEndpoints {
    /// Waits (a bounded time) for every listener to finish after the shutdown signal.
    pub async fn shutdown(self) {
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// Starts one HTTPS listener per source whose protocol the lab speaks, and records where each is.
pub async fn start(
    lab: &SourceLab,
    lab_tls: &LabTls,
    layer: impl Fn(&str, axum::Router) -> axum::Router,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<SourceEndpoints, LabError> {
    let mut endpoints = SourceEndpoints::default();
    for spec in lab.providers() {
        if !speaks_protocol(&spec.provider_type) {
            continue;
        }
        let (names, own_ca) = certificate_names(&spec);
        let common_name = url_host(&spec.url);
        let tls = if own_ca {
            LabTls::generate_named(&format!("{} own CA", spec.name))?.issue(&common_name, &names)?
        } else {
            lab_tls.issue(&common_name, &names)?
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| LabError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| LabError::Bind {
            addr: "127.0.0.1:0".into(),
            source,
        })?;
        let served = ServedSource {
            name: spec.name.clone(),
            provider_type: spec.provider_type.clone(),
            addr,
            url: format!("https://{addr}{}", url_path(&spec.url)),
            tls: tls.clone(),
        };
        let Some(router) = router_for(lab, &spec.provider_type, &spec.name, &tls.ca_pem) else {
            continue;
        };
        let tls_listener = tls.listener(listener)?;
        let app = layer(&spec.provider_type, router);
        let mut stop = shutdown.clone();
        endpoints.tasks.push(tokio::spawn(async move {
            axum::serve(tls_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
        tracing::info!(source = %spec.name, %addr, "source endpoint listening (HTTPS)");
        lab.served_write().insert(spec.name.clone(), served);
    }
    Ok(endpoints)
}

/// Go's wording of a certificate a client does not accept (what Forklift's connection test reports).
fn go_tls_error(error: &rustls::Error, host: &str, names: &[String]) -> String {
    let reason = match error {
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "x509: certificate is valid for {}, not {host}",
            names.join(", ")
        ),
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. },
        ) => "x509: certificate has expired or is not yet valid".to_string(),
        _ => "x509: certificate signed by unknown authority".to_string(),
    };
    format!("tls: failed to verify certificate: {reason}")
}

impl SourceLab {
    pub(super) fn served_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::BTreeMap<String, ServedSource>> {
        self.served.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The SHA-1 fingerprint of the certificate a served source presents, as Forklift reports a
    /// vSphere Provider's `status.fingerprint` (upper-case hex pairs joined by `:`).
    pub fn served_fingerprint(&self, name: &str) -> Option<String> {
        let served = self.served(name)?;
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            served.tls.leaf_der.as_ref(),
        );
        Some(
            digest
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    }

    /// Where the lab serves a source, once it does.
    pub fn served(&self, name: &str) -> Option<ServedSource> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every served source, by name.
    pub fn served_sources(&self) -> Vec<ServedSource> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The source of this type served at the URL's `host:port`, if any.
    pub(super) fn served_at(&self, provider_type: &str, url: &str) -> Option<String> {
        let authority = url_authority(url)?;
        let authority = authority.replace("localhost:", "127.0.0.1:");
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|s| s.provider_type == provider_type && s.addr.to_string() == authority)
            .map(|s| s.name.clone())
    }

    /// Forklift's TLS check of a connection test: the Secret's CA (`cacert` / `ca.crt`) must verify
    /// the certificate the source presents, for the URL's host, unless `insecureSkipVerify`. A source
    /// the lab does not serve over HTTPS (OVA's NFS share) has nothing to check. The error is Go's.
    pub fn verify_tls(
        &self,
        name: &str,
        url: &str,
        ca_pem: Option<&str>,
        insecure_skip_verify: bool,
    ) -> Result<(), String> {
        let Some(served) = self.served(name) else {
            return Ok(());
        };
        if insecure_skip_verify {
            return Ok(());
        }
        let host = url_host(url);
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certificates(ca_pem.unwrap_or_default()) {
            let _ = roots.add(cert);
        }
        let unknown = || {
            go_tls_error(
                &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                &host,
                &served.tls.names,
            )
        };
        if roots.is_empty() {
            return Err(unknown());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|_| unknown())?;
        let server_name = ServerName::try_from(host.clone()).map_err(|_| unknown())?;
        verifier
            .verify_server_cert(
                &served.tls.leaf_der,
                &[],
                &server_name,
                &[],
                UnixTime::now(),
            )
            .map(|_| ())
            .map_err(|e| go_tls_error(&e, &host, &served.tls.names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_authority_and_path() {
        assert_eq!(url_host("https://vc.example:8443/sdk"), "vc.example");
        assert_eq!(url_host("https://[::1]:8443/sdk"), "::1");
        assert_eq!(
            url_authority("https://vc.example/sdk").as_deref(),
            Some("vc.example:443")
        );
        assert_eq!(
            url_authority("https://127.0.0.1:9/sdk").as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(url_path("https://vc.example/sdk"), "/sdk");
        assert_eq!(url_path("https://vc.example"), "");
    }
}
