//! VMware Guest Operations, as the Python suite uses them on vSphere sources: write and read guest
//! files (the data marker written before snapshots) through the file manager's transfer URLs, and run
//! a shell command (`nmcli device show`) through the process manager, reading its output back as a
//! file. They need the VM powered on with VMware Tools running, and the guest's credentials.

use std::time::Duration;

use bytes::Bytes;

use super::soap::SoapError;
use super::xml::escape;
use super::{Moref, VsphereSource, is_fault, source_error, unexpected};
use crate::guest_network::{normalize_mac, parse_nmcli_device_show};
use crate::{SourceError, SourceVm};

/// The largest output of a guest command this adapter reads back.
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

impl VsphereSource {
    /// The guest's credentials as a `NamePasswordAuthentication`, or why there are none.
    fn guest_auth(&self, what: &str) -> Result<String, SourceError> {
        let (user, password) = self.inner.guest_credentials.as_ref().ok_or_else(|| {
            unexpected(
                what,
                "guest files and commands of vSphere VMs go through vSphere Guest Operations, which \
                 need the guest's credentials: give the profile guest_vm_linux_user and \
                 guest_vm_linux_password",
            )
        })?;
        Ok(format!(
            "<auth xsi:type=\"NamePasswordAuthentication\"><interactiveSession>false\
             </interactiveSession><username>{}</username><password>{}</password></auth>",
            escape(user),
            escape(password)
        ))
    }

