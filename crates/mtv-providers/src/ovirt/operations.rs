//! What the suite does on an oVirt engine: find a VM or template, read its facts (NICs, disks,
//! snapshots, power events), make a VM from a template, power it, add disks, NICs and snapshots,
//! delete it.

use std::collections::HashMap;

use mtv_api::ProviderType;
use serde_json::{Value, json};

use super::facts::{self, members, text};
use super::{GIB, OvirtSource, encode, unexpected};
use crate::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider, SourceSnapshot, SourceVm};

impl OvirtSource {
    /// The facts of a VM or template document, with its NICs, disks, snapshots and events.
    async fn facts_of(&self, vm: &Value, template: bool) -> Result<SourceVm, SourceError> {
        let id = text(vm, "id").unwrap_or_default().to_string();
        let what = format!("read source VM {id}");
        let collection = if template { "templates" } else { "vms" };
        let nics = self.nics_of(&what, collection, &id).await?;
        let disks = self.disks_of(&what, collection, &id).await?;
        let (snapshots, events) = if template {
            (Vec::new(), Vec::new())
        } else {
            (
                self.snapshots_of(&what, &id).await?,
                self.events_of(&what, &id).await?,
            )
        };
        let cbt = disks.iter().any(|(_, backup)| backup == "incremental");
        Ok(SourceVm {
            name: text(vm, "name").unwrap_or_default().to_string(),
            powered_on: text(vm, "status") == Some("up"),
            template,
            cpu_sockets: facts::number(vm, "cpu/topology/sockets").unwrap_or(1) as u32,
            cores_per_socket: facts::number(vm, "cpu/topology/cores").unwrap_or(1) as u32,
            memory_mib: facts::memory_mib(vm),
            firmware: facts::firmware(vm).to_string(),
            // The engine gives a VM its own id as its SMBIOS UUID unless a serial is set.
            uuid: text(vm, "serial_number/value").unwrap_or(&id).to_string(),
            guest_agent: vm.get("guest_operating_system").is_some()
                || nics.iter().any(|nic| !nic.ips.is_empty()),
            cbt,
            disks: disks.into_iter().map(|(disk, _)| disk).collect(),
            nics,
            snapshots,
            host: text(vm, "host/id").map(str::to_string),
            events,
            id,
        })
    }

    /// vNIC profile id → network id.
    async fn profile_networks(&self, what: &str) -> Result<HashMap<String, String>, SourceError> {
        let profiles = self.get(what, "/vnicprofiles").await?;
        Ok(members(&profiles, "vnic_profile")
            .into_iter()
            .filter_map(|p| {
                Some((
                    text(p, "id")?.to_string(),
                    text(p, "network/id")?.to_string(),
                ))
            })
            .collect())
    }

    async fn nics_of(
        &self,
        what: &str,
        collection: &str,
        id: &str,
    ) -> Result<Vec<crate::SourceNic>, SourceError> {
        let list = self.get(what, &format!("/{collection}/{id}/nics")).await?;
        let nics = members(&list, "nic");
        if nics.is_empty() {
            return Ok(Vec::new());
        }
        let networks = self.profile_networks(what).await?;
        Ok(nics
            .into_iter()
            .map(|nic| {
                let profile = text(nic, "vnic_profile/id").unwrap_or_default();
                let network = networks.get(profile).cloned().unwrap_or_default();
                facts::nic(nic, network)
            })
            .collect())
    }

    /// The disks in attachment order, each with its `backup` mode (incremental backup is oVirt's CBT).
    async fn disks_of(
        &self,
        what: &str,
        collection: &str,
        id: &str,
    ) -> Result<Vec<(crate::SourceDisk, String)>, SourceError> {
        let list = self
            .get(what, &format!("/{collection}/{id}/diskattachments"))
            .await?;
        let mut disks = Vec::new();
        for (index, attachment) in members(&list, "disk_attachment").into_iter().enumerate() {
            let disk_id = text(attachment, "disk/id").unwrap_or_default();
            let disk = self.get(what, &format!("/disks/{disk_id}")).await?;
            let backup = text(&disk, "backup").unwrap_or("none").to_string();
            disks.push((facts::disk(&disk, index), backup));
        }
        Ok(disks)
    }

    async fn snapshots_of(&self, what: &str, id: &str) -> Result<Vec<SourceSnapshot>, SourceError> {
        let list = self.get(what, &format!("/vms/{id}/snapshots")).await?;
        Ok(members(&list, "snapshot")
            .into_iter()
            .filter(|s| text(s, "snapshot_type") != Some("active"))
            .map(facts::snapshot)
            .collect())
    }

