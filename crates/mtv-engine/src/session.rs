//! Session bootstrap: what every scenario of a run shares. Reads the MTV version, checks the Forklift
//! pods, creates the labelled session namespace, the source Secret and Provider from the profile and the
//! destination Provider, and waits until both are Ready — stopping at once, with the condition's
//! message, when the source cannot be reached.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use mtv_api::ProviderType;
use mtv_api::forklift::{ObjectRef, ProviderSpec};
use mtv_config::{CopyOffload, ProviderProfile, Settings};
use mtv_providers::{
    ClusterSourceNamespace, Source, SourceConfig, SourceInventory, SourceProvider,
};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError, Verdict, condition, kinds};
use crate::context::SessionContext;
use crate::inventory::{Inventory, InventoryError};
use crate::names::SessionNames;
use crate::target::TargetTraits;

/// The label every object of a session carries.
pub const SESSION_LABEL: &str = "mtv-tests/session";

/// The label of the session's source Provider Secret, naming its provider type: teardown reads the
/// credentials to reach the source again from the Secrets that carry it.
pub const SOURCE_SECRET_LABEL: &str = "createdForProviderType";

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

/// What the selected scenarios need from the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionNeeds {
    pub warm: bool,
    pub remote: bool,
    pub copy_offload: bool,
}

impl SessionNeeds {
    /// What `scenarios` need: warm migrations, a remote destination, copy-offload.
    pub fn of(scenarios: &[crate::scenario::ScenarioSpec]) -> Self {
        SessionNeeds {
            warm: scenarios.iter().any(|s| s.config.warm_migration),
            remote: scenarios.iter().any(|s| s.config.remote_destination),
            copy_offload: scenarios.iter().any(|s| s.config.copyoffload),
        }
    }
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
    /// The source Provider's Secret as its create was answered (its checks read it from here).
    pub source_secret: Value,
    pub destination_provider: String,
    pub remote_destination_provider: Option<String>,
    pub storage_secret: Option<String>,
    pub inventory: Inventory,
    pub source: Source,
    pub timeouts: Timeouts,
    /// What differs between targets (the Forklift clock), as the target serves it.
    pub traits: TargetTraits,
    /// The SSH host keys of the guests entered in this session.
    pub host_keys: crate::guest::HostKeys,
    names: Mutex<SessionNames<'static>>,
    /// The source ids of catalog VMs found for cloning, by name: found once per run.
    template_ids: Mutex<HashMap<String, String>>,
}

