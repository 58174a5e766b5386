//! `GET /v1/terms`: word frequency (词频分析) for an area/type/period from `terms_day`, and the
//! terms that are unusually frequent against a background period.
//!
//! "Unusual" = over-represented terms ranked by Dunning's log-likelihood ratio G² (a chi-square
//! statistic with one degree of freedom: 3.84 ≈ p 0.05, 10.83 ≈ p 0.001), reported together with
//! the smoothed log₂ ratio of the term's share in the period to its share in the background.

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{ApiError, AppState, Row, params, tabular};
use crate::auth::Principal;
use crate::model::{Dim, TermsSpec};

/// One unusual term.
#[derive(Debug, Clone, PartialEq)]
pub struct Unusual {
    /// The term.
    pub term: String,
    /// Events mentioning it in the period.
    pub count: u64,
    /// In the background period.
    pub background: u64,
    /// Expected count in the period under the background share.
    pub expected: f64,
    /// Smoothed log₂ share ratio.
    pub log_ratio: f64,
    /// Dunning G².
    pub g2: f64,
}

fn xlnx_over(x: f64, e: f64) -> f64 {
    if x <= 0.0 || e <= 0.0 {
        0.0
    } else {
        x * (x / e).ln()
    }
}

/// Scores foreground terms against background counts; returns over-represented terms with at
/// least `min_count` events, strongest first.
pub fn unusual(
    fg: &[(String, u64)],
    fg_total: u64,
    bg: &[(String, u64)],
    bg_total: u64,
    min_count: u64,
) -> Vec<Unusual> {
    let (ft, bt) = (fg_total as f64, bg_total as f64);
    if ft <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<Unusual> = fg
        .iter()
        .filter(|(_, f)| *f >= min_count)
        .map(|(term, f)| {
            let b = bg.iter().find(|(t, _)| t == term).map_or(0, |(_, n)| *n);
            let (a, bb) = (*f as f64, b as f64);
            let log_ratio = (((a + 0.5) / (ft + 0.5)) / ((bb + 0.5) / (bt + 0.5))).log2();
            let both = a + bb;
            let e1 = ft * both / (ft + bt);
            let e2 = bt * both / (ft + bt);
            let (c, d) = (ft - a, bt - bb);
            let e3 = ft * (c + d) / (ft + bt);
            let e4 = bt * (c + d) / (ft + bt);
            let g2 =
                2.0 * (xlnx_over(a, e1) + xlnx_over(bb, e2) + xlnx_over(c, e3) + xlnx_over(d, e4));
            let expected = if bt > 0.0 { bb / bt * ft } else { 0.0 };
            Unusual {
                term: term.clone(),
                count: *f,
                background: b,
                expected,
                log_ratio,
                g2,
            }
        })
        .filter(|u| {
            u.log_ratio > 0.0 && (bt == 0.0 || a_share(u.count, ft) > a_share(u.background, bt))
        })
        .collect();
    out.sort_by(|a, b| b.g2.total_cmp(&a.g2).then(a.term.cmp(&b.term)));
    out
}

fn a_share(n: u64, total: f64) -> f64 {
    n as f64 / total
}

/// Shanghai calendar day of `t`.
fn day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&pingan_domain::time::shanghai())
        .date_naive()
}

