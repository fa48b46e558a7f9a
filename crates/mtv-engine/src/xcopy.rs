//! `test_check_xcopy_used` (inventory §7.4): the copy-offload populator pods report in their log
//! whether the array did the copy (`xcopyUsed=1`) or the ESXi host copied instead (`xcopyUsed=0`).
//! MTV deletes those pods soon after the copy, so their logs are captured while the migration runs,
//! then compared per VM and source datastore with what the scenario expects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};

/// The log of one populator pod, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopulateLog {
    pub pod: String,
    /// The PVC the pod fills (label `pvcName`).
    pub pvc: Option<String>,
    /// The uid of the Migration the pod works for (label `migration`).
    pub migration: Option<String>,
    pub log: String,
}

/// What a populator log says about the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XcopyReport {
    /// The last `xcopyUsed=<n>` of the log.
    Used(u8),
    /// `copy-offload failed" err="…"` before any `xcopyUsed`.
    Failed(String),
    /// The log has neither (the copy had not finished when the pod was last read).
    Unreported,
}

/// Reads the verdict of a populator log: the LAST `xcopyUsed=<digit>`, or the error of a
/// `copy-offload failed` line that comes before any of them.
pub fn xcopy_report(log: &str) -> XcopyReport {
    let mut last = None;
    for line in log.lines() {
        if last.is_none()
            && line.contains("copy-offload failed")
            && let Some(err) = quoted_field(line, "err")
        {
            return XcopyReport::Failed(err);
        }
        let mut rest = line;
        while let Some(at) = rest.find("xcopyUsed=") {
            let after = &rest[at + "xcopyUsed=".len()..];
            if let Some(digit) = after.chars().next().and_then(|c| c.to_digit(10)) {
                last = Some(digit as u8);
            }
            rest = after;
        }
    }
    last.map_or(XcopyReport::Unreported, XcopyReport::Used)
}

/// The value of `key="…"` in a klog line (escaped quotes allowed).
fn quoted_field(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("{key}=\""))? + key.len() + 2;
    let mut value = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            '"' => return Some(value),
            c => value.push(c),
        }
    }
    Some(value)
}

/// The source disk a populator log copies: `source_vmdk="[ds] path"` (or `source="[ds] path"`).
pub fn source_vmdk(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        quoted_field(line, "source_vmdk")
            .or_else(|| quoted_field(line, "source"))
            .filter(|v| v.starts_with('['))
    })
}

/// The datastore display name of a vSphere disk path `[ds] folder/file.vmdk`.
pub fn datastore_name(vmdk: &str) -> Option<&str> {
    let rest = vmdk.strip_prefix('[')?;
    rest.split_once(']').map(|(name, _)| name)
}

/// Captures the logs of the `populate-*` pods of a namespace until `stop` turns true: a watch on the
/// namespace's pods labelled `migration` re-reads a pod's log each time the pod changes (its last change
/// comes with the copy's result, moments before MTV deletes it), and the live pods are read once more
/// at the end. `watching` fires once the watch has listed the namespace, so a Migration created after
/// it cannot start a pod unseen. Returns the longest log read per pod; [`PopulateLog::migration`] tells
/// which Migration each belongs to.
pub async fn capture_populate_logs(
    client: kube::Client,
    namespace: String,
    watching: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> BTreeMap<String, PopulateLog> {
    use futures_util::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};

    let pods: kube::Api<Pod> = kube::Api::namespaced(client, &namespace);
    let selector = "migration";
    let mut logs = BTreeMap::new();
    let mut watching = Some(watching);
    let stream =
        watcher(pods.clone(), watcher::Config::default().labels(selector)).default_backoff();
    let mut stream = std::pin::pin!(stream);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    read_pod_log(&pods, &pod, &mut logs).await;
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(ready) = watching.take() {
                        let _ = ready.send(());
                    }
                }
                // Deletions, list starts and watch errors (the watcher retries) carry no log.
                Some(_) => {}
                None => break,
            },
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    // Events the watch already delivered when the stop came still carry logs worth reading.
    while let Some(Some(event)) = futures_util::FutureExt::now_or_never(stream.next()) {
        if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
            read_pod_log(&pods, &pod, &mut logs).await;
        }
    }
    if let Ok(list) = pods.list(&ListParams::default().labels(selector)).await {
        for pod in &list.items {
            read_pod_log(&pods, pod, &mut logs).await;
        }
    }
    logs
}

async fn read_pod_log(pods: &kube::Api<Pod>, pod: &Pod, logs: &mut BTreeMap<String, PopulateLog>) {
    let Some(name) = pod.metadata.name.clone() else {
        return;
    };
    if !name.starts_with("populate-") || pod.metadata.deletion_timestamp.is_some() {
        return;
    }
    // A pod gone before its log was read keeps the last log read.
    let Ok(log) = pods.logs(&name, &LogParams::default()).await else {
        return;
    };
    // A log only grows: keep the longest read.
    if logs
        .get(&name)
        .is_some_and(|previous: &PopulateLog| log.len() < previous.log.len())
    {
        return;
    }
    let label = |key: &str| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
    };
    logs.insert(
        name.clone(),
        PopulateLog {
            pod: name,
            pvc: label("pvcName"),
            migration: label("migration"),
            log,
        },
    );
}

