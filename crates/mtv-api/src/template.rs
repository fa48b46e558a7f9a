//! The part of Go `text/template` that Forklift's PVC, volume and network name templates use,
//! with the Sprig functions Forklift allows (spec §3.4), so the suite can predict the names
//! Forklift will produce and reject templates Forklift would reject.
//!
//! Supported: text, actions with `{{-`/`-}}` trim markers, comments, pipelines, fields, `$`
//! variables (`:=`, `=`), string/raw/char/number/bool literals, parenthesised pipelines,
//! `if`/`with` with `else`, `else if`, `else with`, the built-ins `and or not eq ne lt le gt ge
//! len index slice print printf println html urlquery`, and the Sprig subset. `range`,
//! `template`, `define`, `block`, `break`, `continue`, `js` and `call` are parse errors.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use crate::naming::{GENERATE_NAME_PREFIX_MAX_LEN, dns1123_label_error};

/// Forklift's default PVC template for non-OCP sources.
pub const DEFAULT_PVC_TEMPLATE: &str =
    "{{trunc 15 .PlanName}}-{{trunc 15 .TargetVmName}}-disk-{{.DiskIndex}}";
/// Forklift's default PVC template for OCP sources.
pub const DEFAULT_OCP_PVC_TEMPLATE: &str = "{{.SourcePVCName}}";

/// Largest string `repeat` may build; Go would try to allocate anything.
const MAX_REPEAT_BYTES: usize = 1 << 20;
/// Go's `fmt` rejects widths and precisions above this (`%!(BADWIDTH)`, `%!(BADPREC)`).
const MAX_PRINTF_WIDTH: usize = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Errors

/// A parse or execution error. `column` is 1-based and counts characters from the start of the
/// template source (newlines count as one character), so for one-line templates it is the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", column_suffix(.column))]
pub struct TemplateError {
    message: String,
    column: Option<usize>,
}

fn column_suffix(column: &Option<usize>) -> String {
    column.map(|c| format!(" (column {c})")).unwrap_or_default()
}

impl TemplateError {
    fn new(message: impl Into<String>) -> Self {
        TemplateError {
            message: message.into(),
            column: None,
        }
    }

    fn at(column: usize, message: impl Into<String>) -> Self {
        TemplateError {
            message: message.into(),
            column: Some(column),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn column(&self) -> Option<usize> {
        self.column
    }
}

// ---------------------------------------------------------------------------------------------
// Data

/// Which Forklift data struct a template is rendered against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    Pvc,
    Volume,
    Network,
}

/// The Go type of a template variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Int,
    Bool,
}

impl FieldType {
    fn zero(self) -> Value {
        match self {
            FieldType::String => Value::Str(String::new()),
            FieldType::Int => Value::Int(0),
            FieldType::Bool => Value::Bool(false),
        }
    }

    fn go_name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
        }
    }
}

const PVC_FIELDS: &[(&str, FieldType)] = &[
    ("VmName", FieldType::String),
    ("TargetVmName", FieldType::String),
    ("PlanName", FieldType::String),
    ("DiskIndex", FieldType::Int),
    ("VmId", FieldType::String),
    ("FileName", FieldType::String),
    ("WinDriveLetter", FieldType::String),
    ("RootDiskIndex", FieldType::Int),
    ("Shared", FieldType::Bool),
    ("SourcePVCName", FieldType::String),
    ("SourcePVCNamespace", FieldType::String),
    ("DiskId", FieldType::String),
    ("VolumeID", FieldType::String),
    ("SnapshotID", FieldType::String),
];

const VOLUME_FIELDS: &[(&str, FieldType)] = &[
    ("PVCName", FieldType::String),
    ("VolumeIndex", FieldType::Int),
];

const NETWORK_FIELDS: &[(&str, FieldType)] = &[
    ("NetworkName", FieldType::String),
    ("NetworkNamespace", FieldType::String),
    ("NetworkType", FieldType::String),
    ("NetworkIndex", FieldType::Int),
];

impl TemplateKind {
    /// Every variable of this kind's data struct, in declaration order, with its Go type.
    pub fn fields(self) -> &'static [(&'static str, FieldType)] {
        match self {
            TemplateKind::Pvc => PVC_FIELDS,
            TemplateKind::Volume => VOLUME_FIELDS,
            TemplateKind::Network => NETWORK_FIELDS,
        }
    }

    /// The Go struct name, as it shows up in error messages.
    pub fn go_type_name(self) -> &'static str {
        match self {
            TemplateKind::Pvc => "PVCNameTemplateData",
            TemplateKind::Volume => "VolumeNameTemplateData",
            TemplateKind::Network => "NetworkNameTemplateData",
        }
    }
}

/// A template value. `Float` only comes out of `floor`, `ceil`, `round` and float literals.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl Value {
    fn go_type(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Bool(_) => "bool",
            Value::Float(_) => "float64",
        }
    }
}

/// Formats like Go's `%v`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Float(x) => f.write_str(&go_float(*x)),
        }
    }
}

/// `From` each Rust type a template value is made of: the Go value it becomes.
macro_rules! value_from {
    ($($source:ty => |$v:ident| $value:expr;)*) => {
        $(impl From<$source> for Value {
            fn from($v: $source) -> Self {
                $value
            }
        })*
    };
}

value_from! {
    &str => |v| Value::Str(v.to_string());
    String => |v| Value::Str(v);
    &String => |v| Value::Str(v.clone());
    i64 => |v| Value::Int(v);
    i32 => |v| Value::Int(i64::from(v));
    u32 => |v| Value::Int(i64::from(v));
    usize => |v| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
    bool => |v| Value::Bool(v);
    f64 => |v| Value::Float(v);
}

/// The data a template is rendered against: one of Forklift's three structs. Every field
/// starts at its Go zero value, as fields that do not apply to a provider do in Forklift.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateData {
    kind: TemplateKind,
    values: Vec<Value>,
}

impl TemplateData {
    pub fn new(kind: TemplateKind) -> Self {
        TemplateData {
            kind,
            values: kind.fields().iter().map(|(_, t)| t.zero()).collect(),
        }
    }

    /// `PVCNameTemplateData` with every field at its zero value.
    pub fn pvc() -> Self {
        Self::new(TemplateKind::Pvc)
    }

    /// `VolumeNameTemplateData` with every field at its zero value.
    pub fn volume() -> Self {
        Self::new(TemplateKind::Volume)
    }

    /// `NetworkNameTemplateData` with every field at its zero value.
    pub fn network() -> Self {
        Self::new(TemplateKind::Network)
    }

    /// The data Forklift's plan validation renders volume templates with.
    pub fn volume_validation_sample() -> Self {
        let mut data = Self::volume();
        data.values = vec![Value::Str("test-pvc".into()), Value::Int(0)];
        data
    }

    /// The data Forklift's plan validation renders network templates with.
    pub fn network_validation_sample() -> Self {
        let mut data = Self::network();
        data.values = vec![
            Value::Str("test-network".into()),
            Value::Str("test-namespace".into()),
            Value::Str("Multus".into()),
            Value::Int(0),
        ];
        data
    }

    pub fn kind(&self) -> TemplateKind {
        self.kind
    }