/// `[from, to)` as whole Shanghai days: the days touched by the range.
pub fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let last = day(to - chrono::Duration::seconds(1));
    (day(from), last.succ_opt().unwrap_or(last))
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
            "from",
            "to",
            "town",
            "category",
            "subtype",
            "top",
            "min_count",
            "background_from",
            "background_to",
            "format",
        ],
    )?;
    let format = p.format()?;
    let range = p.range(s.now(), 30 * 86_400, 5 * 366 * 86_400)?;
    let top = usize::try_from(p.uint("top", 30, 1, 500)?).unwrap_or(30);
    let min_count = p.uint("min_count", 3, 1, 1_000_000)?;
    let dims = p.dim_filters(&[Dim::Town, Dim::Category, Dim::Subtype])?;
    let (from_day, to_day) = days(range.from(), range.to());
    let len = (to_day - from_day).num_days().max(1);
    let bg_from = p.time("background_from")?;
    let bg_to = p.time("background_to")?;
    let (bg_from_day, bg_to_day) = match (bg_from, bg_to) {
        (Some(f), Some(t)) if f < t => days(f, t),
        (None, None) => (from_day - chrono::Duration::days(4 * len), from_day),
        _ => {
            return Err(ApiError::bad(
                "background_from",
                "give both background_from and background_to, with from < to",
            ));
        }
    };
    let fg_spec = TermsSpec {
        from_day,
        to_day,
        dims: dims.clone(),
    };
    let bg_spec = TermsSpec {
        from_day: bg_from_day,
        to_day: bg_to_day,
        dims,
    };
    let fg = s.store.terms(&fg_spec, None, 1000).await?;
    let names: Vec<String> = fg.terms.iter().map(|(t, _)| t.clone()).collect();
    let bg = s
        .store
        .terms(&bg_spec, Some(&names), names.len().max(1))
        .await?;
    let unusual = unusual(&fg.terms, fg.total, &bg.terms, bg.total, min_count);

    let rows: Vec<Row> = fg
        .terms
        .iter()
        .take(top)
        .enumerate()
        .map(|(i, (t, n))| {
            let mut r = Row::default();
            let share = if fg.total > 0 {
                *n as f64 / fg.total as f64
            } else {
                0.0
            };
            r.put("rank", i + 1)
                .put("term", t.clone())
                .put("count", *n)
                .put("share", (share * 10_000.0).round() / 10_000.0);
            r
        })
        .collect();
    let unusual_rows: Vec<Row> = unusual
        .iter()
        .take(top)
        .map(|u| {
            let mut r = Row::default();
            r.put("term", u.term.clone())
                .put("count", u.count)
                .put("background", u.background)
                .put("expected", (u.expected * 100.0).round() / 100.0)
                .put("log_ratio", (u.log_ratio * 1000.0).round() / 1000.0)
                .put("g2", (u.g2 * 100.0).round() / 100.0);
            r
        })
        .collect();
    let columns: Vec<String> = ["rank", "term", "count", "share"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    Ok(tabular(format, "terms", &columns, &rows, || {
        json!({
            "period": {"from_day": from_day.to_string(), "to_day": to_day.to_string()},
            "background": {"from_day": bg_from_day.to_string(), "to_day": bg_to_day.to_string(), "total": bg.total},
            "total": fg.total,
            "terms": rows,
            "unusual": unusual_rows,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_term_is_unusual_and_a_steady_one_is_not() {
        let fg = vec![
            ("醉酒".to_owned(), 30),
            ("吵架".to_owned(), 20),
            ("噪音".to_owned(), 10),
        ];
        let bg = vec![
            ("醉酒".to_owned(), 20),
            ("吵架".to_owned(), 80),
            ("噪音".to_owned(), 40),
        ];
        let u = unusual(&fg, 60, &bg, 140, 3);
        assert_eq!(u.first().map(|x| x.term.as_str()), Some("醉酒"));
        assert!(u.iter().all(|x| x.term != "吵架"));
        assert!(u[0].g2 > 10.0, "{:?}", u[0]);
    }

    #[test]
    fn days_cover_partial_days() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let (a, b) = days(
            t("2020-01-01T00:00:00+08:00"),
            t("2020-01-03T00:00:00+08:00"),
        );
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2020-01-01".to_owned(), "2020-01-03".to_owned())
        );
        let (a, b) = days(
            t("2020-01-01T10:00:00+08:00"),
            t("2020-01-02T10:00:00+08:00"),
        );
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2020-01-01".to_owned(), "2020-01-03".to_owned())
        );
    }
}
