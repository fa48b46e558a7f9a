//! Kubernetes resource quantities (`10Gi`, `10240Mi`, `2T`, `1e9`, `1.5Gi`, plain bytes), read exactly
//! in whole bytes: the one rule the engine's checks, the OpenShift adapter and the lab's simulated
//! Forklift and CDI all read VM specs and PVCs with.

/// Bytes in a MiB.
pub const MIB: u128 = 1 << 20;
/// Bytes in a GiB.
pub const GIB: u128 = 1 << 30;

/// A quantity in bytes; `None` when it is not one (or overflows), a fraction below a byte rounded
/// down as the API server's canonical form would.
pub fn bytes(text: &str) -> Option<u128> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier = multiplier(suffix)?;
    match number.split_once('.') {
        None => number.parse::<u128>().ok()?.checked_mul(multiplier),
        Some((whole, fraction)) => {
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            let scale = 10u128.checked_pow(fraction.len() as u32)?;
            let fraction: u128 = if fraction.is_empty() {
                0
            } else {
                fraction.parse().ok()?
            };
            let total = (whole.checked_mul(scale)? + fraction).checked_mul(multiplier)?;
            Some(total / scale)
        }
    }
}

/// What a suffix multiplies by: binary (`Ki` … `Ei`), decimal (`k` … `E`) or a decimal exponent (`e3`).
fn multiplier(suffix: &str) -> Option<u128> {
    Some(match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        exp if exp.starts_with(['e', 'E']) => 10u128.checked_pow(exp[1..].parse().ok()?)?,
        _ => return None,
    })
}

/// A quantity in MiB, rounded up.
pub fn mib_rounded_up(text: &str) -> Option<u64> {
    bytes(text).and_then(|b| u64::try_from(b.div_ceil(MIB)).ok())
}

/// A quantity in GiB, rounded up.
pub fn gib_rounded_up(text: &str) -> Option<u64> {
    bytes(text).and_then(|b| u64::try_from(b.div_ceil(GIB)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_decimal_exponents_and_fractions() {
        assert_eq!(bytes("20Gi"), Some(20 * GIB));
        assert_eq!(bytes("5120Mi"), Some(5 * GIB));
        assert_eq!(bytes("1.5Gi"), Some(3 * GIB / 2));
        assert_eq!(bytes("2T"), Some(2_000_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("1024"), Some(1024));
        assert_eq!(bytes(" 2Ki "), Some(2048));
        assert_eq!(bytes("1.5k"), Some(1500));
        assert_eq!(bytes("ten"), None);
        assert_eq!(bytes("5Xi"), None);
        assert_eq!(bytes("bogus"), None);
    }

    #[test]
    fn rounded_up_to_whole_mib_and_gib() {
        assert_eq!(mib_rounded_up("30Gi"), Some(30 * 1024));
        assert_eq!(mib_rounded_up("512Mi"), Some(512));
        assert_eq!(mib_rounded_up("1G"), Some(954));
        assert_eq!(gib_rounded_up("30Gi"), Some(30));
        assert_eq!(gib_rounded_up("10G"), Some(10));
        assert_eq!(gib_rounded_up("1025Mi"), Some(2));
        assert_eq!(mib_rounded_up("bogus"), None);
    }
}
