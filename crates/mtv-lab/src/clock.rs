//! Wall-clock helpers: RFC 3339 timestamps as Kubernetes writes them, and the short ages `kubectl get` prints.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use mtv_api::time::{format_rfc3339, parse_rfc3339};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ` (second precision, like `metav1.Time`).
pub fn now_rfc3339() -> String {
    format_rfc3339(unix_now())
}

/// How `kubectl` shows an age: `45s`, `3m12s`, `17m`, `5h10m`, `3d4h`, `12d`, `2y30d`.
pub fn human_age(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=599 => format!("{}m{}s", s / 60, s % 60),
        600..=10_799 => format!("{}m", s / 60),
        10_800..=28_799 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        28_800..=172_799 => format!("{}h", s / 3600),
        172_800..=691_199 => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
        691_200..=31_535_999 => format!("{}d", s / 86_400),
        _ => format!("{}y{}d", s / 31_536_000, (s % 31_536_000) / 86_400),
    }
}

/// Age of an RFC 3339 timestamp relative to now, or `<unknown>`.
pub fn age_of(timestamp: &str) -> String {
    match parse_rfc3339(timestamp) {
        Some(t) => human_age(Duration::from_secs((unix_now() - t).max(0) as u64)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(Duration::from_secs(5)), "5s");
        assert_eq!(human_age(Duration::from_secs(200)), "3m20s");
        assert_eq!(human_age(Duration::from_secs(1200)), "20m");
        assert_eq!(human_age(Duration::from_secs(3 * 86_400 + 7200)), "3d2h");
    }
}
