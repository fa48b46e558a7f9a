//! The engine: turns a collection into Kubernetes objects and runs them. This crate never prints;
//! what it does reaches users through typed values (the preview now, events later).

pub mod build;
pub mod checklist;
pub mod cluster;
pub mod context;
pub mod diagnostics;
pub mod events;
pub mod front;
pub mod guest;
pub mod inventory;
pub mod lease;
pub mod ledger;
pub mod names;
pub mod preview;
pub mod retry;
pub mod run;
pub mod scenario;
pub mod session;
pub mod step_error;
pub mod target;
pub mod teardown;
pub mod validate;
pub mod watch_hub;
pub mod xcopy;

pub use context::{CopyOffloadContext, SessionContext};
pub use preview::{RunPreview, ScenarioInput, preview_run};
