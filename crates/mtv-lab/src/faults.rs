//! Fault injection. The spec is a comma-separated list of `key=value` items:
//!
//! | item | effect | implemented in |
//! |---|---|---|
//! | `api-error-rate=0.05` | that fraction of resource requests fail: reads with 503 `ServiceUnavailable`, writes with 500 `InternalError` | API server |
//! | `latency-ms=20` | every resource request waits this long first | API server |
//! | `watch-drop-secs=30` | every watch stream is closed after this many seconds | API server |
//! | `vm-fail=<vm>@<step>` (repeatable) | every VM whose name contains `<vm>` fails at the named pipeline step | Forklift controllers |
//! | `provider-conn-fail=<name>` (repeatable) | the named Provider's connection test fails | Forklift controllers (not yet) |
//!
//! Discovery, OpenAPI and `/version` are never faulted, so clients can always start.

use std::time::Duration;

use crate::error::LabError;

/// A VM that must fail at a pipeline step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFault {
    pub vm: String,
    pub step: String,
}

/// Parsed `--faults`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub api_error_rate: f64,
    pub latency: Option<Duration>,
    pub watch_drop_after: Option<Duration>,
    pub vm_failures: Vec<VmFault>,
    pub provider_connection_failures: Vec<String>,
}

impl FaultSpec {
    /// Parses the `--faults` syntax (empty = no faults).
    pub fn parse(spec: &str) -> Result<Self, LabError> {
        let mut out = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| LabError::Faults(format!("{item:?} is not key=value")))?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |why: &str| LabError::Faults(format!("{key}={value}: {why}"));
            match key {
                "api-error-rate" => {
                    let rate: f64 = value.parse().map_err(|_| bad("not a number"))?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(bad("must be between 0 and 1"));
                    }
                    out.api_error_rate = rate;
                }
                "latency-ms" => {
                    let ms: u64 = value
                        .parse()
                        .map_err(|_| bad("not a whole number of milliseconds"))?;
                    out.latency = Some(Duration::from_millis(ms));
                }
                "watch-drop-secs" => {
                    let secs: f64 = value.parse().map_err(|_| bad("not a number of seconds"))?;
                    if !(secs > 0.0 && secs.is_finite()) {
                        return Err(bad("must be positive"));
                    }
                    out.watch_drop_after = Some(Duration::from_secs_f64(secs));
                }
                "vm-fail" => {
                    let (vm, step) = value
                        .split_once('@')
                        .ok_or_else(|| bad("expected <vm>@<step>"))?;
                    if vm.is_empty() || step.is_empty() {
                        return Err(bad("expected <vm>@<step>"));
                    }
                    out.vm_failures.push(VmFault {
                        vm: vm.to_string(),
                        step: step.to_string(),
                    });
                }
                "provider-conn-fail" => {
                    if value.is_empty() {
                        return Err(bad("expected a provider name"));
                    }
                    out.provider_connection_failures.push(value.to_string());
                }
                other => {
                    return Err(LabError::Faults(format!(
                        "unknown fault {other:?} (known: api-error-rate, latency-ms, watch-drop-secs, vm-fail, provider-conn-fail)"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// True when the VM has a fault at that step. `<vm>` matches every VM whose name contains it, so a
    /// fault can name the source VM a scenario clones (clone names carry a per-session suffix).
    pub fn vm_fails_at(&self, vm: &str, step: &str) -> bool {
        self.vm_failures
            .iter()
            .any(|f| f.step == step && vm.contains(f.vm.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_item() {
        let f = FaultSpec::parse(
            "api-error-rate=0.05, latency-ms=20,watch-drop-secs=30,vm-fail=rhel8@DiskTransfer,vm-fail=win@Cutover,provider-conn-fail=vsphere",
        )
        .unwrap();
        assert_eq!(f.api_error_rate, 0.05);
        assert_eq!(f.latency, Some(Duration::from_millis(20)));
        assert_eq!(f.watch_drop_after, Some(Duration::from_secs(30)));
        assert!(f.vm_fails_at("rhel8", "DiskTransfer"));
        assert!(f.vm_fails_at("win", "Cutover"));
        assert!(f.vm_fails_at("auto-ab12-rhel8-ceph-rbd-cold-x1y2", "DiskTransfer"));
        assert!(!f.vm_fails_at("rhel8", "Cutover"));
        assert_eq!(f.provider_connection_failures, vec!["vsphere"]);
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "api-error-rate=2",
            "latency-ms=fast",
            "vm-fail=novm",
            "explode=1",
            "watch-drop-secs=0",
            "noequals",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
