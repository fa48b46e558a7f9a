//! The embedded MTV lab: a Kubernetes-compatible API server for Forklift end-to-end tests.
//!
//! Start one with [`LabServer::start`]; talk to it over HTTP (kube-rs, kubectl) with
//! [`LabServer::kubeconfig_yaml`], or in process through [`LabServer::store`] (the [`store::Store`] API with
//! [`store::Store::subscribe`] for controllers and [`store::Store::update_status`] to write status).

pub mod admission;
pub mod auth;
pub mod builtin_schemas;
pub mod cdi;
pub mod cli;
pub mod clock;
pub mod controller_task;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod forklift;
pub mod guest;
pub mod install;
pub mod inventory;
pub mod jsonpath;
pub mod kubevirt;
pub mod lab;
pub mod olm;
pub mod ownership;
pub mod patch;
pub mod protobuf;
pub mod random;
pub mod registry;
pub mod rules;
pub mod schema;
pub mod selector;
mod server;
pub mod source;
pub mod store;
pub mod table;
pub mod tls;

#[cfg(test)]
mod store_tests;

pub use error::{ApiError, LabError};
pub use faults::FaultSpec;
pub use lab::{LabOptions, LabServer, MTV_NAMESPACE};
pub use patch::Patch;
pub use store::Store;
