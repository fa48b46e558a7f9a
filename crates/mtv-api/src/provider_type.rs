use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Forklift source provider type, as written in `Provider.spec.type` and in `.providers.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    Vsphere,
    Ovirt,
    Openstack,
    Openshift,
    Ova,
}

impl ProviderType {
    pub const ALL: [ProviderType; 5] = [
        ProviderType::Vsphere,
        ProviderType::Ovirt,
        ProviderType::Openstack,
        ProviderType::Openshift,
        ProviderType::Ova,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Vsphere => "vsphere",
            ProviderType::Ovirt => "ovirt",
            ProviderType::Openstack => "openstack",
            ProviderType::Openshift => "openshift",
            ProviderType::Ova => "ova",
        }
    }

    /// Whether Forklift can run a warm (precopy + cutover) migration from this type.
    pub fn supports_warm(self) -> bool {
        matches!(self, ProviderType::Vsphere | ProviderType::Ovirt)
    }

    /// Copy-offload (XCOPY volume populator) exists for vSphere sources only.
    pub fn supports_copy_offload(self) -> bool {
        self == ProviderType::Vsphere
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider type `{0}` (expected one of: vsphere, ovirt, openstack, openshift, ova)")]
pub struct UnknownProviderType(pub String);

impl FromStr for ProviderType {
    type Err = UnknownProviderType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownProviderType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_name() {
        for t in ProviderType::ALL {
            assert_eq!(t.as_str().parse::<ProviderType>(), Ok(t));
        }
        assert!("rhv".parse::<ProviderType>().is_err());
    }

    #[test]
    fn warm_is_vsphere_and_ovirt_only() {
        let warm: Vec<_> = ProviderType::ALL
            .into_iter()
            .filter(|t| t.supports_warm())
            .collect();
        assert_eq!(warm, [ProviderType::Vsphere, ProviderType::Ovirt]);
    }
}
