//! Behaviour of the `-m` and `-k` expression parsers.

use std::collections::BTreeSet;

use mtv_catalog::expr::{ExprError, ExprErrorKind, KeywordExpr, MarkerExpr, keyword_hit};

const KNOWN: &[&str] = &[
    "tier0",
    "tier1",
    "tier2",
    "warm",
    "cold",
    "copyoffload",
    "remote",
    "a",
    "b",
    "c",
    "d",
];

fn marker(source: &str) -> MarkerExpr {
    match MarkerExpr::parse(source, KNOWN) {
        Ok(expr) => expr,
        Err(error) => panic!("{source:?} should parse: {error}"),
    }
}

fn marker_error(source: &str) -> ExprError {
    match MarkerExpr::parse(source, KNOWN) {
        Ok(expr) => panic!("{source:?} should not parse, got {expr:?}"),
        Err(error) => error,
    }
}

fn keyword_error(source: &str) -> ExprError {
    match KeywordExpr::parse(source) {
        Ok(expr) => panic!("{source:?} should not parse, got {expr:?}"),
        Err(error) => error,
    }
}

/// Evaluates `source` for an item carrying exactly `markers`.
fn selects(source: &str, markers: &[&str]) -> bool {
    marker(source).matches(|name| markers.contains(&name))
}

/// Evaluates `source` as -k against an item with `keywords`.
fn keyword_selects(source: &str, keywords: &[&str]) -> bool {
    match KeywordExpr::parse(source) {
        Ok(expr) => expr.matches(|ident| keyword_hit(ident, keywords)),
        Err(error) => panic!("{source:?} should parse: {error}"),
    }
}

fn render(error: &ExprError) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(120);
    let mut out = String::new();
    // The end-of-input marker sits on a trailing blank; trim it so snapshots carry no trailing spaces.
    match handler.render_report(&mut out, error) {
        Ok(()) => out
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n"),
        Err(failure) => panic!("rendering failed: {failure}"),
    }
}

/// Every assignment of a, b, c as (a, b, c, carried markers).
fn assignments3() -> Vec<(bool, bool, bool, Vec<&'static str>)> {
    let mut all = Vec::new();
    for bits in 0..8u8 {
        let (a, b, c) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        let mut carried = Vec::new();
        if a {
            carried.push("a");
        }
        if b {
            carried.push("b");
        }
        if c {
            carried.push("c");
        }
        all.push((a, b, c, carried));
    }
    all
}

#[test]
fn single_marker_matches_exactly() {
    assert!(selects("tier0", &["tier0", "warm"]));
    assert!(!selects("tier0", &["tier1"]));
    // -m names are exact: a substring of a carried marker is not a hit.
    assert!(!selects("a", &["ab"]));
}

#[test]
fn and_binds_tighter_than_or() {
    for (a, b, c, carried) in assignments3() {
        assert_eq!(
            selects("a or b and c", &carried),
            a || (b && c),
            "a={a} b={b} c={c}"
        );
        assert_eq!(
            selects("a and b or c", &carried),
            (a && b) || c,
            "a={a} b={b} c={c}"
        );
    }
    // The case that tells the two readings apart.
    assert!(selects("a or b and c", &["a"]));
    assert!(!selects("(a or b) and c", &["a"]));
}

#[test]
fn not_binds_tighter_than_and() {
    for (a, b, _, carried) in assignments3() {
        assert_eq!(selects("not a and b", &carried), !a && b, "a={a} b={b}");
        assert_eq!(selects("not (a and b)", &carried), !(a && b), "a={a} b={b}");
        assert_eq!(selects("not a or b", &carried), !a || b, "a={a} b={b}");
    }
    assert!(!selects("not a and b", &["a", "b"]));
    assert!(selects("not (a and b)", &["b"]));
}

#[test]
fn parentheses_override_precedence() {
    for (a, b, c, carried) in assignments3() {
        assert_eq!(selects("(a or b) and c", &carried), (a || b) && c);
        assert_eq!(selects("a and (b or not c)", &carried), a && (b || !c));
        assert_eq!(selects("((a))", &carried), a);
        assert_eq!(
            selects("( a or ( b and ( not c ) ) )", &carried),
            a || (b && !c)
        );
    }
}

#[test]
fn nested_not() {
    assert!(selects("not not a", &["a"]));
    assert!(!selects("not not a", &[]));
    assert!(!selects("not not not a", &["a"]));
    assert!(selects("not (not a and not b)", &["b"]));
    assert!(!selects("not (not a and not b)", &[]));
}