    /// Sets a field; names outside the kind's field list and values of the wrong type are errors.
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Result<Self, TemplateError> {
        let value = value.into();
        let Some(index) = self.kind.fields().iter().position(|(n, _)| *n == name) else {
            return Err(TemplateError::new(format!(
                "{} has no field {name:?}",
                self.kind.go_type_name()
            )));
        };
        let field_type = self.kind.fields()[index].1;
        let fits = matches!(
            (field_type, &value),
            (FieldType::String, Value::Str(_))
                | (FieldType::Int, Value::Int(_))
                | (FieldType::Bool, Value::Bool(_))
        );
        if !fits {
            return Err(TemplateError::new(format!(
                "field {name} of {} is a {}, not a {}",
                self.kind.go_type_name(),
                field_type.go_name(),
                value.go_type()
            )));
        }
        self.values[index] = value;
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        let index = self.kind.fields().iter().position(|(n, _)| *n == name)?;
        self.values.get(index)
    }
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`; unknown functions, bad syntax and unsupported actions are errors here.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let pieces = scan(src)?;
        let mut parser = Parser {
            pieces,
            next: 0,
            vars: Vec::new(),
        };
        let (nodes, stop) = parser.parse_list()?;
        match stop {
            Stop::Eof => Ok(Template {
                source: src.to_string(),
                nodes,
            }),
            Stop::Else(_, col) => Err(TemplateError::at(col, "unexpected {{else}}")),
            Stop::End(col) => Err(TemplateError::at(col, "unexpected {{end}}")),
        }
    }

    /// Executes the template against `data`.
    pub fn render(&self, data: &TemplateData) -> Result<String, TemplateError> {
        let mut exec = Exec {
            data,
            vars: vec![("$".to_string(), Val::Data)],
            out: String::new(),
        };
        exec.walk(&self.nodes, &Val::Data)?;
        Ok(exec.out)
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A PVC name as Forklift applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PvcName {
    /// `metadata.name`.
    Exact(String),
    /// `metadata.generateName` (ends in `-`).
    GenerateName(String),
}

impl PvcName {
    pub fn as_str(&self) -> &str {
        match self {
            PvcName::Exact(s) | PvcName::GenerateName(s) => s,
        }
    }

    pub fn is_generate_name(&self) -> bool {
        matches!(self, PvcName::GenerateName(_))
    }

    /// Whether an actual PVC name could have come from this: equality for exact names; for
    /// `generateName`, the prefix cut to 58 characters followed by 5 random `[a-z0-9]`.
    pub fn matches(&self, actual: &str) -> bool {
        match self {
            PvcName::Exact(name) => name == actual,
            PvcName::GenerateName(prefix) => {
                let prefix = byte_prefix(prefix, GENERATE_NAME_PREFIX_MAX_LEN);
                actual.len() == prefix.len() + 5
                    && actual.starts_with(prefix)
                    && actual[prefix.len()..]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }
        }
    }
}

impl fmt::Display for PvcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn byte_prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Renders a template the way Forklift applies a result that must be a DNS-1123 label: trim
/// whitespace, then require a non-empty label. Used for volume and network templates and inside
/// [`render_pvc_name`].
pub fn render_label(template: &Template, data: &TemplateData) -> Result<String, TemplateError> {
    let rendered = template.render(data)?;
    let output = rendered.trim();
    if output.is_empty() {
        return Err(TemplateError::new(format!(
            "template {:?} rendered an empty name",
            template.source()
        )));
    }
    if let Some(problem) = dns1123_label_error(output) {
        return Err(TemplateError::new(format!(
            "template {:?} rendered {output:?}, which is not a valid DNS-1123 label: {problem}",
            template.source()
        )));
    }
    Ok(output.to_string())
}

/// Forklift's rule for PVC names: render, trim whitespace, must be non-empty and a DNS-1123
/// label (≤63); with `generate_name` the output gets a trailing `-` and is a `generateName`
/// prefix; else the exact name with any trailing `-` removed.
pub fn render_pvc_name(
    template: &Template,
    data: &TemplateData,
    generate_name: bool,
) -> Result<PvcName, TemplateError> {
    let output = render_label(template, data)?;
    Ok(if generate_name {
        PvcName::GenerateName(format!("{output}-"))
    } else {
        PvcName::Exact(output.trim_end_matches('-').to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Bool(bool),
    Str(String),
    Int(i64),
    Float(f64),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    col: usize,
}

enum Piece {
    Text(String),
    Action { tokens: Vec<Token>, col: usize },
}

fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn column_of(src: &str, byte: usize) -> usize {
    src[..byte].chars().count() + 1
}

/// Splits the source into text and tokenised actions, applying trim markers.
fn scan(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let Some(rel) = src[pos..].find("{{") else {
            let mut text = &src[pos..];
            if trim_next {
                text = text.trim_start_matches(is_go_space);
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(text.to_string()));
            }
            return Ok(pieces);
        };
        let open = pos + rel;
        let mut text = &src[pos..open];
        if trim_next {
            text = text.trim_start_matches(is_go_space);
        }
        let mut inner = open + 2;
        let after = &src[inner..];
        if after.starts_with('-') && after[1..].starts_with(is_go_space) {
            text = text.trim_end_matches(is_go_space);
            inner += 2;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_string()));
        }
        let col = column_of(src, open);
        if src[inner..].starts_with("/*") {
            let Some(end) = src[inner + 2..].find("*/") else {
                return Err(TemplateError::at(col, "unclosed comment"));
            };
            let after_comment = inner + 2 + end + 2;
            let rest = &src[after_comment..];
            let trimmed = rest.trim_start_matches(is_go_space);
            if rest.starts_with("}}") {
                pos = after_comment + 2;
                trim_next = false;
            } else if trimmed.len() < rest.len() && trimmed.starts_with("-}}") {
                pos = src.len() - trimmed.len() + 3;
                trim_next = true;
            } else {
                return Err(TemplateError::at(
                    col,
                    "comment ends before closing delimiter",
                ));
            }
            continue;
        }
        let (tokens, next, trim) = lex_action(src, inner, col)?;
        pieces.push(Piece::Action { tokens, col });
        pos = next;
        trim_next = trim;
    }
}

/// Tokenises one action starting at byte `start`; returns the tokens, the byte after `}}` and
/// whether a right trim marker was present.
fn lex_action(
    src: &str,
    start: usize,
    action_col: usize,
) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let mut tokens = Vec::new();
    let mut p = start;
    loop {
        let ws_start = p;
        while let Some(c) = src[p..].chars().next().filter(|&c| is_go_space(c)) {
            p += c.len_utf8();
        }
        let rest = &src[p..];
        if rest.starts_with("}}") {
            return Ok((tokens, p + 2, false));
        }
        if p > ws_start && rest.starts_with("-}}") {
            return Ok((tokens, p + 3, true));
        }
        let Some(c) = rest.chars().next() else {
            return Err(TemplateError::at(action_col, "unclosed action"));
        };
        let col = column_of(src, p);
        let next_char = rest[c.len_utf8()..].chars().next();
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '=' => (Tok::Assign, 1),
            ':' if next_char == Some('=') => (Tok::Declare, 2),
            '"' => lex_quoted(rest, col)?,
            '`' => {
                let Some(end) = rest[1..].find('`') else {
                    return Err(TemplateError::at(col, "unterminated raw quoted string"));
                };
                (Tok::Str(rest[1..1 + end].replace('\r', "")), end + 2)
            }
            '\'' => lex_char(rest, col)?,
            '$' => {
                let name_len = rest[1..]
                    .find(|ch: char| !is_ident_char(ch))
                    .unwrap_or(rest.len() - 1);
                let (fields, fields_len) = lex_field_chain(&rest[1 + name_len..]);
                (
                    Tok::Var(rest[..1 + name_len].to_string(), fields),
                    1 + name_len + fields_len,
                )
            }
            '.' if next_char.is_some_and(|n| n.is_ascii_digit()) => lex_number(rest, col)?,
            '.' if next_char.is_some_and(|n| n == '_' || n.is_alphabetic()) => {
                let (fields, len) = lex_field_chain(rest);
                (Tok::Field(fields), len)
            }
            '.' => (Tok::Dot, 1),
            '+' | '-'
                if next_char.is_some_and(|n| n.is_ascii_digit() || n == '.')
                    || c.is_ascii_digit() =>
            {
                lex_number(rest, col)?
            }
            d if d.is_ascii_digit() => lex_number(rest, col)?,
            a if a == '_' || a.is_alphabetic() => {
                let len = rest
                    .find(|ch: char| !is_ident_char(ch))
                    .unwrap_or(rest.len());
                let word = &rest[..len];
                if rest[len..].starts_with('.')
                    && rest[len + 1..].starts_with(|ch: char| ch == '_' || ch.is_alphabetic())
                {
                    return Err(TemplateError::at(
                        col,
                        format!("field access on the result of {word:?} is not supported"),
                    ));
                }
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    _ => Tok::Ident(word.to_string()),
                };
                (tok, len)
            }
            other => {
                return Err(TemplateError::at(
                    col,
                    format!(
                        "unrecognized character in action: U+{:04X} {other:?}",
                        u32::from(other)
                    ),
                ));
            }
        };
        tokens.push(Token { tok, col });
        p += len;
    }
}

