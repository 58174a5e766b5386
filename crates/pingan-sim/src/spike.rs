//! Spike injection for the alert evaluation (DOMAIN.md §9): N extra events of one subtype in one
//! area over a window, each labelled with the spike's name.
//!
//! Spec syntax (`pingan simulate --spike …`, repeatable):
//!
//! * a preset, optionally with overrides: `drunk-wuzhong`, `fraud-wave:count=40`,
//!   `tourist-qibao:at=2019-10-02T10:00:00+08:00,window=8h`;
//! * or everything explicit: `subtype=FRAUD_FAKE_GOV,area=MH-CP-008-001,count=25,at=+2h,window=3h`.
//!
//! `area` is a compound id, a POI id or a town code. `at` is RFC 3339 or `+<duration>` after the
//! simulation start; durations are a number and a unit (`90s`, `10m`, `1.5h`, `2d`).

use chrono::{DateTime, Duration, FixedOffset, Timelike};
use pingan_runtime::duration::parse_duration;

/// One spike to inject.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Name carried in the labels.
    pub name: String,
    /// Subtype code.
    pub subtype: String,
    /// Compound id, POI id or town code.
    pub area: String,
    /// Number of extra events.
    pub count: u32,
    /// Start of the window.
    pub start: DateTime<FixedOffset>,
    /// Length of the window.
    pub window: Duration,
}

/// A spike spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad spike spec {spec:?}: {problem}")]
pub struct SpikeSpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong.
    pub problem: String,
}

/// The presets: the typical spike cases of DOMAIN §9.
pub const PRESETS: &[(&str, &str)] = &[
    // A scam group working through one compound: 爱博二村, on the "most gullible" list.
    (
        "fraud-wave",
        "subtype=FRAUD_FAKE_GOV,area=MH-CP-008-001,count=25,at=+2h,window=3h",
    ),
    // Drunken trouble on 吴中路 after 22:00.
    (
        "drunk-wuzhong",
        "subtype=PUB_DRUNK,area=POI-WUZHONG-NIGHTLIFE,count=30,at=22:00,window=3h",
    ),
    // Tourist disputes at 七宝老街 on a holiday afternoon.
    (
        "tourist-qibao",
        "subtype=DSP_TOURIST,area=POI-QIBAO-OLDSTREET,count=40,at=10:00,window=8h",
    ),
    // A burglary series in 上海康城 over two days.
    (
        "burglary-series",
        "subtype=CRIM_BURGLARY,area=MH-CP-101-001,count=12,at=+1h,window=48h",
    ),
];

/// A window length or start offset: a human duration (`90m`, `3h`, `2d`, see
/// [`pingan_runtime::duration`]).
fn span(s: &str) -> Option<Duration> {
    parse_duration(s)
        .ok()
        .and_then(|d| Duration::from_std(d).ok())
}

impl Spike {
    /// Parses a spec (see the module docs) relative to the simulation start.
    pub fn parse(spec: &str, sim_start: DateTime<FixedOffset>) -> Result<Spike, SpikeSpecError> {
        let err = |problem: &str| SpikeSpecError {
            spec: spec.to_owned(),
            problem: problem.to_owned(),
        };
        let (preset, overrides) = if !spec.contains('=') {
            (Some(spec.trim()), "")
        } else {
            match spec.split_once(':') {
                Some((h, rest)) if !h.contains('=') => (Some(h.trim()), rest),
                _ => (None, spec),
            }
        };
        let (name, base) = match preset {
            Some(p) => {
                let body = PRESETS
                    .iter()
                    .find(|(n, _)| *n == p)
                    .map(|(_, b)| *b)
                    .ok_or_else(|| {
                        err(&format!(
                            "unknown preset; presets: {}",
                            PRESETS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                (p.to_owned(), body)
            }
            None => (String::new(), ""),
        };
        let (mut subtype, mut area, mut count, mut at, mut window, mut name) =
            (None, None, None, None, None, name);
        for kv in base
            .split(',')
            .chain(overrides.split(','))
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| err("expected key=value"))?;
            match k.trim() {
                "subtype" => subtype = Some(v.trim().to_owned()),
                "area" => area = Some(v.trim().to_owned()),
                "count" => {
                    count = Some(
                        v.trim()
                            .parse::<u32>()
                            .map_err(|_| err("count must be a whole number"))?,
                    )
                }
                "at" => at = Some(v.trim().to_owned()),
                "window" => {
                    window =
                        Some(span(v).ok_or_else(|| err("window must look like 90m, 3h or 2d"))?)
                }
                "name" => name = v.trim().to_owned(),
                other => {
                    return Err(err(&format!(
                        "unknown key {other}; keys: subtype, area, count, at, window, name"
                    )));
                }
            }
        }
        let subtype = subtype.ok_or_else(|| err("subtype is required"))?;
        let area = area.ok_or_else(|| err("area is required"))?;
        let start = resolve_at(at.as_deref().unwrap_or("+0s"), sim_start)
            .ok_or_else(|| err("at must be RFC 3339, +<duration> or HH:MM"))?;
        if name.is_empty() {
            name = format!("{subtype}@{area}");
        }
        Ok(Spike {
            name,
            subtype,
            area,
            count: count.unwrap_or(20),
            start,
            window: window.unwrap_or(Duration::hours(2)),
        })
    }
}

/// `+2h` after the start, an RFC 3339 time, or `HH:MM`: the first such local time at or after
/// the start.
fn resolve_at(at: &str, start: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
    if let Some(rest) = at.strip_prefix('+') {
        return Some(start + span(rest)?);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(at) {
        return Some(t);
    }
    let (h, m) = at.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let day = start
        .with_hour(h)?
        .with_minute(m)?
        .with_second(0)?
        .with_nanosecond(0)?;
    Some(if day < start {
        day + Duration::days(1)
    } else {
        day
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2019-12-31T12:30:00+08:00").unwrap()
    }

    #[test]
    fn presets_parse_and_overrides_apply() {
        let s = Spike::parse("drunk-wuzhong", start()).unwrap();
        assert_eq!(
            (s.subtype.as_str(), s.count, s.name.as_str()),
            ("PUB_DRUNK", 30, "drunk-wuzhong")
        );
        assert_eq!(s.start.to_rfc3339(), "2019-12-31T22:00:00+08:00");
        let s = Spike::parse("fraud-wave:count=7,window=30m", start()).unwrap();
        assert_eq!((s.count, s.window), (7, Duration::minutes(30)));
        assert_eq!(s.start, start() + Duration::hours(2));
    }

    #[test]
    fn explicit_specs_parse_and_errors_are_named() {
        let s = Spike::parse("subtype=CRIM_BURGLARY,area=MH-CP-101-001,count=5,at=2020-01-01T01:00:00+08:00,window=1d", start()).unwrap();
        assert_eq!(
            (s.area.as_str(), s.count, s.window),
            ("MH-CP-101-001", 5, Duration::days(1))
        );
        assert!(
            Spike::parse("nope", start())
                .unwrap_err()
                .problem
                .contains("presets")
        );
        assert!(
            Spike::parse("subtype=X,area=Y,colour=red", start())
                .unwrap_err()
                .problem
                .contains("unknown key")
        );
        assert!(
            Spike::parse("area=Y", start())
                .unwrap_err()
                .problem
                .contains("subtype")
        );
    }
}
