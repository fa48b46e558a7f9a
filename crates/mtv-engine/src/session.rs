//! Session bootstrap: what every scenario of a run shares. Reads the MTV version, checks the Forklift
//! pods, creates the labelled session namespace, the source Secret and Provider from the profile and the
//! destination Provider, and waits until both are Ready — stopping at once, with the condition's
//! message, when the source cannot be reached.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use mtv_api::ProviderType;
use mtv_api::forklift::{ObjectRef, ProviderSpec};
use mtv_config::{CopyOffload, ProviderProfile, Settings};
use mtv_providers::lab::LabSource;
use mtv_providers::openshift::OpenShiftSource;
use mtv_providers::vsphere::{VsphereConfig, VsphereSource};
use mtv_providers::{CloneRequest, NewDisk, SourceError, SourceProvider, SourceSnapshot, SourceVm};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError, Verdict, condition, kinds};
use crate::context::SessionContext;
use crate::inventory::{Inventory, InventoryError};
use crate::names::SessionNames;

/// The label every object of a session carries.
pub const SESSION_LABEL: &str = "mtv-tests/session";

/// How long each kind of wait may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub forklift_pods: Duration,
    pub provider_ready: Duration,
    pub map_ready: Duration,
    pub plan_ready: Duration,
    /// `plan_wait_timeout`: the whole migration.
    pub migration: Duration,
    pub inventory: Duration,
    pub teardown: Duration,
    /// `api_unreachable_timeout`: how long requests keep trying while the API server is silent.
    pub api_unreachable: Duration,
}