/// `.A.B.C` → (["A","B","C"], byte length); an empty chain when `s` does not start with `.X`.
fn lex_field_chain(s: &str) -> (Vec<String>, usize) {
    let mut fields = Vec::new();
    let mut p = 0;
    while s[p..].starts_with('.') && s[p + 1..].starts_with(|c: char| c == '_' || c.is_alphabetic())
    {
        let len = s[p + 1..]
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(s.len() - p - 1);
        fields.push(s[p + 1..p + 1 + len].to_string());
        p += 1 + len;
    }
    (fields, p)
}

fn lex_quoted(rest: &str, col: usize) -> Result<(Tok, usize), TemplateError> {
    let (value, len) = lex_delimited(rest, col, '"', "unterminated quoted string")?;
    Ok((Tok::Str(value), len))
}

fn lex_char(rest: &str, col: usize) -> Result<(Tok, usize), TemplateError> {
    let (value, len) = lex_delimited(rest, col, '\'', "unterminated character constant")?;
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(ch), None) => Ok((Tok::Int(i64::from(u32::from(ch))), len)),
        _ => Err(TemplateError::at(
            col,
            format!("malformed character constant: {}", &rest[..len]),
        )),
    }
}

/// The unquoted body of the `quote`-delimited literal `rest` starts with (escapes resolved) and the
/// literal's length; `unterminated` when the line ends first.
fn lex_delimited(
    rest: &str,
    col: usize,
    quote: char,
    unterminated: &str,
) -> Result<(String, usize), TemplateError> {
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\n' => break,
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if c == quote => {
                let value = unquote(&rest[1..i], quote).map_err(|e| TemplateError::at(col, e))?;
                return Ok((value, i + 1));
            }
            _ => {}
        }
    }
    Err(TemplateError::at(col, unterminated))
}

/// Go escape sequences inside `"…"` or `'…'`.
fn unquote(body: &str, quote: char) -> Result<String, String> {
    let bad = || format!("invalid syntax: {quote}{body}{quote}");
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(bad());
        };
        let mut hex = |n: usize| -> Result<u32, String> {
            let digits: String = (0..n).filter_map(|_| chars.next()).collect();
            if digits.len() != n {
                return Err(bad());
            }
            u32::from_str_radix(&digits, 16).map_err(|_| bad())
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' if quote == '"' => out.push('"'),
            '\'' if quote == '\'' => out.push('\''),
            'x' => {
                // A byte; only ASCII bytes survive as text here.
                let byte = hex(2)?;
                out.push(
                    char::from_u32(byte)
                        .filter(char::is_ascii)
                        .unwrap_or('\u{fffd}'),
                );
            }
            'u' => out.push(char::from_u32(hex(4)?).ok_or_else(bad)?),
            'U' => out.push(char::from_u32(hex(8)?).ok_or_else(bad)?),
            '0'..='7' => {
                let mut digits = String::from(e);
                for _ in 0..2 {
                    match chars.next() {
                        Some(d @ '0'..='7') => digits.push(d),
                        _ => return Err(bad()),
                    }
                }
                let byte = u32::from_str_radix(&digits, 8).map_err(|_| bad())?;
                if byte > 255 {
                    return Err(bad());
                }
                out.push(
                    char::from_u32(byte)
                        .filter(char::is_ascii)
                        .unwrap_or('\u{fffd}'),
                );
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn lex_number(rest: &str, col: usize) -> Result<(Tok, usize), TemplateError> {
    let bytes = rest.as_bytes();
    let mut p = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        p += 1;
    }
    let hex = rest[p..].starts_with("0x") || rest[p..].starts_with("0X");
    while p < bytes.len() {
        let b = bytes[p];
        let exponent = if hex { b"pP" } else { b"eE" };
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            p += 1;
            if exponent.contains(&b) && matches!(bytes.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
        } else {
            break;
        }
    }
    let text = &rest[..p];
    let tok = parse_number(text)
        .map_err(|message| TemplateError::at(col, format!("{message}: {text}")))?;
    Ok((tok, p))
}

fn parse_number(text: &str) -> Result<Tok, &'static str> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let clean = unsigned.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let is_integer = if radix == 16 {
        !digits.contains(['.', 'p'])
    } else {
        !digits.contains(['.', 'e'])
    };
    if is_integer {
        let magnitude = u64::from_str_radix(&digits, radix).map_err(|_| {
            if digits.bytes().all(|b| b.is_ascii_hexdigit()) && !digits.is_empty() {
                "integer overflow"
            } else {
                "bad number syntax"
            }
        })?;
        let value = if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        };
        return value.map(Tok::Int).ok_or("integer overflow");
    }
    if radix != 10 || lower.ends_with('.') && lower.len() == 1 {
        return Err("bad number syntax");
    }
    let value: f64 = lower.parse().map_err(|_| "bad number syntax")?;
    Ok(Tok::Float(if negative { -value } else { value }))
}

// ---------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    Branch {
        with: bool,
        pipe: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    decl: Option<(String, bool)>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Operand>,
    col: usize,
}

