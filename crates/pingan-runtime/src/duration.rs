//! Human durations as written in configuration files, flags and simulator specs: a number and a
//! unit, `250ms`, `5s`, `1.5m`, `2min`, `1h`, `2d`. The one parser of the workspace (the
//! configuration loader, `pingan simulate --duration` and spike specs all use it).

use std::time::Duration;

/// Why a text is not a duration; `Display` names the text and the accepted units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No unit after the number (`5`), or nothing at all.
    #[error("duration {0:?} needs a unit (ms, s, m, h, d)")]
    NoUnit(String),
    /// The text does not start with a number (`h`, `..5s`).
    #[error("duration {0:?} does not start with a number")]
    NoNumber(String),
    /// A unit that is not one of `ms`, `s`, `m`/`min`, `h`, `d`.
    #[error("duration {input:?} has unknown unit {unit:?} (use ms, s, m, h, d)")]
    UnknownUnit {
        /// The whole text.
        input: String,
        /// What stood where the unit should be.
        unit: String,
    },
    /// Too large to represent.
    #[error("duration {0:?} is out of range")]
    OutOfRange(String),
}

/// Parses `<number><unit>`: a non-negative decimal number (`1.5`) directly followed by `ms`,
/// `s`, `m` or `min`, `h` or `d`; surrounding white space is ignored.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| DurationError::NoUnit(s.to_owned()))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| DurationError::NoNumber(s.to_owned()))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(DurationError::UnknownUnit {
                input: s.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| DurationError::OutOfRange(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_fractions() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("2min"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("2d"), Duration::from_secs(2 * 86_400));
        assert_eq!(ok("1.5m"), Duration::from_secs(90));
        assert_eq!(ok(" 0s "), Duration::ZERO);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(parse_duration("5"), Err(DurationError::NoUnit("5".into())));
        assert_eq!(
            parse_duration(""),
            Err(DurationError::NoUnit(String::new()))
        );
        assert_eq!(
            parse_duration("h"),
            Err(DurationError::NoNumber("h".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::NoNumber("1.2.3s".into()))
        );
        // A sign is not part of the number: "-5s" and "+5s" are not durations.
        assert_eq!(
            parse_duration("-5s"),
            Err(DurationError::NoNumber("-5s".into()))
        );
        assert_eq!(
            parse_duration("5 weeks"),
            Err(DurationError::UnknownUnit {
                input: "5 weeks".into(),
                unit: " weeks".into()
            })
        );
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err(DurationError::OutOfRange("99999999999999999999d".into()))
        );
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "duration \"5x\" has unknown unit \"x\" (use ms, s, m, h, d)"
        );
    }
}
