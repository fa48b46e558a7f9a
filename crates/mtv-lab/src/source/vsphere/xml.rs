//! vim25 requests as a small element tree (local names, `xsi:type`, the `type` of a managed object
//! reference, text), parsed with quick-xml; and escaping for the answers.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One element of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Element {
    /// The local name (`_this`, `specSet`, ...).
    pub name: String,
    /// The local part of `xsi:type` (`TraversalSpec`, `VirtualDisk`).
    pub xsi_type: Option<String>,
    /// The unprefixed `type` attribute: the kind of a managed object reference.
    pub object_type: Option<String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at a `/`-separated path of child names.
    pub fn at(&self, path: &str) -> Option<&Element> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |element, name| element.child(name))
    }

    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path).map(|e| e.text.trim())
    }

    pub fn bool_at(&self, path: &str) -> Option<bool> {
        self.text_at(path).map(|t| t == "true" || t == "1")
    }

    pub fn i64_at(&self, path: &str) -> Option<i64> {
        self.text_at(path).and_then(|t| t.parse().ok())
    }

    /// The managed object reference this element holds: (kind, id).
    pub fn moref(&self) -> Option<(String, String)> {
        Some((self.object_type.clone()?, self.text.trim().to_string()))
    }

    /// The type for dispatch: `xsi:type` when present, else the name.
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
pub(crate) fn parse(document: &str) -> Result<Element, String> {
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
pub(crate) fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
    }
}