#[derive(Debug, Clone)]
enum Operand {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Bool(bool),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe(Box<Pipeline>),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Dot => f.write_str("."),
            Operand::Field(chain) => write!(f, ".{}", chain.join(".")),
            Operand::Var(name, chain) => {
                f.write_str(name)?;
                chain.iter().try_for_each(|c| write!(f, ".{c}"))
            }
            Operand::Func(name) => f.write_str(name),
            Operand::Bool(b) => write!(f, "{b}"),
            Operand::Str(s) => write!(f, "{}", go_quote(s)),
            Operand::Int(i) => write!(f, "{i}"),
            Operand::Float(x) => f.write_str(&go_float(*x)),
            Operand::Pipe(_) => f.write_str("(…)"),
        }
    }
}

const SPRIG_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "contains",
    "replace",
    "trim",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "title",
    "untitle",
    "repeat",
    "substr",
    "nospace",
    "trunc",
    "initials",
    "hasPrefix",
    "hasSuffix",
    "mustRegexReplaceAll",
    "add",
    "add1",
    "sub",
    "div",
    "mod",
    "mul",
    "max",
    "min",
    "floor",
    "ceil",
    "round",
];

const BUILTIN_FUNCTIONS: &[&str] = &[
    "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice", "print",
    "printf", "println", "html", "urlquery",
];

const UNSUPPORTED_BUILTINS: &[&str] = &["js", "call"];

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "with", "range", "define", "template", "block", "break", "continue", "nil",
];

enum Stop {
    Eof,
    Else(Vec<Token>, usize),
    End(usize),
}

struct Parser {
    pieces: Vec<Piece>,
    next: usize,
    vars: Vec<String>,
}

impl Parser {
    fn parse_list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        loop {
            let Some(piece) = self.pieces.get_mut(self.next) else {
                return Ok((nodes, Stop::Eof));
            };
            self.next += 1;
            let (tokens, col) = match piece {
                Piece::Text(text) => {
                    nodes.push(Node::Text(std::mem::take(text)));
                    continue;
                }
                Piece::Action { tokens, col } => (std::mem::take(tokens), *col),
            };
            let Some(first) = tokens.first() else {
                return Err(TemplateError::at(col, "missing value for command"));
            };
            match &first.tok {
                Tok::Ident(word) if word == "if" || word == "with" => {
                    let with = word == "with";
                    nodes.push(self.parse_control(with, &tokens[1..], col)?);
                }
                Tok::Ident(word) if word == "else" => {
                    return Ok((nodes, Stop::Else(tokens[1..].to_vec(), col)));
                }
                Tok::Ident(word) if word == "end" => {
                    if let Some(extra) = tokens.get(1) {
                        return Err(TemplateError::at(extra.col, "unexpected token in {{end}}"));
                    }
                    return Ok((nodes, Stop::End(col)));
                }
                Tok::Ident(word) if word == "nil" => {
                    return Err(TemplateError::at(col, "nil is not a command"));
                }
                Tok::Ident(word) if KEYWORDS.contains(&word.as_str()) => {
                    return Err(TemplateError::at(
                        col,
                        format!("{{{{{word}}}}} is not supported in Forklift name templates"),
                    ));
                }
                _ => nodes.push(Node::Action(self.parse_pipeline(&tokens, col, "command")?)),
            }
        }
    }

    fn parse_control(
        &mut self,
        with: bool,
        tokens: &[Token],
        col: usize,
    ) -> Result<Node, TemplateError> {
        let context = if with { "with" } else { "if" };
        let mark = self.vars.len();
        let pipe = self.parse_pipeline(tokens, col, context)?;
        let (then, stop) = self.parse_list()?;
        let otherwise = match stop {
            Stop::Eof => return Err(TemplateError::at(col, "unexpected EOF")),
            Stop::End(_) => Vec::new(),
            Stop::Else(rest, else_col) => match rest.first().map(|t| &t.tok) {
                Some(Tok::Ident(word)) if word == "if" || word == "with" => {
                    let nested_with = word == "with";
                    vec![self.parse_control(nested_with, &rest[1..], else_col)?]
                }
                Some(_) => {
                    return Err(TemplateError::at(else_col, "unexpected token in {{else}}"));
                }
                None => {
                    let (list, stop) = self.parse_list()?;
                    match stop {
                        Stop::End(_) => list,
                        Stop::Else(_, c) => {
                            return Err(TemplateError::at(c, "expected end; found {{else}}"));
                        }
                        Stop::Eof => return Err(TemplateError::at(col, "unexpected EOF")),
                    }
                }
            },
        };
        self.vars.truncate(mark);
        Ok(Node::Branch {
            with,
            pipe,
            then,
            otherwise,
        })
    }

    fn parse_pipeline(
        &mut self,
        tokens: &[Token],
        col: usize,
        context: &str,
    ) -> Result<Pipeline, TemplateError> {
        let mut tokens = tokens;
        let mut decl = None;
        if let [
            Token {
                tok: Tok::Var(name, chain),
                ..
            },
            Token {
                tok: op @ (Tok::Declare | Tok::Assign),
                col: op_col,
            },
            rest @ ..,
        ] = tokens
        {
            if !chain.is_empty() {
                return Err(TemplateError::at(*op_col, "cannot assign to a field"));
            }
            let declare = *op == Tok::Declare;
            if declare {
                self.vars.push(name.clone());
            } else if !self.vars.contains(name) && name != "$" {
                return Err(TemplateError::at(
                    *op_col,
                    format!("undefined variable {name:?}"),
                ));
            }
            decl = Some((name.clone(), declare));
            tokens = rest;
        }
        if tokens.is_empty() {
            return Err(TemplateError::at(
                col,
                format!("missing value for {context}"),
            ));
        }
        let mut cmds = Vec::new();
        let mut start = 0;
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            match token.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| TemplateError::at(token.col, "unexpected right paren"))?;
                }
                Tok::Pipe if depth == 0 => {
                    cmds.push(self.parse_command(&tokens[start..i], token.col)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth > 0 {
            return Err(TemplateError::at(col, "unclosed left paren"));
        }
        let end_col = tokens.last().map_or(col, |t| t.col);
        cmds.push(self.parse_command(&tokens[start..], end_col)?);
        for (stage, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args.first(),
                Some(
                    Operand::Bool(_)
                        | Operand::Dot
                        | Operand::Int(_)
                        | Operand::Float(_)
                        | Operand::Str(_)
                )
            ) {
                return Err(TemplateError::at(
                    cmd.col,
                    format!("non executable command in pipeline stage {}", stage + 1),
                ));
            }
        }
        Ok(Pipeline { decl, cmds })
    }

    fn parse_command(&mut self, tokens: &[Token], col: usize) -> Result<Command, TemplateError> {
        let Some(first) = tokens.first() else {
            return Err(TemplateError::at(col, "missing value for command"));
        };
        let mut args = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            i += 1;
            let operand = match &token.tok {
                Tok::Dot => Operand::Dot,
                Tok::Field(chain) => Operand::Field(chain.clone()),
                Tok::Var(name, chain) => {
                    if name != "$" && !self.vars.contains(name) {
                        return Err(TemplateError::at(
                            token.col,
                            format!("undefined variable {name:?}"),
                        ));
                    }
                    Operand::Var(name.clone(), chain.clone())
                }
                Tok::Bool(b) => Operand::Bool(*b),
                Tok::Str(s) => Operand::Str(s.clone()),
                Tok::Int(n) => Operand::Int(*n),
                Tok::Float(x) => Operand::Float(*x),
                Tok::Ident(name) => Operand::Func(check_function(name, token.col)?),
                Tok::LParen => {
                    let mut depth = 1usize;
                    let inner_start = i;
                    while depth > 0 {
                        let Some(t) = tokens.get(i) else {
                            return Err(TemplateError::at(token.col, "unclosed left paren"));
                        };
                        match t.tok {
                            Tok::LParen => depth += 1,
                            Tok::RParen => depth -= 1,
                            _ => {}
                        }
                        i += 1;
                    }
                    let inner = &tokens[inner_start..i - 1];
                    Operand::Pipe(Box::new(self.parse_pipeline(
                        inner,
                        token.col,
                        "parenthesized pipeline",
                    )?))
                }
                Tok::RParen => return Err(TemplateError::at(token.col, "unexpected right paren")),
                Tok::Pipe | Tok::Declare | Tok::Assign => {
                    return Err(TemplateError::at(token.col, "unexpected token in operand"));
                }
            };
            args.push(operand);
        }
        Ok(Command {
            args,
            col: first.col,
        })
    }
}