#[test]
fn long_chains_and_whitespace() {
    let long = vec!["a"; 10_000].join(" and ");
    assert!(selects(&long, &["a"]));
    assert!(!selects(&long, &[]));
    assert!(selects("\ttier0\n  or\r\nwarm ", &["warm"]));
}

#[test]
fn source_and_identifiers() {
    let expr = marker("tier0 and not (warm or tier0) or copyoffload");
    assert_eq!(
        expr.source(),
        "tier0 and not (warm or tier0) or copyoffload"
    );
    assert_eq!(
        expr.identifiers(),
        BTreeSet::from(["copyoffload", "tier0", "warm"])
    );
    assert_eq!(marker("cold").identifiers(), BTreeSet::from(["cold"]));
    assert_eq!(expr.to_string(), expr.source());
}

#[test]
fn implies_table() {
    let table: &[(&str, bool)] = &[
        ("copyoffload", true),
        ("copyoffload and warm", true),
        ("not tier0 and copyoffload", true),
        ("(copyoffload or copyoffload) and tier1", true),
        ("copyoffload and (warm or cold)", true),
        ("(copyoffload and warm) or (copyoffload and cold)", true),
        ("not not copyoffload", true),
        ("not (not copyoffload or tier0)", true),
        // Unsatisfiable: selects nothing, so it vacuously implies anything.
        ("warm and not warm", true),
        ("warm", false),
        ("copyoffload or tier0", false),
        ("not copyoffload", false),
        ("not (copyoffload and warm)", false),
        ("(copyoffload and warm) or cold", false),
        ("copyoffload or not copyoffload", false),
        ("not not not copyoffload", false),
    ];
    for (source, expected) in table {
        assert_eq!(
            marker(source).implies("copyoffload"),
            *expected,
            "{source:?} implies copyoffload"
        );
    }
    assert!(marker("copyoffload and warm").implies("warm"));
    assert!(!marker("copyoffload and warm").implies("tier0"));
}

#[test]
fn implies_with_many_identifiers_is_conservative() {
    let names: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
    known.push("copyoffload");
    let source = format!("copyoffload and ({})", known[..25].join(" or "));
    let expr = match MarkerExpr::parse(&source, &known) {
        Ok(expr) => expr,
        Err(error) => panic!("{error}"),
    };
    assert!(!expr.implies("copyoffload"));
    let small = format!("copyoffload and ({})", known[..20].join(" or "));
    let expr = match MarkerExpr::parse(&small, &known) {
        Ok(expr) => expr,
        Err(error) => panic!("{error}"),
    };
    assert!(expr.implies("copyoffload"));
}

#[test]
fn keyword_identifiers_match_case_insensitive_substrings() {
    let item = &[
        "test_sanity_cold_mtv_migration",
        "TestSanityColdMtvMigration[rhel8]",
        "tier0",
    ];
    assert!(keyword_selects("rhel8", item));
    assert!(keyword_selects("RHEL8", item));
    assert!(keyword_selects("sanitycold", item));
    assert!(keyword_selects("Cold_Mtv", item));
    assert!(keyword_selects("rhel8 and not Warm", item));
    assert!(!keyword_selects("rhel9", item));
    assert!(!keyword_selects("rhel8 and warm", item));
    assert!(keyword_selects("rhel9 or TIER0", item));
    assert!(!keyword_selects("not cold", item));
}

#[test]
fn keyword_identifiers_with_brackets_dashes_and_dots() {
    let item = &[
        "TestSanityColdMtvMigration[rhel8]",
        "test_copyoffload[win-2019.x]",
        "tests/test_mtv.py::test_create_plan",
    ];
    assert!(keyword_selects("TestSanityColdMtvMigration[rhel8]", item));
    assert!(keyword_selects("testsanitycoldmtvmigration[RHEL8]", item));
    assert!(!keyword_selects("TestSanityColdMtvMigration[rhel9]", item));
    assert!(keyword_selects("[win-2019.x]", item));
    assert!(keyword_selects("win-2019", item));
    assert!(keyword_selects("test_mtv.py::test_create_plan", item));
    assert!(keyword_selects("test_create_plan and not win-2022", item));
    // Brackets glue to the identifier; they are not grouping.
    let expr = match KeywordExpr::parse("Test[rhel8] or (x)") {
        Ok(expr) => expr,
        Err(error) => panic!("{error}"),
    };
    let seen = std::cell::RefCell::new(Vec::new());
    expr.matches(|ident| {
        seen.borrow_mut().push(ident.to_owned());
        false
    });
    assert_eq!(seen.into_inner(), ["Test[rhel8]", "x"]);
    assert_eq!(expr.source(), "Test[rhel8] or (x)");
}

