use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// Readers never see a half-written report: `write` fills a file beside `path`, which is synced and
/// then renamed over it. The directory is created if needed.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".to_string());
    let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut out = BufWriter::new(File::create(&temporary)?);
        write(&mut out)?;
        let file = out.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