fn check_function(name: &str, col: usize) -> Result<String, TemplateError> {
    if SPRIG_FUNCTIONS.contains(&name) || BUILTIN_FUNCTIONS.contains(&name) {
        return Ok(name.to_string());
    }
    if UNSUPPORTED_BUILTINS.contains(&name) {
        return Err(TemplateError::at(
            col,
            format!(
                "function {name:?} is a text/template built-in this evaluator does not support"
            ),
        ));
    }
    if KEYWORDS.contains(&name) {
        return Err(TemplateError::at(
            col,
            format!("unexpected {name:?} in operand"),
        ));
    }
    Err(TemplateError::at(
        col,
        format!("function {name:?} not defined"),
    ))
}

// ---------------------------------------------------------------------------------------------
// Execution

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
    /// The data struct itself (`.` or `$` at the top level).
    Data,
}

impl From<&Value> for Val {
    fn from(v: &Value) -> Self {
        match v {
            Value::Str(s) => Val::Str(s.clone()),
            Value::Int(i) => Val::Int(*i),
            Value::Bool(b) => Val::Bool(*b),
            Value::Float(x) => Val::Float(*x),
        }
    }
}

struct Exec<'a> {
    data: &'a TemplateData,
    vars: Vec<(String, Val)>,
    out: String,
}

type CallResult = Result<Val, String>;

