//! `GET /v1/counts`: distinct events by time bucket and dimensions (CONTRACT §6).

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::labels::{labelled_columns, put_labelled};
use super::params::{DIM_PARAMS, Params};
use super::{ApiError, AppState, Row, params, rfc3339, tabular};
use crate::auth::Principal;
use crate::model::{Bucket, CountsResult, CountsSpec, Dim, Filter};

/// Most rows one answer may hold.
pub const MAX_ROWS: usize = 50_000;
/// Most time buckets one answer may span.
pub const MAX_BUCKETS: i64 = 20_000;
/// Longest range without buckets (about 20 years).
pub const MAX_RANGE_SECS: i64 = 20 * 366 * 86_400;

/// Parses the parameters of `/v1/counts`.
pub fn parse(p: &Params, now: chrono::DateTime<chrono::Utc>) -> Result<CountsSpec, ApiError> {
    let range = p.range(now, 86_400, MAX_RANGE_SECS)?;
    let bucket = p.bucket()?;
    if let Some(len) = bucket.seconds() {
        let n = range.seconds() / len;
        if n > MAX_BUCKETS {
            return Err(ApiError::bad(
                "bucket",
                format!(
                    "{n} {} buckets exceed the limit of {MAX_BUCKETS}; shorten the range or use a coarser bucket",
                    bucket.as_str()
                ),
            ));
        }
    }
    let by = p.by()?;
    let filter = Filter {
        range,
        hours: p.hours()?,
        weekdays_only: false,
        dims: p.dim_filters(&Dim::ALL)?,
    };
    Ok(CountsSpec {
        filter,
        by,
        bucket,
        max_rows: MAX_ROWS,
    })
}

/// Renders counts as labelled rows.
pub fn rows(spec: &CountsSpec, res: &CountsResult) -> Vec<Row> {
    res.rows
        .iter()
        .map(|r| {
            let mut row = Row::default();
            if spec.bucket != Bucket::None {
                row.put(
                    "bucket",
                    r.bucket
                        .map_or(Value::Null, |b| Value::String(b.to_rfc3339())),
                );
            }
            for (d, code) in spec.by.iter().zip(&r.dims) {
                put_labelled(&mut row, *d, code);
            }
            row.put("count", r.count);
            row
        })
        .collect()
}

/// The handler.
pub async fn handler(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let mut allowed = vec!["from", "to", "bucket", "by", "hours", "format"];
    allowed.extend(DIM_PARAMS);
    let p = params(&who, q, &allowed)?;
    let format = p.format()?;
    let spec = parse(&p, s.now())?;
    let res = s.store.counts(&spec).await?;
    if res.rows.len() > spec.max_rows {
        return Err(ApiError::bad(
            "by",
            format!(
                "the answer has more than {} rows; narrow the range or filters, or group by fewer dimensions",
                spec.max_rows
            ),
        ));
    }
    let rows = rows(&spec, &res);
    let mut columns = Vec::new();
    if spec.bucket != Bucket::None {
        columns.push("bucket".to_owned());
    }
    for d in &spec.by {
        columns.extend(labelled_columns(*d));
    }
    columns.push("count".to_owned());
    Ok(tabular(format, "counts", &columns, &rows, || {
        json!({
            "rows": rows,
            "total": res.total,
            "from": rfc3339(spec.filter.range.from()),
            "to": rfc3339(spec.filter.range.to()),
            "bucket": spec.bucket.as_str(),
        })
    }))
}
