//! The OpenStack source adapter: Keystone v3, Nova, Cinder v3, Glance v2 and Neutron v2.0 over
//! REST, as openstacksdk speaks them. Tested against the lab's OpenStack APIs (`tests/openstack.rs`).
//!
//! A clone is what the Python suite makes of an OpenStack VM: a Cinder snapshot of each of the
//! server's volumes, a volume from each snapshot (boot order kept), a server booted from those
//! volumes with the source's flavor and networks. The snapshots carry the clone's name in their
//! metadata, so deleting the clone deletes exactly what it made: the server, its volumes, those
//! snapshots (and the images `create_snapshot` made of it).

mod client;
mod facts;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use mtv_api::ProviderType;
use serde_json::{Value, json};

use crate::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider, SourceSnapshot, SourceVm};
use client::{CallError, Client, Service, call_error};

/// How long one request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a volume, snapshot or server may take to reach a state by default.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The metadata key naming the clone a snapshot was made for.
pub const CLONE_METADATA_KEY: &str = "mtv-tests.clone";

/// How to reach an OpenStack cloud (the providers file's OpenStack profile).
#[derive(Clone)]
pub struct OpenstackConfig {
    /// The profile's name, for errors.
    pub profile: String,
    /// Keystone's URL (`https://keystone:5000/v3`).
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: String,
    pub project_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    /// The region whose endpoints the catalog gives (any when absent).
    pub region: Option<String>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
    /// A PEM CA certificate to trust instead of the system's roots.
    pub ca_certificate: Option<String>,
    pub request_timeout: Duration,
    pub task_timeout: Duration,
    /// Between two polls of a status.
    pub poll_interval: Duration,
}

impl OpenstackConfig {
    pub fn new(
        profile: impl Into<String>,
        auth_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
        project_name: impl Into<String>,
    ) -> Self {
        OpenstackConfig {
            profile: profile.into(),
            auth_url: auth_url.into(),
            username: username.into(),
            password: password.into(),
            user_domain_name: None,
            user_domain_id: None,
            project_name: project_name.into(),
            project_domain_id: None,
            project_domain_name: None,
            region: None,
            insecure_skip_verify: false,
            ca_certificate: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            poll_interval: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for OpenstackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("OpenstackConfig");
        debug
            .field("profile", &self.profile)
            .field("auth_url", &self.auth_url);
        crate::debug_login(
            &mut debug,
            &self.username,
            self.insecure_skip_verify,
            self.ca_certificate.as_ref(),
        )
        .field("project_name", &self.project_name)
        .field("region", &self.region)
        .finish_non_exhaustive()
    }
}

/// A connected OpenStack cloud.
#[derive(Clone)]
pub struct OpenstackSource {
    client: Arc<Client>,
}

impl fmt::Debug for OpenstackSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenstackSource")
            .field("config", self.client.config())
            .finish()
    }
}

/// What the clone made so far, undone when a later step fails.
#[derive(Default)]
struct Made {
    snapshots: Vec<String>,
    volumes: Vec<String>,
}

impl OpenstackSource {
    /// Keystone's URL as configured (what the Provider's URL is).
    pub fn auth_url(&self) -> &str {
        &self.client.config().auth_url
    }

    /// Authenticates; wrong credentials and an unreachable Keystone are errors naming the profile
    /// and the URL.
    pub async fn connect(config: OpenstackConfig) -> Result<OpenstackSource, SourceError> {
        let what = format!(
            "log in to OpenStack at {} as `{}` (profile `{}`)",
            config.auth_url, config.username, config.profile
        );
        let client = Client::new(config).map_err(|message| SourceError::Request {
            what: what.clone(),
            message,
        })?;
        client.authenticate().await?;
        Ok(OpenstackSource {
            client: Arc::new(client),
        })
    }

    /// A GET of `path` on `service`, its errors said as `what`.
    async fn get(&self, what: &str, service: Service, path: &str) -> Result<Value, SourceError> {
        self.call(what, service, Method::GET, path, None).await
    }

