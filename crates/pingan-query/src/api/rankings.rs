//! `GET /v1/rankings`: top-N areas (town, station or compound) for a type and period, with the
//! change against the previous period of the same length and against the same period last
//! year. Areas below `min_count` are suppressed (small numbers are noise and can identify
//! households); per-10k-household rates are given for compounds.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Datelike, Utc};
use pingan_domain::area::AreaIndex;
use serde_json::{Value, json};

use super::labels::label;
use super::{ApiError, AppState, Row, params, rfc3339, tabular};
use crate::auth::Principal;
use crate::model::{Bucket, CountsSpec, Dim, Filter, TimeRange};
use crate::store::IncidentStore;

/// One ranked area.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Area code.
    pub code: String,
    /// Distinct events in the period.
    pub count: u64,
    /// In the previous period.
    pub previous: u64,
    /// In the same period last year.
    pub last_year: u64,
}

/// The same local (Shanghai) calendar instant one year earlier (29 Feb → 28 Feb).
pub fn one_year_earlier(t: DateTime<Utc>) -> DateTime<Utc> {
    let l = t.with_timezone(&pingan_domain::time::shanghai());
    l.with_year(l.year() - 1)
        .or_else(|| l.with_day(28).and_then(|x| x.with_year(l.year() - 1)))
        .map_or(t - chrono::Duration::days(365), |x| x.with_timezone(&Utc))
}

/// The same period one year earlier.
pub fn last_year(r: &TimeRange) -> TimeRange {
    TimeRange::new(one_year_earlier(r.from()), one_year_earlier(r.to()))
        .unwrap_or_else(|| r.shifted(-365 * 86_400))
}

