//! The engine: turns a collection into Kubernetes objects and runs them. This crate never prints;
//! what it does reaches users through typed values (the preview now, events later).

pub mod context;
pub mod names;
pub mod preview;

pub use context::{CopyOffloadContext, SessionContext};
pub use preview::{RunPreview, ScenarioInput, preview_run};
