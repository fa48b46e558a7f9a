use std::path::PathBuf;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {what} to {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {what}: {source}")]
    Stream {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise an event for the event log: {0}")]
    Event(#[from] serde_json::Error),
    #[error("cannot serialise the JUnit report: {0}")]
    Junit(#[from] quick_junit::SerializeError),
    #[error("the event log is malformed at line {line}: {reason}")]
    MalformedLog { line: usize, reason: String },
    #[error("{} reporters failed: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<ReportError>),
}
