//! How long a Forklift minute lasts on a target, as the target itself says: a ConfigMap in the MTV
//! namespace ([`CLOCK_CONFIG_MAP`]) carries a compressed clock's model and speed; a cluster without
//! it (every real one) runs on real time. The embedded lab installs it with its `--speed`, so a run
//! times warm cutovers and guest waits by the lab's clock without knowing it talks to a lab.

use std::collections::BTreeMap;
use std::time::Duration;

/// The ConfigMap (in the MTV namespace) that describes a compressed Forklift clock.
pub const CLOCK_CONFIG_MAP: &str = "mtv-tests-forklift-clock";
/// Its key naming the clock model; [`COMPRESSED_MODEL`] is the only one.
pub const CLOCK_MODEL_KEY: &str = "model";
/// Its key holding the speed (a positive number; 1 when absent).
pub const CLOCK_SPEED_KEY: &str = "speed";
/// The model of [`crate::time::lab_seconds`]: one second per minute, logarithmic beyond, divided by
/// the speed.
pub const COMPRESSED_MODEL: &str = "compressed-log";

/// The shortest a compressed bound on guest or Forklift time may become.
const SHORTEST_COMPRESSED_BOUND: Duration = Duration::from_secs(5);

/// A target's Forklift clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ForkliftClock {
    /// A Forklift minute lasts a minute.
    Real,
    /// [`crate::time::lab_seconds`] divided by `speed`.
    Compressed { speed: f64 },
}

impl ForkliftClock {
    /// The clock a ConfigMap's `data` describes; `None` data (no ConfigMap) is real time.
    pub fn from_config_map_data(data: Option<&BTreeMap<String, String>>) -> Result<Self, String> {
        let Some(data) = data else {
            return Ok(ForkliftClock::Real);
        };
        match data.get(CLOCK_MODEL_KEY).map(String::as_str) {
            Some(COMPRESSED_MODEL) => {}
            other => {
                return Err(format!(
                    "ConfigMap {CLOCK_CONFIG_MAP}: {CLOCK_MODEL_KEY} is {other:?}, expected \
                     \"{COMPRESSED_MODEL}\" (or delete the ConfigMap for real time)"
                ));
            }
        }
        let speed = match data.get(CLOCK_SPEED_KEY) {
            None => 1.0,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    format!(
                        "ConfigMap {CLOCK_CONFIG_MAP}: {CLOCK_SPEED_KEY} is `{text}`, expected a \
                         positive number"
                    )
                })?,
        };
        Ok(ForkliftClock::Compressed { speed })
    }

    /// The ConfigMap `data` that describes this clock (`None` for real time: no ConfigMap).
    pub fn config_map_data(&self) -> Option<BTreeMap<String, String>> {
        match self {
            ForkliftClock::Real => None,
            ForkliftClock::Compressed { speed } => Some(BTreeMap::from([
                (CLOCK_MODEL_KEY.to_string(), COMPRESSED_MODEL.to_string()),
                (CLOCK_SPEED_KEY.to_string(), speed.to_string()),
            ])),
        }
    }

    /// How long `minutes` Forklift minutes last in real time (a warm cutover's delay).
    pub fn minutes(&self, minutes: f64) -> Duration {
        match self {
            ForkliftClock::Real => Duration::from_secs_f64(minutes.max(0.0) * 60.0),
            ForkliftClock::Compressed { speed } => {
                Duration::from_secs_f64(crate::time::lab_seconds(minutes) / speed)
            }
        }
    }

    /// A bound on something that takes up to `real` on a real cluster (a guest agent coming up):
    /// on a compressed clock the linear rate of its first minute (never shorter than the compressed
    /// duration itself, which grows slower) and at least five seconds.
    pub fn bound(&self, real: Duration) -> Duration {
        match self {
            ForkliftClock::Real => real,
            ForkliftClock::Compressed { speed } => {
                real.div_f64(60.0 * speed).max(SHORTEST_COMPRESSED_BOUND)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_map_is_real_time() {
        let clock = ForkliftClock::from_config_map_data(None).unwrap();
        assert_eq!(clock, ForkliftClock::Real);
        assert_eq!(clock.minutes(2.0), Duration::from_secs(120));
        assert_eq!(
            clock.bound(Duration::from_secs(600)),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn a_compressed_clock_round_trips_and_divides_by_its_speed() {
        let clock = ForkliftClock::Compressed { speed: 4.0 };
        let data = clock.config_map_data().unwrap();
        assert_eq!(
            ForkliftClock::from_config_map_data(Some(&data)).unwrap(),
            clock
        );
        let at_one = ForkliftClock::Compressed { speed: 1.0 };
        assert_eq!(at_one.minutes(1.0), Duration::from_secs(1));
        assert_eq!(clock.minutes(1.0), Duration::from_millis(250));
        assert!(clock.minutes(10.0) < at_one.minutes(10.0));
        assert_eq!(
            at_one.bound(Duration::from_secs(600)),
            Duration::from_secs(10)
        );
        assert_eq!(
            clock.bound(Duration::from_secs(600)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn a_malformed_clock_says_what_to_do() {
        let bad_speed = BTreeMap::from([
            (CLOCK_MODEL_KEY.to_string(), COMPRESSED_MODEL.to_string()),
            (CLOCK_SPEED_KEY.to_string(), "fast".to_string()),
        ]);
        let error = ForkliftClock::from_config_map_data(Some(&bad_speed)).unwrap_err();
        assert!(
            error.contains("`fast`") && error.contains("positive"),
            "{error}"
        );
        let bad_model = BTreeMap::from([(CLOCK_MODEL_KEY.to_string(), "warp".to_string())]);
        let error = ForkliftClock::from_config_map_data(Some(&bad_model)).unwrap_err();
        assert!(error.contains("delete the ConfigMap"), "{error}");
    }
}
