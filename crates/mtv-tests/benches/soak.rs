//! Soak under API faults: `mtv-tests run -m tier0 --lab-faults api-error-rate=0.05` (one API request
//! in twenty answered 500 or 503, as a busy API server does) run again and again, each as its own
//! process with the lab inside it, as a user runs it. Prints every run's exit code, wall time and
//! outcome line, then passes/runs and the wall-time median and maximum. Asserts nothing.
//!
//! Run with `cargo bench -p mtv-tests --bench soak`; `MTV_SOAK_RUNS` (default 10) sets the number of
//! runs, `MTV_SOAK_FAULTS` the fault spec (default `api-error-rate=0.05`).

use std::process::Command;
use std::time::{Duration, Instant};

struct Soaked {
    exit: Option<i32>,
    wall: Duration,
    summary: String,
}

fn run_once(faults: &str) -> Soaked {
    let results = tempfile::tempdir().expect("a results directory");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_mtv-tests"))
        .args([
            "run",
            "-m",
            "tier0",
            "--no-progress",
            "--lab-faults",
            faults,
        ])
        .arg("--results")
        .arg(results.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("mtv-tests run starts");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('='))
        .unwrap_or("(no summary line)")
        .trim_matches(|c| c == '=' || c == ' ')
        .to_string();
    Soaked {
        exit: output.status.code(),
        wall,
        summary,
    }
}

fn main() {
    let runs: usize = std::env::var("MTV_SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let faults =
        std::env::var("MTV_SOAK_FAULTS").unwrap_or_else(|_| "api-error-rate=0.05".to_string());
    println!("soak: mtv-tests run -m tier0 --lab-faults {faults}, {runs} runs");
    let mut walls = Vec::new();
    let mut passes = 0;
    for run in 1..=runs {
        let soaked = run_once(&faults);
        if soaked.exit == Some(0) {
            passes += 1;
        }
        println!(
            "run {run:>2}: exit {:?}, {:.1} s, {}",
            soaked.exit,
            soaked.wall.as_secs_f64(),
            soaked.summary
        );
        walls.push(soaked.wall);
    }
    walls.sort();
    let median = walls[walls.len() / 2];
    let max = walls.last().copied().unwrap_or_default();
    println!(
        "soak: {passes}/{runs} passed; wall time median {:.1} s, max {:.1} s",
        median.as_secs_f64(),
        max.as_secs_f64()
    );
}