impl Timeouts {
    pub fn from_settings(settings: &Settings) -> Self {
        Timeouts {
            forklift_pods: Duration::from_secs(300),
            provider_ready: Duration::from_secs(600),
            map_ready: Duration::from_secs(60),
            plan_ready: Duration::from_secs(360),
            migration: Duration::from_secs(settings.plan_wait_timeout),
            inventory: Duration::from_secs(300),
            teardown: Duration::from_secs(120),
            api_unreachable: Duration::from_secs(settings.api_unreachable_timeout),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Source(#[from] mtv_providers::SourceError),
    #[error("the source Provider {name} cannot connect: {message}")]
    ConnectionFailed { name: String, message: String },
    #[error("{0}")]
    Unsupported(String),
}

/// The source adapter of a run.
#[derive(Clone)]
pub enum Source {
    /// A source simulated by the embedded lab.
    Lab(LabSource),
    /// KubeVirt VMs in a source namespace of the run's cluster.
    OpenShift(OpenShiftSource),
    /// A real vCenter or ESXi, over the vSphere Web Services API.
    Vsphere(VsphereSource),
}

impl Source {
    /// How the ledger finds this source again: `lab:<source>`, `openshift:<namespace>` or
    /// `vsphere:<host>`.
    pub fn ledger_name(&self) -> String {
        match self {
            Source::Lab(lab) => format!("lab:{}", lab.source_name()),
            Source::OpenShift(openshift) => format!("openshift:{}", openshift.namespace()),
            Source::Vsphere(vsphere) => format!("vsphere:{}", vsphere.server()),
        }
    }
}

/// One call on whichever adapter the run has.
macro_rules! dispatch {
    ($source:expr, $adapter:ident => $call:expr) => {
        match $source {
            Source::Lab($adapter) => $call,
            Source::OpenShift($adapter) => $call,
            Source::Vsphere($adapter) => $call,
        }
    };
}

/// The run's adapter, whichever it is.
impl SourceProvider for Source {
    fn provider_type(&self) -> ProviderType {
        dispatch!(self, a => a.provider_type())
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        dispatch!(self, a => a.find(name).await)
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        dispatch!(self, a => a.facts(id).await)
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        dispatch!(self, a => a.clone_vm(source_id, request).await)
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        dispatch!(self, a => a.set_power(id, on).await)
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        dispatch!(self, a => a.add_disk(id, disk).await)
    }

    async fn add_nic(
        &self,
        id: &str,
        network: &str,
        start_connected: bool,
    ) -> Result<String, SourceError> {
        dispatch!(self, a => a.add_nic(id, network, start_connected).await)
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        dispatch!(self, a => a.create_snapshot(id, name).await)
    }

    async fn write_guest_file(
        &self,
        id: &str,
        path: &str,
        content: &str,
    ) -> Result<(), SourceError> {
        dispatch!(self, a => a.write_guest_file(id, path, content).await)
    }

    async fn read_guest_file(&self, id: &str, path: &str) -> Result<Option<String>, SourceError> {
        dispatch!(self, a => a.read_guest_file(id, path).await)
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        dispatch!(self, a => a.delete_vm(id).await)
    }

    async fn ca_certificate(&self) -> Result<String, SourceError> {
        dispatch!(self, a => a.ca_certificate().await)
    }
}

/// What the selected scenarios need from the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionNeeds {
    pub warm: bool,
    pub remote: bool,
    pub copy_offload: bool,
}

/// A random lower-case alphanumeric suffix for generated names.
pub fn random_suffix(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

pub struct Session {
    pub id: String,
    pub namespace: String,
    pub cluster: Cluster,
    pub context: SessionContext,
    pub mtv_version: Option<String>,
    pub source_provider: String,
    pub source_provider_uid: String,
    pub destination_provider: String,
    pub remote_destination_provider: Option<String>,
    pub storage_secret: Option<String>,
    pub inventory: Inventory,
    pub source: Source,
    pub timeouts: Timeouts,
    /// True on the embedded lab, where one Forklift minute lasts one second.
    pub lab: bool,
    /// The SSH host keys of the guests entered in this session.
    pub host_keys: crate::guest::HostKeys,
    names: Mutex<SessionNames<'static>>,
}

impl Session {
    /// Runs `f` with the session's name generator.
    pub fn names<R>(&self, f: impl FnOnce(&mut SessionNames<'static>) -> R) -> R {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut names)
    }

    /// Labels every object of the session carries.
    pub fn labels(&self) -> Value {
        json!({ SESSION_LABEL: self.id })
    }
}

/// The MTV version the cluster runs, from the operator's ClusterServiceVersion.
pub async fn mtv_version(
    client: &kube::Client,
    mtv_namespace: &str,
) -> Result<Option<String>, ClusterError> {
    read_mtv_version(
        &crate::retry::standalone_client(client.clone()),
        mtv_namespace,
    )
    .await
}

/// [`mtv_version`] through a client that already retries (the session's).
async fn read_mtv_version(
    client: &kube::Client,
    mtv_namespace: &str,
) -> Result<Option<String>, ClusterError> {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        mtv_namespace,
        &kinds::CLUSTER_SERVICE_VERSION.api_resource(),
    );
    let csvs = api
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|source| ClusterError::Api {
            action: "list",
            resource: format!("clusterserviceversions in {mtv_namespace}"),
            source,
        })?;
    let csvs: Vec<Value> = csvs
        .items
        .into_iter()
        .filter_map(|csv| serde_json::to_value(csv).ok())
        .collect();
    Ok(csvs
        .iter()
        .find(|csv| {
            let name = csv["metadata"]["name"].as_str().unwrap_or_default();
            name.starts_with("mtv-operator") || name.starts_with("forklift-operator")
        })
        .and_then(|csv| csv["spec"]["version"].as_str())
        .map(str::to_string))
}

/// Waits until a `forklift-controller` pod exists and every `forklift-*` pod is Running or Succeeded.
pub async fn check_forklift_pods(
    cluster: &Cluster,
    mtv_namespace: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        let pods = cluster.list(&kinds::POD, Some(mtv_namespace), None).await?;
        let forklift: Vec<&Value> = pods
            .iter()
            .filter(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("forklift-"))
            })
            .collect();
        let controller = forklift.iter().any(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("forklift-controller"))
        });
        let not_ready: Vec<String> = forklift
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Running" | "Succeeded")))
            .map(|p| {
                format!(
                    "{} is {}",
                    p["metadata"]["name"].as_str().unwrap_or("?"),
                    p["status"]["phase"].as_str().unwrap_or("unknown")
                )
            })
            .collect();
        if controller && not_ready.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let last = if controller {
                not_ready.join(", ")
            } else {
                format!("no forklift-controller pod in {mtv_namespace}")
            };
            return Err(ClusterError::Timeout {
                what: format!("the Forklift pods in {mtv_namespace}"),
                waited: timeout,
                last: Some(last),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// The source Provider Secret's data for a profile (inventory §2.2).
async fn source_secret_data(
    context: &SessionContext,
    profile: &ProviderProfile,
    source: &Source,
    cluster_token: Option<&str>,
) -> Result<BTreeMap<String, String>, SessionError> {
    let mut data = BTreeMap::new();
    let insecure = context.source_provider_insecure_skip_verify;
    let url = profile.api_url.clone().unwrap_or_default();
    let user = profile.username.clone().unwrap_or_default();
    let password = profile
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    data.insert("insecureSkipVerify".into(), insecure.to_string());
    match context.provider_type {
        ProviderType::Vsphere | ProviderType::Ovirt => {
            data.insert("url".into(), url);
            data.insert("user".into(), user);
            data.insert("password".into(), password);
        }
        ProviderType::Openstack => {
            data.insert("url".into(), url);
            data.insert("username".into(), user);
            data.insert("password".into(), password);
            for (key, field) in [
                ("regionName", "region_name"),
                ("projectName", "project_name"),
                ("domainName", "user_domain_name"),
            ] {
                if let Some(value) = profile.field_str(field) {
                    data.insert(key.into(), value.to_string());
                }
            }
        }
        ProviderType::Ova => {
            data.insert("url".into(), url);
        }
        ProviderType::Openshift => {
            // The source is the run's own cluster, reached with the run's token.
            let token = cluster_token.ok_or_else(|| {
                SessionError::Unsupported(
                    "an OpenShift source Provider needs a bearer token, and the kubeconfig user \
                     has none (use a token-based kubeconfig user)"
                        .into(),
                )
            })?;
            data.insert("token".into(), token.to_string());
            data.insert("insecureSkipVerify".into(), "true".into());
        }
    }
    // oVirt always needs the CA (imageio); vSphere and OpenStack when TLS is verified.
    let needs_ca = match context.provider_type {
        ProviderType::Ovirt => true,
        ProviderType::Vsphere | ProviderType::Openstack => !insecure,
        ProviderType::Openshift | ProviderType::Ova => false,
    };
    if needs_ca {
        data.insert("cacert".into(), source.ca_certificate().await?);
    }
    Ok(data)
}

/// Waits until a Provider is Ready; a failed connection ends the wait at once with its message
/// (OVA tolerates a transient ConnectionFailed while its server starts).
pub async fn wait_provider_ready(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    provider_type: &str,
    timeout: Duration,
) -> Result<(), SessionError> {
    let tolerate_connection_failure = provider_type == "ova";
    let result = cluster
        .wait_for(
            &kinds::PROVIDER,
            Some(namespace),
            name,
            timeout,
            &format!("Provider {namespace}/{name} to be Ready"),
            |provider| {
                if condition(provider, "Ready").is_some() {
                    return Verdict::Done(());
                }
                for failed in [
                    "ConnectionTestFailed",
                    "ConnectionAuthFailed",
                    "SecretNotValid",
                    "UrlNotValid",
                ] {
                    if let Some(c) = condition(provider, failed)
                        && !(tolerate_connection_failure && failed == "ConnectionTestFailed")
                    {
                        let items = c["items"]
                            .as_array()
                            .map(|i| {
                                i.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .filter(|i| !i.is_empty())
                            .map(|i| format!(" ({i})"))
                            .unwrap_or_default();
                        return Verdict::Failed(format!(
                            "{failed}: {}{items}",
                            c["message"].as_str().unwrap_or("")
                        ));
                    }
                }
                Verdict::Pending(format!(
                    "phase {}",
                    provider["status"]["phase"].as_str().unwrap_or("unknown")
                ))
            },
        )
        .await;
    match result {
        Ok(()) => Ok(()),
        Err(ClusterError::Condition { reason, .. }) => Err(SessionError::ConnectionFailed {
            name: format!("{namespace}/{name}"),
            message: reason,
        }),
        Err(other) => Err(other.into()),
    }
}

/// Everything the bootstrap needs.
pub struct Bootstrap<'a> {
    pub cluster: Cluster,
    pub context: SessionContext,
    pub profile: &'a ProviderProfile,
    pub copy_offload: Option<&'a CopyOffload>,
    pub needs: SessionNeeds,
    pub lab: bool,
    /// The API URL of the cluster, for a remote destination Provider.
    pub cluster_url: String,
    /// The run's bearer token (from the kubeconfig), for a remote destination Provider's Secret.
    pub cluster_token: Option<String>,
    /// The run's kube-rs configuration: the inventory is reached with the same credentials and trust.
    pub kube_config: kube::Config,
    pub session_id: Option<String>,
    pub timeouts: Timeouts,
}

pub async fn bootstrap(input: Bootstrap<'_>) -> Result<Session, SessionError> {
    let Bootstrap {
        cluster,
        context,
        profile,
        copy_offload,
        needs,
        lab,
        cluster_url,
        cluster_token,
        kube_config,
        session_id,
        timeouts,
    } = input;
    // Shared by every clone of the connection: the scenarios and teardown keep this bound and name.
    cluster.set_api_unreachable_timeout(timeouts.api_unreachable);
    cluster.learn_server(&cluster_url);
    let mtv_namespace = context.mtv_namespace.clone();
    let version = read_mtv_version(cluster.client(), &mtv_namespace).await?;
    check_forklift_pods(&cluster, &mtv_namespace, timeouts.forklift_pods).await?;
    // Before anything is created: a cluster whose inventory cannot be found stops the run here.
    let inventory = Inventory::discover(
        &cluster,
        &kube_config,
        &mtv_namespace,
        context.inventory_url.as_deref(),
    )
    .await?;

    let id = session_id
        .unwrap_or_else(|| format!("{}-{}", context.target_namespace_prefix, random_suffix(4)));
    let mut names = SessionNames::new(
        id.clone(),
        context.provider_type,
        &context.provider_version,
        needs.copy_offload,
        || random_suffix(4),
    );
    let namespace = names.session_namespace();
    let session_label = json!({ SESSION_LABEL: id });
    let mut ns_labels = json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "mutatevirtualmachines.kubemacpool.io": "ignore",
    });
    ns_labels[SESSION_LABEL] = Value::String(id.clone());
    cluster
        .create(
            &kinds::NAMESPACE,
            None,
            json!({"metadata": {"name": namespace, "labels": ns_labels}}),
            None,
        )
        .await?;

    let source = if context.provider_type == ProviderType::Openshift {
        // Source VMs live in their own namespace of this cluster, on the lab as on a real one.
        let source_namespace = names.source_vms_namespace();
        cluster
            .create(
                &kinds::NAMESPACE,
                None,
                json!({"metadata": {"name": source_namespace, "labels": ns_labels}}),
                None,
            )
            .await?;
        Source::OpenShift(OpenShiftSource::new(
            cluster.client().clone(),
            source_namespace,
            context.storage_class.clone(),
            BTreeMap::from([(SESSION_LABEL.to_string(), id.clone())]),
        ))
    } else if lab {
        Source::Lab(
            LabSource::for_profile(
                cluster.client().clone(),
                context.provider_type,
                profile.api_url.as_deref().unwrap_or_default(),
            )
            .await?,
        )
    } else if context.provider_type == ProviderType::Vsphere {
        let server = profile
            .fqdn
            .clone()
            .or_else(|| profile.api_url.clone())
            .unwrap_or_default();
        let mut config = VsphereConfig::new(
            server,
            profile.username.clone().unwrap_or_default(),
            profile
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        );
        config.insecure_skip_verify = context.source_provider_insecure_skip_verify;
        config.ca_certificate = profile.field_str("cacert").map(str::to_string);
        config.certificate_fingerprint = profile
            .field_str("certificate_fingerprint")
            .map(str::to_string);
        if !config.insecure_skip_verify
            && config.ca_certificate.is_none()
            && config.certificate_fingerprint.is_none()
        {
            // As the Python suite: trust what the server presents (it becomes the Provider
            // Secret's `cacert`), but show its fingerprint so that the user can check and pin it.
            let fingerprint = VsphereSource::trust_presented_certificate(&mut config).await?;
            eprintln!(
                "note: vSphere at {} presents a certificate with SHA-256 fingerprint {fingerprint}; \
                 trusting it for this run as the Python suite does. To trust only that certificate, \
                 set \"certificate_fingerprint\": \"{fingerprint}\" (or \"cacert\") in profile '{}'",
                config.server, profile.name
            );
        }
        Source::Vsphere(VsphereSource::connect(config).await?)
    } else {
        return Err(SessionError::Unsupported(format!(
            "preparing {} source VMs on a real hypervisor needs its source adapter, which this build \
             does not have yet; run against the embedded lab (no --kubeconfig/--context)",
            context.provider_type
        )));
    };

    let secret_name = names.source_secret();
    let data = source_secret_data(&context, profile, &source, cluster_token.as_deref()).await?;
    let mut secret_labels = session_label.clone();
    secret_labels["createdForProviderType"] = Value::String(context.provider_type.to_string());
    cluster
        .create(
            &kinds::SECRET,
            Some(&namespace),
            json!({
                "metadata": {"name": secret_name, "labels": secret_labels},
                "type": "Opaque",
                "stringData": data,
            }),
            None,
        )
        .await?;

    let source_provider = names.source_provider();
    let mut settings = BTreeMap::new();
    if let Some(image) = &context.vddk_init_image {
        settings.insert("vddkInitImage".to_string(), image.clone());
    }
    if let Some(endpoint) = &context.sdk_endpoint {
        settings.insert("sdkEndpoint".to_string(), endpoint.clone());
    }
    if needs.copy_offload
        && context
            .copy_offload
            .as_ref()
            .is_some_and(|c| c.esxi_clone_method_ssh)
    {
        settings.insert("esxiCloneMethod".to_string(), "ssh".to_string());
    }
    let url = if context.provider_type == ProviderType::Openshift {
        cluster_url.clone()
    } else {
        profile.api_url.clone().unwrap_or_default()
    };
    let spec = ProviderSpec {
        provider_type: context.provider_type.to_string(),
        url,
        secret: ObjectRef::new(&namespace, &secret_name),
        settings,
    };
    let mut metadata = json!({"name": source_provider, "labels": session_label});
    if needs.copy_offload {
        metadata["annotations"] = json!({"forklift.konveyor.io/empty-vddk-init-image": "yes"});
    }
    cluster
        .create(
            &kinds::PROVIDER,
            Some(&namespace),
            json!({"metadata": metadata, "spec": spec}),
            None,
        )
        .await?;

    let destination_provider = names.destination_provider();
    cluster
        .create(
            &kinds::PROVIDER,
            Some(&namespace),
            json!({
                "metadata": {"name": destination_provider, "labels": session_label},
                "spec": {"type": "openshift", "url": "", "secret": {}},
            }),
            None,
        )
        .await?;

    let mut remote_destination_provider = None;
    if needs.remote {
        let token_secret = names.remote_destination_secret();
        let token = cluster_token.ok_or_else(|| {
            SessionError::Unsupported(
                "remote scenarios need a bearer token for the destination Provider, and the \
                 kubeconfig user has none (use a token-based kubeconfig user)"
                    .into(),
            )
        })?;
        cluster
            .create(
                &kinds::SECRET,
                Some(&namespace),
                json!({
                    "metadata": {"name": token_secret, "labels": session_label},
                    "type": "Opaque",
                    "stringData": {"token": token, "insecureSkipVerify": "true"},
                }),
                None,
            )
            .await?;
        let name = names.remote_destination_provider();
        cluster
            .create(
                &kinds::PROVIDER,
                Some(&namespace),
                json!({
                    "metadata": {"name": name, "labels": session_label},
                    "spec": {"type": "openshift", "url": cluster_url, "secret": {"name": token_secret, "namespace": namespace}},
                }),
                None,
            )
            .await?;
        remote_destination_provider = Some(name);
    }

    // Both Providers become Ready independently; wait for them together.
    let provider_type = context.provider_type.to_string();
    let (source_ready, destination_ready) = tokio::join!(
        wait_provider_ready(
            &cluster,
            &namespace,
            &source_provider,
            &provider_type,
            timeouts.provider_ready
        ),
        wait_provider_ready(
            &cluster,
            &namespace,
            &destination_provider,
            "openshift",
            timeouts.provider_ready
        ),
    );
    source_ready?;
    destination_ready?;
    if let Some(remote) = &remote_destination_provider {
        wait_provider_ready(
            &cluster,
            &namespace,
            remote,
            "openshift",
            timeouts.provider_ready,
        )
        .await?;
    }

    let source_provider_uid = inventory
        .provider_uid(
            &provider_type,
            &namespace,
            &source_provider,
            timeouts.inventory,
        )
        .await?;

    let mut storage_secret = None;
    if let (true, Some(copy_offload)) = (needs.copy_offload, copy_offload) {
        let name = names.copy_offload_storage_secret();
        let data: BTreeMap<String, String> = copy_offload
            .storage_secret_data()
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_string()))
            .collect();
        cluster
            .create(
                &kinds::SECRET,
                Some(&namespace),
                json!({
                    "metadata": {"name": name, "labels": session_label},
                    "type": "Opaque",
                    "stringData": data,
                }),
                None,
            )
            .await?;
        storage_secret = Some(name);
    }

    if needs.warm {
        set_precopy_interval(&cluster, &mtv_namespace, &id, context.snapshots_interval).await?;
    }

    Ok(Session {
        id,
        namespace,
        cluster,
        context,
        mtv_version: version,
        source_provider,
        source_provider_uid,
        destination_provider,
        remote_destination_provider,
        storage_secret,
        inventory,
        source,
        timeouts,
        lab,
        host_keys: Default::default(),
        names: Mutex::new(names),
    })
}