    /// The VM's events, oldest first (the engine lists the newest first).
    async fn events_of(
        &self,
        what: &str,
        id: &str,
    ) -> Result<Vec<crate::SourceEvent>, SourceError> {
        let search = encode(&format!("Vms.id = {id}"));
        let list = self.get(what, &format!("/events?search={search}")).await?;
        let mut events: Vec<&Value> = members(&list, "event");
        events.sort_by_key(|e| {
            let number = facts::number(e, "id").unwrap_or(0);
            (text(e, "time").unwrap_or_default().to_string(), number)
        });
        Ok(events.into_iter().map(facts::event).collect())
    }

    /// Starts (`on`) or shuts down a VM and waits for it; nothing when it is already so.
    async fn power(&self, id: &str, on: bool, hard: bool) -> Result<(), SourceError> {
        let what = format!("power {} source VM {id}", if on { "on" } else { "off" });
        let status = self
            .status(&what, id)
            .await?
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        let wanted = if on { "up" } else { "down" };
        if status == wanted {
            return Ok(());
        }
        // The Python suite powers off with a guest shutdown; a hard stop leaves USER_STOP_VM, which
        // `check_false_vm_power_off` reads as a migration's doing.
        let action = match (on, hard) {
            (true, _) => "start",
            (false, true) => "stop",
            (false, false) => "shutdown",
        };
        self.post(&what, &format!("/vms/{id}/{action}"), json!({}))
            .await?;
        self.wait_status(&what, id, Some(wanted)).await
    }

    /// What a VM made from a template cannot take here, said before anything is made.
    fn refuse_unsupported(what: &str, request: &CloneRequest) -> Result<(), SourceError> {
        let unsupported = [
            ("target_datastore", request.target_datastore.is_some()),
            ("disk_type", request.disk_type.is_some()),
            ("host", request.host.is_some()),
        ];
        let given: Vec<&str> = unsupported
            .iter()
            .filter(|(_, set)| *set)
            .map(|(name, _)| *name)
            .collect();
        if given.is_empty() {
            return Ok(());
        }
        Err(unexpected(
            what,
            format!(
                "{} cannot be set on a VM made from an oVirt template by this adapter; the VM's \
                 disks, their format and its host come from the template and its cluster",
                given.join(", ")
            ),
        ))
    }

    /// A new VM from template `template_id`, in the template's cluster, as the Python suite makes it.
    async fn create_from_template(
        &self,
        what: &str,
        template_id: &str,
        name: &str,
    ) -> Result<String, SourceError> {
        let template = match self.vm_or_template(what, template_id).await? {
            (template, true) => template,
            (vm, false) => {
                return Err(unexpected(
                    what,
                    format!(
                        "`{}` is a VM; oVirt sources are cloned from templates, so the scenario \
                         must name a template",
                        text(&vm, "name").unwrap_or(template_id)
                    ),
                ));
            }
        };
        let body = json!({
            "name": name,
            "cluster": {"id": text(&template, "cluster/id").unwrap_or_default()},
            "template": {"id": template_id},
            "memory_policy": {"guaranteed": "0"},
        });
        let created = self.post(what, "/vms?clone=true", body).await?;
        text(&created, "id")
            .map(str::to_string)
            .ok_or_else(|| unexpected(what, "the engine answered the new VM without an id"))
    }

    /// After the VM is made: wait until its disks are copied, add disks, power it as asked.
    async fn finish_clone(
        &self,
        id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let what = format!("prepare source VM {id}");
        self.wait_status(&what, id, Some("down")).await?;
        for disk in &request.add_disks {
            self.add_disk(id, disk).await?;
        }
        if let Some(on) = request.power_on {
            self.power(id, on, false).await?;
        }
        self.facts(id).await
    }

    /// The vNIC profile of a network given by id or name.
    async fn profile_of_network(&self, what: &str, network: &str) -> Result<String, SourceError> {
        let networks = self.get(what, "/networks").await?;
        let network_id = members(&networks, "network")
            .into_iter()
            .find(|n| text(n, "id") == Some(network) || text(n, "name") == Some(network))
            .and_then(|n| text(n, "id"))
            .ok_or_else(|| unexpected(what, format!("the engine has no network `{network}`")))?
            .to_string();
        self.profile_networks(what)
            .await?
            .into_iter()
            .find(|(_, n)| *n == network_id)
            .map(|(profile, _)| profile)
            .ok_or_else(|| unexpected(what, format!("network `{network}` has no vNIC profile")))
    }
}

/// The engine's disk of a new disk request: format and sparseness from the provisioning.
fn disk_body(disk: &NewDisk, domain: &str, name: &str) -> Result<Value, String> {
    let sparse = match disk.provisioning.as_str() {
        "" | "thin" => true,
        "thick-lazy" | "thick-eager" => false,
        other => {
            return Err(format!(
                "unknown provisioning `{other}` (thin, thick-lazy or thick-eager)"
            ));
        }
    };
    if !matches!(disk.mode.as_str(), "" | "persistent") {
        return Err(format!(
            "oVirt disks have no `{}` mode; only persistent disks can be added",
            disk.mode
        ));
    }
    Ok(json!({
        "disk": {
            "name": name,
            "format": if sparse { "cow" } else { "raw" },
            "sparse": sparse.to_string(),
            "provisioned_size": (disk.size_gib * GIB).to_string(),
            "storage_domains": {"storage_domain": [{"id": domain}]},
        },
        "interface": "virtio_scsi",
        "bootable": "false",
        "active": "true",
    }))
}

