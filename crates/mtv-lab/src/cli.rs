//! `mtv-tests lab serve`: the command-line arguments and the function that runs the lab until Ctrl-C.

use std::path::PathBuf;

use crate::error::LabError;
use crate::faults::FaultSpec;
use crate::lab::{LabOptions, LabServer};

/// Arguments of `lab serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabServeArgs {
    /// Loopback port to listen on (0 or absent: a free port).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Lab file describing the sources (their VMs, networks, storage and credentials); without one,
    /// the built-in lab.
    #[arg(long, value_name = "FILE")]
    pub lab: Option<PathBuf>,
    /// Where to write the kubeconfig for the lab.
    #[arg(long, value_name = "PATH", default_value = "mtv-lab.kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Also write a providers file (the Python suite's `.providers.json` format) whose profiles reach
    /// the lab's sources from this machine: their served URLs, credentials and CA.
    #[arg(long, value_name = "PATH")]
    pub providers_out: Option<PathBuf>,
    /// Time scale of simulated work (2.0 = twice as fast).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub speed: f64,
    /// Faults to inject, e.g. `api-error-rate=0.05,latency-ms=20,watch-drop-secs=30,vm-fail=<vm>@<step>,provider-conn-fail=<name>`.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: String,
    /// MTV version the lab reports (Subscription / ClusterServiceVersion).
    #[arg(long, value_name = "VERSION", default_value = "2.10.0")]
    pub mtv_version: String,
}

impl LabServeArgs {
    /// The lab options these arguments describe.
    pub fn options(&self) -> Result<LabOptions, LabError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(LabError::Faults(format!(
                "--speed must be a positive number, not {}",
                self.speed
            )));
        }
        Ok(LabOptions {
            port: self.port,
            mtv_version: self.mtv_version.clone(),
            speed: self.speed,
            faults: FaultSpec::parse(&self.faults)?,
            lab_file: self.lab.clone(),
            ..LabOptions::default()
        })
    }
}

/// Starts the lab, writes the kubeconfig, prints where it listens and serves until Ctrl-C.
pub async fn serve(args: LabServeArgs) -> Result<(), LabError> {
    let lab = start(&args).await?;
    if tokio::signal::ctrl_c().await.is_err() {
        tracing::warn!("cannot listen for Ctrl-C; serving until killed");
        std::future::pending::<()>().await;
    }
    lab.shutdown().await;
    Ok(())
}

/// The start-up half of [`serve`]: start, write the kubeconfig, print the banner.
pub async fn start(args: &LabServeArgs) -> Result<LabServer, LabError> {
    let options = args.options()?;
    let lab = LabServer::start(options).await?;
    // The providers file first: whoever waits for the kubeconfig then finds both.
    if let Some(path) = &args.providers_out {
        write_private(path, &providers_json(&lab).to_string())?;
        eprintln!(
            "providers file for the lab's sources written to {}",
            path.display()
        );
    }
    lab.write_kubeconfig(&args.kubeconfig_out)?;
    // On stderr: stdout stays free for what a command outputs (e.g. `run --format json`).
    eprintln!(
        "mtv-lab listening on {} (HTTPS; its CA and the admin token are in the kubeconfig); kubeconfig written to {}",
        lab.base_url(),
        args.kubeconfig_out.display()
    );
    if let Some(route) = lab.inventory_route_url() {
        eprintln!("forklift-inventory Route at {route} (bearer token required)");
    }
    for served in lab.source().map(|s| s.served_sources()).unwrap_or_default() {
        eprintln!(
            "source `{}` ({}) at {} (HTTPS, certificate from {})",
            served.name,
            served.provider_type,
            served.url,
            if served.tls.ca_pem == lab.ca_pem() {
                "the lab's CA"
            } else {
                "a CA of its own"
            }
        );
    }
    Ok(lab)
}

