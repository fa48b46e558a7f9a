//! The vim25 element tree the lab's SOAP server reads requests with: mtv-xml's, the one the vSphere
//! client reads answers with.

pub(crate) use mtv_xml::{Element, escape, parse};
