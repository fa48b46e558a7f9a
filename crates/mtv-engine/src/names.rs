//! Resource names of a session, after the Python suite's rules (inventory §8.1), made unique per
//! session and per scenario so scenarios can run side by side.
//!
//! The same code names real objects (with a random 4-character suffix) and the preview's patterns
//! (with the placeholder `<rand4>`), so what `mtv-tests plan` shows is what `run` creates.

use mtv_api::ProviderType;

/// Kubernetes names are at most 63 characters (a DNS-1123 label); like the Python suite we keep the
/// *end* of a long name, where the unique suffix is.
pub const MAX_NAME: usize = mtv_api::naming::DNS1123_LABEL_MAX_LEN;

/// Lower-case, `_` and `.` to `-`, keep the last 63 characters.
pub fn k8s_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    keep_last(&cleaned, MAX_NAME)
        .trim_start_matches('-')
        .to_string()
}

fn keep_last(s: &str, max: usize) -> &str {
    let count = s.chars().count();
    if count <= max {
        return s;
    }
    let skip = count - max;
    let start = s.char_indices().nth(skip).map_or(s.len(), |(i, _)| i);
    &s[start..]
}

/// A short, readable slug of a scenario for object names: `TestSanityColdMtvMigration[rhel8]` becomes
/// `sanity-cold-mtv-migration`, cut to 28 characters.
pub fn scenario_slug(class: &str) -> String {
    let class = class.strip_prefix("Test").unwrap_or(class);
    let mut slug = String::new();
    let mut previous_lower = false;
    for c in class.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            slug.push('-');
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            slug.push('-');
            previous_lower = false;
        }
    }
    let cut: String = slug.chars().take(28).collect();
    cut.trim_matches('-').to_string()
}

/// A stable 6-hex-digit hash (FNV-1a), for NetworkAttachmentDefinition names that must stay under the
/// 15-character Linux bridge limit.
pub fn short_hash(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            // A separator byte, so ("ab", "c") and ("a", "bc") differ.
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        for byte in part.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:06x}", hash & 0xff_ffff)
}

/// Names for one session. `suffix` yields a fresh 4-character suffix per generated name.
pub struct SessionNames<'a> {
    pub session: String,
    provider_base: String,
    suffix: Box<dyn FnMut() -> String + Send + 'a>,
}

impl<'a> SessionNames<'a> {
    /// `session` is the session id (also the session namespace), e.g. `auto-k3x9`.
    pub fn new(
        session: impl Into<String>,
        provider_type: ProviderType,
        provider_version: &str,
        copy_offload: bool,
        suffix: impl FnMut() -> String + Send + 'a,
    ) -> Self {
        let session = session.into();
        let version = provider_version.replace('.', "-");
        let mut provider_base = format!("{session}-source-{provider_type}");
        if !version.is_empty() {
            provider_base.push('-');
            provider_base.push_str(&version);
        }
        if copy_offload {
            provider_base.push_str("-xcopy");
        }
        SessionNames {
            session,
            provider_base,
            suffix: Box::new(suffix),
        }
    }

    fn unique(&mut self, base: &str) -> String {
        let suffix = (self.suffix)();
        k8s_name(&format!("{base}-{suffix}"))
    }

    pub fn session_namespace(&self) -> String {
        k8s_name(&self.session)
    }

    pub fn source_secret(&mut self) -> String {
        let base = self.provider_base.clone();
        self.unique(&base)
    }

    pub fn source_provider(&mut self) -> String {
        let base = self.provider_base.clone();
        self.unique(&base)
    }

    pub fn copy_offload_storage_secret(&mut self) -> String {
        let base = format!("{}-storage", self.provider_base);
        self.unique(&base)
    }

    pub fn destination_provider(&self) -> String {
        k8s_name(&format!("{}-local-ocp-provider", self.session))
    }

    pub fn remote_destination_provider(&self) -> String {
        k8s_name(&format!("{}-destination-ocp-provider", self.session))
    }

    pub fn remote_destination_secret(&mut self) -> String {
        let base = format!("{}-destination-ocp-token", self.session);
        self.unique(&base)
    }

    pub fn source_vms_namespace(&self) -> String {
        k8s_name(&format!("{}-source-vms", self.session))
    }

    /// A per-scenario object: `<session>-<slug>-<kind>-<rand4>`.
    pub fn scenario_object(&mut self, class: &str, kind: &str) -> String {
        let base = format!("{}-{}-{kind}", self.session, scenario_slug(class));
        self.unique(&base)
    }

    /// The source clone of a VM (inventory §5): `<session>-<vm><storage suffix>-<ocp>-<warm|cold>-<rand4>`.
    pub fn clone_name(
        &mut self,
        vm_name: &str,
        storage_class: &str,
        target_ocp_version: Option<&str>,
        warm: bool,
    ) -> String {
        let storage_tail: Vec<&str> = storage_class.rsplit('-').take(2).collect();
        let storage_tail: Vec<&str> = storage_tail.into_iter().rev().collect();
        let mut base = format!("{}-{vm_name}-{}", self.session, storage_tail.join("-"));
        if let Some(version) = target_ocp_version.filter(|v| !v.is_empty()) {
            base.push('-');
            base.push_str(&version.replace('.', "-"));
        }
        base.push_str(if warm { "-warm" } else { "-cold" });
        self.unique(&base)
    }

    /// NetworkAttachmentDefinitions of a scenario: `cb-<hash6>-<n>`, n from 1.
    pub fn nad(&self, scenario: &str, index: usize) -> String {
        format!("cb-{}-{index}", short_hash(&[scenario, &self.session]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("{n:04}")
        }
    }

    #[test]
    fn slugs_read_like_the_class() {
        assert_eq!(
            scenario_slug("TestSanityColdMtvMigration"),
            "sanity-cold-mtv-migration"
        );
        assert_eq!(
            scenario_slug("TestCopyoffload2TbVmSnapshotsMigration"),
            "copyoffload2-tb-vm-snapshots"
        );
    }

    #[test]
    fn long_names_keep_their_unique_end() {
        let long = format!("{}-abcd", "x".repeat(80));
        let name = k8s_name(&long);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("-abcd"));
    }

    #[test]
    fn provider_base_follows_the_python_suite() {
        let mut names =
            SessionNames::new("auto-k3x9", ProviderType::Vsphere, "8.0.3", true, counter());
        assert_eq!(
            names.source_provider(),
            "auto-k3x9-source-vsphere-8-0-3-xcopy-0001"
        );
        assert_eq!(names.destination_provider(), "auto-k3x9-local-ocp-provider");
    }

    #[test]
    fn clone_names_carry_storage_and_mode() {
        let mut names = SessionNames::new(
            "auto-k3x9",
            ProviderType::Vsphere,
            "8.0.3",
            false,
            counter(),
        );
        assert_eq!(
            names.clone_name("mtv-tests-rhel8", "lab-ceph-rbd", Some("4.20"), false),
            "auto-k3x9-mtv-tests-rhel8-ceph-rbd-4-20-cold-0001"
        );
    }

    #[test]
    fn nad_names_fit_the_bridge_limit_and_are_stable() {
        let names = SessionNames::new(
            "auto-k3x9",
            ProviderType::Vsphere,
            "8.0.3",
            false,
            counter(),
        );
        let nad = names.nad("TestSanityColdMtvMigration[rhel8]", 1);
        assert!(nad.len() < 15, "{nad}");
        assert_eq!(nad, names.nad("TestSanityColdMtvMigration[rhel8]", 1));
        assert_ne!(nad, names.nad("TestSanityWarmMtvMigration[rhel8]", 1));
    }
}
