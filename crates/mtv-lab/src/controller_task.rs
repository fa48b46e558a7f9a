//! A lab controller's loop on a task of its own (the simulated Forklift, CDI), and how it is stopped.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;

use crate::store::StoreEvent;

/// A controller that reconciles what the store's events mark.
pub trait Reconciler {
    /// Marks everything, for a start and for a receiver that lagged and lost events.
    fn mark_all(&mut self);
    /// Marks what one event touches.
    fn on_event(&mut self, event: &StoreEvent);
}

/// How long a controller loop sleeps until its next deadline (an hour without one: events wake it).
pub fn time_until(deadline: Option<Instant>) -> Duration {
    deadline
        .map(|d| d.saturating_duration_since(Instant::now()))
        .unwrap_or(Duration::from_secs(3600))
}

/// Hands one received event to `controller`; `false` once the store's channel is closed.
pub fn feed(controller: &mut impl Reconciler, event: Result<Arc<StoreEvent>, RecvError>) -> bool {
    match event {
        Ok(event) => controller.on_event(&event),
        Err(RecvError::Lagged(_)) => controller.mark_all(),
        Err(RecvError::Closed) => return false,
    }
    true
}

/// Hands `controller` the events already queued, so that one reconcile round sees them all.
pub fn feed_queued(controller: &mut impl Reconciler, events: &mut Receiver<Arc<StoreEvent>>) {
    loop {
        match events.try_recv() {
            Ok(event) => controller.on_event(&event),
            Err(TryRecvError::Lagged(_)) => controller.mark_all(),
            Err(_) => break,
        }
    }
}

/// Moves the keys whose requeue time has come by `now` from `requeue` into `dirty`, to be
/// reconciled (the Forklift and CDI controllers alike).
pub fn requeue_due<K: Clone + Ord + Hash>(
    requeue: &mut HashMap<K, Instant>,
    dirty: &mut BTreeSet<K>,
    now: Instant,
) {
    requeue.retain(|key, due| {
        if *due <= now {
            dirty.insert(key.clone());
        }
        *due > now
    });
}

/// Requeues `key` after `after` (an earlier requeue stands), or forgets it when the reconcile asked
/// for none (the Forklift and CDI controllers alike).
pub fn requeue_after<K: Eq + Hash>(
    requeue: &mut HashMap<K, Instant>,
    key: K,
    after: Option<Duration>,
) {
    match after {
        Some(delay) => {
            let at = Instant::now() + delay;
            let entry = requeue.entry(key).or_insert(at);
            *entry = (*entry).min(at);
        }
        None => {
            requeue.remove(&key);
        }
    }
}

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