/// A disk of a migrated VM and the xcopy result the scenario expects for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDisk {
    pub vm: String,
    /// `[ds] folder/file.vmdk`.
    pub file: String,
    pub datastore_id: String,
    pub expected: u8,
}

/// The result of the check: one line per VM and datastore seen, and the failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XcopyVerdict {
    /// `VM <vm>, datastore <id>: xcopyUsed=<n>` for every VM/datastore pair.
    pub seen: Vec<String>,
    pub failures: Vec<String>,
}

/// Compares the captured logs with the expectation, per VM and source datastore. `datastores` maps
/// display names to ids (the inventory's datastores).
pub fn verify(
    expected: &[ExpectedDisk],
    logs: &BTreeMap<String, PopulateLog>,
    datastores: &BTreeMap<String, String>,
) -> XcopyVerdict {
    struct Observed<'a> {
        pod: &'a str,
        file: Option<String>,
        datastore_id: Option<String>,
        report: XcopyReport,
    }
    let observed: Vec<Observed> = logs
        .values()
        .map(|log| {
            let file = source_vmdk(&log.log);
            let datastore_id = file.as_deref().and_then(datastore_name).map(|name| {
                datastores
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| name.to_string())
            });
            Observed {
                pod: &log.pod,
                file,
                datastore_id,
                report: xcopy_report(&log.log),
            }
        })
        .collect();

    // Group the expected disks per (VM, datastore), keeping the scenario's order.
    let mut groups: Vec<((String, String), Vec<&ExpectedDisk>)> = Vec::new();
    for disk in expected {
        let key = (disk.vm.clone(), disk.datastore_id.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, disks)) => disks.push(disk),
            None => groups.push((key, vec![disk])),
        }
    }

    let mut verdict = XcopyVerdict::default();
    for ((vm, datastore), disks) in groups {
        let expected_value = disks[0].expected;
        let pods: Vec<&Observed> = observed
            .iter()
            .filter(|o| {
                o.datastore_id.as_deref() == Some(datastore.as_str())
                    && disks
                        .iter()
                        .any(|d| o.file.as_deref() == Some(d.file.as_str()))
            })
            .collect();
        if pods.is_empty() {
            verdict.failures.push(format!(
                "VM {vm}, datastore {datastore}: expected xcopyUsed={expected_value}, but no populate pod log was captured for its disks"
            ));
            continue;
        }
        let mut actual = Vec::new();
        for pod in &pods {
            match &pod.report {
                XcopyReport::Used(value) => {
                    actual.push(*value);
                    if *value != expected_value {
                        verdict.failures.push(format!(
                            "VM {vm}, datastore {datastore}: expected xcopyUsed={expected_value}, got xcopyUsed={value} (pod {}, disk {})",
                            pod.pod,
                            pod.file.as_deref().unwrap_or("?")
                        ));
                    }
                }
                XcopyReport::Failed(err) => verdict.failures.push(format!(
                    "VM {vm}, datastore {datastore}: expected xcopyUsed={expected_value}, but copy-offload failed: {err} (pod {})",
                    pod.pod
                )),
                XcopyReport::Unreported => verdict.failures.push(format!(
                    "VM {vm}, datastore {datastore}: expected xcopyUsed={expected_value}, but pod {} never reported xcopyUsed",
                    pod.pod
                )),
            }
        }
        actual.sort_unstable();
        actual.dedup();
        let shown: Vec<String> = actual.iter().map(u8::to_string).collect();
        verdict.seen.push(format!(
            "VM {vm}, datastore {datastore}: xcopyUsed={}",
            if shown.is_empty() {
                "none".to_string()
            } else {
                shown.join("/")
            }
        ));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONE: &str = concat!(
        "I1125 03:00:00.000000       1 populate.go:61] \"Starting vSphere XCOPY volume populator\" source_vmdk=\"[xcopy-datastore-1] web/web.vmdk\" target_pvc=\"ns/pvc-1\"\n",
        "I1125 03:00:01.000000       1 populate.go:140] \"Copy progress\" source_vmdk=\"[xcopy-datastore-1] web/web.vmdk\" progress=50\n",
        "I1125 03:00:02.000000       1 populate.go:188] \"Populate finished\" source_vmdk=\"[xcopy-datastore-1] web/web.vmdk\" target_pvc=\"ns/pvc-1\" xcopyUsed=1\n",
    );

    fn logs(entries: &[(&str, &str)]) -> BTreeMap<String, PopulateLog> {
        entries
            .iter()
            .map(|(pod, log)| {
                (
                    pod.to_string(),
                    PopulateLog {
                        pod: pod.to_string(),
                        pvc: None,
                        migration: None,
                        log: log.to_string(),
                    },
                )
            })
            .collect()
    }

    fn datastores() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "xcopy-datastore-1".to_string(),
                "datastore-xcopy-1".to_string(),
            ),
            (
                "nonxcopy-datastore-1".to_string(),
                "datastore-nonxcopy-1".to_string(),
            ),
        ])
    }

    /// A disk of VM `web`: `<vmdk>` in folder `web` of the datastore named `datastore_name`, whose
    /// inventory id is `datastore_id`, expected to be copied with `xcopyUsed=<expected>`.
    fn web_disk(
        datastore_name: &str,
        vmdk: &str,
        datastore_id: &str,
        expected: u8,
    ) -> ExpectedDisk {
        ExpectedDisk {
            vm: "web".into(),
            file: format!("[{datastore_name}] web/{vmdk}"),
            datastore_id: datastore_id.into(),
            expected,
        }
    }

    #[test]
    fn the_last_xcopy_used_wins() {
        assert_eq!(xcopy_report(DONE), XcopyReport::Used(1));
        let twice = format!("{DONE}I1125 x.go:1] \"retry\" xcopyUsed=0\n");
        assert_eq!(xcopy_report(&twice), XcopyReport::Used(0));
        assert_eq!(
            xcopy_report("I1125 a.go:1] \"Copy progress\" progress=3\n"),
            XcopyReport::Unreported
        );
    }

    #[test]
    fn a_failure_before_any_result_is_reported_with_its_error() {
        let log = "E1125 populate.go:90] \"copy-offload failed\" err=\"didn't find any host with id host-9\"\n";
        assert_eq!(
            xcopy_report(log),
            XcopyReport::Failed("didn't find any host with id host-9".into())
        );
        let after = format!("{DONE}{log}");
        assert_eq!(xcopy_report(&after), XcopyReport::Used(1));
    }

    #[test]
    fn the_datastore_comes_from_source_vmdk() {
        let file = source_vmdk(DONE).unwrap();
        assert_eq!(file, "[xcopy-datastore-1] web/web.vmdk");
        assert_eq!(datastore_name(&file), Some("xcopy-datastore-1"));
        assert_eq!(
            source_vmdk("I1 a.go:1] \"x\" source=\"[ds 2] a/b.vmdk\"\n").as_deref(),
            Some("[ds 2] a/b.vmdk")
        );
    }

    #[test]
    fn per_datastore_expectations_pass_when_the_logs_agree() {
        let fallback = DONE
            .replace("xcopy-datastore-1", "nonxcopy-datastore-1")
            .replace("web.vmdk", "web_1.vmdk")
            .replace("xcopyUsed=1", "xcopyUsed=0");
        let verdict = verify(
            &[
                web_disk("xcopy-datastore-1", "web.vmdk", "datastore-xcopy-1", 1),
                web_disk(
                    "nonxcopy-datastore-1",
                    "web_1.vmdk",
                    "datastore-nonxcopy-1",
                    0,
                ),
            ],
            &logs(&[("populate-a", DONE), ("populate-b", &fallback)]),
            &datastores(),
        );
        assert!(verdict.failures.is_empty(), "{verdict:?}");
        assert_eq!(
            verdict.seen,
            [
                "VM web, datastore datastore-xcopy-1: xcopyUsed=1",
                "VM web, datastore datastore-nonxcopy-1: xcopyUsed=0"
            ]
        );
    }

    #[test]
    fn a_wrong_expectation_names_the_vm_the_datastore_and_both_values() {
        let verdict = verify(
            &[web_disk(
                "xcopy-datastore-1",
                "web.vmdk",
                "datastore-xcopy-1",
                0,
            )],
            &logs(&[("populate-a", DONE)]),
            &datastores(),
        );
        assert_eq!(
            verdict.failures,
            [
                "VM web, datastore datastore-xcopy-1: expected xcopyUsed=0, got xcopyUsed=1 (pod populate-a, disk [xcopy-datastore-1] web/web.vmdk)"
            ]
        );
    }

    #[test]
    fn every_datastore_must_be_seen() {
        let verdict = verify(
            &[
                web_disk("xcopy-datastore-1", "web.vmdk", "datastore-xcopy-1", 1),
                web_disk("xcopy-datastore-2", "web_1.vmdk", "datastore-xcopy-2", 1),
            ],
            &logs(&[("populate-a", DONE)]),
            &datastores(),
        );
        assert_eq!(verdict.failures.len(), 1);
        assert!(
            verdict.failures[0].contains("datastore-xcopy-2")
                && verdict.failures[0].contains("no populate pod log"),
            "{verdict:?}"
        );
    }
}
