//! Kubernetes and Forklift naming rules: the one home of the DNS-1123/DNS-1035 checks (the catalog,
//! the engine and the lab's API server all use these, as apimachinery's `validation` package is
//! used by every part of Kubernetes), Forklift's target-VM-name rewrite
//! (`ChangeVmName`), the `.TargetVmName` template-variable quirk, and the Python suite's
//! `sanitize_kubernetes_name`.

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
/// Kubernetes appends 5 random characters to a `generateName` prefix cut to this length.
pub const GENERATE_NAME_PREFIX_MAX_LEN: usize = 58;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    #[error("name {original:?} has no characters usable in a Kubernetes name")]
    EmptyName { original: String },
}

/// What a migrated VM will be called, as far as it can be known before the migration runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetVmName {
    Exact(String),
    /// Forklift will pick `vm-<4 random [a-z0-9]>`.
    Random,
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Longest DNS-1035 label (Service names).
pub const DNS1035_LABEL_MAX_LEN: usize = 63;

/// Whether `s` matches apimachinery's DNS-1123 label regex `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, its
/// length aside (the API server reports length and format as two problems).
pub fn matches_dns1123_label_format(s: &str) -> bool {
    is_label_shaped(s)
}

/// Whether `s` matches the DNS-1123 subdomain regex (label-shaped parts joined by `.`), its
/// length aside.
pub fn matches_dns1123_subdomain_format(s: &str) -> bool {
    s.split('.').all(is_label_shaped)
}

