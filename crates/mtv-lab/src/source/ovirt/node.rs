//! The engine's documents as one element tree, written as XML or as the engine's JSON, and request
//! bodies read back into it from either.
//!
//! The engine's JSON is its XML with attributes as keys, text as string values (numbers and booleans
//! too), and members of a list as arrays under the member's element name (`{"vm": [...]}`, `"link":
//! [...]`).

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Map, Value};

/// One element of a document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    /// `id`, `href`, `rel` (XML attributes; plain keys in JSON).
    pub attrs: Vec<(String, String)>,
    pub text: Option<String>,
    pub children: Vec<Node>,
    /// A member of a list: always an array in JSON, even alone.
    pub listed: bool,
}

impl Node {
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_string(),
            ..Node::default()
        }
    }

    /// An element holding only text (`<name>rhel8</name>`).
    pub fn text(name: &str, text: impl ToString) -> Node {
        Node {
            text: Some(text.to_string()),
            ..Node::new(name)
        }
    }

    /// A reference to another object (`<cluster href="..." id="..."/>`).
    pub fn reference(name: &str, href: &str, id: &str) -> Node {
        Node::new(name).attr("href", href).attr("id", id)
    }

    /// A link to a sub-collection or action (`<link href="..." rel="nics"/>`).
    pub fn link(href: &str, rel: &str) -> Node {
        Node::new("link")
            .attr("href", href)
            .attr("rel", rel)
            .listed()
    }

    pub fn attr(mut self, key: &str, value: impl ToString) -> Node {
        self.attrs.push((key.to_string(), value.to_string()));
        self
    }

    pub fn child(mut self, child: Node) -> Node {
        self.children.push(child);
        self
    }

    pub fn children(mut self, children: impl IntoIterator<Item = Node>) -> Node {
        self.children.extend(children);
        self
    }

    /// Adds `<name>text</name>`.
    pub fn field(self, name: &str, text: impl ToString) -> Node {
        self.child(Node::text(name, text))
    }

    pub fn listed(mut self) -> Node {
        self.listed = true;
        self
    }

    /// A collection (`<vms>`) of members (`<vm>`), each listed.
    pub fn collection(name: &str, members: impl IntoIterator<Item = Node>) -> Node {
        Node::new(name).children(members.into_iter().map(Node::listed))
    }

    /// The value of an attribute or of a child's text, as both formats carry `id` either way.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.find(key)
                    .and_then(|c| c.text.as_deref())
                    .map(str::trim)
            })
    }

    /// The first child named `name`.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The node at a `/`-separated path of child names.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('/').try_fold(self, |node, name| node.find(name))
    }

    /// The text at a path (`cluster/name`), or an attribute of the last element (`cluster/id`).
    pub fn get_at(&self, path: &str) -> Option<&str> {
        match path.rsplit_once('/') {
            Some((parent, key)) => self.at(parent)?.get(key),
            None => self.get(path),
        }
    }

    pub fn to_xml(&self) -> String {
        let mut out =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n");
        self.write_xml(&mut out);
        out
    }

    fn write_xml(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (key, value) in &self.attrs {
            out.push_str(&format!(" {key}=\"{}\"", escape(value)));
        }
        if self.children.is_empty() && self.text.is_none() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        if let Some(text) = &self.text {
            out.push_str(&escape(text));
        }
        for child in &self.children {
            child.write_xml(out);
        }
        out.push_str(&format!("</{}>", self.name));
    }

    /// The engine's JSON: the root element's content (the engine leaves the root name out).
    pub fn to_json(&self) -> Value {
        if self.children.is_empty()
            && self.attrs.is_empty()
            && let Some(text) = &self.text
        {
            return Value::String(text.clone());
        }
        let mut map = Map::new();
        let mut names: Vec<&str> = Vec::new();
        for child in &self.children {
            if !names.contains(&child.name.as_str()) {
                names.push(&child.name);
            }
        }
        for name in names {
            let same: Vec<&Node> = self.children.iter().filter(|c| c.name == name).collect();
            let value = if same.iter().any(|c| c.listed) || same.len() > 1 {
                Value::Array(same.iter().map(|c| c.to_json()).collect())
            } else {
                same[0].to_json()
            };
            map.insert(name.to_string(), value);
        }
        for (key, value) in &self.attrs {
            map.insert(key.clone(), Value::String(value.clone()));
        }
        Value::Object(map)
    }

    /// A JSON request body as a tree whose root is `root` (the engine's JSON has no root name).
    pub fn from_json(root: &str, value: &Value) -> Node {
        let mut node = Node::new(root);
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        Value::Array(items) => node
                            .children
                            .extend(items.iter().map(|item| Node::from_json(key, item).listed())),
                        other => node.children.push(Node::from_json(key, other)),
                    }
                }
            }
            Value::Null => {}
            Value::String(s) => node.text = Some(s.clone()),
            other => node.text = Some(other.to_string()),
        }
        node
    }

    /// An XML request body as a tree.
    pub fn from_xml(document: &str) -> Result<Node, String> {
        let mut reader = Reader::from_str(document);
        let mut stack: Vec<Node> = Vec::new();
        loop {
            let event = reader
                .read_event()
                .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
            match event {
                Event::Start(start) => stack.push(node_of(&start)?),
                Event::Empty(start) => {
                    let node = node_of(&start)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Ok(node),
                    }
                }
                Event::End(_) => {
                    let node = stack.pop().ok_or("unbalanced XML end tag")?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(node),
                        None => return Ok(node),
                    }
                }
                Event::Text(text) => {
                    push_text(&mut stack, &text.decode().map_err(|e| e.to_string())?)
                }
                Event::CData(data) => {
                    push_text(&mut stack, &data.decode().map_err(|e| e.to_string())?)
                }
                Event::GeneralRef(reference) => {
                    let text = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = reference.decode().map_err(|e| e.to_string())?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| format!("unknown XML entity &{name};"))?
                                .to_string()
                        }
                    };
                    push_text(&mut stack, &text);
                }
                Event::Eof => return Err("the XML document has no root element".into()),
                _ => {}
            }
        }
    }
}