/// Counts per area code of `level` for `filter` in three periods; unknown areas are dropped.
pub async fn rank(
    store: &dyn IncidentStore,
    level: Dim,
    filter: &Filter,
) -> Result<Vec<Ranked>, ApiError> {
    let range = filter.range;
    let periods = [range, range.shifted(-range.seconds()), last_year(&range)];
    let mut maps: Vec<HashMap<String, u64>> = Vec::new();
    for r in periods {
        let spec = CountsSpec {
            filter: Filter {
                range: r,
                ..filter.clone()
            },
            by: vec![level],
            bucket: Bucket::None,
            max_rows: 1_000_000,
        };
        let res = store.counts(&spec).await?;
        maps.push(
            res.rows
                .into_iter()
                .filter_map(|row| row.dims.into_iter().next().map(|c| (c, row.count)))
                .collect(),
        );
    }
    let mut out: Vec<Ranked> = maps[0]
        .iter()
        .filter(|(code, _)| !code.is_empty())
        .map(|(code, n)| Ranked {
            code: code.clone(),
            count: *n,
            previous: maps[1].get(code).copied().unwrap_or(0),
            last_year: maps[2].get(code).copied().unwrap_or(0),
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    Ok(out)
}

/// Percentage change, `null` when the base is 0.
pub fn pct(now: u64, base: u64) -> Value {
    if base == 0 {
        Value::Null
    } else {
        let p = (now as f64 - base as f64) / base as f64 * 100.0;
        Value::from((p * 10.0).round() / 10.0)
    }
}

/// Whether `now` events differ from `base` events in a period of the same length by more than
/// chance: the two-sided conditional binomial test of equal Poisson rates (given `now + base`
/// events, `now` is Binomial(n, ½) when nothing changed) at the 5 % level. Keeps a duty officer
/// from reading "+400 %" on 1 → 5 as news: that is not significant, 10 → 50 is.
pub fn significant(now: u64, base: u64) -> bool {
    let n = now + base;
    if n == 0 {
        return false;
    }
    let k = now.max(base);
    if n > 1000 {
        // Normal approximation with continuity correction; exact sums get slow and add nothing.
        let z = (k as f64 - 0.5 - n as f64 / 2.0) / (n as f64 / 4.0).sqrt();
        return z > 1.959_964;
    }
    // P(X >= k) for X ~ Bin(n, 1/2), summed in log space.
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0_f64; // ln C(n, 0)
    let mut tail = 0.0_f64;
    for i in 0..=n {
        if i >= k {
            tail += (ln_choose - ln_half_n).exp();
        }
        ln_choose += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    (2.0 * tail).min(1.0) < 0.05
}

/// The handler.
pub async fn handler(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(
        &who,
        q,
        &[
            "level",
            "category",
            "subtype",
            "source",
            "town",
            "station",
            "from",
            "to",
            "hours",
            "top",
            "min_count",
            "format",
        ],
    )?;
    let format = p.format()?;
    let level = match p.get("level").unwrap_or("compound") {
        "town" => Dim::Town,
        "station" => Dim::Station,
        "compound" => Dim::Compound,
        v => {
            return Err(ApiError::bad(
                "level",
                format!("level={v:?} must be town, station or compound"),
            ));
        }
    };
    let range = p.range(s.now(), 30 * 86_400, 5 * 366 * 86_400)?;
    let top = usize::try_from(p.uint("top", 10, 1, 500)?).unwrap_or(10);
    let min_count = p.uint("min_count", 3, 1, 1_000_000)?;
    let dims = p.dim_filters(&[
        Dim::Category,
        Dim::Subtype,
        Dim::Source,
        Dim::Town,
        Dim::Station,
    ])?;
    let filter = Filter {
        range,
        hours: p.hours()?,
        weekdays_only: false,
        dims,
    };
    let all = rank(s.store.as_ref(), level, &filter).await?;
    let suppressed = all.iter().filter(|r| r.count < min_count).count();
    let areas = AreaIndex::builtin();
    let rows: Vec<Row> = all
        .iter()
        .filter(|r| r.count >= min_count)
        .take(top)
        .enumerate()
        .map(|(i, r)| {
            let (zh, en) = label(level, &r.code);
            let mut row = Row::default();
            row.put("rank", i + 1)
                .put("code", r.code.clone())
                .put("name_zh", zh)
                .put("name_en", en)
                .put("count", r.count)
                .put("previous", r.previous)
                .put("change", r.count as i64 - r.previous as i64)
                .put("change_pct", pct(r.count, r.previous))
                .put("change_significant", significant(r.count, r.previous))
                .put("last_year", r.last_year)
                .put("yoy_pct", pct(r.count, r.last_year))
                .put("yoy_significant", significant(r.count, r.last_year));
            let per_10k = (level == Dim::Compound)
                .then(|| areas.compound(&r.code))
                .flatten()
                .filter(|c| c.households > 0)
                .map_or(Value::Null, |c| {
                    Value::from(
                        (r.count as f64 * 10_000.0 / f64::from(c.households) * 10.0).round() / 10.0,
                    )
                });
            row.put("per_10k_households", per_10k);
            row
        })
        .collect();
    let columns: Vec<String> = [
        "rank",
        "code",
        "name_zh",
        "name_en",
        "count",
        "previous",
        "change",
        "change_pct",
        "change_significant",
        "last_year",
        "yoy_pct",
        "yoy_significant",
        "per_10k_households",
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    let prev = range.shifted(-range.seconds());
    let ly = last_year(&range);
    Ok(tabular(format, "rankings", &columns, &rows, || {
        json!({
            "level": level.as_str(),
            "period": {"from": rfc3339(range.from()), "to": rfc3339(range.to())},
            "previous_period": {"from": rfc3339(prev.from()), "to": rfc3339(prev.to())},
            "last_year_period": {"from": rfc3339(ly.from()), "to": rfc3339(ly.to())},
            "min_count": min_count,
            "suppressed": suppressed,
            "rows": rows,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_year_keeps_the_local_calendar() {
        let t = DateTime::parse_from_rfc3339("2020-02-29T00:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(one_year_earlier(t)), "2019-02-28T00:00:00+08:00");
        let t = DateTime::parse_from_rfc3339("2020-01-01T00:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(one_year_earlier(t)), "2019-01-01T00:00:00+08:00");
    }

    #[test]
    fn only_changes_beyond_chance_are_significant() {
        assert!(!significant(5, 1), "1 → 5 is noise");
        assert!(significant(50, 10));
        assert!(!significant(0, 0));
        assert!(significant(0, 9) && !significant(0, 5));
        // The exact test agrees with the approximation across its switch point.
        assert_eq!(significant(531, 469), significant(532, 470));
        assert!(significant(600, 500) && !significant(520, 500));
    }

    #[test]
    fn pct_handles_zero() {
        assert_eq!(pct(5, 0), Value::Null);
        assert_eq!(pct(15, 10), Value::from(50.0));
    }
}
