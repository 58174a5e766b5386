//! Query-string parsing: every parameter is checked and turned into a typed value, and anything
//! malformed becomes `400 bad_parameter` naming the parameter and what was expected.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use pingan_domain::taxonomy::Taxonomy;
use pingan_domain::time::HourWindow;

use super::ApiError;
use crate::auth::Scope;
use crate::model::{Bucket, Dim, TimeRange};

/// Most values in one filter list.
pub const MAX_FILTER_VALUES: usize = 200;
/// Filter parameters accepted by the filterable endpoints.
pub const DIM_PARAMS: [&str; 8] = [
    "district",
    "town",
    "station",
    "compound",
    "category",
    "subtype",
    "source",
    "department",
];

/// Output format of tabular endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (default).
    Json,
    /// CSV with a header row, UTF-8.
    Csv,
}

/// The parsed query string of one request, and the area scope of whoever sent it.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
    scope: Scope,
}

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad(param, message)
}

impl Params {
    /// Checks that every name is in `allowed` and appears once.
    pub fn new(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in &pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(bad(
                    k,
                    format!(
                        "unknown parameter {k:?}; this endpoint accepts: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            if !seen.insert(k.clone()) {
                return Err(bad(
                    k,
                    format!(
                        "parameter {k:?} is given more than once; use one comma-separated list"
                    ),
                ));
            }
        }
        Ok(Params {
            pairs,
            scope: Scope::All,
        })
    }

    /// The same parameters, answered for `scope` only ([`Params::dim_filters`]).
    pub fn scoped(self, scope: Scope) -> Params {
        Params { scope, ..self }
    }

    /// The trimmed value of `name`; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// An RFC 3339 time (a bare `YYYY-MM-DD` means Shanghai midnight).
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(name).map(|v| parse_time(v).ok_or_else(|| {
            bad(name, format!("{name}={v:?} is not an RFC 3339 time such as 2020-01-01T00:00:00+08:00 (or a date 2020-01-01)"))
        })).transpose()
    }

    /// `from`/`to` with defaults: `to` = now rounded up to the minute, `from` = `to - default_secs`.
    /// Fails when `from >= to` or the range exceeds `max_secs`.
    pub fn range(
        &self,
        now: DateTime<Utc>,
        default_secs: i64,
        max_secs: i64,
    ) -> Result<TimeRange, ApiError> {
        let to = match self.time("to")? {
            Some(t) => t,
            None => {
                let s = now.timestamp();
                let up = s - s.rem_euclid(60) + 60;
                DateTime::from_timestamp(up, 0).unwrap_or(now)
            }
        };
        let from = match self.time("from")? {
            Some(f) => f,
            None => to - chrono::Duration::seconds(default_secs),
        };
        let range =
            TimeRange::new(from, to).ok_or_else(|| bad("from", "from must be earlier than to"))?;
        if range.seconds() > max_secs {
            return Err(bad(
                "from",
                format!(
                    "the range is longer than the {} days this endpoint allows",
                    max_secs / 86_400
                ),
            ));
        }
        Ok(range)
    }

    /// `hours=start-end` (may cross midnight).
    pub fn hours(&self) -> Result<Option<HourWindow>, ApiError> {
        self.get("hours")
            .map(|v| {
                HourWindow::parse(v)
                    .map_err(|e| bad("hours", format!("{e} (e.g. hours=21-3 for 21:00–02:59)")))
            })
            .transpose()
    }

    /// `bucket`.
    pub fn bucket(&self) -> Result<Bucket, ApiError> {
        match self.get("bucket") {
            None => Ok(Bucket::None),
            Some(v) => Bucket::parse(v).ok_or_else(|| {
                let names: Vec<&str> = Bucket::ALL.iter().map(|(_, n)| *n).collect();
                bad(
                    "bucket",
                    format!("unknown bucket {v:?}; expected one of {}", names.join(", ")),
                )
            }),
        }
    }