    /// The guest operations manager's file or process manager.
    async fn guest_manager(&self, what: &str, which: &str) -> Result<Moref, SourceError> {
        let manager =
            self.inner.service.guest_operations.clone().ok_or_else(|| {
                unexpected(what, "this server offers no vSphere Guest Operations")
            })?;
        let props = self.retrieve(what, &manager, &[which]).await?;
        props
            .get(which)
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(what, format!("the guest operations manager has no {which}")))
    }

    /// A guest operations call (`method` on the `which` manager with `vm` and `auth` first): the
    /// outer error is this adapter's (no credentials, no manager), the inner one the server's answer.
    async fn guest_call(
        &self,
        what: &str,
        which: &str,
        method: &str,
        id: &str,
        arguments: &str,
    ) -> Result<Result<super::xml::Element, SoapError>, SourceError> {
        let auth = self.guest_auth(what)?;
        let manager = self.guest_manager(what, which).await?;
        let body = format!(
            "<{method} xmlns=\"urn:vim25\">{}{}{auth}{arguments}</{method}>",
            manager.xml("_this"),
            Self::vm(id).xml("vm"),
        );
        Ok(self.invoke_raw(&body).await)
    }

    /// A file transfer to or from the guest at the URL the server gave (its `*`, ESXi's "this host",
    /// made the server's address); the answer's body, or the server's refusal of `what`.
    async fn guest_transfer(
        &self,
        what: &str,
        method: http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<Bytes, SourceError> {
        let url = url.replacen(
            "://*",
            &format!("://{}", self.inner.transport.authority()),
            1,
        );
        let (status, body) = self
            .inner
            .transport
            .transfer(method, &url, body)
            .await
            .map_err(|m| unexpected(what, m))?;
        if !(200..300).contains(&status) {
            return Err(SourceError::Rejected {
                what: what.to_string(),
                status,
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        Ok(body)
    }

    /// Writes a file in the guest: `InitiateFileTransferToGuest`, then a PUT of the content.
    pub(crate) async fn upload_guest_file(
        &self,
        id: &str,
        path: &str,
        content: &str,
    ) -> Result<(), SourceError> {
        let what = format!("write {path} in the guest of source VM {id}");
        let arguments = format!(
            "<guestFilePath>{}</guestFilePath><fileAttributes xsi:type=\"GuestFileAttributes\">\
             </fileAttributes><fileSize>{}</fileSize><overwrite>true</overwrite>",
            escape(path),
            content.len()
        );
        let answer = self
            .guest_call(
                &what,
                "fileManager",
                "InitiateFileTransferToGuest",
                id,
                &arguments,
            )
            .await?
            .map_err(|e| source_error(&what, e))?;
        self.guest_transfer(
            &what,
            http::Method::PUT,
            answer.text_at("returnval").unwrap_or(""),
            Bytes::from(content.to_string()),
        )
        .await?;
        Ok(())
    }

    /// Reads a file of the guest (`None` when it has no such file).
    pub(crate) async fn download_guest_file(
        &self,
        id: &str,
        path: &str,
    ) -> Result<Option<String>, SourceError> {
        let what = format!("read {path} in the guest of source VM {id}");
        let arguments = format!("<guestFilePath>{}</guestFilePath>", escape(path));
        let answer = match self
            .guest_call(
                &what,
                "fileManager",
                "InitiateFileTransferFromGuest",
                id,
                &arguments,
            )
            .await?
        {
            Ok(answer) => answer,
            Err(e) if is_fault(&e, "FileNotFound") => return Ok(None),
            Err(e) => return Err(source_error(&what, e)),
        };
        let body = self
            .guest_transfer(
                &what,
                http::Method::GET,
                answer.text_at("returnval/url").unwrap_or(""),
                Bytes::new(),
            )
            .await?;
        if body.len() > MAX_OUTPUT_BYTES {
            return Err(unexpected(
                &what,
                format!("the file is {} bytes", body.len()),
            ));
        }
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
    }

    /// Runs a shell command in a Linux guest (`/bin/bash -c`), waits for it to end and returns its
    /// exit code and output (standard output and error, read back from a file in the guest), as the
    /// Python suite reads `nmcli device show`.
    pub async fn run_in_guest(
        &self,
        id: &str,
        command: &str,
    ) -> Result<(i32, String), SourceError> {
        let what = format!("run `{command}` in the guest of source VM {id}");
        let output = format!("/tmp/mtv-tests-{:016x}.out", fastrand::u64(..));
        let line = format!("-c '{} > {output} 2>&1'", command.replace('\'', "'\\''"));
        let arguments = format!(
            "<spec xsi:type=\"GuestProgramSpec\"><programPath>/bin/bash</programPath>\
             <arguments>{}</arguments></spec>",
            escape(&line)
        );
        let answer = self
            .guest_call(
                &what,
                "processManager",
                "StartProgramInGuest",
                id,
                &arguments,
            )
            .await?
            .map_err(|e| source_error(&what, e))?;
        let pid = answer.text_at("returnval").unwrap_or("").to_string();
        let exit_code = self.wait_for_process(&what, id, &pid).await?;
        let text = self
            .download_guest_file(id, &output)
            .await?
            .unwrap_or_default();
        Ok((exit_code, text))
    }

    /// The guest's own names of the VM's NICs (`ens192`), as the Python suite collects them for
    /// `check_nic_name_preservation`: `nmcli device show` through Guest Operations, matched by MAC.
    /// Only a running Linux guest with VMware Tools and the profile's guest account can answer; a
    /// guest that cannot (a Windows guest has no NetworkManager) leaves the names unknown, and the
    /// check then compares only the NICs whose names are known.
    pub(crate) async fn read_guest_nic_names(&self, vm: &mut SourceVm) {
        if !vm.powered_on || !vm.guest_agent || self.inner.guest_credentials.is_none() {
            return;
        }
        let Ok((0, text)) = self.run_in_guest(&vm.id, "nmcli device show").await else {
            return;
        };
        let interfaces = parse_nmcli_device_show(&text);
        for nic in &mut vm.nics {
            let mac = normalize_mac(&nic.mac);
            if let Some(interface) = interfaces.iter().find(|i| i.mac == mac) {
                nic.device = Some(interface.name.clone());
            }
        }
    }

    /// Polls `ListProcessesInGuest` until the process has ended; its exit code.
    async fn wait_for_process(&self, what: &str, id: &str, pid: &str) -> Result<i32, SourceError> {
        let deadline = tokio::time::Instant::now() + self.inner.task_timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let answer = self
                .guest_call(
                    what,
                    "processManager",
                    "ListProcessesInGuest",
                    id,
                    &format!("<pids>{}</pids>", escape(pid)),
                )
                .await?
                .map_err(|e| source_error(what, e))?;
            let process = answer
                .children_named("returnval")
                .find(|p| p.text_at("pid") == Some(pid))
                .ok_or_else(|| unexpected(what, format!("the guest lists no process {pid}")))?;
            if process.child("endTime").is_some() {
                return Ok(process.i64_at("exitCode").unwrap_or(-1) as i32);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unexpected(
                    what,
                    format!(
                        "process {pid} did not end within {:?}",
                        self.inner.task_timeout
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
