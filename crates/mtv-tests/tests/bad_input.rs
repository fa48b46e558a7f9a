//! More than a hundred bad inputs, as a user types them, each answered by the `mtv-tests` binary with
//! the exit code and a message fragment the table pins: providers files, copy-offload sections,
//! settings, catalog files and their Go templates, marker and keyword expressions, kubeconfigs,
//! results paths, lab faults and numbers. None may panic (exit 101) or crash (exit 134, a signal),
//! no secret value of the inputs may appear in any output, and no `run` may get as far as creating
//! its results directory. Runs the binary as a process, several cases at once.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mtv-tests");

/// Secret values planted in secret positions of the inputs; none may ever be printed.
const SECRETS: [&str; 6] = [
    "hunter2-S3CRET",
    "918273645",
    "tok-S3CRET-42",
    "swordfish-S3CRET",
    "api-S3CRET-key",
    "env-S3CRET-pw",
];

/// One bad input: files to write into a fresh directory, environment, arguments, and the answer.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    env: Vec<(&'static str, String)>,
    args: Vec<String>,
    code: i32,
    fragment: &'static str,
}

fn case(name: &'static str, args: &[&str], code: i32, fragment: &'static str) -> Case {
    Case {
        name,
        files: Vec::new(),
        env: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        fragment,
    }
}

impl Case {
    fn file(mut self, path: &'static str, text: impl Into<String>) -> Self {
        self.files.push((path, text.into().into_bytes()));
        self
    }

    fn bytes(mut self, path: &'static str, bytes: &[u8]) -> Self {
        self.files.push((path, bytes.to_vec()));
        self
    }

    fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }
}

/// A valid vSphere profile, as JSON members, with `extra` members appended.
fn vsphere(extra: &str) -> String {
    format!(
        r#"{{"v": {{"type": "vsphere", "version": "8.0.3", "fqdn": "vc.example", "api_url": "https://vc.example/sdk",
 "username": "admin", "password": "hunter2-S3CRET"{extra}}}}}"#
    )
}