fn push_text(stack: &mut [Node], text: &str) {
    if let Some(top) = stack.last_mut()
        && !text.trim().is_empty()
    {
        top.text.get_or_insert_with(String::new).push_str(text);
    }
}

fn node_of(start: &BytesStart<'_>) -> Result<Node, String> {
    let mut node = Node::new(&String::from_utf8_lossy(start.local_name().as_ref()));
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        node.attrs.push((
            String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(node)
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm() -> Node {
        Node::new("vm")
            .attr("href", "/ovirt-engine/api/vms/1")
            .attr("id", "1")
            .field("name", "a & b")
            .child(Node::reference(
                "cluster",
                "/ovirt-engine/api/clusters/c",
                "c",
            ))
            .child(Node::link("/ovirt-engine/api/vms/1/nics", "nics"))
    }

    #[test]
    fn xml_has_attributes_and_escaped_text() {
        let xml = Node::collection("vms", [vm()]).to_xml();
        assert!(
            xml.contains(
                "<vms><vm href=\"/ovirt-engine/api/vms/1\" id=\"1\"><name>a &amp; b</name>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains("<link href=\"/ovirt-engine/api/vms/1/nics\" rel=\"nics\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn json_is_the_engines_shape() {
        assert_eq!(
            Node::collection("vms", [vm()]).to_json(),
            json!({"vm": [{
                "name": "a & b",
                "cluster": {"href": "/ovirt-engine/api/clusters/c", "id": "c"},
                "link": [{"href": "/ovirt-engine/api/vms/1/nics", "rel": "nics"}],
                "href": "/ovirt-engine/api/vms/1",
                "id": "1",
            }]})
        );
        assert_eq!(Node::collection("vms", []).to_json(), json!({}));
    }

    #[test]
    fn request_bodies_read_alike_from_xml_and_json() {
        let xml = Node::from_xml(
            "<?xml version='1.0'?>\n<vm>\n  <name>x&amp;y</name>\n  <cluster id=\"c1\"/>\n  \
             <template><name>t</name></template>\n</vm>",
        )
        .unwrap();
        let json = Node::from_json(
            "vm",
            &json!({"name": "x&y", "cluster": {"id": "c1"}, "template": {"name": "t"}}),
        );
        for node in [xml, json] {
            assert_eq!(node.get("name"), Some("x&y"));
            assert_eq!(node.get_at("cluster/id"), Some("c1"));
            assert_eq!(node.get_at("template/name"), Some("t"));
        }
        assert!(Node::from_xml("<vm><name></vm>").is_err());
        assert!(Node::from_xml("").is_err());
    }
}
