//! What the whole catalog costs on the embedded lab: `mtv-tests run` with no marker, for every built-in
//! profile, at `-j 1` and at `-j 8`, each as its own process (the lab runs inside it, as a user runs it).
//! Per run: wall time, the process's peak RSS (its `VmHWM`, read while it runs), and the outcome line.
//! Then the totals per `-j`. Prints numbers; asserts nothing.
//!
//! Run with `cargo bench -p mtv-tests --bench catalog`; `MTV_BENCH_LAB_SPEED` changes the lab speed
//! (default 1, what `mtv-tests run` uses).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const JOBS: [u32; 2] = [1, 8];
/// How often the child's high-water mark is read.
const POLL: Duration = Duration::from_millis(20);

/// One `mtv-tests run` process.
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
    summary: String,
    exit: Option<i32>,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

fn run_catalog(profile: &str, jobs: u32, speed: &str) -> Measured {
    let results = tempfile::tempdir().expect("a results directory");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mtv-tests"))
        .args(["run", "--source-provider", profile, "--no-progress"])
        .args(["-j", &jobs.to_string(), "--lab-speed", speed])
        // The remote scenarios run against the lab as their remote cluster.
        .args(["--tc", "remote_ocp_cluster:lab", "--results"])
        .arg(results.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("`mtv-tests run` starts");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        match child.try_wait().expect("the run can be polled") {
            Some(status) => break status,
            None => std::thread::sleep(POLL),
        }
    };
    let wall = started.elapsed();
    let output = reader.join().unwrap_or_default();
    let summary = output
        .lines()
        .rev()
        .find(|line| line.contains(" in ") && line.starts_with('='))
        .map(|line| line.trim_matches(|c| c == '=' || c == ' ').to_string())
        .unwrap_or_else(|| "no summary".into());
    Measured {
        wall,
        peak_rss_kib: peak,
        summary,
        exit: status.code(),
    }
}

fn main() {
    let speed = std::env::var("MTV_BENCH_LAB_SPEED").unwrap_or_else(|_| "1".into());
    let providers = mtv_config::ProvidersFile::builtin();
    let profiles: Vec<String> = providers.profiles.keys().cloned().collect();
    println!(
        "whole catalog, every built-in profile, lab speed {speed}; one process per run (harness and lab)"
    );
    for jobs in JOBS {
        let mut total = Duration::ZERO;
        let mut peak = 0;
        for profile in &profiles {
            let m = run_catalog(profile, jobs, &speed);
            total += m.wall;
            peak = peak.max(m.peak_rss_kib);
            println!(
                "  -j {jobs:<2} {profile:<22} {:>7.2} s  peak RSS {:>6.1} MiB  exit {}  {}",
                m.wall.as_secs_f64(),
                m.peak_rss_kib as f64 / 1024.0,
                m.exit.map_or("signal".into(), |c| c.to_string()),
                m.summary
            );
        }
        println!(
            "  -j {jobs:<2} all profiles           {:>7.2} s  peak RSS {:>6.1} MiB (largest run)",
            total.as_secs_f64(),
            peak as f64 / 1024.0
        );
    }
}