    async fn call(
        &self,
        what: &str,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SourceError> {
        self.client
            .call(service, method, path, body)
            .await
            .map_err(|e| call_error(what, e))
    }

    /// Polls `path` until its `key` document's status reads `wanted`; a status in `failed` (or the timeout) is an error.
    async fn wait_status(
        &self,
        what: &str,
        service: Service,
        path: &str,
        key: &str,
        wanted: &str,
    ) -> Result<Value, SourceError> {
        let deadline = Instant::now() + self.client.config().task_timeout;
        loop {
            let document = self.get(what, service, path).await?;
            // Glance answers the image itself; the others wrap it (`{"server": {...}}`).
            let inner = if key.is_empty() {
                &document
            } else {
                &document[key]
            };
            let status = inner["status"].as_str().unwrap_or_default();
            if status.eq_ignore_ascii_case(wanted) {
                return Ok(document);
            }
            if status.to_ascii_lowercase().starts_with("error") {
                let fault = inner["fault"]["message"].as_str().unwrap_or_default();
                return Err(SourceError::Request {
                    what: what.to_string(),
                    message: format!("{path} went to {status} {fault}")
                        .trim()
                        .to_string(),
                });
            }
            if Instant::now() >= deadline {
                return Err(SourceError::Request {
                    what: what.to_string(),
                    message: format!(
                        "{path} is {status}, not {wanted}, after {:?}",
                        self.client.config().task_timeout
                    ),
                });
            }
            tokio::time::sleep(self.client.poll_interval()).await;
        }
    }

    /// Polls `path` until it answers 404.
    async fn wait_gone(&self, what: &str, service: Service, path: &str) -> Result<(), SourceError> {
        let deadline = Instant::now() + self.client.config().task_timeout;
        loop {
            match self.get_opt(service, path).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(self.client.poll_interval()).await
                }
                Ok(Some(_)) => {
                    return Err(SourceError::Request {
                        what: what.to_string(),
                        message: format!(
                            "{path} still exists after {:?}",
                            self.client.config().task_timeout
                        ),
                    });
                }
                Err(e) => return Err(call_error(what, e)),
            }
        }
    }

    /// Deletes a document; a missing one is not an error.
    async fn delete(&self, what: &str, service: Service, path: &str) -> Result<(), SourceError> {
        match self.client.call(service, Method::DELETE, path, None).await {
            Ok(_) | Err(CallError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(call_error(what, e)),
        }
    }

    /// Creates a volume (blank or from a snapshot) and waits until it is available.
    async fn create_volume(&self, what: &str, volume: Value) -> Result<String, SourceError> {
        self.create_and_wait(what, Service::Volume, "volume", volume, "available")
            .await
    }

    /// Creates a `kind` (`volume`, `server`) on `service` from its `document` (a POST to `/{kind}s`)
    /// and waits until its status reads `ready`; its id.
    async fn create_and_wait(
        &self,
        what: &str,
        service: Service,
        kind: &str,
        document: Value,
        ready: &str,
    ) -> Result<String, SourceError> {
        let mut body = serde_json::Map::new();
        body.insert(kind.to_string(), document);
        let created = self
            .call(
                what,
                service,
                Method::POST,
                &format!("/{kind}s"),
                Some(&Value::Object(body)),
            )
            .await?;
        let id = created[kind]["id"].as_str().unwrap_or_default().to_string();
        self.wait_status(what, service, &format!("/{kind}s/{id}"), kind, ready)
            .await?;
        Ok(id)
    }

    /// Steps 1 and 2 of a clone: a snapshot of each source volume, a volume from each.
    async fn copy_volumes(
        &self,
        what: &str,
        source: &facts::ServerShape,
        request: &CloneRequest,
        made: &mut Made,
    ) -> Result<(), SourceError> {
        let marker = json!({CLONE_METADATA_KEY: request.name});
        for (index, (volume, size, volume_type)) in source.volumes.iter().enumerate() {
            let snapshot = json!({"snapshot": {
                "volume_id": volume,
                "name": format!("{}-{index}", request.name),
                "force": true,
                "metadata": marker,
            }});
            let created = self
                .call(
                    what,
                    Service::Volume,
                    Method::POST,
                    "/snapshots",
                    Some(&snapshot),
                )
                .await?;
            let snapshot_id = created["snapshot"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            made.snapshots.push(snapshot_id.clone());
            self.wait_status(
                what,
                Service::Volume,
                &format!("/snapshots/{snapshot_id}"),
                "snapshot",
                "available",
            )
            .await?;
            let volume_type = request
                .target_datastore
                .clone()
                .unwrap_or_else(|| volume_type.clone());
            let id = self
                .create_volume(
                    what,
                    json!({
                        "name": format!("{}-disk-{index}", request.name),
                        "size": size,
                        "snapshot_id": snapshot_id,
                        "volume_type": volume_type,
                        "metadata": marker,
                    }),
                )
                .await?;
            made.volumes.push(id);
        }
        for (index, disk) in request.add_disks.iter().enumerate() {
            let volume_type = disk
                .datastore
                .clone()
                .or_else(|| request.target_datastore.clone())
                .or_else(|| source.volumes.first().map(|v| v.2.clone()));
            let id = self
                .create_volume(
                    what,
                    json!({
                        "name": format!("{}-added-{index}", request.name),
                        "size": disk.size_gib,
                        "volume_type": volume_type,
                        "metadata": marker,
                    }),
                )
                .await?;
            made.volumes.push(id);
        }
        Ok(())
    }

    /// Step 3 of a clone: boot a server from the volumes with the source's flavor and networks.
    async fn boot(
        &self,
        what: &str,
        source: &facts::ServerShape,
        request: &CloneRequest,
        volumes: &[String],
    ) -> Result<String, SourceError> {
        let mappings: Vec<Value> = volumes
            .iter()
            .enumerate()
            .map(|(index, id)| {
                json!({
                    "boot_index": index,
                    "uuid": id,
                    "source_type": "volume",
                    "destination_type": "volume",
                    "delete_on_termination": true,
                })
            })
            .collect();
        let networks: Vec<Value> = source.networks.iter().map(|n| json!({"uuid": n})).collect();
        let mut server = json!({
            "name": request.name,
            "flavorRef": source.flavor_id,
            "networks": networks,
            "block_device_mapping_v2": mappings,
        });
        if let Some(host) = &request.host {
            server["availability_zone"] = json!(format!("nova:{host}"));
        }
        self.create_and_wait(what, Service::Compute, "server", server, "ACTIVE")
            .await
    }

    /// Undoes a clone's volumes and snapshots after a failed step (best effort: the first error
    /// is the one reported).
    async fn undo(&self, what: &str, made: &Made) {
        for volume in &made.volumes {
            let path = format!("/volumes/{volume}");
            let _ = self.delete(what, Service::Volume, &path).await;
            let _ = self.wait_gone(what, Service::Volume, &path).await;
        }
        for snapshot in &made.snapshots {
            let _ = self
                .delete(what, Service::Volume, &format!("/snapshots/{snapshot}"))
                .await;
        }
    }

    /// Powers a server on or off and waits for its status.
    async fn power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        let what = format!(
            "power {} OpenStack server {id}",
            if on { "on" } else { "off" }
        );
        let server = self.server(id).await?;
        let wanted = if on { "ACTIVE" } else { "SHUTOFF" };
        if server["status"] == wanted {
            return Ok(());
        }
        let action = if on {
            json!({"os-start": null})
        } else {
            json!({"os-stop": null})
        };
        self.call(
            &what,
            Service::Compute,
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(&action),
        )
        .await?;
        self.wait_status(
            &what,
            Service::Compute,
            &format!("/servers/{id}"),
            "server",
            wanted,
        )
        .await?;
        Ok(())
    }

    /// Deletes the images `create_snapshot` made of a server and the volume snapshots they name.
    async fn delete_snapshot_images(&self, what: &str, id: &str) -> Result<(), SourceError> {
        for image in self.snapshot_images(id, what).await? {
            let document = self
                .get_opt(Service::Image, &format!("/images/{}", image.id))
                .await;
            let mapping = document
                .ok()
                .flatten()
                .and_then(|d| d["block_device_mapping"].as_str().map(str::to_string))
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .unwrap_or(Value::Null);
            self.delete(what, Service::Image, &format!("/images/{}", image.id))
                .await?;
            for entry in mapping.as_array().into_iter().flatten() {
                if let Some(snapshot) = entry["snapshot_id"].as_str() {
                    self.delete(what, Service::Volume, &format!("/snapshots/{snapshot}"))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The snapshots the clone `name` made of its source (marked in their metadata), among the
    /// origins of its volumes.
    async fn clone_snapshots(
        &self,
        what: &str,
        name: &str,
        volumes: &[String],
    ) -> Result<BTreeSet<String>, SourceError> {
        let mut snapshots = BTreeSet::new();
        for volume in volumes {
            let Some(document) = self
                .get_opt(Service::Volume, &format!("/volumes/{volume}"))
                .await
                .map_err(|e| call_error(what, e))?
            else {
                continue;
            };
            let Some(snapshot) = document["volume"]["snapshot_id"].as_str() else {
                continue;
            };
            let origin = self
                .get_opt(Service::Volume, &format!("/snapshots/{snapshot}"))
                .await
                .map_err(|e| call_error(what, e))?;
            if origin.is_some_and(|s| s["snapshot"]["metadata"][CLONE_METADATA_KEY] == name) {
                snapshots.insert(snapshot.to_string());
            }
        }
        Ok(snapshots)
    }
}

/// OpenStack guests are reached only over the network (SSH), which this adapter does not do.
impl SourceProvider for OpenstackSource {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Openstack
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find OpenStack server `{name}`");
        // Nova's name filter is a regular expression: anchor it, and compare exactly after.
        let pattern: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect();
        let query: String = format!("^{pattern}$")
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let servers = self
            .get(&what, Service::Compute, &format!("/servers?name={query}"))
            .await?;
        let ids: Vec<String> = servers["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == name)
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some(self.server_facts(id).await?)),
            _ => Err(SourceError::Request {
                what,
                message: format!(
                    "{} servers are named `{name}`; names must be unique",
                    ids.len()
                ),
            }),
        }
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        self.server_facts(id).await
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let what = format!("clone OpenStack server {source_id} as `{}`", request.name);
        if request.cbt {
            return Err(SourceError::Request {
                what,
                message: "OpenStack volumes have no changed block tracking (warm migrations \
                          from OpenStack are not supported)"
                    .into(),
            });
        }
        let source = self.shape(source_id).await?;
        let mut made = Made::default();
        let booted = async {
            self.copy_volumes(&what, &source, request, &mut made)
                .await?;
            self.boot(&what, &source, request, &made.volumes).await
        }
        .await;
        let id = match booted {
            Ok(id) => id,
            Err(e) => {
                self.undo(&what, &made).await;
                return Err(e);
            }
        };
        if request.power_on != Some(true) {
            self.power(&id, false).await?;
        }
        self.server_facts(&id).await
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        self.power(id, on).await
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        let what = format!(
            "add a {} GiB volume to OpenStack server {id}",
            disk.size_gib
        );
        let shape = self.shape(id).await?;
        let volume_type = disk
            .datastore
            .clone()
            .or_else(|| shape.volumes.first().map(|v| v.2.clone()));
        let volume = self
            .create_volume(
                &what,
                json!({
                    "name": format!("{}-disk-{}", shape.name, shape.volumes.len()),
                    "size": disk.size_gib,
                    "volume_type": volume_type,
                    "metadata": {CLONE_METADATA_KEY: shape.name},
                }),
            )
            .await?;
        let attach = json!({"volumeAttachment": {"volumeId": volume}});
        self.call(
            &what,
            Service::Compute,
            Method::POST,
            &format!("/servers/{id}/os-volume_attachments"),
            Some(&attach),
        )
        .await?;
        self.wait_status(
            &what,
            Service::Volume,
            &format!("/volumes/{volume}"),
            "volume",
            "in-use",
        )
        .await?;
        Ok(())
    }

    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        let what = format!(
            "add a NIC on network {} to OpenStack server {id}",
            nic.network
        );
        if !nic.start_connected {
            return Err(SourceError::Request {
                what,
                message: "Nova attaches interfaces up; a NIC that starts disconnected has no OpenStack equivalent".into(),
            });
        }
        let body = json!({"interfaceAttachment": {"net_id": nic.network}});
        let attached = self
            .call(
                &what,
                Service::Compute,
                Method::POST,
                &format!("/servers/{id}/os-interface"),
                Some(&body),
            )
            .await?;
        attached["interfaceAttachment"]["mac_addr"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SourceError::Request {
                what,
                message: "Nova answered without the interface's MAC".into(),
            })
    }

    /// A snapshot of a volume-backed server: Nova's `createImage` (a Cinder snapshot of each volume,
    /// and an image naming them).
    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        let what = format!("snapshot OpenStack server {id} as `{name}`");
        let body = json!({"createImage": {"name": name, "metadata": {}}});
        let answer = self
            .call(
                &what,
                Service::Compute,
                Method::POST,
                &format!("/servers/{id}/action"),
                Some(&body),
            )
            .await?;
        let image = answer["image_id"].as_str().unwrap_or_default().to_string();
        self.wait_status(
            &what,
            Service::Image,
            &format!("/images/{image}"),
            "",
            "active",
        )
        .await?;
        self.snapshot_images(id, &what)
            .await?
            .into_iter()
            .find(|s| s.id == image)
            .ok_or_else(|| SourceError::Request {
                what,
                message: format!("image {image} is not among the server's snapshot images"),
            })
    }

    fn no_guest_files(&self, id: &str, action: &str) -> SourceError {
        SourceError::Request {
            what: format!("{action} in the guest of OpenStack server {id}"),
            message:
                "guest files of OpenStack servers need SSH into the guest, which this adapter \
                      does not implement yet"
                    .into(),
        }
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        let what = format!("delete OpenStack server {id}");
        let shape = match self.shape(id).await {
            Ok(shape) => shape,
            Err(SourceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let volumes: Vec<String> = shape.volumes.iter().map(|v| v.0.clone()).collect();
        let snapshots = self.clone_snapshots(&what, &shape.name, &volumes).await?;
        self.delete_snapshot_images(&what, id).await?;
        self.delete(&what, Service::Compute, &format!("/servers/{id}"))
            .await?;
        self.wait_gone(&what, Service::Compute, &format!("/servers/{id}"))
            .await?;
        // Volumes Nova kept (attached without delete_on_termination) go too.
        for volume in &volumes {
            let path = format!("/volumes/{volume}");
            self.delete(&what, Service::Volume, &path).await?;
            self.wait_gone(&what, Service::Volume, &path).await?;
        }
        for snapshot in snapshots {
            self.delete(&what, Service::Volume, &format!("/snapshots/{snapshot}"))
                .await?;
        }
        Ok(())
    }

    /// The CA for the Provider Secret: the profile's, else the top of the chain Keystone presents.
    async fn ca_certificate(&self) -> Result<String, SourceError> {
        let config = self.client.config();
        if let Some(pem) = &config.ca_certificate {
            return Ok(pem.clone());
        }
        let what = format!(
            "read the TLS certificate of OpenStack at {}",
            config.auth_url
        );
        let uri: http::Uri = config.auth_url.parse().map_err(|e| SourceError::Request {
            what: what.clone(),
            message: format!("`{}` is not a URL: {e}", config.auth_url),
        })?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let chain = crate::tls::presented_certificates(&host, port, config.request_timeout)
            .await
            .map_err(|message| SourceError::Request {
                what: what.clone(),
                message,
            })?;
        chain
            .last()
            .map(|cert| crate::tls::pem(cert))
            .ok_or_else(|| SourceError::Request {
                what,
                message: "the server presented no certificate".into(),
            })
    }
}
