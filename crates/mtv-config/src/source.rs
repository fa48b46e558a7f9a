//! Source text bookkeeping: file:line:column locations, JSON-with-comments clean-up that keeps
//! byte offsets, a span-recording JSON scan, and masking of secret values before a file's text is
//! attached to a diagnostic.

use std::fmt;
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// A position in a configuration file, 1-based; Display is `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A file's text as diagnostics may show it: secret values are already replaced by `*`, byte
/// for byte, so offsets into the original stay valid. Comments stay blanked too, since people
/// park old passwords in them.
pub(crate) struct SourceText {
    pub name: String,
    pub display: String,
    line_starts: Vec<usize>,
}

// The text is masked, but it is still a whole config file: keep it out of Debug output.
impl fmt::Debug for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceText")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SourceText {
    pub fn new(name: impl Into<String>, display: String) -> Arc<Self> {
        let mut line_starts = vec![0];
        line_starts.extend(display.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(SourceText {
            name: name.into(),
            display,
            line_starts,
        })
    }

    /// Line and (char-based) column of a byte offset.
    pub fn location(&self, offset: usize) -> SourceLocation {
        let offset = self.floor_char_boundary(offset.min(self.display.len()));
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_index];
        SourceLocation {
            file: self.name.clone(),
            line: line_index + 1,
            column: self.display[line_start..offset].chars().count() + 1,
        }
    }

    /// Byte offset of a 1-based line and a 1-based byte column (serde_json's convention;
    /// column 0 means "start of the line").
    pub fn offset_of(&self, line: usize, byte_column: usize) -> usize {
        let Some(start) = line.checked_sub(1).and_then(|i| self.line_starts.get(i)) else {
            return self.display.len();
        };
        let offset = (start + byte_column.saturating_sub(1)).min(self.display.len());
        self.floor_char_boundary(offset)
    }

    /// Byte offset of a 1-based line and 1-based char column (YAML parser convention).
    pub fn offset_of_char(&self, line: usize, column: usize) -> usize {
        let Some(&start) = line.checked_sub(1).and_then(|i| self.line_starts.get(i)) else {
            return self.display.len();
        };
        let rest = &self.display[start..];
        let within = rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(rest.len(), |(i, _)| i);
        start + within
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.display.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    pub fn named_source(&self) -> crate::error::FileSource {
        Arc::new(NamedSource::new(&self.name, self.display.clone()))
    }

    /// A span covering `len` bytes from `offset`, clamped to the text.
    pub fn span(&self, offset: usize, len: usize) -> SourceSpan {
        let offset = offset.min(self.display.len());
        let len = len.min(self.display.len() - offset);
        SourceSpan::new(offset.into(), len)
    }
}

pub(crate) use crate::secret::is_secret_key;

