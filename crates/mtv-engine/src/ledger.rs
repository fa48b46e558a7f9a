//! The teardown ledger (`<results>/resources.json`): every object a run creates is written down the
//! moment it exists, so teardown — or `mtv-tests clean --ledger` after a crash — can remove it.
//!
//! The file is rewritten atomically (temporary file + rename) on every change, so a crash at any point
//! leaves either the previous or the new list, never a torn one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::events::ResourceRef;

/// Version of the ledger file format.
pub const LEDGER_VERSION: u32 = 1;

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
        /// How to reach the source again: the lab source name or the provider URL.
        source: String,
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
        if file.version != LEDGER_VERSION {
            return Err(LedgerError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "version {} (this build reads version {LEDGER_VERSION})",
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
}
