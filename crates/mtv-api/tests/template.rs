//! Behaviour of the Forklift name-template evaluator, checked against what Go `text/template`
//! with Sprig produces for the same input.

use mtv_api::naming::is_dns1123_label;
use mtv_api::template::{
    DEFAULT_OCP_PVC_TEMPLATE, DEFAULT_PVC_TEMPLATE, PvcName, Template, TemplateData, TemplateError,
    TemplateKind, Value, render_label, render_pvc_name,
};

fn pvc(vm_name: &str, disk_index: i64) -> TemplateData {
    TemplateData::pvc()
        .set("VmName", vm_name)
        .and_then(|d| d.set("DiskIndex", disk_index))
        .expect("valid PVC data")
}

fn render(src: &str, data: &TemplateData) -> Result<String, TemplateError> {
    Template::parse(src)?.render(data)
}

fn ok(src: &str, data: &TemplateData) -> String {
    match render(src, data) {
        Ok(out) => out,
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

fn err(src: &str, data: &TemplateData) -> TemplateError {
    match render(src, data) {
        Ok(out) => panic!("{src:?} rendered {out:?}, expected an error"),
        Err(e) => e,
    }
}

/// Each template of `cases` renders on `data` to its wanted text.
fn assert_renders(data: &TemplateData, cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(ok(src, data), *want, "{src}");
    }
}

/// `src` fails on `data` with an error whose message says `wanted`; the error.
fn assert_fails(src: &str, data: &TemplateData, wanted: &str) -> TemplateError {
    let e = err(src, data);
    assert!(e.message().contains(wanted), "{src}: {e}");
    e
}

#[test]
fn comprehensive_cold_template_from_the_python_suite() {
    let src =
        r#"{{ .VmName | trunc 32 | trimSuffix "-" }}-{{ .VmName | trunc -4 }}-disk-{{.DiskIndex}}"#;
    let data = pvc("mtv-win2019-3disks", 0);
    assert_eq!(ok(src, &data), "mtv-win2019-3disks-isks-disk-0");
    let template = Template::parse(src).expect("parses");
    assert_eq!(template.source(), src);
    assert_eq!(
        render_pvc_name(&template, &data, false).expect("valid"),
        PvcName::Exact("mtv-win2019-3disks-isks-disk-0".into())
    );
    // trunc 32 of a longer name ending in '-' at the cut, then trimSuffix removes the dash.
    let long = format!("{}-tail", "a".repeat(31));
    assert_eq!(
        ok(src, &pvc(&long, 2)),
        format!("{}-tail-disk-2", "a".repeat(31))
    );
}

#[test]
fn comprehensive_warm_file_name_template_from_the_python_suite() {
    let src = r#"{{ .FileName | trimSuffix ".vmdk" | replace "_" "-" }}-{{.DiskIndex}}"#;
    let data = pvc("mtv-win2022-ip-3disks", 1)
        .set("FileName", "mtv_win2022_ip_3disks_1.vmdk")
        .expect("FileName is a PVC field");
    assert_eq!(ok(src, &data), "mtv-win2022-ip-3disks-1-1");
    let template = Template::parse(src).expect("parses");
    assert_eq!(
        render_pvc_name(&template, &data, true).expect("valid"),
        PvcName::GenerateName("mtv-win2022-ip-3disks-1-1-".into())
    );
}

#[test]
fn default_templates() {
    let template = Template::parse(DEFAULT_PVC_TEMPLATE).expect("default parses");
    let data = TemplateData::pvc()
        .set("PlanName", "comprehensive-cold-migration-plan")
        .and_then(|d| d.set("TargetVmName", "mtv-win2019-3disks"))
        .and_then(|d| d.set("DiskIndex", 2))
        .expect("valid");
    let name = render_pvc_name(&template, &data, true).expect("valid");
    assert_eq!(
        name,
        PvcName::GenerateName("comprehensive-c-mtv-win2019-3di-disk-2-".into())
    );
    // Short names are kept whole.
    let short = data
        .clone()
        .set("PlanName", "p")
        .and_then(|d| d.set("TargetVmName", "vm"))
        .expect("valid");
    assert_eq!(
        render_pvc_name(&template, &short, false).expect("valid"),
        PvcName::Exact("p-vm-disk-2".into())
    );

    let ocp = Template::parse(DEFAULT_OCP_PVC_TEMPLATE).expect("parses");
    let data = TemplateData::pvc()
        .set("SourcePVCName", "rootdisk-abc")
        .and_then(|d| d.set("SourcePVCNamespace", "ns"))
        .expect("valid");
    assert_eq!(
        render_pvc_name(&ocp, &data, false).expect("valid"),
        PvcName::Exact("rootdisk-abc".into())
    );
}

#[test]
fn every_sprig_string_function() {
    let data = pvc("mtv-win2019-3disks", 3);
    let cases: &[(&str, &str)] = &[
        (r#"{{ lower "MiXeD" }}"#, "mixed"),
        (r#"{{ upper "MiXeD" }}"#, "MIXED"),
        (r#"{{ contains "win" .VmName }}"#, "true"),
        (r#"{{ contains "lin" .VmName }}"#, "false"),
        (r#"{{ replace "-" "_" "a-b-c" }}"#, "a_b_c"),
        (r#"{{ trim "  x y \n" }}"#, "x y"),
        (r#"{{ trimAll "$" "$5.00$" }}"#, "5.00"),
        (r#"{{ trimAll "-x" "x--mid--x" }}"#, "mid"),
        (r#"{{ trimSuffix ".vmdk" "disk.vmdk" }}"#, "disk"),
        (r#"{{ trimSuffix ".vmdk" "disk.vmdk.vmdk" }}"#, "disk.vmdk"),
        (r#"{{ trimPrefix "mtv-" .VmName }}"#, "win2019-3disks"),
        (
            r#"{{ title "hello world-foo_bar" }}"#,
            "Hello World-Foo_bar",
        ),
        (r#"{{ untitle "Hello World-Foo" }}"#, "hello world-Foo"),
        (r#"{{ repeat 3 "ab" }}"#, "ababab"),
        (r#"{{ substr 0 5 "hello world" }}"#, "hello"),
        (r#"{{ substr 6 -1 "hello world" }}"#, "world"),
        (r#"{{ substr -1 3 "hello" }}"#, "hel"),
        (r#"{{ substr 2 99 "hello" }}"#, "llo"),
        ("{{ nospace \"a b\\tc\\nd\" }}", "abcd"),
        (r#"{{ trunc 3 "abcdef" }}"#, "abc"),
        (r#"{{ trunc -2 "abcdef" }}"#, "ef"),
        (r#"{{ trunc 10 "abc" }}"#, "abc"),
        (r#"{{ trunc -10 "abc" }}"#, "abc"),
        (r#"{{ trunc 0 "abc" }}"#, ""),
        (r#"{{ initials "First  Try\tNow" }}"#, "FTN"),
        (r#"{{ hasPrefix "cat" "catch" }}"#, "true"),
        (r#"{{ hasPrefix "dog" "catch" }}"#, "false"),
        (r#"{{ hasSuffix "disks" .VmName }}"#, "true"),
        (
            r#"{{ mustRegexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }}"#,
            "-W-xxW-",
        ),
        // As in Go, `$1W` names the group "1W", which does not exist.
        (
            r#"{{ mustRegexReplaceAll "a(x*)b" "-ab-axxb-" "$1W" }}"#,
            "---",
        ),
        (
            r#"{{ mustRegexReplaceAll "[^a-z0-9]+" .VmName "" }}"#,
            "mtvwin20193disks",
        ),
        // The piped value is the last argument, here the replacement, exactly as in Go.
        (r#"{{ .VmName | mustRegexReplaceAll "[^a-z0-9]+" "" }}"#, ""),
    ];
    assert_renders(&data, cases);
}

#[test]
fn every_sprig_math_function() {
    let data = pvc("vm", 3);
    let cases: &[(&str, &str)] = &[
        ("{{ add 1 2 3 }}", "6"),
        ("{{ add }}", "0"),
        (r#"{{ add "3" 4 }}"#, "7"),
        (r#"{{ add "x" 4 }}"#, "4"),
        ("{{ add1 .DiskIndex }}", "4"),
        ("{{ sub 10 .DiskIndex }}", "7"),
        ("{{ div 7 2 }}", "3"),
        ("{{ div -7 2 }}", "-3"),
        ("{{ mod 7 3 }}", "1"),
        ("{{ mul 2 3 4 }}", "24"),
        ("{{ max 1 9 3 }}", "9"),
        ("{{ min 4 -2 3 }}", "-2"),
        ("{{ max 5 }}", "5"),
        ("{{ floor 3.7 }}", "3"),
        ("{{ ceil 3.2 }}", "4"),
        ("{{ round 3.14159 2 }}", "3.14"),
        ("{{ round 2.5 0 }}", "3"),
        ("{{ round 2.4 0 }}", "2"),
        ("{{ round 2.4 0 0.3 }}", "3"),
        ("{{ floor 1234567.8 }}", "1.234567e+06"),
        ("{{ .DiskIndex | add 10 | printf \"%03d\" }}", "013"),
    ];
    assert_renders(&data, cases);
    assert_fails("{{ div 1 0 }}", &data, "integer divide by zero");
    assert_fails("{{ mod 1 0 }}", &data, "integer divide by zero");
}

#[test]
fn builtins() {
    let data = pvc("vm", 3);
    let cases: &[(&str, &str)] = &[
        (r#"{{ eq .VmName "a" "b" "vm" }}"#, "true"),
        ("{{ eq .DiskIndex 0 }}", "false"),
        ("{{ ne .DiskIndex 0 }}", "true"),
        ("{{ lt .DiskIndex 4 }}", "true"),
        ("{{ le .DiskIndex 3 }}", "true"),
        ("{{ gt .DiskIndex 3 }}", "false"),
        ("{{ ge .DiskIndex 3 }}", "true"),
        (r#"{{ lt "a" "b" }}"#, "true"),
        (r#"{{ and 1 "x" }}"#, "x"),
        (r#"{{ and 0 "x" }}"#, "0"),
        (r#"{{ or "" "y" }}"#, "y"),
        (r#"{{ or "" 0 }}"#, "0"),
        ("{{ not .Shared }}", "true"),
        ("{{ len .VmName }}", "2"),
        (r#"{{ print 1 2 "a" 3 }}"#, "1 2a3"),
        (r#"{{ println "a" 1 }}"#, "a 1\n"),
        (r#"{{ index "abc" 1 }}"#, "98"),
        (r#"{{ slice "abcdef" 1 3 }}"#, "bc"),
        (r#"{{ slice "abcdef" 4 }}"#, "ef"),
        (r#"{{ html "<a&b>" }}"#, "&lt;a&amp;b&gt;"),
        (r#"{{ urlquery "a b/c" }}"#, "a+b%2Fc"),
        // `and`/`or` stop early, so the failing call is never made.
        ("{{ and false (div 1 0) }}", "false"),
        ("{{ or true (div 1 0) }}", "true"),
    ];
    assert_renders(&data, cases);
    assert_fails(r#"{{ eq .DiskIndex "3" }}"#, &data, "incompatible types");
    assert_fails("{{ lt true false }}", &data, "invalid type for comparison");
    assert_fails("{{ len .DiskIndex }}", &data, "len of type int");
}

#[test]
fn printf_verbs() {
    let data = pvc("vm", 3);
    let cases: &[(&str, &str)] = &[
        (
            r#"{{ printf "%s-disk-%02d" .VmName .DiskIndex }}"#,
            "vm-disk-03",
        ),
        (r#"{{ printf "%d%%" 5 }}"#, "5%"),
        (
            r#"{{ printf "%v|%5s|%-4d|" true "ab" 7 }}"#,
            "true|   ab|7   |",
        ),
        (r#"{{ printf "%03d" -5 }}"#, "-05"),
        (r#"{{ printf "%+d" 5 }}"#, "+5"),
        (r#"{{ printf "%x %X" 255 255 }}"#, "ff FF"),
        (r#"{{ printf "%q" "a\"b" }}"#, r#""a\"b""#),
        (r#"{{ printf "%.2s" "abc" }}"#, "ab"),
        (r#"{{ printf "%v" .Shared }}"#, "false"),
        (r#"{{ printf "%.2f" (floor 2.9) }}"#, "2.00"),
        (r#"{{ printf "%d" "x" }}"#, "%!d(string=x)"),
        (r#"{{ printf "%s" }}"#, "%!s(MISSING)"),
        (r#"{{ printf "a" 1 }}"#, "a%!(EXTRA int=1)"),
        (r#"{{ printf "%99999999d" 1 }}"#, "%!(BADWIDTH)1"),
        (r#"{{ printf "%s-%d" .VmName (add 1 .DiskIndex) }}"#, "vm-4"),
    ];
    assert_renders(&data, cases);
}

#[test]
fn disallowed_functions_are_parse_errors() {
    for name in [
        "env",
        "now",
        "default",
        "uuidv4",
        "sha256sum",
        "randAlphaNum",
        "toString",
    ] {
        let src = format!("{{{{ .VmName }}}}-{{{{ {name} \"HOME\" }}}}");
        let e = Template::parse(&src).expect_err("must not parse");
        assert_eq!(e.message(), format!("function {name:?} not defined"));
        assert_eq!(e.column(), Some(18), "{e}");
    }
    // In a pipeline and inside parentheses too.
    assert!(Template::parse("{{ .VmName | env }}").is_err());
    assert!(Template::parse("{{ lower (now) }}").is_err());
}

#[test]
fn unknown_and_misused_fields() {
    let data = pvc("vm", 0);
    let e = assert_fails("{{ .VmNam }}", &data, "can't evaluate field VmNam");
    assert_eq!(e.column(), Some(4));
    // A volume field is unknown to the PVC struct.
    assert_fails("{{ .PVCName }}", &data, "can't evaluate field PVCName");
    assert_fails("{{ .VmName.Length }}", &data, "in type string");
    // A PVC field is unknown to the network struct.
    assert_fails(
        "{{ .VmName }}",
        &TemplateData::network(),
        "can't evaluate field VmName",
    );

    assert!(TemplateData::pvc().set("Nope", "x").is_err());
    assert!(TemplateData::pvc().set("DiskIndex", "1").is_err());
    assert!(TemplateData::pvc().set("Shared", 1).is_err());
    assert!(TemplateData::volume().set("VmName", "x").is_err());
    assert!(TemplateData::network().set("NetworkIndex", 2).is_ok());
}

#[test]
fn fields_that_do_not_apply_render_as_zero_values() {
    let data = TemplateData::pvc();
    assert_eq!(
        ok(
            "[{{.FileName}}|{{.DiskIndex}}|{{.Shared}}|{{.WinDriveLetter}}|{{.RootDiskIndex}}|{{.VolumeID}}]",
            &data
        ),
        "[|0|false||0|]"
    );
    assert_eq!(data.get("DiskIndex"), Some(&Value::Int(0)));
    assert_eq!(data.get("SnapshotID"), Some(&Value::Str(String::new())));
    assert_eq!(data.kind(), TemplateKind::Pvc);
    assert!(
        TemplateKind::Pvc
            .fields()
            .iter()
            .any(|(name, _)| *name == "SourcePVCNamespace")
    );
    assert_eq!(
        ok("{{ . }}", &TemplateData::volume_validation_sample()),
        "{test-pvc 0}"
    );
}

#[test]
fn trim_markers_and_comments() {
    let data = pvc("vm", 1);
    assert_eq!(ok("a  {{- .VmName -}}  b", &data), "avmb");
    assert_eq!(ok("a \n\t{{- .VmName }} b", &data), "avm b");
    assert_eq!(ok("a {{ .VmName -}} \n b", &data), "a vmb");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(ok("x {{-3}} y", &data), "x -3 y");
    assert_eq!(ok("a\n{{- /* comment */ -}}\nb", &data), "ab");
    assert_eq!(ok("a{{/* c */}}b", &data), "ab");
    assert!(Template::parse("{{/* c */ .VmName }}").is_err());
}

#[test]
fn conditionals_with_and_variables() {
    let src =
        "{{ if eq .DiskIndex 0 }}root{{ else if eq .DiskIndex 1 }}data{{ else }}extra{{ end }}";
    assert_eq!(ok(src, &pvc("vm", 0)), "root");
    assert_eq!(ok(src, &pvc("vm", 1)), "data");
    assert_eq!(ok(src, &pvc("vm", 7)), "extra");

    let shared = "{{ if .Shared }}shared{{ else }}disk{{ end }}-{{ .DiskIndex }}";
    let data = pvc("vm", 2).set("Shared", true).expect("valid");
    assert_eq!(ok(shared, &data), "shared-2");
    assert_eq!(ok(shared, &pvc("vm", 2)), "disk-2");

    let with = "{{ with .WinDriveLetter }}drive-{{ . }}{{ else }}nodrive{{ end }}";
    let data = pvc("vm", 0).set("WinDriveLetter", "c").expect("valid");
    assert_eq!(ok(with, &data), "drive-c");
    assert_eq!(ok(with, &pvc("vm", 0)), "nodrive");

    let vars = "{{ $n := .VmName | upper }}{{ $n }}-{{ $.DiskIndex }}{{ $n = \"x\" }}-{{ $n }}";
    assert_eq!(ok(vars, &pvc("vm", 4)), "VM-4-x");
    assert!(Template::parse("{{ $undefined }}").is_err());
    // A variable declared inside {{if}} is gone after {{end}}.
    assert!(Template::parse("{{ if .Shared }}{{ $x := 1 }}{{ end }}{{ $x }}").is_err());

    let chain = "{{ if .Shared }}s{{ else with .FileName }}f-{{ . }}{{ else }}none{{ end }}";
    let data = pvc("vm", 0).set("FileName", "d.vmdk").expect("valid");
    assert_eq!(ok(chain, &data), "f-d.vmdk");
    assert_eq!(ok(chain, &pvc("vm", 0)), "none");
    let nested =
        "{{ if .Shared }}{{ if eq .DiskIndex 0 }}a{{ else }}b{{ end }}{{ else }}c{{ end }}";
    let data = pvc("vm", 1).set("Shared", true).expect("valid");
    assert_eq!(ok(nested, &data), "b");
}

#[test]
fn literals() {
    let data = pvc("vm", 0);
    assert_eq!(ok(r#"{{ "a\tb\u0041\x41" }}"#, &data), "a\tbAA");
    assert_eq!(ok(r"{{ `raw\n` }}", &data), r"raw\n");
    assert_eq!(ok("{{ 'a' }}", &data), "97");
    assert_eq!(
        ok("{{ 1.5 }}|{{ -4 }}|{{ 0x1F }}|{{ true }}", &data),
        "1.5|-4|31|true"
    );
}

#[test]
fn parse_and_execution_errors() {
    let data = pvc("vm", 0);
    for src in [
        "{{ .VmName",
        "{{ end }}",
        "{{ else }}",
        "{{ if .Shared }}x",
        "{{ if .Shared }}x{{ else }}y{{ else }}z{{ end }}",
        "{{ range .VmName }}x{{ end }}",
        "{{ template \"x\" }}",
        "{{ }}",
        "{{ if }}x{{ end }}",
        "{{ .VmName | \"x\" }}",
        "{{ (lower .VmName }}",
        "{{ \"unterminated }}",
        "{{ js .VmName }}",
        "{{ 12abc }}",
        "{{ @ }}",
    ] {
        assert!(Template::parse(src).is_err(), "{src:?} must not parse");
    }
    let e = err("{{ trunc 3 }}", &data);
    assert_eq!(e.message(), "wrong number of args for trunc: want 2 got 1");
    assert_eq!(e.column(), Some(4));
    assert_fails(
        "{{ trunc 5 .DiskIndex }}",
        &data,
        "expected string; got int",
    );
    assert_fails(
        "{{ .DiskIndex | lower }}",
        &data,
        "expected string; got int",
    );
    assert_fails(
        "{{ 3 | .VmName }}",
        &data,
        "can't give argument to non-function",
    );
    assert_fails(r#"{{ repeat -1 "a" }}"#, &data, "negative Repeat count");
    assert_fails(
        r#"{{ mustRegexReplaceAll "(" "a" "b" }}"#,
        &data,
        "error parsing regexp",
    );
    let e = assert_fails(r#"{{ substr 4 2 "hello" }}"#, &data, "out of range");
    assert!(e.to_string().contains("(column 4)"), "{e}");
}

#[test]
fn pvc_name_rules() {
    let template = Template::parse(" {{ .VmName }}-disk-{{ .DiskIndex }} ").expect("parses");
    assert_eq!(
        render_pvc_name(&template, &pvc("vm", 0), true).expect("valid"),
        PvcName::GenerateName("vm-disk-0-".into())
    );
    assert_eq!(
        render_pvc_name(&template, &pvc("vm", 0), false).expect("valid"),
        PvcName::Exact("vm-disk-0".into())
    );

    let bare = Template::parse("{{ .VmName }}").expect("parses");
    let e = render_pvc_name(&bare, &pvc("MyVM", 0), false).expect_err("uppercase");
    assert!(e.message().contains("DNS-1123"), "{e}");
    let e = render_pvc_name(&bare, &pvc(&"a".repeat(64), 0), true).expect_err("too long");
    assert!(e.message().contains("63"), "{e}");
    assert!(render_pvc_name(&bare, &pvc(&"a".repeat(63), 0), true).is_ok());
    let e = render_pvc_name(&bare, &pvc("", 0), true).expect_err("empty");
    assert!(e.message().contains("empty"), "{e}");
    // A dotted .TargetVmName is not a label.
    let target = Template::parse("{{ .TargetVmName }}").expect("parses");
    let dotted = TemplateData::pvc()
        .set("TargetVmName", "web.server-a")
        .expect("valid");
    assert!(render_pvc_name(&target, &dotted, false).is_err());
    let fixed = Template::parse(r#"{{ .TargetVmName | replace "." "-" }}"#).expect("parses");
    assert_eq!(
        render_pvc_name(&fixed, &dotted, false).expect("valid"),
        PvcName::Exact("web-server-a".into())
    );
}

#[test]
fn generate_name_matching() {
    let name = PvcName::GenerateName("vm-disk-0-".into());
    assert!(name.is_generate_name());
    assert!(name.matches("vm-disk-0-x7k2q"));
    assert!(!name.matches("vm-disk-0-x7k2"));
    assert!(!name.matches("vm-disk-1-x7k2q"));
    let long = PvcName::GenerateName(format!("{}-", "a".repeat(62)));
    let actual = format!("{}b2c4d", "a".repeat(58));
    assert!(long.matches(&actual));
    assert!(is_dns1123_label(&actual));
    let exact = PvcName::Exact("vm-disk-0".into());
    assert!(exact.matches("vm-disk-0"));
    assert!(!exact.matches("vm-disk-0-abcde"));
    assert_eq!(exact.to_string(), "vm-disk-0");
}

#[test]
fn volume_and_network_templates() {
    let volume = Template::parse("{{.PVCName}}-{{.VolumeIndex}}").expect("parses");
    assert_eq!(
        render_label(&volume, &TemplateData::volume_validation_sample()).expect("valid"),
        "test-pvc-0"
    );
    let network = Template::parse("{{.NetworkName}}-{{ lower .NetworkType }}-{{.NetworkIndex}}")
        .expect("parses");
    assert_eq!(
        render_label(&network, &TemplateData::network_validation_sample()).expect("valid"),
        "test-network-multus-0"
    );
    assert!(render_label(&network, &TemplateData::network()).is_err());
}
