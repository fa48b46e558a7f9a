//! Reading a file inside a migrated VM's guest, for the copy-offload data-integrity check. The Python
//! suite starts the VM and runs `cat` over SSH (virtctl port-forward); the embedded lab has no guests
//! and shows the files the source guest held on the migrated VirtualMachine instead.

use serde_json::Value;

/// The lab's annotation on a migrated VirtualMachine: its guest files as a JSON object (path → content).
pub const LAB_GUEST_FILES_ANNOTATION: &str = "lab.mtv-tests.io/guest-files";

/// Why a guest file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    #[error(
        "reading {path} in the guest of {vm} needs SSH into the migrated VM (virtctl port-forward), which this build does not support on a real cluster yet"
    )]
    NeedsSsh { vm: String, path: String },
    #[error("the guest files of {vm} are unreadable: {message}")]
    Malformed { vm: String, message: String },
}

/// One file of a migrated VM's guest, from the guest-files annotation when the VM carries one:
/// `Ok(None)` when the guest has no such file; without the annotation, SSH is needed.
pub fn read_guest_file(vm: &Value, path: &str) -> Result<Option<String>, GuestError> {
    let name = vm["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let Some(raw) = vm
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAB_GUEST_FILES_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Err(GuestError::NeedsSsh {
            vm: name,
            path: path.to_string(),
        });
    };
    let files: std::collections::BTreeMap<String, String> =
        serde_json::from_str(raw).map_err(|e| GuestError::Malformed {
            vm: name,
            message: e.to_string(),
        })?;
    Ok(files.get(path).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_lab_shows_guest_files_on_the_virtual_machine() {
        let vm = json!({"metadata": {"name": "web", "annotations": {
            LAB_GUEST_FILES_ANNOTATION: "{\"/root/marker\":\"mtv-data-integrity-s1\"}"
        }}});
        assert_eq!(
            read_guest_file(&vm, "/root/marker").unwrap().as_deref(),
            Some("mtv-data-integrity-s1")
        );
        assert_eq!(read_guest_file(&vm, "/root/other").unwrap(), None);
    }

    #[test]
    fn a_real_cluster_needs_ssh_and_says_so() {
        let vm = json!({"metadata": {"name": "web"}});
        let error = read_guest_file(&vm, "/root/marker").unwrap_err();
        assert!(error.to_string().contains("needs SSH"), "{error}");
        assert!(error.to_string().contains("web"), "{error}");
    }
}
