//! Marker (`-m`) and keyword (`-k`) selection expressions with pytest semantics.
//!
//! Both options share one grammar:
//!
//! ```text
//! expr    := or
//! or      := and ('or' and)*
//! and     := not ('and' not)*
//! not     := 'not' not | primary
//! primary := '(' expr ')' | IDENT
//! ```
//!
//! `and`, `or` and `not` are lowercase keywords. Identifiers are runs of letters, digits and
//! `_ : + - . [ ] \ /`, so `-k "TestSanityColdMtvMigration[rhel8]"` is a single identifier.
//! A `-m` identifier must be a known marker and matches exactly; a `-k` identifier matches when
//! it is a case-insensitive substring of one of the item's keywords (see [`keyword_hit`]).

use std::collections::BTreeSet;
use std::fmt;

use miette::{NamedSource, SourceSpan};

/// Deepest nesting of `not` and `(` accepted; keeps evaluation recursion bounded for hostile input.
const MAX_NESTING: usize = 64;

/// Most distinct identifiers (besides the implied marker) that [`MarkerExpr::implies`] enumerates.
const MAX_IMPLIES_IDENTIFIERS: usize = 20;

/// A parsed and validated `-m` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerExpr {
    source: String,
    tree: Tree,
}

impl MarkerExpr {
    /// Parses `source`; every identifier must be one of `known_markers` (case-sensitive).
    pub fn parse(source: &str, known_markers: &[&str]) -> Result<Self, ExprError> {
        let tree = Parser::parse(source, ExprOption::Marker)?;
        if let Some(unknown) = tree
            .occurrences
            .iter()
            .find(|occurrence| !known_markers.contains(&occurrence.text.as_str()))
        {
            return Err(unknown_marker(source, unknown, known_markers));
        }
        Ok(Self {
            source: source.to_owned(),
            tree,
        })
    }

    /// Evaluates the expression; `has_marker` answers whether the item carries a marker.
    pub fn matches(&self, has_marker: impl Fn(&str) -> bool) -> bool {
        self.tree.eval(&has_marker)
    }

    /// True when the expression can only be true for items carrying `marker` (e.g. "copyoffload",
    /// "copyoffload and warm", "not tier0 and copyoffload" imply copyoffload; "warm",
    /// "copyoffload or tier0", "not copyoffload" do not). Decided exactly by evaluating over all
    /// truth assignments of the identifiers that appear. An expression that no item can satisfy
    /// (`a and not a`) implies every marker. With more than 20 other distinct identifiers the
    /// answer is a conservative `false`.
    pub fn implies(&self, marker: &str) -> bool {
        let others: Vec<&str> = self
            .identifiers()
            .into_iter()
            .filter(|identifier| *identifier != marker)
            .collect();
        if others.len() > MAX_IMPLIES_IDENTIFIERS {
            return false;
        }
        // The expression implies `marker` iff it is unsatisfiable once `marker` is forced false.
        let assignments: u64 = 1 << others.len();
        !(0..assignments).any(|assignment| {
            self.tree.eval(&|identifier: &str| {
                others
                    .binary_search(&identifier)
                    .is_ok_and(|index| assignment & (1 << index) != 0)
            })
        })
    }

    /// The expression exactly as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The distinct marker names the expression mentions.
    pub fn identifiers(&self) -> BTreeSet<&str> {
        self.tree.identifiers()
    }
}

/// A parsed `-k` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordExpr {
    source: String,
    tree: Tree,
}

impl KeywordExpr {
    /// Parses `source`; any identifier is accepted.
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        let tree = Parser::parse(source, ExprOption::Keyword)?;
        Ok(Self {
            source: source.to_owned(),
            tree,
        })
    }

    /// Evaluates the expression; `keyword_matches` gets each identifier as written and says
    /// whether it hits the item (usually via [`keyword_hit`]).
    pub fn matches(&self, keyword_matches: impl Fn(&str) -> bool) -> bool {
        self.tree.eval(&keyword_matches)
    }

    /// The expression exactly as given.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Case-insensitive substring test of `ident` against any of `keywords` (pytest `-k` matching).
pub fn keyword_hit(ident: &str, keywords: &[&str]) -> bool {
    let needle = ident.to_lowercase();
    keywords
        .iter()
        .any(|keyword| keyword.to_lowercase().contains(&needle))
}