/// Replaces `//` and `#` line comments and trailing commas with spaces. Newlines and every other
/// byte stay where they are, so serde_json's line:column and our spans match the original file.
pub(crate) fn blank_comments_and_trailing_commas(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut i = 0;
    // Editors on some platforms write a byte-order mark; serde_json rejects it.
    if bytes.starts_with("\u{feff}".as_bytes()) {
        bytes[..3].fill(b' ');
        i = 3;
    }
    let mut in_string = false;
    // Offset of the last comma outside strings not yet followed by a value.
    let mut pending_comma: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let starts_comment = b == b'#' || (b == b'/' && bytes.get(i + 1) == Some(&b'/'));
        if starts_comment {
            while i < bytes.len() && bytes[i] != b'\n' {
                if bytes[i] != b'\r' {
                    bytes[i] = b' ';
                }
                i += 1;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            b',' => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    bytes[comma] = b' ';
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => pending_comma = None,
        }
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII spaces, so the text is still UTF-8; fall back to a
    // lossy conversion rather than panic if that reasoning ever breaks.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Replaces secret values with `*`, byte for byte: the value of every credential-looking key
/// whatever its type (string, number, boolean, an unquoted word, a whole nested object or array),
/// and every value inside `storage_secret_extra`. Works token by token, so a file with a syntax
/// error (a missing quote, an unquoted password) is still masked everywhere; quotes, brackets,
/// commas and line breaks stay, so positions in diagnostics do not move.
pub(crate) fn mask_json_secrets(blanked: &str) -> String {
    let bytes = blanked.as_bytes();
    let mut masker = JsonMasker {
        out: bytes.to_vec(),
        open: Vec::new(),
        last_string: None,
        current_key: None,
        expecting_value: false,
    };
    let mut i = 0;
    while i < bytes.len() {
        i = masker.step(bytes, i);
    }
    String::from_utf8(masker.out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// An open object or array while masking.
struct OpenContainer {
    is_array: bool,
    /// Every value inside is secret (its key reads as a credential, or it is inside one).
    secret: bool,
}

struct JsonMasker {
    out: Vec<u8>,
    open: Vec<OpenContainer>,
    last_string: Option<String>,
    current_key: Option<String>,
    expecting_value: bool,
}

impl JsonMasker {
    fn in_array(&self) -> bool {
        self.open.last().is_some_and(|o| o.is_array)
    }

    fn inside_secret(&self) -> bool {
        self.open.last().is_some_and(|o| o.secret)
    }

    /// Whether the value about to be read is secret (`storage_secret_extra` holds secrets, so a
    /// scalar there, which is an error, is one too).
    fn value_is_secret(&self) -> bool {
        self.inside_secret()
            || (!self.in_array()
                && self
                    .current_key
                    .as_deref()
                    .is_some_and(|k| is_secret_key(k) || k == "storage_secret_extra"))
    }

    fn mask(&mut self, from: usize, to: usize) {
        for b in &mut self.out[from..to] {
            if !b.is_ascii_whitespace() {
                *b = b'*';
            }
        }
    }

    /// Handles the token at `i`; returns where the next one starts.
    fn step(&mut self, bytes: &[u8], i: usize) -> usize {
        let is_value = self.expecting_value || self.in_array();
        match bytes[i] {
            b'"' => {
                // JSON strings cannot span lines: an unterminated one ends at its line's end, so
                // one missing quote does not turn the rest of the file inside out.
                let mut end = i + 1;
                while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(bytes.len());
                if is_value {
                    if self.value_is_secret() {
                        self.mask(i + 1, end);
                    }
                    self.expecting_value = false;
                    self.last_string = None;
                } else {
                    self.last_string =
                        Some(String::from_utf8_lossy(&bytes[i + 1..end]).into_owned());
                }
                if bytes.get(end) == Some(&b'"') {
                    end + 1
                } else {
                    end
                }
            }
            b':' => {
                self.current_key = self.last_string.take();
                self.expecting_value = true;
                i + 1
            }
            b'{' | b'[' => {
                let owner_secret = self.expecting_value && self.value_is_secret();
                self.open.push(OpenContainer {
                    is_array: bytes[i] == b'[',
                    secret: self.inside_secret() || owner_secret,
                });
                self.expecting_value = false;
                self.last_string = None;
                i + 1
            }
            b'}' | b']' => {
                self.open.pop();
                self.expecting_value = false;
                i + 1
            }
            b',' => {
                self.expecting_value = false;
                self.last_string = None;
                i + 1
            }
            b if b.is_ascii_whitespace() => i + 1,
            _ if is_value => {
                // A bare value: a number, true/false/null, or an unquoted word (a syntax error
                // whose snippet must not show it). It runs to the end of the line or the next
                // comma or bracket.
                let end = bytes[i..]
                    .iter()
                    .position(|b| b",}]\n\r".contains(b))
                    .map_or(bytes.len(), |n| i + n);
                if self.value_is_secret() {
                    self.mask(i, end);
                }
                self.expecting_value = false;
                self.last_string = None;
                end
            }
            _ => {
                // An unquoted key (a syntax error): remember it so its value is judged by it.
                let end = bytes[i..]
                    .iter()
                    .position(|b| b":,{}[]\"".contains(b) || b.is_ascii_whitespace())
                    .map_or(bytes.len(), |n| i + n);
                self.last_string = Some(String::from_utf8_lossy(&bytes[i..end]).into_owned());
                end
            }
        }
    }
}

/// How deep objects and arrays may nest in a configuration file. Real files need a handful of
/// levels; the limit keeps hostile or broken input (thousands of `[`) from exhausting the stack.
pub(crate) const MAX_NESTING: usize = 64;

/// The byte offset of the first `{` or `[` (outside strings) that opens a level deeper than
/// [`MAX_NESTING`], in comment-blanked JSON. Iterative, so it is safe on any input.
pub(crate) fn first_too_deep(blanked: &str) -> Option<usize> {
    let bytes = blanked.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'{' | b'[') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            (false, b'}' | b']') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// A JSON value with the byte span it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    Scalar(serde_json::Value),
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Node,
}

impl Node {
    pub fn json_type(&self) -> &'static str {
        match &self.kind {
            NodeKind::Object(_) => "an object",
            NodeKind::Array(_) => "an array",
            NodeKind::Scalar(serde_json::Value::String(_)) => "a string",
            NodeKind::Scalar(serde_json::Value::Bool(_)) => "a boolean",
            NodeKind::Scalar(serde_json::Value::Number(_)) => "a number",
            NodeKind::Scalar(serde_json::Value::Null) => "null",
            NodeKind::Scalar(_) => "a value",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The plain JSON value (used for non-secret values only).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Scalar(v) => v.clone(),
            NodeKind::Array(items) => items.iter().map(Node::to_json).collect(),
            NodeKind::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), m.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Scans JSON that serde_json has already accepted, recording where every value and key is.
pub(crate) fn scan_json(text: &str) -> Option<Node> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    scanner.value()
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    /// The comma-separated entries (each read by `entry`) of the object or array whose opening
    /// bracket is at the cursor, up to and past its `close`.
    fn sequence<T>(&mut self, close: u8, entry: fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            match *self.bytes.get(self.pos)? {
                b if b == close => {
                    self.pos += 1;
                    return Some(entries);
                }
                b',' => self.pos += 1,
                _ => entries.push(entry(self)?),
            }
        }
    }

    /// An object's `"key": value` member at the cursor.
    fn member(&mut self) -> Option<Member> {
        if self.bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        let key_start = self.pos;
        self.string_end()?;
        let key_end = self.pos;
        let key: String = serde_json::from_str(&self.text[key_start..key_end]).ok()?;
        self.skip_ws();
        if self.bytes.get(self.pos) != Some(&b':') {
            return None;
        }
        self.pos += 1;
        let value = self.value()?;
        Some(Member {
            key,
            key_start,
            key_end,
            value,
        })
    }

    fn value(&mut self) -> Option<Node> {
        self.skip_ws();
        let start = self.pos;
        match *self.bytes.get(self.pos)? {
            b'{' => {
                let members = self.sequence(b'}', Self::member)?;
                Some(Node {
                    start,
                    end: self.pos,
                    kind: NodeKind::Object(members),
                })
            }
            b'[' => {
                let items = self.sequence(b']', Self::value)?;
                Some(Node {
                    start,
                    end: self.pos,
                    kind: NodeKind::Array(items),
                })
            }
            b'"' => {
                self.string_end()?;
                self.scalar(start)
            }
            _ => {
                while self.pos < self.bytes.len() && !b",}] \t\r\n".contains(&self.bytes[self.pos])
                {
                    self.pos += 1;
                }
                self.scalar(start)
            }
        }
    }

    fn scalar(&self, start: usize) -> Option<Node> {
        let value = serde_json::from_str(&self.text[start..self.pos]).ok()?;
        Some(Node {
            start,
            end: self.pos,
            kind: NodeKind::Scalar(value),
        })
    }

    /// Moves past a string starting at `pos` (which is on the opening quote).
    fn string_end(&mut self) -> Option<()> {
        self.pos += 1;
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => self.pos += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_offsets_and_strings() {
        let text = "{\n \"url\": \"https://h/#x//y\", # c\n \"b\": [1,2,], // d\n}\n";
        let blanked = blank_comments_and_trailing_commas(text);
        assert_eq!(blanked.len(), text.len());
        let value: serde_json::Value = serde_json::from_str(&blanked).unwrap();
        assert_eq!(value["url"], "https://h/#x//y");
        assert_eq!(value["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn masking_hides_secret_values_only() {
        let text = r#"{"p": {"password": "pw1", "user": "u", "copyoffload": {"storage_secret_extra": {"K": "v1"}, "esxi_password": "pw2"}}}"#;
        let masked = mask_json_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("pw1") && !masked.contains("pw2") && !masked.contains("v1"));
        assert!(masked.contains("\"u\""));
    }

    #[test]
    fn nesting_beyond_the_limit_is_found_without_recursion() {
        let deep = format!("{{\"p\": {}{}}}", "[".repeat(30_000), "]".repeat(30_000));
        assert_eq!(first_too_deep(&deep), Some(6 + MAX_NESTING - 1));
        let fine = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert_eq!(first_too_deep(&fine), None);
        // Brackets inside strings do not count.
        let quoted = format!("{{\"k\": \"{}\"}}", "[".repeat(100));
        assert_eq!(first_too_deep(&quoted), None);
    }

    #[test]
    fn masking_covers_every_type_and_broken_files() {
        let text = r#"{"p": {"password": 987654, "api_key": true, "credentials": {"u": "x1", "n": [42, "x2"]},
 "luks_passphrase": hunter2 rest, "token": "tok1,
 "user": "alice", "port": 443, "storage_secret_extra": "xtra9"}, "q": {passwd: swordfish}}"#;
        let masked = mask_json_secrets(text);
        assert_eq!(masked.len(), text.len());
        for leaked in [
            "987654",
            "true",
            "x1",
            "42",
            "x2",
            "hunter2",
            "rest",
            "tok1",
            "swordfish",
        ] {
            assert!(!masked.contains(leaked), "{leaked} in {masked}");
        }
        for kept in ["\"alice\"", "443", "\"password\": ******,", "\n"] {
            assert!(masked.contains(kept), "{kept} missing from {masked}");
        }
    }

    #[test]
    fn locations_are_one_based() {
        let src = SourceText::new("f.json", "ab\ncd\n".to_string());
        assert_eq!(src.location(4).to_string(), "f.json:2:2");
        assert_eq!(src.offset_of(2, 2), 4);
    }
}
