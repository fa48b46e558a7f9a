//! How long listing the whole catalog takes: in process (load + collect) and as a user sees it
//! (the `mtv-tests list` process, start to exit). Prints numbers; asserts nothing.
//!
//! Run with `cargo bench -p mtv-tests --bench list`.

use std::process::Command;
use std::time::{Duration, Instant};

use mtv_catalog::Catalog;
use mtv_catalog::collect::{CopyOffloadGate, GateContext, Selection, collect};

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    (samples[0], median, p95)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let gate = GateContext {
        provider_type: mtv_api::ProviderType::Vsphere,
        profile_name: "vsphere-copy-offload".into(),
        remote_ocp_cluster: Some("lab".into()),
        mtv_version: None,
        copyoffload: CopyOffloadGate::Ready,
    };
    let selection = Selection {
        markers: None,
        keywords: None,
        scenarios: None,
    };

    let iterations = 200;
    let mut in_process = Vec::with_capacity(iterations);
    let mut items = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        let catalog = Catalog::builtin().expect("the built-in catalog loads");
        let collection = collect(&catalog, &selection, &gate).expect("collection succeeds");
        in_process.push(start.elapsed());
        items = collection.items.len();
    }
    let (min, median, p95) = stats(in_process);
    println!(
        "catalog load + collect (whole catalog, {items} items, {iterations} runs): min {} median {} p95 {}",
        ms(min),
        ms(median),
        ms(p95)
    );

    let binary = env!("CARGO_BIN_EXE_mtv-tests");
    let runs = 30;
    let mut process = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let output = Command::new(binary)
            .args([
                "list",
                "--source-provider",
                "vsphere-copy-offload",
                "--tc",
                "remote_ocp_cluster:lab",
            ])
            .env_remove("MTV_PROVIDERS_FILE")
            .env_remove("PROVIDERS_JSON_PATH")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("mtv-tests runs");
        process.push(start.elapsed());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (min, median, p95) = stats(process);
    println!(
        "`mtv-tests list` process, whole catalog ({runs} runs): min {} median {} p95 {}",
        ms(min),
        ms(median),
        ms(p95)
    );
}
