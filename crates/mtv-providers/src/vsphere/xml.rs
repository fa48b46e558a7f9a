//! The vim25 element tree the client reads answers with: mtv-xml's, the one the lab's SOAP server reads
//! requests with.

pub(crate) use mtv_xml::{Element, escape, parse};