impl Session {
    /// Runs `f` with the session's name generator.
    pub fn names<R>(&self, f: impl FnOnce(&mut SessionNames<'static>) -> R) -> R {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut names)
    }

    /// The source id of the catalog VM `name` when a scenario found it already.
    pub fn template_id(&self, name: &str) -> Option<String> {
        let ids = self.template_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(name).cloned()
    }

    /// Keeps the source id of the catalog VM `name` for the scenarios that clone it after.
    pub fn remember_template(&self, name: &str, id: &str) {
        let mut ids = self.template_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.insert(name.to_string(), id.to_string());
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
    /// The API URL of the cluster, for a remote destination Provider.
    pub cluster_url: String,
    /// The run's bearer token (from the kubeconfig), for a remote destination Provider's Secret.
    pub cluster_token: Option<String>,
    /// The run's kube-rs configuration: the inventory is reached with the same credentials and trust.
    pub kube_config: kube::Config,
    pub session_id: Option<String>,
    pub timeouts: Timeouts,
    /// The MTV version when the caller read it already ([`mtv_version`]); `None`: read it here.
    pub mtv_version: Option<Option<String>>,
}

pub async fn bootstrap(input: Bootstrap<'_>) -> Result<Session, SessionError> {
    let Bootstrap {
        cluster,
        context,
        profile,
        copy_offload,
        needs,
        cluster_url,
        cluster_token,
        kube_config,
        session_id,
        timeouts,
        mtv_version,
    } = input;
    // Shared by every clone of the connection: the scenarios and teardown keep this bound and name.
    cluster.set_api_unreachable_timeout(timeouts.api_unreachable);
    cluster.learn_server(&cluster_url);
    let mtv_namespace = context.mtv_namespace.clone();
    let (version, traits, inventory) =
        read_target(&cluster, &kube_config, &context, &timeouts, mtv_version).await?;

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
    create_session_namespace(&cluster, &namespace, &id).await?;
    let run_inventory = SourceInventory {
        client: inventory.client().clone(),
        url: inventory.url().to_string(),
        namespace: namespace.clone(),
        session: id.clone(),
    };
    let source =
        connect_source(&cluster, &mut names, &context, profile, &id, run_inventory).await?;

    let session_label = json!({ SESSION_LABEL: id });
    let (source_provider, source_secret) = create_source_provider(
        &cluster,
        &mut names,
        &context,
        profile,
        &source,
        &ProviderAccess {
            namespace: &namespace,
            labels: &session_label,
            cluster_url: &cluster_url,
            cluster_token: cluster_token.as_deref(),
            copy_offload: needs.copy_offload,
        },
    )
    .await?;
    let destination_provider = names.destination_provider();
    create_provider(
        &cluster,
        &namespace,
        &destination_provider,
        &session_label,
        json!({"type": "openshift", "url": "", "secret": {}}),
    )
    .await?;
    let remote_destination_provider = match needs.remote {
        true => Some(
            create_remote_destination(
                &cluster,
                &mut names,
                &namespace,
                &session_label,
                &cluster_url,
                cluster_token,
            )
            .await?,
        ),
        false => None,
    };
    let provider_type = context.provider_type.to_string();
    wait_providers_ready(
        &cluster,
        &namespace,
        (&source_provider, &provider_type),
        &destination_provider,
        remote_destination_provider.as_deref(),
        timeouts.provider_ready,
    )
    .await?;
    let source_provider_uid = inventory
        .provider_uid(
            &provider_type,
            &namespace,
            &source_provider,
            timeouts.inventory,
        )
        .await?;

    let storage_secret = match (needs.copy_offload, copy_offload) {
        (true, Some(copy_offload)) => Some(
            create_storage_secret(
                &cluster,
                &mut names,
                &namespace,
                &session_label,
                copy_offload,
            )
            .await?,
        ),
        _ => None,
    };
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
        source_secret,
        destination_provider,
        remote_destination_provider,
        storage_secret,
        inventory,
        source,
        timeouts,
        traits,
        host_keys: Default::default(),
        names: Mutex::new(names),
        template_ids: Mutex::default(),
    })
}

/// What the target is, read before anything is created: the MTV version, Forklift's pods up, the
/// target's traits, and the inventory (a cluster whose inventory cannot be found stops the run here).
async fn read_target(
    cluster: &Cluster,
    kube_config: &kube::Config,
    context: &SessionContext,
    timeouts: &Timeouts,
    known_version: Option<Option<String>>,
) -> Result<(Option<String>, TargetTraits, Inventory), SessionError> {
    let mtv_namespace = &context.mtv_namespace;
    let version = match known_version {
        Some(version) => version,
        None => read_mtv_version(cluster.client(), mtv_namespace).await?,
    };
    check_forklift_pods(cluster, mtv_namespace, timeouts.forklift_pods).await?;
    let traits = TargetTraits::read(cluster, mtv_namespace).await?;
    let inventory = Inventory::discover(
        cluster,
        kube_config,
        mtv_namespace,
        context.inventory_url.as_deref(),
    )
    .await?;
    Ok((version, traits, inventory))
}

/// The run's source adapter. An OpenShift source keeps its VMs in a namespace of this cluster
/// (made here, on the lab as on a real one); which adapter serves the profile is
/// `mtv_providers::connect`'s choice.
async fn connect_source(
    cluster: &Cluster,
    names: &mut SessionNames<'static>,
    context: &SessionContext,
    profile: &ProviderProfile,
    session: &str,
    inventory: SourceInventory,
) -> Result<Source, SessionError> {
    let cluster_namespace = match context.provider_type {
        ProviderType::Openshift => {
            let source_namespace = names.source_vms_namespace();
            create_session_namespace(cluster, &source_namespace, session).await?;
            Some(ClusterSourceNamespace {
                namespace: source_namespace,
                storage_class: context.storage_class.clone(),
                labels: BTreeMap::from([(SESSION_LABEL.to_string(), session.to_string())]),
            })
        }
        _ => None,
    };
    let mut config = source_config(
        context,
        profile,
        cluster.client().clone(),
        cluster_namespace,
    );
    config.inventory = Some(inventory);
    Ok(mtv_providers::connect(&config).await?)
}

