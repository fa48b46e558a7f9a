//! The teardown ledger (`<results>/resources.json`): every object a run creates is written down the
//! moment it exists, so teardown — or `mtv-tests clean --ledger` after a crash — can remove it.
//!
//! The file is rewritten atomically (temporary file + rename) on every change, so a crash at any point
//! leaves either the previous or the new list, never a torn one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use mtv_providers::SourceRef;

use crate::events::ResourceRef;

/// Version of the ledger file format: 2 records source VMs with a typed [`SourceRef`].
pub const LEDGER_VERSION: u32 = 2;
/// The oldest version this build still reads (its source VMs name their source as `lab:<name>`,
/// `openshift:<namespace>` or `vsphere:<server>`).
pub const OLDEST_LEDGER_VERSION: u32 = 1;

/// Where a recorded source VM lives: a typed [`SourceRef`], or the string of a version-1 ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordedSource {
    Ref(SourceRef),
    /// `lab:<name>`, `openshift:<namespace>` or `vsphere:<server>` (ledger version 1).
    Legacy(String),
    /// A reference this build cannot read (a newer build's adapter or version): the ledger still
    /// loads, and teardown says what to do with that VM.
    Unknown(serde_json::Value),
}

impl RecordedSource {
    /// The typed reference; a legacy string is read with the entry's provider type.
    pub fn resolve(&self, provider_type: &str) -> Result<SourceRef, String> {
        match self {
            RecordedSource::Ref(reference) => Ok(reference.clone()),
            RecordedSource::Legacy(text) => SourceRef::from_legacy(text, provider_type),
            RecordedSource::Unknown(value) => Err(format!(
                "{value} is not a source reference this build knows (written by a newer \
                 mtv-tests?); clean with the build that wrote the ledger"
            )),
        }
    }
}

impl From<SourceRef> for RecordedSource {
    fn from(reference: SourceRef) -> Self {
        RecordedSource::Ref(reference)
    }
}

/// One thing the run created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LedgerEntry {
    /// A Kubernetes object.
    Kube {
        resource: ResourceRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<String>,
        #[serde(default)]
        removed: bool,
    },
    /// A VM created on the source side (a clone, or a KubeVirt source VM of an OpenShift source).
    SourceVm {
        provider_type: String,
        /// How to reach the source again (`mtv_providers::reconnect`).
        source: RecordedSource,
        id: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<String>,
        #[serde(default)]
        removed: bool,
    },
    /// A cluster-wide setting the run changed, with the value to put back (ledgers of earlier
    /// builds; runs now take a [`LedgerEntry::Lease`]).
    Patch {
        resource: ResourceRef,
        /// A JSON merge patch that restores the original values.
        restore: serde_json::Value,
        #[serde(default)]
        removed: bool,
    },
    /// The session's lease on a setting of a shared object (see `lease.rs`): teardown leaves it,
    /// and the last session to leave restores the original value.
    Lease {
        resource: ResourceRef,
        /// `spec.<field>` or `metadata.labels.<key>`.
        setting: String,
        session: String,
        #[serde(default)]
        removed: bool,
    },
}

impl LedgerEntry {
    pub fn is_removed(&self) -> bool {
        match self {
            LedgerEntry::Kube { removed, .. }
            | LedgerEntry::SourceVm { removed, .. }
            | LedgerEntry::Patch { removed, .. }
            | LedgerEntry::Lease { removed, .. } => *removed,
        }
    }