/// Whether `s` matches the DNS-1035 label regex `[a-z]([-a-z0-9]*[a-z0-9])?`, its length aside.
pub fn matches_dns1035_label_format(s: &str) -> bool {
    is_label_shaped(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_label_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// A DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX_LEN && is_label_shaped(s)
}

/// Why `s` is not a DNS-1123 label, in the API server's words; `None` when it is one.
pub fn dns1123_label_error(s: &str) -> Option<String> {
    let mut problems = Vec::new();
    if s.len() > DNS1123_LABEL_MAX_LEN {
        problems.push(format!(
            "must be no more than {DNS1123_LABEL_MAX_LEN} characters"
        ));
    }
    if !is_label_shaped(s) {
        problems.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
             '-', and must start and end with an alphanumeric character"
                .to_string(),
        );
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// A DNS-1123 subdomain: at most 253 characters, label-shaped parts joined by `.`. As in
/// apimachinery's `IsDNS1123Subdomain` (the source the API server runs), the parts themselves are
/// not limited to 63 characters: only the whole is.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= DNS1123_SUBDOMAIN_MAX_LEN && matches_dns1123_subdomain_format(s)
}

/// Byte-prefix of an ASCII string, at most `max` long.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn lower_go(s: &str) -> String {
    // Go lowers rune by rune with the simple mapping; take the first char of multi-char results.
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Forklift's `ChangeVmName` (spec §3.5 steps 1–7). `random4` supplies the 4 `[a-z0-9]`
/// characters of the `vm-xxxx` fallback used when nothing usable is left.
pub fn forklift_target_vm_name(source_name: &str, random4: &mut dyn FnMut() -> String) -> String {
    let lowered = lower_go(source_name);
    let trimmed = lowered.trim_matches(|c| c == '.' || c == '-');
    let parts: Vec<String> = trimmed.split('.').filter_map(rewrite_name_part).collect();
    let joined = parts.join(".");
    let name = cut(&joined, DNS1123_LABEL_MAX_LEN).trim_matches(|c| c == '.' || c == '-');
    if name.is_empty() {
        format!("vm-{}", random4())
    } else {
        name.to_string()
    }
}

/// Step 4 of `ChangeVmName` for one dot-separated part; `None` drops the part.
fn rewrite_name_part(part: &str) -> Option<String> {
    let replaced: String = part
        .chars()
        .map(|c| match c {
            '_' | '+' | '*' | ' ' | '/' | '\\' => '-',
            other => other,
        })
        .filter(|&c| is_lower_alnum(c) || c == '-')
        .collect();
    let trimmed = replaced.trim_matches(|c| c == '-' || c == '.');
    let mut collapsed = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let part = cut(&collapsed, DNS1123_LABEL_MAX_LEN).trim_matches(|c| c == '-' || c == '.');
    (!part.is_empty()).then(|| part.to_string())
}

/// What Forklift does when the rewritten name is already taken in the target namespace or by
/// another VM of the plan: cut to 58 characters and append `-<4 random chars>`.
pub fn forklift_collision_name(name: &str, random4: &str) -> String {
    format!("{}-{random4}", cut(name, GENERATE_NAME_PREFIX_MAX_LEN))
}

/// The name a migrated VM will get: `targetName` when set, else the source name when it is a
/// DNS-1123 subdomain, else [`forklift_target_vm_name`]. Collisions (see
/// [`forklift_collision_name`]) are not predicted.
pub fn predict_target_vm_name(source_name: &str, target_name: Option<&str>) -> TargetVmName {
    if let Some(target) = target_name.filter(|t| !t.is_empty()) {
        return TargetVmName::Exact(target.to_string());
    }
    if is_dns1123_subdomain(source_name) {
        return TargetVmName::Exact(source_name.to_string());
    }
    let mut used_random = false;
    let name = forklift_target_vm_name(source_name, &mut || {
        used_random = true;
        String::new()
    });
    if used_random {
        TargetVmName::Random
    } else {
        TargetVmName::Exact(name)
    }
}

/// The value of the `.TargetVmName` template variable (spec §3.5 quirk): the source name when
/// it is a DNS-1123 *label*, else `ChangeVmName(source)`, or `ChangeVmName(vmID)` when the source
/// name has no ASCII alphanumerics. If the VM id has none either, Forklift's random part cannot
/// be known and `xxxx` stands in for it.
pub fn template_target_vm_name(source_name: &str, vm_id: &str) -> String {
    if is_dns1123_label(source_name) {
        return source_name.to_string();
    }
    let basis = if source_name.chars().any(|c| c.is_ascii_alphanumeric()) {
        source_name
    } else {
        vm_id
    };
    forklift_target_vm_name(basis, &mut || "xxxx".to_string())
}

/// The Python suite's `sanitize_kubernetes_name`: lowercase, `_` and `.` become `-`, any other
/// character outside `[a-z0-9-]` becomes `-`, non-alphanumeric ends are trimmed, and the result
/// is cut to 63 characters (and trimmed again). Runs of `-` are kept, as the suite keeps them.
pub fn sanitize_kubernetes_name(name: &str) -> Result<String, NamingError> {
    let mapped: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if is_lower_alnum(c) { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !is_lower_alnum(c));
    let result = cut(trimmed, DNS1123_LABEL_MAX_LEN).trim_end_matches(|c: char| !is_lower_alnum(c));
    if result.is_empty() {
        return Err(NamingError::EmptyName {
            original: name.to_string(),
        });
    }
    Ok(result.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_random() -> String {
        panic!("random fallback not expected")
    }

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns1123_label("a"));
        assert!(is_dns1123_label("vm-01"));
        assert!(is_dns1123_label(&"a".repeat(63)));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label("Abc"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label("a_b"));
        assert!(is_dns1123_subdomain("web.server-a"));
        assert!(is_dns1123_subdomain("a"));
        assert!(!is_dns1123_subdomain("web..a"));
        assert!(!is_dns1123_subdomain(".a"));
        assert!(!is_dns1123_subdomain("a."));
        assert!(!is_dns1123_subdomain("Web.a"));
        assert!(!is_dns1123_subdomain("a.-b"));
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
        // apimachinery limits the whole subdomain only: a 64-character part is accepted.
        assert!(is_dns1123_subdomain(&format!("{}.b", "a".repeat(64))));
        assert!(matches_dns1035_label_format("abc-1"));
        assert!(!matches_dns1035_label_format("1abc"));
        assert!(matches_dns1123_label_format(&"a".repeat(64)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(dns1123_label_error("ok").is_none());
        let error = dns1123_label_error(&"A".repeat(64)).unwrap_or_default();
        assert!(error.contains("63"), "{error}");
        assert!(error.contains("lower case"), "{error}");
    }

    #[test]
    fn change_vm_name_examples() {
        let name = |s: &str| forklift_target_vm_name(s, &mut no_random);
        assert_eq!(name("My_VM 01"), "my-vm-01");
        assert_eq!(name("Web.Server_A"), "web.server-a");
        assert_eq!(name("XCopy_Test_VM_CAPS"), "xcopy-test-vm-caps");
        assert_eq!(name("..-Lead.trail-.."), "lead.trail");
        assert_eq!(name("a__b++c"), "a-b-c");
        assert_eq!(name("a..b"), "a.b");
        assert_eq!(name("x/y\\z*w"), "x-y-z-w");
        assert_eq!(name("Ünïcode-VM"), "ncode-vm");
        assert_eq!(name("-_a_-"), "a");
    }

    #[test]
    fn change_vm_name_random_fallback() {
        let mut calls = 0;
        let mut random = || {
            calls += 1;
            "k3x9".to_string()
        };
        assert_eq!(forklift_target_vm_name("!!!", &mut random), "vm-k3x9");
        assert_eq!(forklift_target_vm_name("_.-_", &mut random), "vm-k3x9");
        assert_eq!(forklift_target_vm_name("日本語", &mut random), "vm-k3x9");
        assert_eq!(calls, 3);
        assert_eq!(predict_target_vm_name("***", None), TargetVmName::Random);
    }

    #[test]
    fn change_vm_name_truncates() {
        let long = format!("{}_{}", "A".repeat(40), "b".repeat(40));
        let out = forklift_target_vm_name(&long, &mut no_random);
        assert_eq!(out.len(), 63);
        assert_eq!(out, format!("{}-{}", "a".repeat(40), "b".repeat(22)));
        // A cut that lands on a dash is trimmed.
        let dashy = format!("{} {}", "c".repeat(62), "d".repeat(10));
        let out = forklift_target_vm_name(&dashy, &mut no_random);
        assert_eq!(out, "c".repeat(62));
        // The whole-name cut applies across dotted parts too.
        let dotted = format!("{}.{}", "e".repeat(62), "F".repeat(10));
        assert_eq!(
            forklift_target_vm_name(&dotted, &mut no_random),
            "e".repeat(62)
        );
        assert!(is_dns1123_subdomain(&forklift_target_vm_name(
            &"Z_".repeat(100),
            &mut no_random
        )));
    }

    #[test]
    fn prediction() {
        assert_eq!(
            predict_target_vm_name("My_VM 01", Some("chosen")),
            TargetVmName::Exact("chosen".into())
        );
        assert_eq!(
            predict_target_vm_name("My_VM 01", Some("")),
            TargetVmName::Exact("my-vm-01".into())
        );
        assert_eq!(
            predict_target_vm_name("web.server-a", None),
            TargetVmName::Exact("web.server-a".into())
        );
        assert_eq!(
            predict_target_vm_name("Web.Server_A", None),
            TargetVmName::Exact("web.server-a".into())
        );
    }

    #[test]
    fn distinct_sources_predict_distinct_names() {
        let sources = [
            "mtv-rhel8-sanity",
            "mtv-win2019-3disks",
            "My_VM 01",
            "Web.Server_A",
            "XCopy_Test_VM_CAPS",
            "mtv-rhel8-warm-2disks2nics",
        ];
        let mut names: Vec<TargetVmName> = sources
            .iter()
            .map(|s| predict_target_vm_name(s, None))
            .collect();
        assert!(names.iter().all(|n| matches!(n, TargetVmName::Exact(_))));
        names.sort_by_key(|n| format!("{n:?}"));
        names.dedup();
        assert_eq!(names.len(), sources.len());
    }

    #[test]
    fn collision_rename() {
        let long = "a".repeat(63);
        let renamed = forklift_collision_name(&long, "q7w2");
        assert_eq!(renamed, format!("{}-q7w2", "a".repeat(58)));
        assert!(is_dns1123_label(&renamed));
        assert_eq!(forklift_collision_name("vm", "abcd"), "vm-abcd");
    }

    #[test]
    fn template_target_vm_name_quirk() {
        assert_eq!(template_target_vm_name("plain-vm", "vm-1"), "plain-vm");
        // Dotted subdomains are not labels, so the dots survive only through ChangeVmName.
        assert_eq!(
            template_target_vm_name("Web.Server_A", "vm-1"),
            "web.server-a"
        );
        assert_eq!(template_target_vm_name("My_VM 01", "vm-1"), "my-vm-01");
        assert_eq!(template_target_vm_name("***", "VM-42"), "vm-42");
        assert_eq!(template_target_vm_name("", "vm-7"), "vm-7");
    }

    #[test]
    fn python_sanitize() {
        for (name, sanitized) in [
            ("My_VM 01", "my-vm-01".to_string()),
            ("Web.Server_A", "web-server-a".to_string()),
            ("XCopy_Test_VM_CAPS", "xcopy-test-vm-caps".to_string()),
            ("--a__b--", "a--b".to_string()),
            (format!("{}_x", "b".repeat(62)).as_str(), "b".repeat(62)),
            ("c".repeat(100).as_str(), "c".repeat(63)),
        ] {
            assert_eq!(
                sanitize_kubernetes_name(name).ok(),
                Some(sanitized),
                "{name}"
            );
        }
        assert!(matches!(
            sanitize_kubernetes_name("_-.!"),
            Err(NamingError::EmptyName { .. })
        ));
    }
}