/// The one place a provider profile becomes the adapters' [`SourceConfig`]; which adapter that
/// means is decided in `mtv_providers::connect`, never here. Every non-secret key of the profile is
/// passed on (OpenStack's `project_name`, `region_name`, `user_domain_name`/`_id`,
/// `project_domain_name`/`_id`; an OVA profile's NFS URL is its `api_url`), and so is the Linux
/// guest account. The run's inventory is added by the caller that has one.
pub fn source_config(
    context: &SessionContext,
    profile: &ProviderProfile,
    client: kube::Client,
    cluster_namespace: Option<ClusterSourceNamespace>,
) -> SourceConfig {
    let guest_credentials = match (
        profile.field_str("guest_vm_linux_user"),
        profile.field_secret("guest_vm_linux_password"),
    ) {
        (Some(user), Some(password)) => Some((user.to_string(), password.expose().to_string())),
        _ => None,
    };
    let fields = profile
        .fields
        .keys()
        .filter_map(|key| Some((key.clone(), profile.field_str(key)?.to_string())))
        .collect();
    SourceConfig {
        provider_type: context.provider_type,
        url: profile.api_url.clone().unwrap_or_default(),
        host: profile.fqdn.clone(),
        username: profile.username.clone().unwrap_or_default(),
        password: profile
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default(),
        insecure_skip_verify: context.source_provider_insecure_skip_verify,
        ca_certificate: profile.field_str("cacert").map(str::to_string),
        certificate_fingerprint: profile
            .field_str("certificate_fingerprint")
            .map(str::to_string),
        fields,
        guest_credentials,
        client,
        inventory: None,
        cluster_namespace,
        profile: profile.name.clone(),
    }
}

/// A namespace of the session, labelled with it, restricted and left alone by kubemacpool.
async fn create_session_namespace(
    cluster: &Cluster,
    name: &str,
    session: &str,
) -> Result<(), ClusterError> {
    let labels = json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "mutatevirtualmachines.kubemacpool.io": "ignore",
        SESSION_LABEL: session,
    });
    cluster
        .create(
            &kinds::NAMESPACE,
            None,
            json!({"metadata": {"name": name, "labels": labels}}),
            None,
        )
        .await?;
    Ok(())
}

/// Where the session's Providers go and what they need to reach this cluster.
struct ProviderAccess<'a> {
    namespace: &'a str,
    labels: &'a Value,
    cluster_url: &'a str,
    cluster_token: Option<&'a str>,
    copy_offload: bool,
}

/// A Provider of the session with `spec`.
async fn create_provider(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    metadata_labels: &Value,
    spec: Value,
) -> Result<(), ClusterError> {
    cluster
        .create(
            &kinds::PROVIDER,
            Some(namespace),
            json!({"metadata": {"name": name, "labels": metadata_labels}, "spec": spec}),
            None,
        )
        .await?;
    Ok(())
}

/// An Opaque Secret of the session.
async fn create_secret(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    labels: &Value,
    data: &BTreeMap<String, String>,
) -> Result<Value, ClusterError> {
    cluster
        .create(
            &kinds::SECRET,
            Some(namespace),
            json!({
                "metadata": {"name": name, "labels": labels},
                "type": "Opaque",
                "stringData": data,
            }),
            None,
        )
        .await
}

