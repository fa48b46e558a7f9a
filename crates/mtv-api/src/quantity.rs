//! Kubernetes resource quantities (`30Gi`, `512Mi`, `10G`, plain bytes) as the lab's simulated
//! Forklift and the OpenShift provider read them from VM specs and PVCs.

const MIB: f64 = 1024.0 * 1024.0;

/// A quantity in bytes; `None` for a number or suffix it does not take.
pub fn bytes(quantity: &str) -> Option<f64> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => MIB,
        "Gi" => 1024.0f64.powi(3),
        "Ti" => 1024.0f64.powi(4),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some(number * scale)
}

/// A quantity in MiB, rounded up.
pub fn mib_rounded_up(quantity: &str) -> Option<u64> {
    bytes(quantity).map(|b| (b / MIB).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(mib_rounded_up("30Gi"), Some(30 * 1024));
        assert_eq!(mib_rounded_up("512Mi"), Some(512));
        assert_eq!(mib_rounded_up("1G"), Some(954));
        assert_eq!(bytes(" 2Ki "), Some(2048.0));
        assert_eq!(bytes("1.5k"), Some(1500.0));
        assert_eq!(mib_rounded_up("bogus"), None);
        assert_eq!(bytes("5Xi"), None);
    }
}
