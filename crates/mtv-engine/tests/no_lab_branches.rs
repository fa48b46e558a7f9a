//! The engine has one code path for the lab and a real cluster: no file of `crates/mtv-engine/src`
//! names the lab's adapter, probes the lab's source API or carries a lab flag. (What differs between
//! targets is data the target serves: `TargetTraits`.) The behaviour itself is proven by the runs
//! against a served lab; this keeps the shortcut from coming back.

use std::path::Path;

/// Words that mean "is this the lab" in engine code.
const LAB_BRANCHES: &[&str] = &[
    "LabSource",
    "mtv_providers::lab",
    "/lab/v1",
    "is_lab",
    "session.lab",
    "input.lab",
    "lab: bool",
    "Target::Lab",
    "VsphereSource",
    "OpenShiftSource",
];

#[test]
fn no_engine_file_asks_whether_the_target_is_the_lab_or_names_an_adapter() {
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            for word in LAB_BRANCHES {
                if line.contains(word) {
                    found.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "lab branches or adapter names in the engine:\n{}",
        found.join("\n")
    );
}