    fn set_removed(&mut self) {
        match self {
            LedgerEntry::Kube { removed, .. }
            | LedgerEntry::SourceVm { removed, .. }
            | LedgerEntry::Patch { removed, .. }
            | LedgerEntry::Lease { removed, .. } => *removed = true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerFile {
    pub version: u32,
    pub session_id: String,
    /// `lab` or the cluster's API URL.
    pub target: String,
    pub entries: Vec<LedgerEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot write the ledger {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the ledger {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a mtv-tests ledger: {message}")]
    Format { path: PathBuf, message: String },
}

/// The live ledger of a run.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: Mutex<LedgerFile>,
}

impl Ledger {
    /// Starts an empty ledger at `path` (its directory is created).
    pub fn create(path: &Path, session_id: &str, target: &str) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let ledger = Ledger {
            path: path.to_path_buf(),
            file: Mutex::new(LedgerFile {
                version: LEDGER_VERSION,
                session_id: session_id.to_string(),
                target: target.to_string(),
                entries: Vec::new(),
            }),
        };
        ledger.save(&ledger.lock())?;
        Ok(ledger)
    }

    /// Reads a ledger written by an earlier run.
    pub fn load(path: &Path) -> Result<LedgerFile, LedgerError> {
        let text = std::fs::read_to_string(path).map_err(|source| LedgerError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: LedgerFile = serde_json::from_str(&text).map_err(|e| LedgerError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if !(OLDEST_LEDGER_VERSION..=LEDGER_VERSION).contains(&file.version) {
            return Err(LedgerError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "version {} (this build reads versions {OLDEST_LEDGER_VERSION} to                      {LEDGER_VERSION}; clean it with the mtv-tests that wrote it)",
                    file.version
                ),
            });
        }
        Ok(file)
    }

    /// Reopens a ledger to continue it (for `clean`).
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let file = Ledger::load(path)?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerFile> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, file: &LedgerFile) -> Result<(), LedgerError> {
        let write_error = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_string_pretty(file)
            .map_err(|e| write_error(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(write_error)?;
        std::fs::rename(&tmp, &self.path).map_err(write_error)
    }

    /// Records an entry and writes the file before returning.
    pub fn record(&self, entry: LedgerEntry) -> Result<(), LedgerError> {
        let mut file = self.lock();
        file.entries.push(entry);
        self.save(&file)
    }

    /// Replaces the first entry `matches` selects with `entry`, or drops it when `entry` is `None`;
    /// records `entry` when nothing matches. Settles what a create wrote down before it was sent.
    pub fn replace(
        &self,
        matches: impl Fn(&LedgerEntry) -> bool,
        entry: Option<LedgerEntry>,
    ) -> Result<(), LedgerError> {
        let mut file = self.lock();
        match (file.entries.iter().position(matches), entry) {
            (Some(index), Some(entry)) => file.entries[index] = entry,
            (Some(index), None) => {
                file.entries.remove(index);
            }
            (None, Some(entry)) => file.entries.push(entry),
            (None, None) => return Ok(()),
        }
        self.save(&file)
    }

    /// Marks the entries `matches` selects as removed.
    pub fn mark_removed(&self, matches: impl Fn(&LedgerEntry) -> bool) -> Result<(), LedgerError> {
        let mut file = self.lock();
        for entry in file.entries.iter_mut().filter(|e| matches(e)) {
            entry.set_removed();
        }
        self.save(&file)
    }

    /// A copy of the current entries.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.lock().entries.clone()
    }

    /// Runs `last_words` (typically `std::process::exit`) while no write of the ledger is half done,
    /// so a process that ends at once still leaves the file complete for `clean`.
    pub fn hold_while<T>(&self, last_words: impl FnOnce() -> T) -> T {
        let _file = self.lock();
        last_words()
    }

    pub fn snapshot(&self) -> LedgerFile {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> LedgerEntry {
        LedgerEntry::Kube {
            resource: ResourceRef {
                api_version: "v1".into(),
                kind: "Secret".into(),
                namespace: Some("auto-ab12".into()),
                name: name.into(),
                uid: Some("u-1".into()),
            },
            scenario: None,
            removed: false,
        }
    }

    #[test]
    fn every_record_is_on_disk_at_once_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results/resources.json");
        let ledger = Ledger::create(&path, "auto-ab12", "lab").unwrap();
        ledger.record(secret("a")).unwrap();
        let on_disk = Ledger::load(&path).unwrap();
        assert_eq!(on_disk.entries, vec![secret("a")]);
        ledger.record(secret("b")).unwrap();
        ledger
            .mark_removed(
                |e| matches!(e, LedgerEntry::Kube { resource, .. } if resource.name == "a"),
            )
            .unwrap();
        let on_disk = Ledger::load(&path).unwrap();
        assert!(on_disk.entries[0].is_removed());
        assert!(!on_disk.entries[1].is_removed());
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(
            &path,
            "{\"version\": 9, \"session_id\": \"s\", \"target\": \"lab\", \"entries\": []}",
        )
        .unwrap();
        let err = Ledger::load(&path).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn source_vms_of_a_version_1_ledger_resolve_to_typed_references() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resources.json");
        std::fs::write(
            &path,
            r#"{"version": 1, "session_id": "s", "target": "lab", "entries": [
                {"type": "source_vm", "provider_type": "openshift", "source": "openshift:s-source",
                 "id": "vm-1", "name": "c1"},
                {"type": "source_vm", "provider_type": "vsphere", "source": "vsphere:vc.example.com",
                 "id": "vm-2", "name": "c2"}]}"#,
        )
        .unwrap();
        let ledger = Ledger::open(&path).unwrap();
        let references: Vec<SourceRef> = ledger
            .entries()
            .iter()
            .map(|entry| match entry {
                LedgerEntry::SourceVm {
                    source,
                    provider_type,
                    ..
                } => source.resolve(provider_type).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(references[0].describe(), "openshift:s-source");
        assert_eq!(references[1].describe(), "vsphere:vc.example.com");
        // Marking one removed rewrites the file; it stays readable, the old strings included.
        ledger
            .mark_removed(|e| matches!(e, LedgerEntry::SourceVm { id, .. } if id == "vm-1"))
            .unwrap();
        let again = Ledger::load(&path).unwrap();
        assert!(again.entries[0].is_removed());
        assert_eq!(again.entries[1], ledger.entries()[1]);
    }

    #[test]
    fn a_source_this_build_does_not_know_loads_and_says_what_to_do() {
        let unknown: RecordedSource =
            serde_json::from_str(r#"{"version": 1, "adapter": "xen", "host": "h"}"#).unwrap();
        let why = unknown.resolve("xen").unwrap_err();
        assert!(why.contains("newer"), "{why}");
    }

    #[test]
    fn a_typed_source_ref_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resources.json");
        let ledger = Ledger::create(&path, "s", "https://api.example.com:6443").unwrap();
        let reference = SourceRef::new(mtv_providers::SourceRefKind::Openshift {
            namespace: "s-source".into(),
        });
        let entry = LedgerEntry::SourceVm {
            provider_type: "openshift".into(),
            source: reference.clone().into(),
            id: "uid-1".into(),
            name: "vm".into(),
            scenario: None,
            removed: false,
        };
        ledger.record(entry.clone()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"adapter\": \"openshift\""), "{text}");
        let file = Ledger::load(&path).unwrap();
        assert_eq!(file.version, LEDGER_VERSION);
        assert_eq!(file.entries, vec![entry]);
        let LedgerEntry::SourceVm { source, .. } = &file.entries[0] else {
            unreachable!()
        };
        assert_eq!(source.resolve("openshift").unwrap(), reference);
    }
}