/// What went wrong in an expression; see [`ExprError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// A character that is neither whitespace, a parenthesis nor part of an identifier.
    UnexpectedCharacter,
    /// The expression stops where an identifier or `(` is required.
    UnexpectedEnd,
    /// A token where another was required (e.g. `a and or b`, `a b`).
    UnexpectedToken,
    /// A `)` without a matching `(`.
    UnbalancedClose,
    /// A `(` that is never closed.
    UnclosedOpen,
    /// `not` and `(` nested deeper than the parser accepts.
    TooDeep,
    /// A `-m` identifier that is not a known marker.
    UnknownMarker,
}

/// A `-m` or `-k` expression that cannot be used, pointing at the offending token.
///
/// Boxed so that the parser's `Result`s stay small; the diagnostic itself is [`ExprFault`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ExprError(Box<ExprFault>);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{summary}")]
struct ExprFault {
    option: &'static str,
    kind: ExprErrorKind,
    message: String,
    column: usize,
    summary: String,
    label: String,
    #[source_code]
    expression: NamedSource<String>,
    #[label("{label}")]
    span: SourceSpan,
    #[help]
    help: Option<String>,
}

impl ExprError {
    /// The command-line option the expression came from: `"-m"` or `"-k"`.
    pub fn option(&self) -> &str {
        self.0.option
    }

    /// 1-based column (in characters) of the offending token.
    pub fn column(&self) -> usize {
        self.0.column
    }

    /// The class of mistake.
    pub fn kind(&self) -> ExprErrorKind {
        self.0.kind
    }

    /// The short description, e.g. "unexpected end of expression".
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Byte span of the offending token within the expression.
    pub fn span(&self) -> SourceSpan {
        self.0.span
    }

    fn new(
        option: ExprOption,
        source: &str,
        kind: ExprErrorKind,
        span: (usize, usize),
        message: String,
        label: String,
    ) -> Self {
        let (start, len) = span;
        let column = source
            .get(..start)
            .map_or(start, |before| before.chars().count())
            + 1;
        let flag = option.flag();
        let summary = format!("invalid {flag} expression {source:?}: {message} at column {column}");
        // miette draws no marker for an empty span at the very end of a line; a trailing blank
        // gives "unexpected end" errors a place to point at.
        let mut shown = source.to_owned();
        if start >= source.len() {
            shown.push(' ');
        }
        Self(Box::new(ExprFault {
            option: flag,
            kind,
            message,
            column,
            summary,
            label,
            expression: NamedSource::new(format!("{flag} expression"), shown),
            span: SourceSpan::new(start.into(), len),
            help: None,
        }))
    }

    /// Adds a did-you-mean (also to the one-line Display) and a help line.
    fn with_hints(mut self, suggestion: Option<String>, help: String) -> Self {
        if let Some(suggestion) = suggestion {
            self.0.summary.push_str("; ");
            self.0.summary.push_str(&suggestion);
            self.0.label = suggestion;
        }
        self.0.help = Some(help);
        self
    }
}

// Delegates to the boxed fault; miette's derive cannot see through a `Box`.
impl miette::Diagnostic for ExprError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.code()
    }

    fn severity(&self) -> Option<miette::Severity> {
        self.0.severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }

    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.url()
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.0.related()
    }

    fn diagnostic_source(&self) -> Option<&dyn miette::Diagnostic> {
        self.0.diagnostic_source()
    }
}

fn unknown_marker(source: &str, unknown: &Occurrence, known_markers: &[&str]) -> ExprError {
    let mut known: Vec<&str> = Vec::with_capacity(known_markers.len());
    for marker in known_markers {
        if !known.contains(marker) {
            known.push(marker);
        }
    }
    let help = if known.is_empty() {
        "no markers are declared".to_owned()
    } else {
        format!("known markers: {}", known.join(", "))
    };
    let suggestion =
        closest(&unknown.text, &known).map(|suggestion| format!("did you mean '{suggestion}'?"));
    ExprError::new(
        ExprOption::Marker,
        source,
        ExprErrorKind::UnknownMarker,
        (unknown.start, unknown.text.len()),
        format!("unknown marker '{}'", unknown.text),
        "not a known marker".to_owned(),
    )
    .with_hints(suggestion, help)
}

