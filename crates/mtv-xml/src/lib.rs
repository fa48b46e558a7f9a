//! The read-only XML element tree the vSphere SOAP client (its answers) and the lab's SOAP server (its
//! requests) both parse vim25 documents into: local names only, the two attributes vim25 uses
//! (`xsi:type` for polymorphic values, plain `type` for managed object references) and text; plus
//! escaping for the documents they write.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One element of a vim25 document (a request or an answer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    /// The local name (`VirtualDevice`, `returnval`, `_this`, ...).
    pub name: String,
    /// The local part of `xsi:type` (`VirtualDisk`, `ArrayOfVirtualDevice`, `string`).
    pub xsi_type: Option<String>,
    /// The unprefixed `type` attribute: the kind of a managed object reference (`VirtualMachine`).
    pub object_type: Option<String>,
    /// The element's own text, entities resolved (untrimmed).
    pub text: String,
    /// The child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of child names (first match at each level).
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |element, name| element.child(name))
    }

    /// The trimmed text at `path`, when the element exists.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|e| e.text.trim())
    }

    /// The boolean at `path` (`true` or `1`), when the element exists.
    pub fn bool_at(&self, path: &str) -> Option<bool> {
        self.text_at(path).map(|t| t == "true" || t == "1")
    }

    /// The integer at `path`, when the element exists and parses.
    pub fn i64_at(&self, path: &str) -> Option<i64> {
        self.text_at(path).and_then(|t| t.parse().ok())
    }

    /// The managed object reference this element holds: (kind, id).
    pub fn moref(&self) -> Option<(String, String)> {
        Some((self.object_type.clone()?, self.text.trim().to_string()))
    }

    /// The element's type for dispatch: `xsi:type` when present, else its name.
    pub fn kind(&self) -> &str {
        self.xsi_type.as_deref().unwrap_or(&self.name)
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

fn element_of(start: &BytesStart<'_>) -> Result<Element, String> {
    let mut element = Element {
        name: local(start.name().as_ref()),
        ..Element::default()
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        if attribute.key.local_name().as_ref() != b"type" {
            continue;
        }
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        if attribute.key.prefix().is_some() {
            element.xsi_type = Some(local(value.as_bytes()));
        } else {
            element.object_type = Some(value.into_owned());
        }
    }
    Ok(element)
}

/// Parses a document into its root element.
pub fn parse(document: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(document);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => stack.push(element_of(&start)?),
            Event::Empty(start) => {
                let element = element_of(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("unbalanced XML end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&text.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text
                        .push_str(&data.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(reference) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    top.text.push(c);
                } else {
                    let name = reference.decode().map_err(|e| e.to_string())?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown XML entity &{name};"))?;
                    top.text.push_str(resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the XML document ends inside an element".into());
    }
    root.ok_or_else(|| "empty XML document".to_string())
}

/// Escapes text for an element body or attribute value.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_local_names_types_and_text() {
        let root = parse(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="s" xmlns:xsi="x"><soapenv:Body>
            <R xmlns="urn:vim25"><returnval><obj type="VirtualMachine">vm-1</obj>
            <val xmlns:XMLSchema-instance="x" XMLSchema-instance:type="xsd:string">a &amp; b &#x41;</val>
            <empty/></returnval></R></soapenv:Body></soapenv:Envelope>"#,
        )
        .unwrap();
        assert_eq!(root.name, "Envelope");
        let ret = root.at("Body/R/returnval").unwrap();
        let obj = ret.child("obj").unwrap();
        assert_eq!(obj.object_type.as_deref(), Some("VirtualMachine"));
        assert_eq!(obj.text, "vm-1");
        let val = ret.child("val").unwrap();
        assert_eq!(val.xsi_type.as_deref(), Some("string"));
        assert_eq!(val.text, "a & b A");
        assert!(ret.child("empty").is_some());
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }

    #[test]
    fn requests_parse_into_names_types_and_text() {
        let root = parse(
            r#"<soapenv:Envelope xmlns:soapenv="s" xmlns:xsi="x"><soapenv:Body>
            <Fetch xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this><prop>a &amp; b</prop>
            <selectSet xsi:type="TraversalSpec"/></Fetch></soapenv:Body></soapenv:Envelope>"#,
        )
        .unwrap();
        let fetch = root.at("Body/Fetch").unwrap();
        assert_eq!(
            fetch.child("_this").unwrap().moref(),
            Some(("VirtualMachine".into(), "vm-1".into()))
        );
        assert_eq!(fetch.text_at("prop"), Some("a & b"));
        assert_eq!(fetch.child("selectSet").unwrap().kind(), "TraversalSpec");
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a>").is_err());
    }
}