/// `command` followed by `extra`, kept for the whole test (cases hold `'static` arguments).
fn with_extra(command: &[&'static str], extra: &[&str]) -> Vec<&'static str> {
    let mut args = command.to_vec();
    args.extend(
        extra
            .iter()
            .map(|s| -> &'static str { Box::leak(s.to_string().into_boxed_str()) }),
    );
    args
}

/// `list` of the profile `v` of `p.json`.
fn list_v(extra: &[&str]) -> Vec<&'static str> {
    let list = [
        "list",
        "--providers-file",
        "p.json",
        "--source-provider",
        "v",
        "--storage-class",
        "sc",
    ];
    with_extra(&list, extra)
}

/// A copy-offload section for profile `v`.
fn copyoffload(section: &str) -> String {
    vsphere(&format!(r#", "copyoffload": {section}"#))
}

const COMPLETE_ONTAP: &str = r#"{"storage_vendor_product": "ontap", "datastore_id": "datastore-1", "storage_hostname": "array.example",
 "storage_username": "admin", "storage_password": "swordfish-S3CRET", "ontap_svm": "svm1""#;

/// A catalog file with one scenario whose config gets `config` (indented under `config:`).
fn scenario(config: &str) -> String {
    format!(
        "version: 1\nfamily: Bad\nscenarios:\n  - class: TestBadInput\n    id: bad-input\n    markers: [tier1, incremental]\n    config:\n      virtual_machines:\n        - name: mtv-tests-rhel8\n{config}"
    )
}

fn kubeconfig(server: &str, current: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: {current}\nusers:\n- name: u\n  user:\n    token: tok-S3CRET-42\n"
    )
}

/// `run` into `out`, without progress lines.
fn run(extra: &[&str]) -> Vec<&'static str> {
    with_extra(&["run", "--no-progress", "--results", "out"], extra)
}

fn providers_cases() -> Vec<Case> {
    let l = list_v(&[]);
    vec![
        case("empty providers file", &l, 2, "is empty").file("p.json", ""),
        case("blank providers file", &l, 2, "is empty").file("p.json", "  \n // only a comment\n"),
        case("unclosed object", &l, 2, "p.json:1:").file("p.json", "{"),
        case("root is an array", &l, 2, "must be a JSON object of profiles").file("p.json", "[]"),
        case("root is a string", &l, 2, "must be a JSON object of profiles").file("p.json", "\"v\""),
        case("no profiles", &l, 2, "defines no provider profiles").file("p.json", "{}"),
        case("profile is a number", &l, 2, "profile `v` must be an object").file("p.json", r#"{"v": 1}"#),
        case("profile without type", &l, 2, "has no `type`").file("p.json", r#"{"v": {"fqdn": "x"}}"#),
        case("type is a number", &l, 2, "`type` of profile `v` must be a string").file("p.json", r#"{"v": {"type": 3}}"#),
        case("misspelt type", &l, 2, "unknown type `vsphre`").file("p.json", r#"{"v": {"type": "vsphre"}}"#),
        case("unsupported type", &l, 2, "does not support").file("p.json", r#"{"v": {"type": "hyperv"}}"#),
        case("rhv is ovirt", &l, 2, "did you mean `ovirt`").file("p.json", r#"{"v": {"type": "rhv"}}"#),
        case("missing required fields", &l, 2, "is missing required field `fqdn`").file("p.json", r#"{"v": {"type": "vsphere", "password": "hunter2-S3CRET"}}"#),
        case("numeric password", &l, 2, "`password` of profile `v` must be a string, found a number")
            .file("p.json", r#"{"v": {"type": "vsphere", "version": "8", "fqdn": "f", "api_url": "u", "username": "a",
 "password": 918273645}}"#),
        case("boolean password", &l, 2, "must be a string, found a boolean")
            .file("p.json", r#"{"v": {"type": "vsphere", "version": "8", "fqdn": "f", "api_url": "u", "username": "a", "password": true}}"#),
        case("nested password", &l, 2, "must be a string, found an object")
            .file("p.json", r#"{"v": {"type": "vsphere", "version": "8", "fqdn": "f", "api_url": "u", "username": "a",
 "password": {"value": "hunter2-S3CRET"}}}"#),
        case("unquoted password", &l, 2, "p.json:2:")
            .file("p.json", "{\"v\": {\"type\": \"vsphere\",\n \"password\": hunter2-S3CRET, \"fqdn\": \"f\"}}"),
        case("unterminated password string", &l, 2, "p.json:")
            .file("p.json", "{\"v\": {\"type\": \"vsphere\",\n \"password\": \"hunter2-S3CRET\n}}"),
        case("unquoted guest password", &l, 2, "p.json:")
            .file("p.json", "{\"v\": {\"type\": \"vsphere\",\n \"guest_vm_linux_password\": 918273645 swordfish-S3CRET}}"),
        case("bad endpoint type", &l, 2, "must be one of: vcenter, esxi").file("p.json", vsphere(r#", "endpoint_type": "vcentre""#)),
        case("clone provider unknown", &l, 2, "names unknown profile `nope`").file("p.json", vsphere(r#", "clone_provider": "nope""#)),
        case("clone provider itself", &l, 2, "names the profile itself").file("p.json", vsphere(r#", "clone_provider": "v""#)),
        case("openshift verify_ssl not a boolean", &list_v(&[]), 2, "must be a boolean")
            .file("p.json", r#"{"v": {"type": "openshift", "version": "4", "host": "h", "api_url": "u", "username": "a", "password": "hunter2-S3CRET", "storage_class": "sc", "verify_ssl": "maybe"}}"#),
        case("copyoffload on ovirt", &l, 2, "copy-offload is vSphere-only")
            .file("p.json", r#"{"v": {"type": "ovirt", "version": "4", "fqdn": "f", "api_url": "u", "username": "a", "password": "hunter2-S3CRET", "copyoffload": {}}}"#),
        case("copyoffload not an object", &l, 2, "`copyoffload` of profile `v` must be an object").file("p.json", copyoffload("[1]")),
        case("cacert not PEM", &l, 2, "`cacert` of profile `v` must be PEM")
            .file("p.json", vsphere(r#", "cacert": "MIIB-not-a-pem""#)),
        case("cacert a number", &l, 2, "`cacert` of profile `v` must be a string")
            .file("p.json", vsphere(r#", "cacert": 42"#)),
        case("fingerprint too short", &l, 2, "must be a SHA-256 fingerprint")
            .file("p.json", vsphere(r#", "certificate_fingerprint": "AB:CD""#)),
        case("fingerprint not hex", &l, 2, "must be a SHA-256 fingerprint")
            .file("p.json", vsphere(&format!(r#", "certificate_fingerprint": "{}""#, "ZZ".repeat(32)))),
        case("cacert and fingerprint both", &l, 2, "gives both `cacert` and `certificate_fingerprint`")
            .file("p.json", vsphere(&format!(
                r#", "cacert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate_fingerprint": "{}""#,
                "AB".repeat(32)
            ))),
        case("array nested 25,000 deep", &l, 2, "nested more than 64 levels")
            .file("p.json", format!("{{\"v\": {}{}}}", "[".repeat(25_000), "]".repeat(25_000))),
        case("object nested 25,000 deep", &l, 2, "nested more than 64 levels")
            .file("p.json", format!("{{\"v\": {}1{}}}", "{\"a\":".repeat(25_000), "}".repeat(25_000))),
        case("nested 65 deep", &l, 2, "p.json:1:")
            .file("p.json", format!("{{\"v\": {}{}}}", "[".repeat(64), "]".repeat(64))),
        case("trailing garbage", &l, 2, "trailing characters").file("p.json", "{\"v\": {\"type\": \"ova\"}} x"),
        case("invalid UTF-8", &l, 2, "cannot read").bytes("p.json", b"{\"v\": \xff\xfe}"),
        case("providers file missing", &l, 2, "does not exist"),
        case("providers file is a directory", &l, 2, "cannot read").file("p.json/x", "{}"),
        case("MTV_PROVIDERS_FILE missing", &["list"], 2, "named by MTV_PROVIDERS_FILE").env("MTV_PROVIDERS_FILE", "nope.json"),
        case("PROVIDERS_JSON_PATH missing", &["list"], 2, "named by PROVIDERS_JSON_PATH").env("PROVIDERS_JSON_PATH", "nope.json"),
        case("unknown profile", &list_v(&[]), 2, "available profiles: w").file("p.json", vsphere("").replace("{\"v\":", "{\"w\":")),
        case("providers file without source provider", &["list", "--providers-file", "p.json"], 2, "missing required setting").file("p.json", vsphere("")),
        case("providers file without storage class", &["list", "--providers-file", "p.json", "--source-provider", "v"], 2, "storage_class").file("p.json", vsphere("")),
        case("unknown builtin profile", &["list", "--source-provider", "vsphere-8.0.3"], 2, "available profiles"),
        case("profile is a type name", &["list", "--source-provider", "rhv"], 2, "available profiles"),
    ]
}

fn secret_output_cases() -> Vec<Case> {
    let profiles = ["profiles", "--providers-file", "p.json", "--format", "json"];
    let secrets_everywhere = vsphere(
        r#", "api_key": "api-S3CRET-key", "token": 918273645, "credentials": {"user": "u", "pass": "tok-S3CRET-42"}, "extra": {"db_password": "swordfish-S3CRET"}"#,
    );
    vec![
        case(
            "profiles json redacts every credential",
            &profiles,
            0,
            "<redacted>",
        )
        .file("p.json", secrets_everywhere.clone()),
        case(
            "profiles human shows no credential",
            &["profiles", "--providers-file", "p.json"],
            0,
            "v",
        )
        .file("p.json", secrets_everywhere.clone()),
        case(
            "plan json shows no credential",
            &[
                "plan",
                "-m",
                "tier0",
                "--providers-file",
                "p.json",
                "--source-provider",
                "v",
                "--storage-class",
                "sc",
                "--format",
                "json",
            ],
            0,
            "\"version\"",
        )
        .file("p.json", secrets_everywhere),
        case(
            "settings shows no cluster password",
            &["settings"],
            0,
            "<redacted>",
        )
        .env("CLUSTER_PASSWORD", "env-S3CRET-pw"),
        case(
            "settings json shows no cluster password",
            &["settings", "--format", "json"],
            0,
            "<redacted>",
        )
        .env("CLUSTER_PASSWORD", "env-S3CRET-pw"),
    ]
}

fn copyoffload_cases() -> Vec<Case> {
    let co = list_v(&["-m", "copyoffload"]);
    vec![
        case("copyoffload missing fields", &co, 2, "storage_username")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "vantara", "datastore_id": "d", "storage_hostname": "h"}"#)),
        case("copyoffload unknown vendor", &co, 2, "storage_vendor_product")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "netap", "datastore_id": "d", "storage_hostname": "h", "storage_username": "a", "storage_password": "swordfish-S3CRET"}"#)),
        case("copyoffload vendor is a number", &co, 2, "storage_vendor_product")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": 7, "datastore_id": "d", "storage_hostname": "h", "storage_username": "a", "storage_password": "swordfish-S3CRET"}"#)),
        case("copyoffload bad clone method", &co, 2, "esxi_clone_method")
            .file("p.json", copyoffload(&format!(r#"{COMPLETE_ONTAP}, "esxi_clone_method": "telnet"}}"#))),
        case("copyoffload ssh without host", &co, 2, "esxi_host")
            .file("p.json", copyoffload(&format!(r#"{COMPLETE_ONTAP}, "esxi_clone_method": "ssh"}}"#))),
        case("copyoffload secret extra not an object", &co, 2, "storage_secret_extra")
            .file("p.json", copyoffload(&format!(r#"{COMPLETE_ONTAP}, "storage_secret_extra": "tok-S3CRET-42"}}"#))),
        case("copyoffload secret extra env not JSON", &co, 2, "COPYOFFLOAD_STORAGE_SECRET_EXTRA")
            .file("p.json", copyoffload(&format!("{COMPLETE_ONTAP}}}")))
            .env("COPYOFFLOAD_STORAGE_SECRET_EXTRA", "{tok-S3CRET-42"),
        case("copyoffload numeric storage password", &co, 2, "storage_")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "vantara", "datastore_id": "d", "storage_hostname": "h", "storage_password": 918273645}"#)),
        case("broken copyoffload section rejected by list of other scenarios", &list_v(&["-m", "tier0"]), 2, "copy-offload section of profile `v`")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "ontap", "datastore_id": "d"}"#)),
        case("broken copyoffload section rejected by plan", &["plan", "-m", "tier0", "--providers-file", "p.json", "--source-provider", "v", "--storage-class", "sc"], 2, "copy-offload section of profile `v`")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "ontap", "datastore_id": "d"}"#)),
        case("broken copyoffload section rejected by run", &run(&["-m", "tier0", "--providers-file", "p.json", "--source-provider", "v", "--storage-class", "sc"]), 2, "copy-offload section of profile `v`")
            .file("p.json", copyoffload(r#"{"storage_vendor_product": "ontap", "datastore_id": "d"}"#)),
        case("copyoffload asked of an ovirt profile", &["list", "-m", "copyoffload", "--source-provider", "ovirt"], 2, "vSphere"),
        case("copyoffload asked of an openstack run", &run(&["-m", "copyoffload", "--source-provider", "openstack"]), 2, "vSphere"),
        case("copyoffload env password without section", &list_v(&["-m", "copyoffload"]), 2, "no copyoffload section")
            .file("p.json", vsphere(""))
            .env("COPYOFFLOAD_STORAGE_PASSWORD", "env-S3CRET-pw"),
    ]
}

fn settings_cases() -> Vec<Case> {
    let s = ["list", "--settings", "s.yaml"];
    vec![
        case(
            "settings file missing",
            &s,
            2,
            "settings file s.yaml does not exist",
        ),
        case("settings syntax", &s, 2, "s.yaml:").file("s.yaml", "plan_wait_timeout: [\n"),
        case(
            "settings unknown key",
            &s,
            2,
            "unknown setting `plan_wait_timout`",
        )
        .file("s.yaml", "plan_wait_timout: 5\n"),
        case(
            "settings not a number",
            &s,
            2,
            "expected a non-negative integer",
        )
        .file("s.yaml", "plan_wait_timeout: soon\n"),
        case(
            "settings negative",
            &s,
            2,
            "expected a non-negative integer",
        )
        .file("s.yaml", "snapshots_interval: -5\n"),
        case(
            "settings huge number",
            &s,
            2,
            "expected a non-negative integer",
        )
        .file("s.yaml", "mins_before_cutover: 99999999999999999999999\n"),
        case("settings bool maybe", &s, 2, "expected a boolean")
            .file("s.yaml", "source_provider_insecure_skip_verify: maybe\n"),
        case("settings nested value", &s, 2, "insecure_verify_skip")
            .file("s.yaml", "insecure_verify_skip: [true]\n"),
        case("settings wrong version", &s, 2, "version").file("s.yaml", "version: 7\n"),
        case("settings root is a list", &s, 2, "s.yaml").file("s.yaml", "- a\n- b\n"),
        case("settings nested secret", &s, 2, "cluster_password").file(
            "s.yaml",
            "cluster_password:\n  - hunter2-S3CRET\n  - 918273645\n",
        ),
        case("settings secret then syntax error", &s, 2, "s.yaml:").file(
            "s.yaml",
            "cluster_password: swordfish-S3CRET\nplan_wait_timeout: [\n",
        ),
        case("settings is a directory", &s, 2, "s.yaml").file("s.yaml/x", ""),
        case("settings tab indentation", &s, 2, "s.yaml:").file("s.yaml", "a:\n\t- b\n"),
        case("settings nested 3,000 deep", &s, 2, "s.yaml:").file(
            "s.yaml",
            format!(
                "a:\n{}",
                (1..3000)
                    .map(|i| format!("{}b:\n", "  ".repeat(i)))
                    .collect::<String>()
            ),
        ),
        case("settings flow nested 25,000 deep", &s, 2, "s.yaml:").file(
            "s.yaml",
            format!("a: {}{}\n", "[".repeat(25_000), "]".repeat(25_000)),
        ),
        case(
            "--tc without colon",
            &["list", "--tc", "plan_wait_timeout"],
            2,
            "malformed --tc argument",
        ),
        case(
            "--set without equals",
            &["list", "--set", "plan_wait_timeout"],
            2,
            "malformed --set argument",
        ),
        case(
            "--set pasted secret",
            &["list", "--set", "cluster_password_hunter2-S3CRET"],
            2,
            "malformed --set argument",
        ),
        case(
            "--tc unknown key",
            &["list", "--tc", "storage_clas:x"],
            2,
            "unknown setting `storage_clas`",
        ),
        case(
            "--set negative",
            &["list", "--set", "plan_wait_timeout=-1"],
            2,
            "expected a non-negative integer",
        ),
        case(
            "--tc fraction",
            &["list", "--tc", "snapshots_interval:1.5"],
            2,
            "expected a non-negative integer",
        ),
        case(
            "--tc exponent",
            &["list", "--tc", "plan_wait_timeout:1e3"],
            2,
            "expected a non-negative integer",
        ),
        case(
            "--tc bool yes",
            &["list", "--tc", "insecure_verify_skip:yes"],
            2,
            "expected a boolean",
        ),
        case(
            "CLUSTER_VERIFY_SSL maybe",
            &["list"],
            2,
            "true, false, 1, 0, yes or no",
        )
        .env("CLUSTER_VERIFY_SSL", "maybe"),
        case(
            "CLUSTER_VERIFY_SSL on",
            &["settings"],
            2,
            "CLUSTER_VERIFY_SSL",
        )
        .env("CLUSTER_VERIFY_SSL", "on"),
        case(
            "CLUSTER_VERIFY_SSL for run",
            &run(&["-m", "tier0"]),
            2,
            "CLUSTER_VERIFY_SSL",
        )
        .env("CLUSTER_VERIFY_SSL", "verify"),
        case(
            "unknown source provider by --tc",
            &["list", "--tc", "source_provider:vspher"],
            2,
            "did you mean `vsphere`",
        ),
    ]
}

fn catalog_cases() -> Vec<Case> {
    let c = ["list", "--catalog", "extra"];
    let template = |t: &str| scenario(&format!("      pvc_name_template: '{t}'\n"));
    vec![
        case("catalog dir missing", &c, 2, "extra"),
        case("catalog unknown key", &c, 2, "unknown field `warm_migratoin`").file("extra/a.yaml", scenario("      warm_migratoin: true\n")),
        case("catalog missing family", &c, 2, "missing field `family`").file("extra/a.yaml", "version: 1\nscenarios: []\n"),
        case("catalog syntax", &c, 2, "a.yaml:").file("extra/a.yaml", "version: 1\nfamily: [\n"),
        case("catalog wrong version", &c, 2, "version").file("extra/a.yaml", scenario("").replace("version: 1", "version: 9")),
        case("catalog bad class name", &c, 2, "not a pytest class name").file("extra/a.yaml", scenario("").replace("TestBadInput", "bad_input")),
        case("catalog bad id", &c, 2, "cannot be part of an item id").file("extra/a.yaml", scenario("").replace("id: bad-input", "id: 'bad input/x'")),
        case("catalog without incremental", &c, 2, "`incremental` marker is missing").file("extra/a.yaml", scenario("").replace(", incremental", "")),
        case("catalog unknown marker", &c, 2, "tier9").file("extra/a.yaml", scenario("").replace("tier1", "tier9")),
        case("catalog duplicate of a builtin", &c, 2, "TestSanityColdMtvMigration")
            .file("extra/a.yaml", scenario("").replace("TestBadInput", "TestSanityColdMtvMigration").replace("bad-input", "rhel8")),
        case("catalog not a mapping", &c, 2, "a.yaml").file("extra/a.yaml", "- 1\n- 2\n"),
        case("catalog nested deep", &c, 2, "a.yaml:").file("extra/a.yaml", scenario(&format!("      target_affinity: {}{}\n", "[".repeat(25_000), "]".repeat(25_000)))),
        case("template syntax error at its column", &c, 2, "extra/a.yaml:10:38: unrecognized character in action")
            .file("extra/a.yaml", template("{{ .VmName }-disk-{{.DiskIndex}}")),
        case("template unknown function", &c, 2, "function \"nosuchfn\" not defined").file("extra/a.yaml", template("{{ .VmName | nosuchfn }}")),
        case("template unknown field", &c, 2, "can't evaluate field VmNmae").file("extra/a.yaml", template("{{ .VmNmae }}")),
        case("template unclosed if", &c, 2, "pvc_name_template is not a valid Go template at extra/a.yaml:10:").file("extra/a.yaml", template("{{ if .Shared }}shared")),
        case("template unclosed action", &c, 2, "pvc_name_template is not a valid Go template").file("extra/a.yaml", template("{{ .VmName")),
        case("template stray end", &c, 2, "unexpected {{end}}").file("extra/a.yaml", template("{{ .VmName }}{{ end }}")),
        case("template per provider", &c, 2, "extra/a.yaml:12:")
            .file("extra/a.yaml", scenario("      pvc_name_template:\n        vsphere: \"{{.VmName}}\"\n        default: \"{{.VmName | bogus}}\"\n")),
        case("template per provider unknown key", &c, 2, "pvc_name_template has an unknown key `vmware`")
            .file("extra/a.yaml", scenario("      pvc_name_template:\n        vmware: \"{{.VmName}}\"\n")),
        case("template empty", &c, 2, "pvc_name_template is empty").file("extra/a.yaml", template("  ")),
        case("template error judged by plan", &["plan", "--catalog", "extra"], 2, "not a valid Go template").file("extra/a.yaml", template("{{ .VmName }-x")),
        case("template error judged by run", &run(&["--catalog", "extra"]), 2, "not a valid Go template").file("extra/a.yaml", template("{{ .VmName }-x")),
    ]
}

fn expression_cases() -> Vec<Case> {
    vec![
        case(
            "unknown marker",
            &["list", "-m", "tier0 and not teir1"],
            2,
            "teir1",
        ),
        case("dangling and", &["list", "-m", "tier0 and"], 2, "tier0 and"),
        case(
            "unclosed parenthesis",
            &["list", "-m", "(tier0 or warm"],
            2,
            "(tier0 or warm",
        ),
        case(
            "empty marker expression",
            &["list", "-m", "  "],
            2,
            "invalid -m expression",
        ),
        case(
            "keyword dangling and",
            &["list", "-k", "rhel8 and"],
            2,
            "rhel8 and",
        ),
        case("keyword lone parenthesis", &["list", "-k", "("], 2, "("),
        case(
            "keyword selects nothing",
            &["list", "-k", "no-such-test-anywhere"],
            5,
            "no tests ran: -k \"no-such-test-anywhere\" selected none of the",
        ),
        case(
            "markers select nothing",
            &["list", "-m", "tier0 and not tier0"],
            5,
            "no tests ran: -m \"tier0 and not tier0\"",
        ),
        case(
            "list json selects nothing",
            &["list", "-k", "nothing-here", "--format", "json"],
            5,
            "no tests ran",
        ),
        case(
            "plan selects nothing",
            &["plan", "-k", "nothing-here"],
            5,
            "no tests ran",
        ),
        case(
            "run selects nothing",
            &run(&["-k", "nothing-here"]),
            5,
            "no tests ran",
        ),
        case(
            "run markers select nothing",
            &run(&["-m", "tier1 and tier0 and not tier1"]),
            5,
            "selected none of the",
        ),
        case(
            "last failed missing",
            &["list", "--last-failed"],
            2,
            "--last-failed",
        ),
        case(
            "last failed malformed",
            &["list", "--last-failed", "r.json"],
            2,
            "--last-failed",
        )
        .file("r.json", "{not json"),
        case(
            "last failed for run",
            &run(&["--last-failed", "r.json"]),
            2,
            "--last-failed",
        )
        .file("r.json", "[]"),
    ]
}

fn kubeconfig_cases() -> Vec<Case> {
    let k = run(&["--kubeconfig", "k.yaml"]);
    vec![
        case(
            "kubeconfig missing",
            &k,
            2,
            "--kubeconfig k.yaml: cannot read it",
        ),
        case(
            "kubeconfig not YAML",
            &k,
            2,
            "--kubeconfig k.yaml: cannot read it",
        )
        .file("k.yaml", "clusters: [\n"),
        case(
            "kubeconfig without current context",
            &k,
            2,
            "it has no current-context; pass --context (its contexts: ctx)",
        )
        .file("k.yaml", kubeconfig("https://api.example:6443", "\"\"")),
        case(
            "kubeconfig unknown current context",
            &k,
            2,
            "has no context `other` (its contexts: ctx)",
        )
        .file("k.yaml", kubeconfig("https://api.example:6443", "other")),
        case(
            "kubeconfig unknown --context",
            &run(&["--kubeconfig", "k.yaml", "--context", "prod"]),
            2,
            "has no context `prod`",
        )
        .file("k.yaml", kubeconfig("https://api.example:6443", "ctx")),
        case(
            "kubeconfig server not a URL",
            &k,
            2,
            "is not an https:// URL",
        )
        .file("k.yaml", kubeconfig("api.example", "ctx")),
        case("kubeconfig syntax error at its token", &k, 2, "token: <redacted>")
            .file("k.yaml", "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: [tok-S3CRET-42\n"),
        case("kubeconfig syntax error after its password", &k, 2, "cannot read it")
            .file("k.yaml", "apiVersion: v1\nusers:\n- name: u\n  user:\n    password: hunter2-S3CRET [\n   bad: : x\n"),
        case("clean with a kubeconfig syntax error at its token", &["clean", "--ledger", "l.json", "--kubeconfig", "k.yaml"], 2, "<redacted>")
            .file("l.json", r#"{"version": 1, "session_id": "s", "target": "t", "entries": []}"#)
            .file("k.yaml", "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: [tok-S3CRET-42\n"),
        case("kubeconfig nested deep", &k, 2, "cannot read it").file(
            "k.yaml",
            format!("clusters: {}{}\n", "[".repeat(25_000), "]".repeat(25_000)),
        ),
        case("kubeconfig is a directory", &k, 2, "cannot read it").file("k.yaml/x", ""),
        case(
            "context with a missing KUBECONFIG",
            &run(&["--context", "ctx"]),
            2,
            "default kubeconfig",
        )
        .env("KUBECONFIG", "nope.yaml"),
        case(
            "lab faults with a kubeconfig",
            &run(&["--kubeconfig", "k.yaml", "--lab-faults", "latency-ms=5"]),
            2,
            "embedded lab only",
        )
        .file("k.yaml", kubeconfig("https://api.example:6443", "ctx")),
    ]
}

fn results_path_cases() -> Vec<Case> {
    vec![
        case(
            "results is a file",
            &["run", "--results", "f", "-m", "tier0"],
            2,
            "--results f: f is not a directory",
        )
        .file("f", "x"),
        case(
            "results under a file",
            &["run", "--results", "f/out", "-m", "tier0"],
            2,
            "is not a directory",
        )
        .file("f", "x"),
        case(
            "results in /proc",
            &["run", "--results", "/proc/mtv-tests-results", "-m", "tier0"],
            2,
            "--results /proc/mtv-tests-results",
        ),
        case(
            "junitxml is a directory",
            &run(&["--junitxml", "d", "-m", "tier0"]),
            2,
            "--junitxml d: is a directory",
        )
        .file("d/x", ""),
        case(
            "junitxml under a file",
            &run(&["--junitxml", "f/junit.xml", "-m", "tier0"]),
            2,
            "--junitxml f/junit.xml: f is not a directory",
        )
        .file("f", "x"),
        case(
            "junitxml in /proc",
            &run(&["--junitxml", "/proc/junit.xml", "-m", "tier0"]),
            2,
            "--junitxml /proc/junit.xml",
        ),
    ]
}

fn lab_fault_cases() -> Vec<Case> {
    let f = |spec: &'static str| run(&["-m", "tier0", "--lab-faults", spec]);
    let serve =
        |faults: &'static str| ["lab", "serve", "--faults", faults, "--kubeconfig-out", "k"];
    vec![
        case(
            "fault key unknown",
            &f("api-eror-rate=0.1"),
            2,
            "unknown fault \"api-eror-rate\" (known: api-error-rate, latency-ms",
        ),
        case(
            "vm-fail unknown step",
            &f("vm-fail=rhel8@NoSuchStep"),
            2,
            "unknown pipeline step \"NoSuchStep\" (known: Initialize",
        ),
        case(
            "vm-fail step in the wrong case",
            &f("vm-fail=rhel8@disktransfer"),
            2,
            "unknown pipeline step",
        ),
        case(
            "vm-fail without step",
            &f("vm-fail=rhel8"),
            2,
            "expected <vm>@<step>",
        ),
        case(
            "error rate above 1",
            &f("api-error-rate=2"),
            2,
            "must be between 0 and 1",
        ),
        case(
            "error rate not a number",
            &f("api-error-rate=lots"),
            2,
            "not a number",
        ),
        case(
            "latency not a number",
            &f("latency-ms=fast"),
            2,
            "not a whole number",
        ),
        case(
            "watch drop zero",
            &f("watch-drop-secs=0"),
            2,
            "must be positive",
        ),
        case(
            "misbehave unknown point",
            &f("misbehave=rhel8@colour"),
            2,
            "unknown point \"colour\"",
        ),
        case("fault not key=value", &f("chaos"), 2, "is not key=value"),
        case(
            "lab serve unknown fault",
            &serve("explode=1"),
            2,
            "unknown fault \"explode\"",
        ),
        case(
            "lab serve unknown step",
            &serve("vm-fail=x@Nope"),
            2,
            "unknown pipeline step",
        ),
    ]
}

fn number_cases() -> Vec<Case> {
    vec![
        case("-j 0", &run(&["-j", "0"]), 2, "0 is not in 1..=1024"),
        case("-j negative", &run(&["-j", "-1"]), 2, "-1"),
        case("-j not a number", &run(&["-j", "many"]), 2, "many"),
        case(
            "-j huge",
            &run(&["-j", "99999999999999999999"]),
            2,
            "99999999999999999999",
        ),
        case(
            "--lab-speed zero",
            &run(&["--lab-speed", "0", "-m", "tier0"]),
            2,
            "--lab-speed must be a positive number, not 0",
        ),
        case(
            "--lab-speed negative",
            &run(&["--lab-speed=-2", "-m", "tier0"]),
            2,
            "positive number",
        ),
        case(
            "--lab-speed NaN",
            &run(&["--lab-speed", "NaN", "-m", "tier0"]),
            2,
            "positive number",
        ),
        case(
            "--lab-speed word",
            &run(&["--lab-speed", "fast"]),
            2,
            "fast",
        ),
        case(
            "lab serve port too big",
            &["lab", "serve", "--port", "70000"],
            2,
            "70000",
        ),
        case("unknown format", &["list", "--format", "xml"], 2, "xml"),
        case("unknown subcommand", &["lsit"], 2, "lsit"),
    ]
}

/// `mtv-tests port-forward` and `mtv-tests ssh`: ports, and which cluster.
fn guest_access_cases() -> Vec<Case> {
    let forward = |ports: &'static str| ["port-forward", "vm1", ports, "--kubeconfig", "k.yaml"];
    vec![
        case(
            "port-forward without a colon",
            &forward("2222"),
            2,
            "`2222` is not LOCAL:REMOTE",
        ),
        case(
            "port-forward local port not a number",
            &forward("x:22"),
            2,
            "the local port `x`",
        ),
        case(
            "port-forward remote port too large",
            &forward("0:70000"),
            2,
            "the remote port `70000`",
        ),
        case(
            "port-forward remote port 0",
            &forward("1:0"),
            2,
            "must not be 0",
        ),
        case(
            "port-forward without a cluster",
            &["port-forward", "vm1", "0:22"],
            2,
            "say which cluster holds vm1",
        ),
        case(
            "ssh without a cluster",
            &["ssh", "vm1", "--", "hostname"],
            2,
            "pass --kubeconfig PATH",
        ),
        case(
            "ssh with a missing kubeconfig",
            &["ssh", "vm1", "--kubeconfig", "k.yaml"],
            2,
            "cannot read",
        ),
    ]
}

fn every_case() -> Vec<Case> {
    [
        providers_cases(),
        secret_output_cases(),
        copyoffload_cases(),
        settings_cases(),
        catalog_cases(),
        expression_cases(),
        kubeconfig_cases(),
        results_path_cases(),
        lab_fault_cases(),
        number_cases(),
        guest_access_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Runs one case in a fresh directory; returns what is wrong with the answer, if anything.
fn check(case: &Case) -> Option<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, bytes) in &case.files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
    }
    let mut command = Command::new(BIN);
    command
        .args(&case.args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400");
    for (key, value) in &case.env {
        command.env(key, value);
    }
    let output: Output = command.output().expect("mtv-tests runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut wrong = Vec::new();
    if output.status.code() != Some(case.code) {
        wrong.push(format!(
            "exit {:?}, expected {}",
            output.status.code(),
            case.code
        ));
    }
    if !text.contains(case.fragment) {
        wrong.push(format!("no {:?} in the output", case.fragment));
    }
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        wrong.push("a panic".to_string());
    }
    for secret in SECRETS {
        if text.contains(secret) {
            wrong.push(format!("the secret {secret:?} was printed"));
        }
    }
    if case.args.first().map(String::as_str) == Some("run") && exists(&dir.path().join("out")) {
        wrong.push("run created its results directory before failing".to_string());
    }
    if std::env::var_os("BAD_INPUT_SHOW").is_some() {
        eprintln!(
            "=== {} (exit {:?})\n{text}",
            case.name,
            output.status.code()
        );
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "{}: {}\n  args: {:?}\n  output:\n{}",
            case.name,
            wrong.join("; "),
            case.args,
            text.lines()
                .take(25)
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        )
    })
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

#[test]
fn every_bad_input_gets_its_exit_code_and_message_without_a_panic_or_a_secret() {
    let cases = every_case();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    // A few processes at once: each case is a short-lived process that stops before any work.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = cases.get(index) else { break };
                    if let Some(failure) = check(case) {
                        failures.lock().expect("lock").push(failure);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