impl Exec<'_> {
    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(pipe, dot)?;
                    if pipe.decl.is_none() {
                        let printed = self.print(&value);
                        self.out.push_str(&printed);
                    }
                }
                Node::Branch {
                    with,
                    pipe,
                    then,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let value = self.eval_pipeline(pipe, dot)?;
                    if truth(&value) {
                        let inner_dot = if *with { &value } else { dot };
                        self.walk(then, inner_dot)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn eval_pipeline(&mut self, pipe: &Pipeline, dot: &Val) -> Result<Val, TemplateError> {
        let mut value: Option<Val> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Val::Str(String::new()));
        if let Some((name, declare)) = &pipe.decl {
            if *declare {
                self.vars.push((name.clone(), value.clone()));
            } else if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = value.clone();
            }
        }
        Ok(value)
    }

    fn eval_command(
        &mut self,
        cmd: &Command,
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, TemplateError> {
        match cmd.args.first() {
            Some(Operand::Func(name)) => self.call(name, &cmd.args[1..], dot, piped, cmd.col),
            Some(operand) => {
                if cmd.args.len() > 1 || piped.is_some() {
                    return Err(TemplateError::at(
                        cmd.col,
                        format!("can't give argument to non-function {operand}"),
                    ));
                }
                self.eval_operand(operand, dot, cmd.col)
            }
            None => Err(TemplateError::at(cmd.col, "missing value for command")),
        }
    }

    fn eval_operand(
        &mut self,
        operand: &Operand,
        dot: &Val,
        col: usize,
    ) -> Result<Val, TemplateError> {
        Ok(match operand {
            Operand::Dot => dot.clone(),
            Operand::Field(chain) => self.fields(dot.clone(), chain, col)?,
            Operand::Var(name, chain) => {
                let Some((_, value)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(TemplateError::at(
                        col,
                        format!("undefined variable {name:?}"),
                    ));
                };
                self.fields(value.clone(), chain, col)?
            }
            Operand::Func(name) => self.call(name, &[], dot, None, col)?,
            Operand::Bool(b) => Val::Bool(*b),
            Operand::Str(s) => Val::Str(s.clone()),
            Operand::Int(i) => Val::Int(*i),
            Operand::Float(x) => Val::Float(*x),
            Operand::Pipe(pipe) => {
                let mark = self.vars.len();
                let value = self.eval_pipeline(pipe, dot)?;
                self.vars.truncate(mark);
                value
            }
        })
    }

    fn fields(&self, base: Val, chain: &[String], col: usize) -> Result<Val, TemplateError> {
        let mut value = base;
        for name in chain {
            value = match value {
                Val::Data => match self.data.get(name) {
                    Some(v) => Val::from(v),
                    None => {
                        return Err(TemplateError::at(
                            col,
                            format!(
                                "can't evaluate field {name} in type {}",
                                self.data.kind().go_type_name()
                            ),
                        ));
                    }
                },
                other => {
                    return Err(TemplateError::at(
                        col,
                        format!(
                            "can't evaluate field {name} in type {}",
                            self.type_name(&other)
                        ),
                    ));
                }
            };
        }
        Ok(value)
    }

    fn type_name(&self, value: &Val) -> &'static str {
        match value {
            Val::Str(_) => "string",
            Val::Int(_) => "int",
            Val::Bool(_) => "bool",
            Val::Float(_) => "float64",
            Val::Data => self.data.kind().go_type_name(),
        }
    }

    /// Go's `%v`.
    fn print(&self, value: &Val) -> String {
        match value {
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Float(x) => go_float(*x),
            Val::Data => {
                let fields: Vec<String> = self.data.values.iter().map(Value::to_string).collect();
                format!("{{{}}}", fields.join(" "))
            }
        }
    }

    fn call(
        &mut self,
        name: &str,
        operands: &[Operand],
        dot: &Val,
        piped: Option<Val>,
        col: usize,
    ) -> Result<Val, TemplateError> {
        if name == "and" || name == "or" {
            let total = operands.len() + usize::from(piped.is_some());
            if total == 0 {
                return Err(TemplateError::at(
                    col,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            // Evaluated lazily, left to right: the first deciding value is the result.
            let mut last = Val::Bool(false);
            for operand in operands {
                last = self.eval_operand(operand, dot, col)?;
                if truth(&last) == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut args = Vec::with_capacity(operands.len() + 1);
        for operand in operands {
            args.push(self.eval_operand(operand, dot, col)?);
        }
        args.extend(piped);
        self.call_function(name, &args)
            .map_err(|message| TemplateError::at(col, message))
    }

    fn call_function(&self, name: &str, args: &[Val]) -> CallResult {
        let failed = |message: String| format!("error calling {name}: {message}");
        match name {
            "not" => {
                arity(name, args, 1)?;
                Ok(Val::Bool(!truth(&args[0])))
            }
            "eq" => {
                at_least(name, args, 1)?;
                if args.len() == 1 {
                    return Err(failed("missing argument for comparison".into()));
                }
                for other in &args[1..] {
                    if equal(&args[0], other).map_err(failed)? {
                        return Ok(Val::Bool(true));
                    }
                }
                Ok(Val::Bool(false))
            }
            "ne" => {
                arity(name, args, 2)?;
                Ok(Val::Bool(!equal(&args[0], &args[1]).map_err(failed)?))
            }
            "lt" | "le" | "gt" | "ge" => {
                arity(name, args, 2)?;
                let order = compare(&args[0], &args[1]).map_err(failed)?;
                Ok(Val::Bool(match name {
                    "lt" => order == Ordering::Less,
                    "le" => order != Ordering::Greater,
                    "gt" => order == Ordering::Greater,
                    _ => order != Ordering::Less,
                }))
            }
            "len" => {
                arity(name, args, 1)?;
                match &args[0] {
                    Val::Str(s) => Ok(Val::Int(len_i64(s.len()))),
                    other => Err(failed(format!("len of type {}", self.type_name(other)))),
                }
            }
            "index" => {
                at_least(name, args, 1)?;
                self.index(&args[0], &args[1..]).map_err(failed)
            }
            "slice" => {
                at_least(name, args, 1)?;
                self.slice(&args[0], &args[1..]).map_err(failed)
            }
            "print" => Ok(Val::Str(self.sprint(args))),
            "println" => {
                let parts: Vec<String> = args.iter().map(|a| self.print(a)).collect();
                Ok(Val::Str(format!("{}\n", parts.join(" "))))
            }
            "printf" => {
                at_least(name, args, 1)?;
                let format = want_str(&args[0], self)?;
                Ok(Val::Str(self.sprintf(format, &args[1..])))
            }
            "html" => Ok(Val::Str(html_escape(&self.eval_args(args)))),
            "urlquery" => Ok(Val::Str(query_escape(&self.eval_args(args)))),
            _ => self.call_sprig(name, args),
        }
    }

    fn call_sprig(&self, name: &str, args: &[Val]) -> CallResult {
        let failed = |message: String| format!("error calling {name}: {message}");
        let s = |i: usize| want_str(&args[i], self);
        let n = |i: usize| want_int(&args[i], self);
        let text = |v: String| Ok(Val::Str(v));
        if let Some(function) = string_function(name) {
            arity(name, args, 1)?;
            return text(function(s(0)?));
        }
        if let Some(test) = string_test(name) {
            arity(name, args, 2)?;
            let subject = s(1)?;
            return Ok(Val::Bool(test(s(0)?, subject)));
        }
        match name {
            "trimSuffix" => {
                arity(name, args, 2)?;
                let (suffix, subject) = (s(0)?, s(1)?);
                text(subject.strip_suffix(suffix).unwrap_or(subject).to_string())
            }
            "trimPrefix" => {
                arity(name, args, 2)?;
                let (prefix, subject) = (s(0)?, s(1)?);
                text(subject.strip_prefix(prefix).unwrap_or(subject).to_string())
            }
            "trimAll" => {
                arity(name, args, 2)?;
                let cutset = s(0)?;
                text(s(1)?.trim_matches(|c| cutset.contains(c)).to_string())
            }
            "replace" => {
                arity(name, args, 3)?;
                text(s(2)?.replace(s(0)?, s(1)?))
            }
            "repeat" => {
                arity(name, args, 2)?;
                let (count, subject) = (n(0)?, s(1)?);
                let count = usize::try_from(count)
                    .map_err(|_| failed("strings: negative Repeat count".into()))?;
                if count.saturating_mul(subject.len()) > MAX_REPEAT_BYTES {
                    return Err(failed("result too large".into()));
                }
                text(subject.repeat(count))
            }
            "substr" => {
                arity(name, args, 3)?;
                substr(n(0)?, n(1)?, s(2)?).map(Val::Str).map_err(failed)
            }
            "trunc" => {
                arity(name, args, 2)?;
                text(trunc(n(0)?, s(1)?))
            }
            "mustRegexReplaceAll" => {
                arity(name, args, 3)?;
                let regex = regex::Regex::new(s(0)?)
                    .map_err(|e| failed(format!("error parsing regexp: {e}")))?;
                text(regex.replace_all(s(1)?, s(2)?).into_owned())
            }
            "add" => Ok(Val::Int(
                args.iter().map(to_int64).fold(0i64, i64::wrapping_add),
            )),
            "add1" => {
                arity(name, args, 1)?;
                Ok(Val::Int(to_int64(&args[0]).wrapping_add(1)))
            }
            "sub" => {
                arity(name, args, 2)?;
                Ok(Val::Int(
                    to_int64(&args[0]).wrapping_sub(to_int64(&args[1])),
                ))
            }
            "mul" => {
                at_least(name, args, 1)?;
                Ok(Val::Int(
                    args.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
                ))
            }
            "div" | "mod" => {
                arity(name, args, 2)?;
                let (a, b) = (to_int64(&args[0]), to_int64(&args[1]));
                if b == 0 {
                    return Err(failed("runtime error: integer divide by zero".into()));
                }
                Ok(Val::Int(if name == "div" {
                    a.wrapping_div(b)
                } else {
                    a.wrapping_rem(b)
                }))
            }
            "max" | "min" => {
                at_least(name, args, 1)?;
                let values = args.iter().map(to_int64);
                let result = if name == "max" {
                    values.max()
                } else {
                    values.min()
                };
                Ok(Val::Int(result.unwrap_or(0)))
            }
            "floor" => {
                arity(name, args, 1)?;
                Ok(Val::Float(to_float64(&args[0]).floor()))
            }
            "ceil" => {
                arity(name, args, 1)?;
                Ok(Val::Float(to_float64(&args[0]).ceil()))
            }
            "round" => {
                at_least(name, args, 2)?;
                let places = n(1)?;
                let round_on = match args.get(2) {
                    Some(Val::Int(i)) => *i as f64,
                    Some(Val::Float(x)) => *x,
                    Some(other) => return Err(wrong_type("float64", other, self)),
                    None => 0.5,
                };
                Ok(Val::Float(sprig_round(
                    to_float64(&args[0]),
                    places,
                    round_on,
                )))
            }
            _ => Err(format!("function {name:?} not defined")),
        }
    }

    fn index(&self, item: &Val, indices: &[Val]) -> Result<Val, String> {
        let mut current = item.clone();
        let mut is_byte = false;
        for index in indices {
            let Val::Str(s) = &current else {
                let type_name = if is_byte {
                    "uint8"
                } else {
                    self.type_name(&current)
                };
                return Err(format!("can't index item of type {type_name}"));
            };
            let i = index_value(index, self)?;
            let byte = usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .ok_or_else(|| format!("index out of range: {i}"))?;
            current = Val::Int(i64::from(*byte));
            is_byte = true;
        }
        Ok(current)
    }

    fn slice(&self, item: &Val, indices: &[Val]) -> Result<Val, String> {
        let Val::Str(s) = item else {
            return Err(format!("can't slice item of type {}", self.type_name(item)));
        };
        if indices.len() > 2 {
            return Err("cannot 3-index slice a string".into());
        }
        let mut bounds = [0usize, s.len()];
        for (slot, index) in bounds.iter_mut().zip(indices) {
            let i = index_value(index, self)?;
            *slot = usize::try_from(i)
                .ok()
                .filter(|&i| i <= s.len())
                .ok_or_else(|| format!("index out of range: {i}"))?;
        }
        if bounds[0] > bounds[1] {
            return Err(format!(
                "invalid slice index: {} > {}",
                bounds[0], bounds[1]
            ));
        }
        Ok(Val::Str(
            String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned(),
        ))
    }

    /// `fmt.Sprint`: a space between operands when neither side is a string.
    fn sprint(&self, args: &[Val]) -> String {
        let mut out = String::new();
        for (i, arg) in args.iter().enumerate() {
            let is_str = |v: &Val| matches!(v, Val::Str(_));
            if i > 0 && !is_str(arg) && !is_str(&args[i - 1]) {
                out.push(' ');
            }
            out.push_str(&self.print(arg));
        }
        out
    }

    /// The argument handling of `html` and `urlquery`.
    fn eval_args(&self, args: &[Val]) -> String {
        match args {
            [Val::Str(s)] => s.clone(),
            _ => self.sprint(args),
        }
    }

    /// `fmt.Sprintf` for the verbs name templates use: `%v %s %d %q %t %x %X %o %b %c %f %e %g
    /// %%`, with flags `-+0 `, width and precision.
    fn sprintf(&self, format: &str, args: &[Val]) -> String {
        let mut out = String::new();
        let mut next_arg = 0;
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut spec = Spec::default();
            while let Some(&flag) = chars.peek() {
                match flag {
                    '-' => spec.minus = true,
                    '+' => spec.plus = true,
                    '0' => spec.zero = true,
                    ' ' => spec.space = true,
                    '#' => {}
                    _ => break,
                }
                chars.next();
            }
            spec.width = take_digits(&mut chars);
            if spec.width.is_some_and(|w| w > MAX_PRINTF_WIDTH) {
                out.push_str("%!(BADWIDTH)");
                spec.width = None;
            }
            if chars.peek() == Some(&'.') {
                chars.next();
                spec.precision = Some(take_digits(&mut chars).unwrap_or(0));
                if spec.precision.is_some_and(|p| p > MAX_PRINTF_WIDTH) {
                    out.push_str("%!(BADPREC)");
                    spec.precision = None;
                }
            }
            let Some(verb) = chars.next() else {
                out.push_str("%!(NOVERB)");
                break;
            };
            if verb == '%' {
                out.push('%');
                continue;
            }
            let Some(arg) = args.get(next_arg) else {
                let _ = write!(out, "%!{verb}(MISSING)");
                continue;
            };
            next_arg += 1;
            out.push_str(&self.format_one(verb, &spec, arg));
        }
        if next_arg < args.len() {
            let extra: Vec<String> = args[next_arg..]
                .iter()
                .map(|a| format!("{}={}", self.type_name(a), self.print(a)))
                .collect();
            let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
        }
        out
    }

    fn format_one(&self, verb: char, spec: &Spec, arg: &Val) -> String {
        let bad = || format!("%!{verb}({}={})", self.type_name(arg), self.print(arg));
        match (verb, arg) {
            ('v', Val::Int(i)) | ('d', Val::Int(i)) => {
                spec.number(*i < 0, i.unsigned_abs().to_string())
            }
            ('v', Val::Float(x)) => spec.float(*x, go_float(x.abs())),
            ('v', _) | ('s', Val::Str(_)) => {
                let mut text = self.print(arg);
                if let (Some(p), 's') = (spec.precision, verb) {
                    text = text.chars().take(p).collect();
                }
                spec.pad(text, false)
            }
            ('t', Val::Bool(b)) => spec.pad(b.to_string(), false),
            ('q', Val::Str(s)) => spec.pad(go_quote(s), false),
            ('q', Val::Int(i)) => {
                let ch = u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                spec.pad(
                    format!("'{}'", go_quote(&ch.to_string()).trim_matches('"')),
                    false,
                )
            }
            ('c', Val::Int(i)) => {
                let ch = u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                spec.pad(ch.to_string(), false)
            }
            ('x' | 'X', Val::Str(s)) => {
                let mut hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' {
                    hex = hex.to_ascii_uppercase();
                }
                spec.pad(hex, false)
            }
            ('x' | 'X' | 'o' | 'b', Val::Int(i)) => {
                let magnitude = i.unsigned_abs();
                let digits = match verb {
                    'x' => format!("{magnitude:x}"),
                    'X' => format!("{magnitude:X}"),
                    'o' => format!("{magnitude:o}"),
                    _ => format!("{magnitude:b}"),
                };
                spec.number(*i < 0, digits)
            }
            ('f' | 'F', Val::Float(x)) => {
                let precision = spec.precision.unwrap_or(6);
                spec.float(*x, format!("{:.*}", precision, x.abs()))
            }
            ('e' | 'E', Val::Float(x)) => {
                let mut text = go_exponent(x.abs(), Some(spec.precision.unwrap_or(6)));
                if verb == 'E' {
                    text = text.to_ascii_uppercase();
                }
                spec.float(*x, text)
            }
            ('g' | 'G', Val::Float(x)) => spec.float(*x, go_float(x.abs())),
            _ => bad(),
        }
    }
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    fn pad(&self, text: String, numeric_sign: bool) -> String {
        let width = self.width.unwrap_or(0);
        let len = text.chars().count();
        if len >= width {
            return text;
        }
        let fill = width - len;
        if self.minus {
            return format!("{text}{}", " ".repeat(fill));
        }
        if self.zero {
            if numeric_sign && text.starts_with(['-', '+', ' ']) {
                let (sign, rest) = text.split_at(1);
                return format!("{sign}{}{rest}", "0".repeat(fill));
            }
            return format!("{}{text}", "0".repeat(fill));
        }
        format!("{}{text}", " ".repeat(fill))
    }

    fn signed(&self, negative: bool, digits: String) -> String {
        let sign = if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        format!("{sign}{digits}")
    }

    fn number(&self, negative: bool, digits: String) -> String {
        let digits = match self.precision {
            Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
            _ => digits,
        };
        self.pad(self.signed(negative, digits), true)
    }

    fn float(&self, value: f64, text: String) -> String {
        if value.is_nan() {
            return self.pad("NaN".into(), false);
        }
        let negative = value.is_sign_negative();
        let text = if value.is_infinite() {
            "Inf".to_string()
        } else {
            text
        };
        let signed = if value.is_infinite() && !negative && !self.plus {
            format!("+{text}")
        } else {
            self.signed(negative, text)
        };
        self.pad(signed, !value.is_infinite())
    }
}

fn take_digits(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut value: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        value = Some(
            value
                .unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(d as usize),
        );
        chars.next();
    }
    value
}

fn arity(name: &str, args: &[Val], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn at_least(name: &str, args: &[Val], want: usize) -> Result<(), String> {
    if args.len() >= want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        ))
    }
}

