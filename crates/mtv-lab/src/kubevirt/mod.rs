//! The lab's KubeVirt beside its simulated Forklift: the `subresources.kubevirt.io` API
//! (`subresources.rs`), instancetypes and preferences (`instancetype.rs`), and the shapes KubeVirt writes
//! into VirtualMachine and VirtualMachineInstance status (`status.rs`). The controller that creates and
//! deletes VirtualMachineInstances runs in the Forklift control loop (`forklift/kubevirt.rs`), because the
//! simulated Forklift tells it what a migrated guest shows.

pub mod instancetype;
pub mod status;
pub mod subresources;
