//! A lab controller's loop on a task of its own (the simulated Forklift, CDI), and how it is stopped.

use std::time::Duration;

use tokio::task::JoinHandle;

/// A running controller loop: it ends when `shutdown` turns true.
pub struct ControllerHandle {
    shutdown: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ControllerHandle {
    /// The handle of `task`, a loop that watches the receiving side of `shutdown`.
    pub fn new(shutdown: tokio::sync::watch::Sender<bool>, task: JoinHandle<()>) -> Self {
        Self { shutdown, task }
    }

    /// Stops the controller and waits for its loop to end (aborting it after 5 s).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}
