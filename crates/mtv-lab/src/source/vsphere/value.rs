//! vim25 values with their wire types, so one tree serves a property collector's `val` (typed
//! `xsi:anyType`), a `Fetch` answer and a nested field alike, in the shapes pyVmomi and govmomi decode.

use super::xml::escape;

/// A vim25 value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    /// A data object: its type (`VirtualMachineConfigInfo`) and fields in order.
    Obj(&'static str, Vec<(&'static str, V)>),
    /// An array: the item type (`VirtualDevice`, `ManagedObjectReference`, `string`) and items.
    Arr(&'static str, Vec<V>),
    /// A primitive or enum: its type (`xsd:string`, `xsd:int`, `VirtualMachinePowerState`) and text.
    Prim(&'static str, String),
    /// A managed object reference: kind and id.
    Ref(String, String),
}

impl V {
    pub fn s(text: impl Into<String>) -> V {
        V::Prim("xsd:string", text.into())
    }

    pub fn int(n: i64) -> V {
        V::Prim("xsd:int", n.to_string())
    }

    pub fn long(n: i64) -> V {
        V::Prim("xsd:long", n.to_string())
    }

    pub fn b(value: bool) -> V {
        V::Prim("xsd:boolean", value.to_string())
    }

    pub fn time(rfc3339: impl Into<String>) -> V {
        V::Prim("xsd:dateTime", rfc3339.into())
    }

    pub fn e(enum_type: &'static str, value: &str) -> V {
        V::Prim(enum_type, value.to_string())
    }

    pub fn r(kind: &str, id: &str) -> V {
        V::Ref(kind.to_string(), id.to_string())
    }

    pub fn refs(items: impl IntoIterator<Item = (String, String)>) -> V {
        V::Arr(
            "ManagedObjectReference",
            items.into_iter().map(|(k, i)| V::Ref(k, i)).collect(),
        )
    }

    pub fn strings(items: impl IntoIterator<Item = String>) -> V {
        V::Arr("string", items.into_iter().map(V::s).collect())
    }

    /// The value at a dotted property path below this one (`hardware.device`).
    pub fn path(&self, path: &str) -> Option<&V> {
        path.split('.').try_fold(self, |value, name| match value {
            V::Obj(_, fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        })
    }

    /// The references this value holds (itself, or an array's items).
    pub fn references(&self) -> Vec<(String, String)> {
        match self {
            V::Ref(kind, id) => vec![(kind.clone(), id.clone())],
            V::Arr(_, items) => items.iter().flat_map(V::references).collect(),
            _ => Vec::new(),
        }
    }

    /// Writes the value as the field `name` of a data object (arrays as repeated elements).
    pub fn write_field(&self, name: &str, out: &mut String) {
        match self {
            V::Obj(ty, fields) => {
                out.push_str(&format!("<{name} xsi:type=\"{ty}\">"));
                for (field, value) in fields {
                    value.write_field(field, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            V::Arr(_, items) => {
                for item in items {
                    item.write_field(name, out);
                }
            }
            V::Prim(ty, text) => {
                out.push_str(&format!(
                    "<{name} xsi:type=\"{ty}\">{}</{name}>",
                    escape(text)
                ));
            }
            // Typed, so that a reference in an `anyType` field (a task's result) decodes too.
            V::Ref(kind, id) => {
                out.push_str(&format!(
                    "<{name} type=\"{}\" xsi:type=\"ManagedObjectReference\">{}</{name}>",
                    escape(kind),
                    escape(id)
                ));
            }
        }
    }

    /// Writes the value into a slot typed `anyType` (a property's `val`, a task's `result`): the type
    /// always says what it is, arrays included (`ArrayOfVirtualDevice`).
    pub fn write_any(&self, name: &str, out: &mut String) {
        match self {
            V::Arr(item, items) => {
                out.push_str(&format!("<{name} xsi:type=\"{}\">", array_type(item)));
                for value in items {
                    value.write_any(item, out);
                }
                out.push_str(&format!("</{name}>"));
            }
            other => other.write_field(name, out),
        }
    }
}

/// `ArrayOfString`, `ArrayOfVirtualDevice`, ... for an item type.
fn array_type(item: &str) -> String {
    let mut chars = item.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
    format!("ArrayOf{first}{}", chars.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_write_as_fields_and_as_any() {
        let config = V::Obj(
            "VirtualHardware",
            vec![
                ("numCPU", V::int(2)),
                (
                    "device",
                    V::Arr(
                        "VirtualDevice",
                        vec![V::Obj("VirtualDisk", vec![("key", V::int(2000))])],
                    ),
                ),
            ],
        );
        let mut out = String::new();
        config.write_any("val", &mut out);
        assert_eq!(
            out,
            "<val xsi:type=\"VirtualHardware\"><numCPU xsi:type=\"xsd:int\">2</numCPU>\
             <device xsi:type=\"VirtualDisk\"><key xsi:type=\"xsd:int\">2000</key></device></val>"
        );
        let mut out = String::new();
        config.path("device").unwrap().write_any("val", &mut out);
        assert!(out.starts_with(
            "<val xsi:type=\"ArrayOfVirtualDevice\"><VirtualDevice xsi:type=\"VirtualDisk\">"
        ));
        let mut out = String::new();
        V::refs([("VirtualMachine".to_string(), "vm-1".to_string())]).write_any("val", &mut out);
        assert_eq!(
            out,
            "<val xsi:type=\"ArrayOfManagedObjectReference\"><ManagedObjectReference \
             type=\"VirtualMachine\" xsi:type=\"ManagedObjectReference\">vm-1</ManagedObjectReference></val>"
        );
    }
}