/// The sprig functions of one string that answer a string.
fn string_function(name: &str) -> Option<fn(&str) -> String> {
    let function: fn(&str) -> String = match name {
        "lower" => go_lower,
        "upper" => go_upper,
        "trim" => |s| s.trim().to_string(),
        "title" => go_title,
        "untitle" => untitle,
        "nospace" => |s| s.chars().filter(|c| !c.is_whitespace()).collect(),
        "initials" => initials,
        _ => return None,
    };
    Some(function)
}

/// The sprig tests of a string (the second argument) against another (the first).
fn string_test(name: &str) -> Option<fn(&str, &str) -> bool> {
    let test: fn(&str, &str) -> bool = match name {
        "contains" => |part, subject| subject.contains(part),
        "hasPrefix" => |prefix, subject| subject.starts_with(prefix),
        "hasSuffix" => |suffix, subject| subject.ends_with(suffix),
        _ => return None,
    };
    Some(test)
}

/// Go's words for a function argument of the wrong type: `expected` is the Go type it takes.
fn wrong_type(expected: &str, value: &Val, exec: &Exec<'_>) -> String {
    format!(
        "wrong type for value; expected {expected}; got {}",
        exec.type_name(value)
    )
}

fn want_str<'v>(value: &'v Val, exec: &Exec<'_>) -> Result<&'v str, String> {
    match value {
        Val::Str(s) => Ok(s),
        other => Err(wrong_type("string", other, exec)),
    }
}

