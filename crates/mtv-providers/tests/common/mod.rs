//! What the adapter tests against a served source (vcsim, the lab's SOAP and oVirt sources) share:
//! the bound on a whole test.

use std::future::Future;
use std::time::Duration;

/// Every test's whole body: the sources answer in milliseconds, so this only bounds a hang.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a test's body within [`TEST_TIMEOUT`]; its value.
pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test did not finish within its bound")
}
