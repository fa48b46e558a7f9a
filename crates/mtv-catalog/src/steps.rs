//! The incremental steps a scenario expands into: StorageMap -> NetworkMap -> Plan -> migrate ->
//! validate, with the copy-offload `test_check_xcopy_used` step before the validation.

use std::fmt;

use serde::Serialize;

use crate::model::{HookStep, PlanConfig};

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    CreateSnapshotsAndDataMarker,
    CreateStorageMap,
    CreateNetworkMap,
    CreatePlan,
    MigrateVms,
    CheckXcopyUsed,
    CheckVms,
    CheckDataIntegrity,
}

impl StepKind {
    /// The pytest method name, which is also the last part of the item id.
    pub fn test_name(self) -> &'static str {
        match self {
            StepKind::CreateSnapshotsAndDataMarker => "test_create_snapshots_and_data_marker",
            StepKind::CreateStorageMap => "test_create_storagemap",
            StepKind::CreateNetworkMap => "test_create_networkmap",
            StepKind::CreatePlan => "test_create_plan",
            StepKind::MigrateVms => "test_migrate_vms",
            StepKind::CheckXcopyUsed => "test_check_xcopy_used",
            StepKind::CheckVms => "test_check_vms",
            StepKind::CheckDataIntegrity => "test_check_data_integrity",
        }
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.test_name())
    }
}

/// What a step must observe to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepExpectation {
    /// The ordinary outcome: the object is Ready, the migration Succeeded, the checks hold.
    Succeed,
    /// The migration must fail, every VM at this pipeline step (hook expected-failure flow).
    FailAtStep { step: HookStep },
    /// The migration must fail, anywhere (`expected_migration_result: fail` without a failing hook).
    Fail,
    /// Validation runs on what the failed migration retained (post-hook failure leaves the VMs).
    CheckRetained,
    /// Validation is skipped because the migration is expected to fail before anything was created.
    SkippedAfterPreHookFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    pub kind: StepKind,
    pub expectation: StepExpectation,
}

/// The steps of a scenario, in order.
pub fn steps_for(config: &PlanConfig) -> Vec<Step> {
    let succeed = |kind| Step {
        kind,
        expectation: StepExpectation::Succeed,
    };
    // Copy-offload snapshot scenarios write a data marker before the snapshots and read it back after.
    let snapshot_flow = config.copyoffload
        && config
            .virtual_machines
            .iter()
            .any(|vm| vm.snapshots.unwrap_or(0) > 0);
    let mut steps = Vec::new();
    if snapshot_flow {
        steps.push(succeed(StepKind::CreateSnapshotsAndDataMarker));
    }
    steps.extend([
        succeed(StepKind::CreateStorageMap),
        succeed(StepKind::CreateNetworkMap),
        succeed(StepKind::CreatePlan),
    ]);
    let failure_step = config.expected_failure_step();
    steps.push(Step {
        kind: StepKind::MigrateVms,
        expectation: match failure_step {
            Some(step) => StepExpectation::FailAtStep { step },
            None if config.expects_migration_failure() => StepExpectation::Fail,
            None => StepExpectation::Succeed,
        },
    });
    if config.copyoffload {
        steps.push(succeed(StepKind::CheckXcopyUsed));
    }
    steps.push(Step {
        kind: StepKind::CheckVms,
        expectation: match failure_step {
            Some(HookStep::PreHook) => StepExpectation::SkippedAfterPreHookFailure,
            Some(HookStep::PostHook) => StepExpectation::CheckRetained,
            None => StepExpectation::Succeed,
        },
    });
    if snapshot_flow {
        steps.push(succeed(StepKind::CheckDataIntegrity));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExpectedResult, HookConfig, VmConfig};

    fn config() -> PlanConfig {
        PlanConfig {
            virtual_machines: vec![VmConfig {
                name: "mtv-tests-rhel8".into(),
                ..VmConfig::default()
            }],
            ..PlanConfig::default()
        }
    }

    /// A hook of the default playbook expected to end as `expected`.
    fn hook(expected: ExpectedResult) -> Option<HookConfig> {
        Some(HookConfig {
            expected_result: Some(expected),
            playbook_base64: None,
            aap_job_template_id: None,
        })
    }

    fn names(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(|s| s.kind.test_name()).collect()
    }

    #[test]
    fn base_flow_has_five_steps() {
        let steps = steps_for(&config());
        assert_eq!(
            names(&steps),
            [
                "test_create_storagemap",
                "test_create_networkmap",
                "test_create_plan",
                "test_migrate_vms",
                "test_check_vms"
            ]
        );
        assert!(
            steps
                .iter()
                .all(|s| s.expectation == StepExpectation::Succeed)
        );
    }

    #[test]
    fn copy_offload_checks_xcopy_before_the_vms() {
        let mut c = config();
        c.copyoffload = true;
        let steps = steps_for(&c);
        assert_eq!(steps[4].kind, StepKind::CheckXcopyUsed);
        assert_eq!(steps[5].kind, StepKind::CheckVms);
    }

    #[test]
    fn copy_offload_snapshots_bracket_the_flow_with_the_data_marker() {
        let mut c = config();
        c.copyoffload = true;
        c.virtual_machines[0].snapshots = Some(2);
        let steps = steps_for(&c);
        assert_eq!(
            steps.first().map(|s| s.kind),
            Some(StepKind::CreateSnapshotsAndDataMarker)
        );
        assert_eq!(
            steps.last().map(|s| s.kind),
            Some(StepKind::CheckDataIntegrity)
        );
        assert_eq!(steps.len(), 8);
    }

    #[test]
    fn post_hook_failure_still_checks_the_retained_vms() {
        let mut c = config();
        c.pre_hook = hook(ExpectedResult::Succeed);
        c.post_hook = hook(ExpectedResult::Fail);
        c.expected_migration_result = Some(ExpectedResult::Fail);
        let steps = steps_for(&c);
        assert_eq!(
            steps[3].expectation,
            StepExpectation::FailAtStep {
                step: HookStep::PostHook
            }
        );
        assert_eq!(steps[4].expectation, StepExpectation::CheckRetained);
    }

    #[test]
    fn pre_hook_failure_skips_validation() {
        let mut c = config();
        c.pre_hook = hook(ExpectedResult::Fail);
        let steps = steps_for(&c);
        assert_eq!(
            steps[4].expectation,
            StepExpectation::SkippedAfterPreHookFailure
        );
    }
}