/// The known marker nearest to `word` by edit distance, if it is near enough to be a typo.
fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let word = word.to_lowercase();
    let threshold = (word.chars().count() / 3).max(2);
    known
        .iter()
        .map(|candidate| (edit_distance(&word, &candidate.to_lowercase()), *candidate))
        .filter(|(distance, _)| *distance <= threshold)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            table[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (table[(i - 1) * width + j] + 1)
                    .min(table[i * width + j - 1] + 1)
                    .min(table[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(table[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    table[a.len() * width + b.len()]
}

/// Which option an expression belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExprOption {
    Marker,
    Keyword,
}

impl ExprOption {
    fn flag(self) -> &'static str {
        match self {
            ExprOption::Marker => "-m",
            ExprOption::Keyword => "-k",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Occurrence {
    text: String,
    start: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Index into [`Tree::occurrences`].
    Ident(usize),
    Not(Box<Node>),
    // n-ary so that long `a and b and c …` chains stay shallow.
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tree {
    root: Node,
    occurrences: Vec<Occurrence>,
}

impl Tree {
    fn eval(&self, truth: &dyn Fn(&str) -> bool) -> bool {
        self.eval_node(&self.root, truth)
    }

    fn eval_node(&self, node: &Node, truth: &dyn Fn(&str) -> bool) -> bool {
        match node {
            Node::Ident(index) => truth(&self.occurrences[*index].text),
            Node::Not(inner) => !self.eval_node(inner, truth),
            Node::And(terms) => terms.iter().all(|term| self.eval_node(term, truth)),
            Node::Or(terms) => terms.iter().any(|term| self.eval_node(term, truth)),
        }
    }

    fn identifiers(&self) -> BTreeSet<&str> {
        self.occurrences
            .iter()
            .map(|occurrence| occurrence.text.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Ident,
    And,
    Or,
    Not,
    Open,
    Close,
    End,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | ':' | '+' | '-' | '.' | '[' | ']' | '\\' | '/')
}

struct Parser<'s> {
    source: &'s str,
    option: ExprOption,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
    occurrences: Vec<Occurrence>,
}

impl<'s> Parser<'s> {
    fn parse(source: &'s str, option: ExprOption) -> Result<Tree, ExprError> {
        let mut parser = Parser {
            source,
            option,
            tokens: Vec::new(),
            pos: 0,
            nesting: 0,
            occurrences: Vec::new(),
        };
        parser.tokenize()?;
        if parser.peek().kind == TokenKind::End {
            return Err(parser.error(
                ExprErrorKind::Empty,
                (0, source.len()),
                "empty expression".to_owned(),
                "expected at least one identifier".to_owned(),
            ));
        }
        let root = parser.parse_or()?;
        let next = parser.peek();
        match next.kind {
            TokenKind::End => {}
            TokenKind::Close => {
                return Err(parser.error(
                    ExprErrorKind::UnbalancedClose,
                    (next.start, next.end - next.start),
                    "unbalanced ')'".to_owned(),
                    "no matching '('".to_owned(),
                ));
            }
            _ => {
                return Err(parser.unexpected(next, "'and', 'or' or end of expression"));
            }
        }
        Ok(Tree {
            root,
            occurrences: parser.occurrences,
        })
    }

    fn tokenize(&mut self) -> Result<(), ExprError> {
        let mut chars = self.source.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            let kind = match c {
                c if c.is_whitespace() => continue,
                '(' => TokenKind::Open,
                ')' => TokenKind::Close,
                c if is_ident_char(c) => {
                    let mut end = start + c.len_utf8();
                    while let Some(&(at, next)) = chars.peek() {
                        if !is_ident_char(next) {
                            break;
                        }
                        end = at + next.len_utf8();
                        chars.next();
                    }
                    let kind = match &self.source[start..end] {
                        "and" => TokenKind::And,
                        "or" => TokenKind::Or,
                        "not" => TokenKind::Not,
                        _ => TokenKind::Ident,
                    };
                    self.tokens.push(Token { kind, start, end });
                    continue;
                }
                other => {
                    return Err(self.error(
                        ExprErrorKind::UnexpectedCharacter,
                        (start, other.len_utf8()),
                        format!("unexpected character {}", quote_char(other)),
                        "use 'and', 'or', 'not' and parentheses".to_owned(),
                    ));
                }
            };
            self.tokens.push(Token {
                kind,
                start,
                end: start + c.len_utf8(),
            });
        }
        let end = self.source.len();
        self.tokens.push(Token {
            kind: TokenKind::End,
            start: end,
            end,
        });
        Ok(())
    }

    fn peek(&self) -> Token {
        // `tokenize` always appends End and `bump` never moves past it.
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek();
        if token.kind != TokenKind::End {
            self.pos += 1;
        }
        token
    }

    fn parse_or(&mut self) -> Result<Node, ExprError> {
        self.parse_chain(TokenKind::Or, Self::parse_and, Node::Or)
    }

    fn parse_and(&mut self) -> Result<Node, ExprError> {
        self.parse_chain(TokenKind::And, Self::parse_not, Node::And)
    }

    /// Terms (each parsed by `term`) joined by the operator `op` into one `join` node; a lone term
    /// stands as it is.
    fn parse_chain(
        &mut self,
        op: TokenKind,
        term: fn(&mut Self) -> Result<Node, ExprError>,
        join: fn(Vec<Node>) -> Node,
    ) -> Result<Node, ExprError> {
        let mut terms = vec![term(self)?];
        while self.peek().kind == op {
            self.bump();
            terms.push(term(self)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            join(terms)
        })
    }

    fn parse_not(&mut self) -> Result<Node, ExprError> {
        if self.peek().kind != TokenKind::Not {
            return self.parse_primary();
        }
        let not = self.bump();
        self.enter(not)?;
        let inner = self.parse_not()?;
        self.nesting -= 1;
        Ok(Node::Not(Box::new(inner)))
    }

    fn parse_primary(&mut self) -> Result<Node, ExprError> {
        let token = self.peek();
        match token.kind {
            TokenKind::Ident => {
                self.bump();
                self.occurrences.push(Occurrence {
                    text: self.source[token.start..token.end].to_owned(),
                    start: token.start,
                });
                Ok(Node::Ident(self.occurrences.len() - 1))
            }
            TokenKind::Open => {
                let open = self.bump();
                self.enter(open)?;
                let inner = self.parse_or()?;
                let close = self.peek();
                match close.kind {
                    TokenKind::Close => {
                        self.bump();
                        self.nesting -= 1;
                        Ok(inner)
                    }
                    TokenKind::End => Err(self.error(
                        ExprErrorKind::UnclosedOpen,
                        (open.start, 1),
                        "unclosed '('".to_owned(),
                        "this '(' is never closed".to_owned(),
                    )),
                    _ => Err(self.unexpected(close, "'and', 'or' or ')'")),
                }
            }
            TokenKind::Close if !self.inside_parentheses() => Err(self.error(
                ExprErrorKind::UnbalancedClose,
                (token.start, 1),
                "unbalanced ')'".to_owned(),
                "no matching '('".to_owned(),
            )),
            TokenKind::End => {
                let label = format!("expected an identifier or '(' {}", self.after());
                Err(self.error(
                    ExprErrorKind::UnexpectedEnd,
                    (token.start, 0),
                    "unexpected end of expression".to_owned(),
                    label,
                ))
            }
            _ => Err(self.unexpected(token, "an identifier or '('")),
        }
    }

    fn inside_parentheses(&self) -> bool {
        let consumed = &self.tokens[..self.pos];
        let opened = consumed
            .iter()
            .filter(|t| t.kind == TokenKind::Open)
            .count();
        let closed = consumed
            .iter()
            .filter(|t| t.kind == TokenKind::Close)
            .count();
        opened > closed
    }

    fn enter(&mut self, token: Token) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error(
                ExprErrorKind::TooDeep,
                (token.start, token.end - token.start),
                format!("expression nested more than {MAX_NESTING} levels deep"),
                "nested too deeply".to_owned(),
            ));
        }
        Ok(())
    }

    /// Where the parser stands, for messages: "after 'and'" or "at the start".
    fn after(&self) -> String {
        match self.pos.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(previous) => format!("after {}", self.describe(*previous)),
            None => "at the start".to_owned(),
        }
    }

    fn describe(&self, token: Token) -> String {
        match token.kind {
            TokenKind::End => "end of expression".to_owned(),
            _ => format!("'{}'", &self.source[token.start..token.end]),
        }
    }

    fn unexpected(&self, token: Token, expected: &str) -> ExprError {
        let found = self.describe(token);
        self.error(
            ExprErrorKind::UnexpectedToken,
            (token.start, token.end - token.start),
            format!("expected {expected} {}, found {found}", self.after()),
            format!("expected {expected}"),
        )
    }

    fn error(
        &self,
        kind: ExprErrorKind,
        span: (usize, usize),
        message: String,
        label: String,
    ) -> ExprError {
        ExprError::new(self.option, self.source, kind, span, message, label)
    }
}

fn quote_char(c: char) -> String {
    if c.is_control() {
        format!("{:?}", c)
    } else {
        format!("'{c}'")
    }
}

impl fmt::Display for MarkerExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Display for KeywordExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