/// Sets `controller_precopy_interval` on the ForkliftController under a lease of this session: other
/// sessions needing the same interval share it, and the last one to finish restores the original.
async fn set_precopy_interval(
    cluster: &Cluster,
    mtv_namespace: &str,
    session: &str,
    minutes: u64,
) -> Result<(), ClusterError> {
    let controllers = cluster
        .list(&kinds::FORKLIFT_CONTROLLER, Some(mtv_namespace), None)
        .await?;
    let Some(controller) = controllers.first() else {
        return Err(ClusterError::Condition {
            what: "set the warm precopy interval".into(),
            reason: format!("no ForkliftController in {mtv_namespace}"),
        });
    };
    let name = controller["metadata"]["name"].as_str().unwrap_or_default();
    // The CRD types the interval as an integer (minutes).
    crate::lease::acquire(
        cluster,
        &kinds::FORKLIFT_CONTROLLER,
        Some(mtv_namespace),
        name,
        &crate::lease::Setting::Spec("controller_precopy_interval".into()),
        json!(minutes),
        session,
    )
    .await
}

/// True when the API server is an mtv-tests lab (it serves the lab's source API).
pub async fn is_lab(client: &kube::Client) -> bool {
    LabSource::endpoints(&crate::retry::standalone_client(client.clone()))
        .await
        .is_ok()
}
