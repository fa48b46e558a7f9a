//! Scenario catalog, marker and keyword expressions, gating, collection and step lists.
//! Knows nothing about Kubernetes: it decides *what* would run, never *how*.

pub mod catalog;
pub mod collect;
pub mod expr;
pub mod markers;
pub mod model;
pub mod partition;
pub mod steps;
mod templates;

pub use catalog::{Catalog, CatalogError, InvalidScenario, Origin, Scenario, SyntaxError};
pub use collect::{
    Collection, CopyOffloadGate, GateContext, Item, Outcome, Selection, SelectionError, Summary,
    collect,
};
pub use markers::{KNOWN_MARKERS, known_marker_names};
