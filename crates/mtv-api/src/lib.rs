//! Typed Forklift / KubeVirt vocabulary shared by every mtv-tests crate: provider types, the
//! Go-template subset Forklift uses for `pvcNameTemplate`, and Kubernetes naming rules.
//! Nothing here does I/O.

pub mod clock;
pub mod exit;
pub mod forklift;
pub mod naming;
mod provider_type;
pub mod quantity;
pub mod template;
pub mod time;

pub use provider_type::{ProviderType, UnknownProviderType};
pub use template::{PvcName, Template, TemplateData, TemplateError, TemplateKind, render_pvc_name};