/// Guest files need an agent channel the engine's API does not offer.
impl SourceProvider for OvirtSource {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Ovirt
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find source VM or template `{name}`");
        let search = encode(&format!("name={name}"));
        for (collection, member, template) in
            [("vms", "vm", false), ("templates", "template", true)]
        {
            let list = self
                .get(&what, &format!("/{collection}?search={search}"))
                .await?;
            if let Some(vm) = members(&list, member)
                .into_iter()
                .find(|vm| text(vm, "name") == Some(name))
            {
                return self.facts_of(vm, template).await.map(Some);
            }
        }
        Ok(None)
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        let what = format!("read source VM {id}");
        let (vm, template) = self.vm_or_template(&what, id).await?;
        self.facts_of(&vm, template).await
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let what = format!(
            "make source VM `{}` from template {source_id}",
            request.name
        );
        Self::refuse_unsupported(&what, request)?;
        let id = self
            .create_from_template(&what, source_id, &request.name)
            .await?;
        match self.finish_clone(&id, request).await {
            Ok(facts) => Ok(facts),
            Err(error) => {
                // The caller never learns the id of a half-prepared VM: do not leave it behind.
                let _ = self.delete_vm(&id).await;
                Err(error)
            }
        }
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        self.power(id, on, false).await
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        let what = format!("add a {} GiB disk to source VM {id}", disk.size_gib);
        if let Some(mode) = &disk.rdm {
            return Err(unexpected(
                &what,
                format!(
                    "a LUN disk ({mode}) needs a LUN of the engine's storage, which this adapter does not pick"
                ),
            ));
        }
        if disk.size_gib == 0 {
            return Err(unexpected(&what, "a new disk needs a size"));
        }
        let domain = match &disk.datastore {
            Some(domain) => domain.clone(),
            None => self
                .facts(id)
                .await?
                .disks
                .first()
                .map(|d| d.datastore.clone())
                .ok_or_else(|| {
                    unexpected(
                        &what,
                        "the VM has no disk to take a storage domain from; name one",
                    )
                })?,
        };
        let name = format!("{id}-disk-{}", fastrand::u32(..));
        let body = disk_body(disk, &domain, &name).map_err(|m| unexpected(&what, m))?;
        self.post(&what, &format!("/vms/{id}/diskattachments"), body)
            .await
            .map(|_| ())
    }

    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        let what = format!("add a NIC on {} to source VM {id}", nic.network);
        let profile = self.profile_of_network(&what, &nic.network).await?;
        let count = self.get(&what, &format!("/vms/{id}/nics")).await?;
        let body = json!({
            "name": format!("nic{}", members(&count, "nic").len() + 1),
            "interface": "virtio",
            "plugged": nic.start_connected.to_string(),
            "vnic_profile": {"id": profile},
        });
        let created = self.post(&what, &format!("/vms/{id}/nics"), body).await?;
        text(&created, "mac/address")
            .map(str::to_string)
            .ok_or_else(|| unexpected(&what, "the engine answered the new NIC without a MAC"))
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        let what = format!("snapshot source VM {id}");
        let body = json!({"description": name, "persist_memorystate": "false"});
        let snapshot = self
            .post(&what, &format!("/vms/{id}/snapshots"), body)
            .await?;
        Ok(facts::snapshot(&snapshot))
    }

    fn no_guest_files(&self, id: &str, action: &str) -> SourceError {
        unexpected(
            &format!("{action} in the guest of source VM {id}"),
            "the oVirt engine's API has no guest file operations; the data-integrity marker needs \
             SSH to the guest, which this adapter does not do",
        )
    }

    /// Stops the VM (hard: it is going away) and removes it with its disks; a missing VM is fine.
    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        let what = format!("delete source VM {id}");
        match self.power(id, false, true).await {
            Ok(()) => {}
            Err(SourceError::NotFound(_)) => return Ok(()),
            Err(other) => return Err(other),
        }
        match self
            .call_raw(::http::Method::DELETE, &format!("/vms/{id}"), None)
            .await
        {
            Ok(_) | Err(super::CallError::Status { status: 404, .. }) => {}
            Err(other) => return Err(self.source_error(&what, other)),
        }
        self.wait_status(&what, id, None).await
    }

    /// The engine's CA (as `pki-resource` serves it, or the profile's), for the Provider Secret.
    async fn ca_certificate(&self) -> Result<String, SourceError> {
        Ok(self.inner.ca_pem.clone())
    }
}