    /// `by`: distinct dimensions.
    pub fn by(&self) -> Result<Vec<Dim>, ApiError> {
        let mut out = Vec::new();
        for name in self.get("by").map(split).unwrap_or_default() {
            let d = Dim::parse(name).ok_or_else(|| {
                bad(
                    "by",
                    format!(
                        "unknown dimension {name:?}; expected any of {}",
                        DIM_PARAMS.join(", ")
                    ),
                )
            })?;
            if out.contains(&d) {
                return Err(bad("by", format!("dimension {name:?} is listed twice")));
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Dimension filters among `dims` (others must have been rejected by [`Params::new`]),
    /// narrowed to the caller's scope: an area filter outside it is `403 forbidden`, and a
    /// scoped caller's query gets the scope's own filter, so an unfiltered query is answered for
    /// the scope only. An endpoint that cannot filter on the scope's level refuses (`403`)
    /// rather than answer for more than the scope.
    pub fn dim_filters(&self, dims: &[Dim]) -> Result<BTreeMap<Dim, Vec<String>>, ApiError> {
        let mut out = self.requested_filters(dims)?;
        for (d, vals) in &out {
            if let Some(v) = vals.iter().find(|v| !self.scope.covers(*d, v)) {
                return Err(ApiError::forbidden(
                    Some(d.as_str()),
                    format!(
                        "{d}={v} is outside this token's scope ({})",
                        self.scope.code()
                    ),
                ));
            }
        }
        if let Some((d, code)) = self.scope.filter_dim() {
            if !dims.contains(&d) {
                return Err(ApiError::forbidden(
                    None,
                    format!(
                        "this endpoint cannot be narrowed to a {d}; a token scoped to {code} may not use it"
                    ),
                ));
            }
            out.entry(d).or_insert_with(|| vec![code.to_owned()]);
        }
        Ok(out)
    }

    fn requested_filters(&self, dims: &[Dim]) -> Result<BTreeMap<Dim, Vec<String>>, ApiError> {
        let mut out = BTreeMap::new();
        for d in dims {
            let Some(v) = self.get(d.as_str()) else {
                continue;
            };
            let vals: Vec<String> = split(v).into_iter().map(str::to_owned).collect();
            if vals.is_empty() {
                continue;
            }
            if vals.len() > MAX_FILTER_VALUES {
                return Err(bad(
                    d.as_str(),
                    format!("at most {MAX_FILTER_VALUES} values"),
                ));
            }
            for code in &vals {
                check_code(*d, code)?;
            }
            out.insert(*d, vals);
        }
        Ok(out)
    }

    /// An unsigned integer in `[min, max]`.
    pub fn uint(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(bad(
                    name,
                    format!("{name}={v:?} must be an integer from {min} to {max}"),
                )),
            },
        }
    }

    /// `format=json|csv`.
    pub fn format(&self) -> Result<Format, ApiError> {
        match self.get("format") {
            None | Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(v) => Err(bad(
                "format",
                format!("unknown format {v:?}; expected json or csv"),
            )),
        }
    }
}

/// Splits a comma list, trimming and dropping empty items.
pub fn split(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// RFC 3339, tolerating a `+` that a query string decoded into a space; or a bare date (Shanghai
/// midnight).
pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    if v.contains(' ')
        && let Ok(t) = DateTime::parse_from_rfc3339(&v.replace(' ', "+"))
    {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    pingan_domain::time::shanghai()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Validates one filter code: taxonomy codes must exist; area codes must look like codes.
pub fn check_code(d: Dim, code: &str) -> Result<(), ApiError> {
    let tax = Taxonomy::builtin();
    let ok = match d {
        Dim::Category => tax.category(code).is_some(),
        Dim::Subtype => tax.subtype(code).is_some(),
        Dim::Department => tax.department(code).is_some(),
        Dim::Source => matches!(code, "call" | "qr"),
        Dim::District | Dim::Town | Dim::Station | Dim::Compound => {
            code.len() <= 64
                && code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'#'))
        }
    };
    if ok {
        Ok(())
    } else {
        let what = match d {
            Dim::Source => "a source (call or qr)".to_owned(),
            d if d.is_area() => format!("a {d} code (letters, digits, - and _)"),
            d => format!("a known {d} code (see /v1/meta)"),
        };
        Err(bad(d.as_str(), format!("{code:?} is not {what}")))
    }
}

/// Shanghai midnight at or before `t`.
pub fn shanghai_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    let tz = pingan_domain::time::shanghai();
    let d = t.with_timezone(&tz).date_naive();
    d.and_hms_opt(0, 0, 0)
        .and_then(|n| tz.from_local_datetime(&n).single())
        .map_or(t, |x| x.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(q: &[(&str, &str)], allowed: &[&str]) -> Result<Params, ApiError> {
        Params::new(
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            allowed,
        )
    }

    #[test]
    fn times_accept_rfc3339_dates_and_decoded_plus() {
        let want = DateTime::parse_from_rfc3339("2019-12-31T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_time("2020-01-01T00:00:00+08:00"), Some(want));
        assert_eq!(parse_time("2020-01-01T00:00:00 08:00"), Some(want));
        assert_eq!(parse_time("2020-01-01"), Some(want));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn unknown_and_repeated_parameters_are_rejected() {
        assert!(p(&[("bukcet", "hour")], &["bucket"]).is_err());
        assert!(p(&[("bucket", "hour"), ("bucket", "day")], &["bucket"]).is_err());
        assert!(p(&[("bucket", "hour")], &["bucket"]).is_ok());
    }

    #[test]
    fn codes_are_checked() {
        assert!(check_code(Dim::Category, "FRAUD").is_ok());
        assert!(check_code(Dim::Category, "FRAUDS").is_err());
        assert!(check_code(Dim::Town, "310112102").is_ok());
        assert!(check_code(Dim::Town, "31' OR 1=1").is_err());
        assert!(check_code(Dim::Source, "qr").is_ok());
    }
}
