//! `mtv-tests run` against a `mtv-tests lab serve` process whose API server misbehaves as busy or
//! failing real ones do: one request in five failing (the run passes, or fails naming the API errors,
//! and leaves nothing behind either way), and the server killed mid-run (the run names the server,
//! fails the running steps with that cause, reports what teardown could not delete, and ends).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod served_lab;
use served_lab::{ServedLab, session_objects};

const BIN: &str = env!("CARGO_BIN_EXE_mtv-tests");

/// Kills a child process (the served lab, a run) when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mtv-tests lab serve` with `faults`, at real time, with its kubeconfig and providers file.
fn serve_lab(faults: &str) -> ServedLab {
    ServedLab::start_for_runs("1", faults)
}

/// The API server URL the lab's kubeconfig names.
fn server_of(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("server:"))
        .map(|server| server.trim().trim_matches('"').to_string())
        .expect("the kubeconfig names a server")
}

/// `mtv-tests run` in `dir` against the served lab and its profiles, its stdout piped.
fn start_run(dir: &Path, lab: &ServedLab, extra: &[&str]) -> KillOnDrop {
    KillOnDrop(
        Command::new(BIN)
            .args(["run", "-m", "tier0", "--no-progress", "--results", "out"])
            .arg("--kubeconfig")
            .arg(&lab.kubeconfig)
            .args(lab.profile_args(&[]))
            .args(extra)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "400")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mtv-tests run starts"),
    )
}

/// Every stdout line of `run`, as it comes, on a channel.
fn stdout_lines(run: &mut KillOnDrop) -> mpsc::Receiver<String> {
    let stdout = run.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `run` to exit; a run still going after `limit` is a hang, and the test fails.
fn exit_code(run: &mut KillOnDrop, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = run.0.try_wait().expect("the run can be waited for") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stderr_of(run: &mut KillOnDrop) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = run.0.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_request_in_five_failing_a_run_passes_or_names_the_api_errors_and_leaves_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let lab = serve_lab("api-error-rate=0.2");
    let kubeconfig = lab.kubeconfig.clone();
    let (namespaces_before, _) = session_objects(&kubeconfig).await;
    let mut run = start_run(dir.path(), &lab, &[]);
    let lines = stdout_lines(&mut run);
    let code = exit_code(&mut run, Duration::from_secs(600));
    let out: Vec<String> = lines.try_iter().collect();
    let out = out.join("\n");
    let err = stderr_of(&mut run);
    match code {
        Some(0) => assert!(out.contains("25 passed"), "{out}\n{err}"),
        Some(1) => assert!(
            out.contains("api-error-rate")
                || out.contains("ServiceUnavailable")
                || out.contains("InternalError"),
            "a failure must name the API errors:\n{out}\n{err}"
        ),
        other => panic!("exit {other:?}: neither a pass nor a named failure\n{out}\n{err}"),
    }
    let (namespaces_after, labelled) = session_objects(&kubeconfig).await;
    assert_eq!(namespaces_after, namespaces_before, "{out}");
    assert!(labelled.is_empty(), "left behind: {labelled:?}\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_killed_mid_run_is_named_the_running_steps_fail_with_that_cause_and_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = serve_lab("");
    let server = server_of(&lab.kubeconfig);
    let mut run = start_run(dir.path(), &lab, &["--set", "api_unreachable_timeout=6"]);
    let lines = stdout_lines(&mut run);
    let mut out = Vec::new();
    // Mid-run: a Plan is Ready, so at least one migration is about to start or running.
    for line in lines.iter() {
        let planned = line.contains("test_create_plan PASSED");
        out.push(line);
        if planned {
            break;
        }
    }
    assert!(
        out.last()
            .is_some_and(|l| l.contains("test_create_plan PASSED")),
        "the run ended before any Plan was Ready:\n{}\n{}",
        out.join("\n"),
        stderr_of(&mut run)
    );
    lab.kill();
    // Generous: a hang fails the test; the bound itself is the 6 s set above plus teardown's tries.
    let code = exit_code(&mut run, Duration::from_secs(300));
    out.extend(lines.try_iter());
    let out = out.join("\n");
    let err = stderr_of(&mut run);
    assert_ne!(code, Some(0), "{out}\n{err}");
    assert!(code.is_some(), "the run must exit, not die by a signal");
    // Said while it was still trying: which server, and what waited on it.
    let notice = out
        .lines()
        .find(|l| l.starts_with("warning: the API server"))
        .unwrap_or_else(|| panic!("no notice:\n{out}\n{err}"));
    assert!(notice.contains(&server), "{notice}");
    assert!(notice.contains("has not answered"), "{notice}");
    assert!(notice.contains("waiting for:"), "{notice}");
    // The running steps failed with that cause, naming the server and the bound.
    let cause = format!("the API server {server} has not answered");
    let failed: Vec<&str> = out
        .lines()
        .filter(|l| (l.contains(" FAILED") || l.contains(" ERROR")) && l.contains(&cause))
        .collect();
    assert!(!failed.is_empty(), "no step failed with the cause:\n{out}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains("gave up after api_unreachable_timeout (6s)")),
        "{failed:#?}"
    );
    // Teardown could not delete what the run made, and says so.
    assert!(out.contains("teardown leftovers"), "{out}\n{err}");
}

#[test]
fn settings_lists_api_unreachable_timeout_with_its_default_and_takes_a_new_value() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |extra: &[&str]| {
        let output = Command::new(BIN)
            .args(["settings", "--format", "json"])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .expect("mtv-tests settings runs");
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    assert_eq!(settings(&[])["api_unreachable_timeout"], 180);
    assert_eq!(
        settings(&["--set", "api_unreachable_timeout=6"])["api_unreachable_timeout"],
        6
    );
    let human = Command::new(BIN)
        .arg("settings")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("api_unreachable_timeout") && l.contains("180")),
        "{text}"
    );
}