#[test]
fn keyword_hit_helper() {
    assert!(keyword_hit("Plan", &["test_create_plan"]));
    assert!(keyword_hit("", &["anything"]));
    assert!(!keyword_hit("plan", &[]));
    assert!(!keyword_hit("plans", &["test_create_plan"]));
    assert!(keyword_hit("ÄB", &["xäbx"]));
}

#[test]
fn keywords_are_lowercase_only() {
    // "And" is an identifier, so "a And b" is two identifiers in a row.
    let error = keyword_error("a And b");
    assert_eq!(error.kind(), ExprErrorKind::UnexpectedToken);
    assert_eq!(error.column(), 3);
    assert!(keyword_selects("And", &["android"]));
}

/// (source, kind, column, message) for -k, where identifiers are never rejected.
const SYNTAX_ERRORS: &[(&str, ExprErrorKind, usize, &str)] = &[
    ("", ExprErrorKind::Empty, 1, "empty expression"),
    ("   ", ExprErrorKind::Empty, 1, "empty expression"),
    (
        "a and",
        ExprErrorKind::UnexpectedEnd,
        6,
        "unexpected end of expression",
    ),
    (
        "not",
        ExprErrorKind::UnexpectedEnd,
        4,
        "unexpected end of expression",
    ),
    (
        "a or (",
        ExprErrorKind::UnexpectedEnd,
        7,
        "unexpected end of expression",
    ),
    ("a)", ExprErrorKind::UnbalancedClose, 2, "unbalanced ')'"),
    (")", ExprErrorKind::UnbalancedClose, 1, "unbalanced ')'"),
    (
        "(a) and b)",
        ExprErrorKind::UnbalancedClose,
        10,
        "unbalanced ')'",
    ),
    (
        "a and )",
        ExprErrorKind::UnbalancedClose,
        7,
        "unbalanced ')'",
    ),
    ("(a", ExprErrorKind::UnclosedOpen, 1, "unclosed '('"),
    ("b and ((a)", ExprErrorKind::UnclosedOpen, 7, "unclosed '('"),
    (
        "a and or b",
        ExprErrorKind::UnexpectedToken,
        7,
        "expected an identifier or '(' after 'and', found 'or'",
    ),
    (
        "and a",
        ExprErrorKind::UnexpectedToken,
        1,
        "expected an identifier or '(' at the start, found 'and'",
    ),
    (
        "()",
        ExprErrorKind::UnexpectedToken,
        2,
        "expected an identifier or '(' after '(', found ')'",
    ),
    (
        "(a and )",
        ExprErrorKind::UnexpectedToken,
        8,
        "expected an identifier or '(' after 'and', found ')'",
    ),
    (
        "a b",
        ExprErrorKind::UnexpectedToken,
        3,
        "expected 'and', 'or' or end of expression after 'a', found 'b'",
    ),
    (
        "a not b",
        ExprErrorKind::UnexpectedToken,
        3,
        "expected 'and', 'or' or end of expression after 'a', found 'not'",
    ),
    (
        "(a b)",
        ExprErrorKind::UnexpectedToken,
        4,
        "expected 'and', 'or' or ')' after 'a', found 'b'",
    ),
    (
        "a (b)",
        ExprErrorKind::UnexpectedToken,
        3,
        "expected 'and', 'or' or end of expression after 'a', found '('",
    ),
    (
        "a & b",
        ExprErrorKind::UnexpectedCharacter,
        3,
        "unexpected character '&'",
    ),
    (
        "a || b",
        ExprErrorKind::UnexpectedCharacter,
        3,
        "unexpected character '|'",
    ),
    (
        "\"a\"",
        ExprErrorKind::UnexpectedCharacter,
        1,
        "unexpected character '\"'",
    ),
    // Columns count characters, not bytes.
    (
        "ünï and",
        ExprErrorKind::UnexpectedEnd,
        8,
        "unexpected end of expression",
    ),
    (
        "ä ! b",
        ExprErrorKind::UnexpectedCharacter,
        3,
        "unexpected character '!'",
    ),
];

#[test]
fn every_syntax_error_kind_reports_its_column() {
    for (source, kind, column, message) in SYNTAX_ERRORS {
        let error = keyword_error(source);
        assert_eq!(error.kind(), *kind, "kind for {source:?}: {error}");
        assert_eq!(error.column(), *column, "column for {source:?}: {error}");
        assert_eq!(error.message(), *message, "message for {source:?}");
        assert_eq!(error.option(), "-k");
    }
}