/// The providers file of a running lab, in the Python suite's format.
///
/// First the built-in profiles (same names and keys: guest accounts, VDDK image, copy-offload
/// section), each pointed at where this lab serves its source: the served URL and host, and the CA
/// its certificate comes from as `cacert`. A run on the embedded lab uses exactly these profiles, so
/// it reaches the sources through the real protocols, as a run on a cluster does. A built-in profile
/// whose source this lab does not have is left out; one the lab has but serves no endpoint for
/// (OVA's NFS share, read by Forklift's OVA server) keeps its URL, and OpenShift is the lab itself.
///
/// Then one profile per source of the lab file that no built-in profile reaches, named as in the
/// lab file (a lab file of one's own).
pub fn providers_json(lab: &LabServer) -> serde_json::Value {
    let mut profiles = serde_json::Map::new();
    let Some(source) = lab.source() else {
        return serde_json::Value::Object(profiles);
    };
    let mut reached = std::collections::BTreeSet::new();
    if let serde_json::Value::Object(builtin) = mtv_config::ProvidersFile::builtin_json() {
        for (name, mut profile) in builtin {
            let provider_type = profile["type"].as_str().unwrap_or_default().to_string();
            let url = profile["api_url"].as_str().unwrap_or_default().to_string();
            if provider_type != "openshift" {
                let Some(lab_name) = source.endpoint(&provider_type, &url) else {
                    continue;
                };
                if let Some(served) = source.served(&lab_name) {
                    profile["fqdn"] = served.addr.ip().to_string().into();
                    profile["api_url"] = served.url.clone().into();
                    profile["cacert"] = served.tls.ca_pem.clone().into();
                }
                reached.insert(lab_name);
            }
            profiles.insert(name, profile);
        }
    }
    for spec in source.providers() {
        if reached.contains(&spec.name) || profiles.contains_key(&spec.name) {
            continue;
        }
        let served = source.served(&spec.name);
        if served.is_none() && spec.provider_type != "ova" {
            // Its protocol is not served: no profile could reach it.
            continue;
        }
        let mut profile = serde_json::Map::new();
        let mut put = |key: &str, value: &str| {
            profile.insert(key.to_string(), serde_json::Value::from(value));
        };
        put("type", &spec.provider_type);
        put("version", spec.version.as_deref().unwrap_or(""));
        match &served {
            Some(served) => {
                put("fqdn", &served.addr.ip().to_string());
                put("api_url", &served.url);
                put("cacert", &served.tls.ca_pem);
            }
            None => {
                let host = spec.url.split(':').next().unwrap_or_default().to_string();
                put("fqdn", &host);
                put("api_url", &spec.url);
            }
        }
        put("username", spec.username.as_deref().unwrap_or("unused"));
        put("password", spec.password.as_deref().unwrap_or("unused"));
        if spec.provider_type == "openstack" {
            put("project_name", spec.project.as_deref().unwrap_or("admin"));
            put("region_name", spec.region.as_deref().unwrap_or("regionOne"));
            put("user_domain_name", "Default");
            put("user_domain_id", "default");
            put("project_domain_id", "default");
        }
        profiles.insert(spec.name.clone(), serde_json::Value::Object(profile));
    }
    serde_json::Value::Object(profiles)
}

/// Where this lab serves the source of `provider_type` a URL names (its lab-file URL or its served
/// one), if it serves it over HTTPS.
pub fn served_source(
    lab: &LabServer,
    provider_type: &str,
    url: &str,
) -> Option<crate::source::ServedSource> {
    let source = lab.source()?;
    source.served(&source.endpoint(provider_type, url)?)
}

/// The profiles a run on this lab uses: [`providers_json`], read as the built-in lab profiles
/// (same names, same defaults for `source_provider` and `storage_class`).
pub fn lab_profiles(lab: &LabServer) -> Result<mtv_config::ProvidersFile, LabError> {
    mtv_config::ProvidersFile::lab_profiles(&providers_json(lab)).map_err(|e| {
        LabError::LabFile(format!("its profiles do not read as a providers file: {e}"))
    })
}

/// Writes a file only its owner can read (it holds credentials), whole or not at all.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), LabError> {
    crate::lab::write_private_file(path, text).map_err(|source| LabError::WriteProvidersFile {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: LabServeArgs,
    }

    #[test]
    fn parses_arguments() {
        let cli = Cli::parse_from([
            "x",
            "--port",
            "0",
            "--speed",
            "4",
            "--faults",
            "latency-ms=5",
            "--kubeconfig-out",
            "/tmp/k",
            "--lab",
            "lab.yaml",
        ]);
        let opts = cli.serve.options().unwrap();
        assert_eq!(opts.speed, 4.0);
        assert_eq!(
            opts.faults.latency,
            Some(std::time::Duration::from_millis(5))
        );
        assert_eq!(opts.lab_file, Some(PathBuf::from("lab.yaml")));
        assert_eq!(opts.mtv_version, "2.10.0");
        let bad = Cli::parse_from(["x", "--faults", "nope=1"]);
        assert!(bad.serve.options().is_err());
    }

    #[tokio::test]
    async fn start_writes_a_kubeconfig() {
        let dir =
            std::env::temp_dir().join(format!("mtv-lab-cli-{}", crate::random::name_suffix(8)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kubeconfig");
        let args = LabServeArgs {
            port: None,
            lab: None,
            kubeconfig_out: path.clone(),
            providers_out: Some(dir.join("providers.json")),
            speed: 1.0,
            faults: String::new(),
            mtv_version: "2.10.0".into(),
        };
        let lab = start(&args).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&lab.base_url()));
        assert!(text.contains("current-context: mtv-lab"));
        let providers: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("providers.json")).unwrap())
                .unwrap();
        let vsphere = &providers["vsphere"];
        let served = lab.source().unwrap().served("vsphere").unwrap();
        assert_eq!(vsphere["api_url"], format!("https://{}/sdk", served.addr));
        assert_eq!(vsphere["cacert"], lab.ca_pem());
        assert_eq!(vsphere["username"], "administrator@vsphere.local");
        assert_eq!(
            providers["ova"]["api_url"],
            "nfs.lab.mtv-tests.internal:/ova"
        );
        lab.shutdown().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}