fn want_int(value: &Val, exec: &Exec<'_>) -> Result<i64, String> {
    match value {
        Val::Int(i) => Ok(*i),
        other => Err(wrong_type("int", other, exec)),
    }
}

fn index_value(value: &Val, exec: &Exec<'_>) -> Result<i64, String> {
    match value {
        Val::Int(i) => Ok(*i),
        other => Err(format!(
            "cannot index slice/array with type {}",
            exec.type_name(other)
        )),
    }
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Go's `truth`: zero values are false; the data struct is always true.
fn truth(value: &Val) -> bool {
    match value {
        Val::Str(s) => !s.is_empty(),
        Val::Int(i) => *i != 0,
        Val::Bool(b) => *b,
        Val::Float(x) => *x != 0.0,
        Val::Data => true,
    }
}

fn equal(a: &Val, b: &Val) -> Result<bool, String> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x == y),
        (Val::Int(x), Val::Int(y)) => Ok(x == y),
        (Val::Bool(x), Val::Bool(y)) => Ok(x == y),
        (Val::Float(x), Val::Float(y)) => Ok(x == y),
        (Val::Data, _) | (_, Val::Data) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn compare(a: &Val, b: &Val) -> Result<Ordering, String> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Val::Int(x), Val::Int(y)) => Ok(x.cmp(y)),
        (Val::Float(x), Val::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Greater)),
        (Val::Bool(_), _) | (_, Val::Bool(_)) | (Val::Data, _) | (_, Val::Data) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Sprig and Go library behaviour, re-stated

/// Sprig's conversion of any argument to int64: unparsable strings and the struct become 0.
fn to_int64(value: &Val) -> i64 {
    match value {
        Val::Int(i) => *i,
        Val::Bool(b) => i64::from(*b),
        Val::Float(x) => *x as i64,
        Val::Str(s) => parse_cast_int(s).unwrap_or(0),
        Val::Data => 0,
    }
}

/// Sprig's conversion of any argument to float64.
fn to_float64(value: &Val) -> f64 {
    match value {
        Val::Int(i) => *i as f64,
        Val::Bool(b) => f64::from(u8::from(*b)),
        Val::Float(x) => *x,
        Val::Str(s) => s.parse().unwrap_or(0.0),
        Val::Data => 0.0,
    }
}

/// A string as Sprig's int conversion reads it: base prefixes allowed, `"12.00"` counts as 12.
fn parse_cast_int(s: &str) -> Option<i64> {
    let s = match s.rfind('.') {
        Some(dot) if s[dot + 1..].bytes().all(|b| b == b'0') && dot + 1 < s.len() => &s[..dot],
        _ => s,
    };
    match parse_number(s).ok()? {
        Tok::Int(i) => Some(i),
        _ => None,
    }
}

/// Sprig's `round VALUE PLACES [ROUND_ON]`: round up when the fractional part (sign kept) of
/// value×10^places reaches ROUND_ON, else round down.
fn sprig_round(value: f64, places: i64, round_on: f64) -> f64 {
    let pow = 10f64.powf(places as f64);
    let scaled = pow * value;
    let fraction = scaled.fract();
    let rounded = if fraction >= round_on {
        scaled.ceil()
    } else {
        scaled.floor()
    };
    rounded / pow
}

/// Sprig's `trunc`: byte-based; a negative count keeps the last |n| bytes.
fn trunc(count: i64, s: &str) -> String {
    let len = len_i64(s.len());
    let range = if count < 0 && len + count > 0 {
        (len + count) as usize..s.len()
    } else if count >= 0 && len > count {
        0..count as usize
    } else {
        0..s.len()
    };
    String::from_utf8_lossy(&s.as_bytes()[range]).into_owned()
}

/// Sprig's `substr START END STR`: byte-based; a negative start means 0, an end that is negative
/// or past the string means the end. Out-of-range slices are errors, as Go panics there.
fn substr(start: i64, end: i64, s: &str) -> Result<String, String> {
    let len = len_i64(s.len());
    let (from, to) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if to < 0 || to > len || from > to {
        return Err(format!(
            "runtime error: slice bounds out of range [{from}:{to}] with length {len}"
        ));
    }
    Ok(String::from_utf8_lossy(&s.as_bytes()[from as usize..to as usize]).into_owned())
}

fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Per-rune simple mapping: keep the rune when the full mapping is more than one character.
fn go_upper_char(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn go_upper(s: &str) -> String {
    s.chars().map(go_upper_char).collect()
}

/// `strings.Title`: upper-case every letter that follows a separator.
fn go_title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    let mut previous = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(previous) {
                go_upper_char(c)
            } else {
                c
            };
            previous = c;
            out
        })
        .collect()
}

/// Sprig's `untitle`: lower-case the first letter of each whitespace-separated word.
fn untitle(s: &str) -> String {
    let mut at_word_start = true;
    s.chars()
        .map(|c| {
            if c.is_whitespace() {
                at_word_start = true;
                c
            } else if at_word_start {
                at_word_start = false;
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Sprig's `initials`: the first character of each whitespace-separated word.
fn initials(s: &str) -> String {
    s.split_whitespace()
        .filter_map(|word| word.chars().next())
        .collect()
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            other => out.push(other),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// `strconv.Quote`-style double-quoted string.
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` for a float64: shortest digits, exponent form when the exponent is below -4 or at
/// least 6 (so 1e6 prints as `1e+06`, as in Go).
fn go_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let exponent: i32 = format!("{x:e}")
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        go_exponent(x, None)
    } else {
        format!("{x}")
    }
}

/// Go's `%e` (precision given) or shortest `%e`: mantissa, `e`, sign and at least two digits.
fn go_exponent(x: f64, precision: Option<usize>) -> String {
    let raw = match precision {
        Some(p) => format!("{x:.p$e}"),
        None => format!("{x:e}"),
    };
    let Some((mantissa, exp)) = raw.split_once('e') else {
        return raw;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}
