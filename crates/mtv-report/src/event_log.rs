use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use mtv_events::{EVENT_LOG_VERSION, Event};

use crate::{ReportError, Reporter};

/// The `event` tag of the log's first line, which carries the format version.
pub const LOG_STARTED: &str = "log_started";

/// The JSON event log: a header line `{"event":"log_started","version":N}`, then one event per line
/// in its own serialisation. Each line is flushed as it is written, so a crash keeps what happened.
pub struct EventLog<W: Write> {
    out: W,
    path: Option<PathBuf>,
    header_written: bool,
    error: Option<ReportError>,
}

impl EventLog<BufWriter<File>> {
    /// Creates (or truncates) the log file, making its directory if needed, and writes the header.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, ReportError> {
        let path = path.as_ref();
        let file_error = |source| ReportError::File {
            what: "the event log",
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        let file = File::create(path).map_err(file_error)?;
        let mut log = EventLog::new(BufWriter::new(file));
        log.path = Some(path.to_path_buf());
        log.write_header()?;
        Ok(log)
    }
}

impl<W: Write> EventLog<W> {
    /// A log over any writer; the header is written before the first event.
    pub fn new(out: W) -> Self {
        Self {
            out,
            path: None,
            header_written: false,
            error: None,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn write_header(&mut self) -> Result<(), ReportError> {
        if self.header_written {
            return Ok(());
        }
        self.header_written = true;
        let header = serde_json::json!({ "event": LOG_STARTED, "version": EVENT_LOG_VERSION });
        self.write_line(&header.to_string())
    }

    fn write_event(&mut self, event: &Event) -> Result<(), ReportError> {
        self.write_header()?;
        let line = serde_json::to_string(event)?;
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &str) -> Result<(), ReportError> {
        let result = self
            .out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        result.map_err(|source| self.io_error(source))
    }

    fn io_error(&self, source: std::io::Error) -> ReportError {
        match &self.path {
            Some(path) => ReportError::File {
                what: "the event log",
                path: path.clone(),
                source,
            },
            None => ReportError::Stream {
                what: "the event log",
                source,
            },
        }
    }
}

impl<W: Write> Reporter for EventLog<W> {
    fn handle(&mut self, event: &Event) {
        // After the first failure the log is incomplete anyway; keep that first cause.
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.write_event(event) {
            self.error = Some(error);
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.write_header()?;
        self.out.flush().map_err(|source| self.io_error(source))
    }
}

/// Reads an event log back: checks the header and its version, then parses one event per line.
pub fn parse_event_log(reader: impl BufRead) -> Result<Vec<Event>, ReportError> {
    let mut lines = reader.lines().enumerate();
    let malformed = |line: usize, reason: String| ReportError::MalformedLog {
        line: line + 1,
        reason,
    };
    let stream_error = |source| ReportError::Stream {
        what: "the event log",
        source,
    };
    let Some((index, header)) = lines.next() else {
        return Err(malformed(0, "the log is empty".into()));
    };
    let header: serde_json::Value = serde_json::from_str(&header.map_err(stream_error)?)
        .map_err(|e| malformed(index, e.to_string()))?;
    if header["event"] != LOG_STARTED {
        return Err(malformed(
            index,
            format!("the first line is not a `{LOG_STARTED}` header"),
        ));
    }
    if header["version"] != EVENT_LOG_VERSION {
        return Err(malformed(
            index,
            format!(
                "version {} is not the supported version {EVENT_LOG_VERSION}",
                header["version"]
            ),
        ));
    }
    let mut events = Vec::new();
    for (index, line) in lines {
        let line = line.map_err(stream_error)?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(serde_json::from_str(&line).map_err(|e| malformed(index, e.to_string()))?);
    }
    Ok(events)
}
