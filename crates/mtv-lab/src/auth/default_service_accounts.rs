//! The controller manager's ServiceAccount controller: every namespace gets a `default` ServiceAccount
//! as it is created, and gets it back if it is deleted while the namespace is still active.

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::controller_task::ControllerHandle;
use crate::registry;
use crate::store::{EventType, Store, StoreEvent};

/// The ServiceAccount every namespace holds.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Gives the namespaces that exist their `default` ServiceAccount now, then keeps doing so for new
/// ones on a task of its own.
pub fn spawn_default_service_accounts(store: Store) -> ControllerHandle {
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let mut events = store.subscribe();
    ensure_everywhere(&store);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                event = events.recv() => match event {
                    Ok(event) => on_event(&store, &event),
                    Err(broadcast::error::RecvError::Lagged(_)) => ensure_everywhere(&store),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    });
    ControllerHandle::new(shutdown, task)
}

fn on_event(store: &Store, event: &StoreEvent) {
    let is = |resource: &registry::ResourceType| std::ptr::eq(event.resource, resource);
    match event.event_type {
        EventType::Added | EventType::Modified if is(&registry::NAMESPACE) => {
            ensure_default(store, event.name());
        }
        EventType::Deleted
            if is(&registry::SERVICE_ACCOUNT) && event.name() == DEFAULT_SERVICE_ACCOUNT =>
        {
            if let Some(namespace) = event.namespace() {
                ensure_default(store, namespace);
            }
        }
        _ => {}
    }
}

fn ensure_everywhere(store: &Store) {
    let namespaces = store
        .list(&registry::NAMESPACE, None, &Default::default())
        .map(|list| list.items)
        .unwrap_or_default();
    for namespace in namespaces {
        if let Some(name) = namespace.pointer("/metadata/name").and_then(Value::as_str) {
            ensure_default(store, name);
        }
    }
}

/// Creates `default` in an active namespace that lacks it (a terminating one gets nothing back).
fn ensure_default(store: &Store, namespace: &str) {
    let Ok(object) = store.get(&registry::NAMESPACE, None, namespace) else {
        return;
    };
    let terminating = object.pointer("/metadata/deletionTimestamp").is_some()
        || object.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating
        || store
            .get(
                &registry::SERVICE_ACCOUNT,
                Some(namespace),
                DEFAULT_SERVICE_ACCOUNT,
            )
            .is_ok()
    {
        return;
    }
    // A concurrent create (AlreadyExists) or the namespace starting to terminate are both fine.
    let _ = store.create(
        &registry::SERVICE_ACCOUNT,
        Some(namespace),
        json!({"metadata": {"name": DEFAULT_SERVICE_ACCOUNT}}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn new_namespaces_get_a_default_service_account_and_keep_it() {
        let store = Store::new(100);
        store
            .create(
                &registry::NAMESPACE,
                None,
                json!({"metadata": {"name": "early"}}),
            )
            .unwrap();
        let controller = spawn_default_service_accounts(store.clone());
        let present = |namespace: &str| {
            store
                .get(&registry::SERVICE_ACCOUNT, Some(namespace), "default")
                .is_ok()
        };
        assert!(present("early"), "a namespace that existed at start");
        store
            .create(
                &registry::NAMESPACE,
                None,
                json!({"metadata": {"name": "late"}}),
            )
            .unwrap();
        wait_until(|| present("late")).await;
        store
            .delete(
                &registry::SERVICE_ACCOUNT,
                Some("late"),
                "default",
                &Default::default(),
            )
            .unwrap();
        wait_until(|| present("late")).await;
        controller.shutdown().await;
    }

    async fn wait_until(condition: impl Fn() -> bool) {
        for _ in 0..200 {
            if condition() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the condition never held");
    }
}