#[test]
fn marker_syntax_errors_win_over_unknown_markers() {
    let error = marker_error("bogus and");
    assert_eq!(error.kind(), ExprErrorKind::UnexpectedEnd);
    assert_eq!(error.option(), "-m");
    assert_eq!(error.column(), 10);
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    let error = keyword_error(&deep);
    assert_eq!(error.kind(), ExprErrorKind::TooDeep);
    assert_eq!(error.column(), 65);
    let error = keyword_error(&format!("{}a", "not ".repeat(1000)));
    assert_eq!(error.kind(), ExprErrorKind::TooDeep);
    let fine = format!("{}a{}", "(".repeat(60), ")".repeat(60));
    assert!(keyword_selects(&fine, &["a"]));
}

#[test]
fn display_is_one_line_and_self_contained() {
    assert_eq!(
        marker_error("tier0 and").to_string(),
        "invalid -m expression \"tier0 and\": unexpected end of expression at column 10"
    );
    assert_eq!(
        keyword_error("rhel8 and or x").to_string(),
        "invalid -k expression \"rhel8 and or x\": expected an identifier or '(' after 'and', \
         found 'or' at column 11"
    );
    for (source, ..) in SYNTAX_ERRORS {
        assert!(
            !keyword_error(source).to_string().contains('\n'),
            "{source:?}"
        );
    }
}

#[test]
fn unknown_marker_suggests_the_closest() {
    let error = marker_error("tier1 or teir0");
    assert_eq!(error.kind(), ExprErrorKind::UnknownMarker);
    assert_eq!(error.option(), "-m");
    assert_eq!(error.column(), 10);
    assert_eq!(error.message(), "unknown marker 'teir0'");
    assert_eq!(
        error.to_string(),
        "invalid -m expression \"tier1 or teir0\": unknown marker 'teir0' at column 10; \
         did you mean 'tier0'?"
    );
    assert_eq!(
        help(&error),
        "known markers: tier0, tier1, tier2, warm, cold, copyoffload, remote, a, b, c, d"
    );

    // Case differences and dropped letters are typos too.
    assert!(
        marker_error("Warm")
            .to_string()
            .ends_with("did you mean 'warm'?")
    );
    assert!(
        marker_error("copyofload")
            .to_string()
            .ends_with("did you mean 'copyoffload'?")
    );
    assert!(
        marker_error("tier")
            .to_string()
            .ends_with("did you mean 'tier0'?")
    );
    // Nothing close: no guess, the help still lists what exists.
    let far = marker_error("kubevirt");
    assert!(!far.to_string().contains("did you mean"), "{far}");
    assert!(help(&far).starts_with("known markers: tier0, tier1"));
    // Markers are plain words: a -k style identifier is still an unknown marker.
    assert_eq!(
        marker_error("tier0[x]").kind(),
        ExprErrorKind::UnknownMarker
    );
    // The first unknown marker in the text is the one reported.
    assert_eq!(marker_error("warm and (x or y)").column(), 11);
}

fn help(error: &ExprError) -> String {
    use miette::Diagnostic;
    error
        .help()
        .map(|help| help.to_string())
        .unwrap_or_default()
}

#[test]
fn unknown_marker_without_declared_markers() {
    let error = match MarkerExpr::parse("tier0", &[]) {
        Ok(expr) => panic!("{expr:?}"),
        Err(error) => error,
    };
    assert_eq!(help(&error), "no markers are declared");
    assert!(!error.to_string().contains("did you mean"), "{error}");
}

#[test]
fn rendered_unknown_marker() {
    insta::assert_snapshot!(
        render(&marker_error("tier1 and not teir0")),
        @r#"
         × invalid -m expression "tier1 and not teir0": unknown marker 'teir0' at column 15; did you mean 'tier0'?
          ╭─[-m expression:1:15]
        1 │ tier1 and not teir0
          ·               ──┬──
          ·                 ╰── did you mean 'tier0'?
          ╰────
         help: known markers: tier0, tier1, tier2, warm, cold, copyoffload, remote, a, b, c, d
    "#
    );
}

#[test]
fn rendered_unexpected_end() {
    insta::assert_snapshot!(
        render(&marker_error("tier0 and")),
        @r#"
         × invalid -m expression "tier0 and": unexpected end of expression at column 10
          ╭─[-m expression:1:10]
        1 │ tier0 and
          ·          ▲
          ·          ╰── expected an identifier or '(' after 'and'
          ╰────
    "#
    );
}

#[test]
fn rendered_unclosed_parenthesis() {
    insta::assert_snapshot!(
        render(&keyword_error("rhel8 and (warm or cold")),
        @r#"
         × invalid -k expression "rhel8 and (warm or cold": unclosed '(' at column 11
          ╭─[-k expression:1:11]
        1 │ rhel8 and (warm or cold
          ·           ┬
          ·           ╰── this '(' is never closed
          ╰────
    "#
    );
}
