//! The exit codes of `mtv-tests`, defined once: the engine decides a run's, the CLI adds the usage
//! and empty-selection ones, the reports say what each means.

/// Every test passed (skips and expected failures allowed) and teardown left nothing behind.
pub const EXIT_OK: u8 = 0;
/// A test failed or errored.
pub const EXIT_TEST_FAILED: u8 = 1;
/// Usage or configuration error: the run never started.
pub const EXIT_USAGE: u8 = 2;
/// No test failed, but teardown left resources behind.
pub const EXIT_LEFTOVERS: u8 = 3;
/// pytest's code when a selection collects no test: `-m`/`-k` deselected every item.
pub const EXIT_NOTHING_SELECTED: u8 = 5;
/// Stopped by SIGHUP (128 + 1): like Ctrl-C, teardown ran and the reports were written.
pub const EXIT_HANGUP: u8 = 129;
/// Interrupted by Ctrl-C (SIGINT, 128 + 2).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15), as CI systems cancel a job: like Ctrl-C.
pub const EXIT_TERMINATED: u8 = 143;

/// What an exit code of `mtv-tests run` means, in one phrase.
pub fn exit_meaning(code: u8) -> &'static str {
    match code {
        EXIT_OK => "every test passed (skips and expected failures allowed), nothing left behind",
        EXIT_TEST_FAILED => "a test failed or errored",
        EXIT_USAGE => "usage or configuration error",
        EXIT_LEFTOVERS => "no test failed, but teardown left resources behind",
        EXIT_NOTHING_SELECTED => "the selection collected no test",
        EXIT_INTERRUPTED => "interrupted (Ctrl-C)",
        EXIT_HANGUP => "stopped by SIGHUP",
        EXIT_TERMINATED => "stopped by SIGTERM",
        _ => "unknown exit code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_explained() {
        let codes = [
            EXIT_OK,
            EXIT_TEST_FAILED,
            EXIT_USAGE,
            EXIT_LEFTOVERS,
            EXIT_NOTHING_SELECTED,
            EXIT_HANGUP,
            EXIT_INTERRUPTED,
            EXIT_TERMINATED,
        ];
        let distinct: std::collections::BTreeSet<u8> = codes.iter().copied().collect();
        assert_eq!(distinct.len(), codes.len());
        for code in codes {
            assert_ne!(exit_meaning(code), "unknown exit code", "{code}");
        }
    }
}