/// The source Provider and its Secret, from the profile; returns the Provider's name and the Secret
/// as the API server answered its create.
async fn create_source_provider(
    cluster: &Cluster,
    names: &mut SessionNames<'static>,
    context: &SessionContext,
    profile: &ProviderProfile,
    source: &Source,
    access: &ProviderAccess<'_>,
) -> Result<(String, Value), SessionError> {
    let secret_name = names.source_secret();
    let data = source_secret_data(context, profile, source, access.cluster_token).await?;
    let mut secret_labels = access.labels.clone();
    // Teardown finds the credentials of a source to clean by this label (mtv_providers::reconnect).
    secret_labels[SOURCE_SECRET_LABEL] = Value::String(context.provider_type.to_string());
    let secret = create_secret(
        cluster,
        access.namespace,
        &secret_name,
        &secret_labels,
        &data,
    )
    .await?;

    let name = names.source_provider();
    let mut settings = BTreeMap::new();
    if let Some(image) = &context.vddk_init_image {
        settings.insert("vddkInitImage".to_string(), image.clone());
    }
    if let Some(endpoint) = &context.sdk_endpoint {
        settings.insert("sdkEndpoint".to_string(), endpoint.clone());
    }
    if access.copy_offload
        && context
            .copy_offload
            .as_ref()
            .is_some_and(|c| c.esxi_clone_method_ssh)
    {
        settings.insert("esxiCloneMethod".to_string(), "ssh".to_string());
    }
    let url = match context.provider_type {
        ProviderType::Openshift => access.cluster_url.to_string(),
        _ => profile.api_url.clone().unwrap_or_default(),
    };
    let spec = ProviderSpec {
        provider_type: context.provider_type.to_string(),
        url,
        secret: ObjectRef::new(access.namespace, &secret_name),
        settings,
    };
    let mut metadata = json!({"name": name, "labels": access.labels});
    if access.copy_offload {
        metadata["annotations"] = json!({"forklift.konveyor.io/empty-vddk-init-image": "yes"});
    }
    cluster
        .create(
            &kinds::PROVIDER,
            Some(access.namespace),
            json!({"metadata": metadata, "spec": spec}),
            None,
        )
        .await?;
    Ok((name, secret))
}

/// The remote destination Provider (this cluster reached by URL and token) and its Secret.
async fn create_remote_destination(
    cluster: &Cluster,
    names: &mut SessionNames<'static>,
    namespace: &str,
    labels: &Value,
    cluster_url: &str,
    cluster_token: Option<String>,
) -> Result<String, SessionError> {
    let token_secret = names.remote_destination_secret();
    let token = cluster_token.ok_or_else(|| {
        SessionError::Unsupported(
            "remote scenarios need a bearer token for the destination Provider, and the \
             kubeconfig user has none (use a token-based kubeconfig user)"
                .into(),
        )
    })?;
    let data = BTreeMap::from([
        ("token".to_string(), token),
        ("insecureSkipVerify".to_string(), "true".to_string()),
    ]);
    create_secret(cluster, namespace, &token_secret, labels, &data).await?;
    let name = names.remote_destination_provider();
    create_provider(
        cluster,
        namespace,
        &name,
        labels,
        json!({"type": "openshift", "url": cluster_url, "secret": {"name": token_secret, "namespace": namespace}}),
    )
    .await?;
    Ok(name)
}

/// Waits until the source, destination and (if any) remote destination Providers are Ready; the
/// first two become Ready independently and are awaited together.
async fn wait_providers_ready(
    cluster: &Cluster,
    namespace: &str,
    (source, source_type): (&str, &str),
    destination: &str,
    remote: Option<&str>,
    timeout: Duration,
) -> Result<(), SessionError> {
    let (source_ready, destination_ready) = tokio::join!(
        wait_provider_ready(cluster, namespace, source, source_type, timeout),
        wait_provider_ready(cluster, namespace, destination, "openshift", timeout),
    );
    source_ready?;
    destination_ready?;
    if let Some(remote) = remote {
        wait_provider_ready(cluster, namespace, remote, "openshift", timeout).await?;
    }
    Ok(())
}

/// The copy-offload storage Secret of the session; returns its name.
async fn create_storage_secret(
    cluster: &Cluster,
    names: &mut SessionNames<'static>,
    namespace: &str,
    labels: &Value,
    copy_offload: &CopyOffload,
) -> Result<String, ClusterError> {
    let name = names.copy_offload_storage_secret();
    let data: BTreeMap<String, String> = copy_offload
        .storage_secret_data()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_string()))
        .collect();
    create_secret(cluster, namespace, &name, labels, &data).await?;
    Ok(name)
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
