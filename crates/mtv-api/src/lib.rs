//! Typed Forklift / KubeVirt vocabulary shared by every mtv-tests crate: provider types, the
//! Go-template subset Forklift uses for `pvcNameTemplate`, and Kubernetes naming rules.
//! Nothing here does I/O.

pub mod forklift;
mod provider_type;

pub use provider_type::{ProviderType, UnknownProviderType};
