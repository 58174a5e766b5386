//! The ClickHouse store.
//!
//! SQL text is assembled only from fixed fragments chosen by enums ([`LiveTable`], [`Dim`],
//! [`Bucket`], [`H3Res`]); every user-supplied value (codes, times, hours, cursors, limits) is a
//! bound `?` parameter. The SQL runs unchanged on ClickHouse 18.16 and current releases: no
//! `toStartOfInterval`, no window functions, no tuple comparison.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::{Client, Row};
use futures::FutureExt;
use futures::future::BoxFuture;
use pingan_runtime::config::ClickHouseConfig;
use serde::Deserialize;

use pingan_warehouse::schema::{LiveTable, SealedTable};
use pingan_warehouse::sealed::Split;

use super::sealed;
use super::{IncidentStore, StoreError, StoreResult};
use crate::metrics::QueryMetrics;
use crate::model::{
    AccessEntry, Alert, Bucket, CellCount, CellsSpec, CountRow, CountsResult, CountsSpec, Dim,
    Filter, H3Res, Incident, IncidentsSpec, LiveCounts, TermCounts, TermsSpec, TimeRange,
    shanghai_time,
};

/// The table `/v1/counts` reads: the coarsest rollup whose granularity divides both bounds and
/// the bucket; the raw table when the bounds are not minute-aligned.
pub fn counts_table(spec: &CountsSpec) -> LiveTable {
    let align = spec.filter.range.alignment();
    let minute_bucket = matches!(
        spec.bucket,
        Bucket::Minute | Bucket::FiveMinutes | Bucket::FifteenMinutes
    );
    if !minute_bucket && align >= LiveTable::Hour.granularity() {
        LiveTable::Hour
    } else if align >= LiveTable::Minute.granularity() {
        LiveTable::Minute
    } else {
        LiveTable::Raw
    }
}

/// The table `/v1/heatmap` reads.
pub fn cells_table(spec: &CellsSpec) -> LiveTable {
    let dims_ok = spec
        .filter
        .dims
        .keys()
        .all(|d| LiveTable::Cells.dim(*d).is_some());
    if dims_ok && spec.filter.range.alignment() >= LiveTable::Cells.granularity() {
        LiveTable::Cells
    } else {
        LiveTable::Raw
    }
}

fn dims_array(cols: &[&str]) -> String {
    if cols.is_empty() {
        "emptyArrayString()".to_owned()
    } else {
        format!("[{}]", cols.join(", "))
    }
}

fn bucket_expr(bucket: Bucket, t: &str) -> String {
    match bucket {
        Bucket::None => "''".to_owned(),
        Bucket::Minute => format!("toString(toUInt32(toStartOfMinute({t})))"),
        Bucket::FiveMinutes => format!("toString(toUInt32(toStartOfFiveMinute({t})))"),
        Bucket::FifteenMinutes => format!("toString(toUInt32(toStartOfFifteenMinutes({t})))"),
        Bucket::Hour => format!("toString(toUInt32(toStartOfHour({t})))"),
        // Date-valued buckets are computed in the column's time zone (Asia/Shanghai) and read
        // back as a calendar date, so no server time zone is involved.
        Bucket::Day => format!("toString(toDate({t}))"),
        Bucket::Month => format!("toString(toStartOfMonth({t}))"),
    }
}

fn parse_bucket(s: &str) -> Option<DateTime<chrono::FixedOffset>> {
    if s.is_empty() {
        return None;
    }
    if s.contains('-') {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        let local = d.and_hms_opt(0, 0, 0)?;
        local
            .and_local_timezone(pingan_domain::time::shanghai())
            .single()
    } else {
        s.parse::<i64>().ok().map(shanghai_time)
    }
}

/// A bound argument.
#[derive(Debug, Clone)]
enum Arg {
    Str(String),
    Int(i64),
}

/// SQL text plus its bound arguments, in placeholder order.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(s: &str) -> Sql {
        Sql {
            text: s.to_owned(),
            args: Vec::new(),
        }
    }
    fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }
    fn int(&mut self, v: i64) -> &mut Sql {
        self.text.push('?');
        self.args.push(Arg::Int(v));
        self
    }
    fn str(&mut self, v: &str) -> &mut Sql {
        self.text.push('?');
        self.args.push(Arg::Str(v.to_owned()));
        self
    }
    fn list(&mut self, vals: &[String]) -> &mut Sql {
        self.text.push('(');
        for (i, v) in vals.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.str(v);
        }
        self.text.push(')');
        self
    }
    /// The text with every argument inlined as a literal (for the SQL log, never for sending).
    fn render(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 16 * self.args.len());
        let mut args = self.args.iter();
        for ch in self.text.chars() {
            match (ch, ch == '?') {
                (_, true) => match args.next() {
                    Some(Arg::Int(i)) => out.push_str(&i.to_string()),
                    Some(Arg::Str(v)) => {
                        out.push('\'');
                        out.push_str(&v.replace('\\', "\\\\").replace('\'', "\\'"));
                        out.push('\'');
                    }
                    None => out.push('?'),
                },
                (c, false) => out.push(c),
            }
        }
        out
    }

    fn build(&self, client: &Client) -> clickhouse::query::Query {
        let mut q = client.query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// `WHERE` with the range, hour window, weekday and dimension filters of `f` on `table`.
fn where_clause(sql: &mut Sql, table: LiveTable, f: &Filter) {
    where_ranges(
        sql,
        table,
        &[(f.range.from().timestamp(), f.range.to().timestamp())],
        f,
    );
}

/// `WHERE` like [`where_clause`], with the time restricted to any of `ranges` (Unix seconds)
/// instead of the filter's range. A disjunction of key ranges still uses the primary key.
fn where_ranges(sql: &mut Sql, table: LiveTable, ranges: &[(i64, i64)], f: &Filter) {
    let t = table.time();
    sql.push(" WHERE (");
    for (i, (from, to)) in ranges.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push(&format!("({t} >= toDateTime(")).int(*from);
        sql.push(&format!(") AND {t} < toDateTime("))
            .int(*to)
            .push("))");
    }
    sql.push(")");
    other_filters(
        sql,
        &format!("toHour({t})"),
        &format!("toDayOfWeek({t})"),
        f,
        |d| table.dim(d),
    );
}

/// The hour window, weekday and dimension parts of a `WHERE`, on the given hour and weekday
/// expressions and dimension columns (dimensions a table lacks are left out: callers pick a
/// table that has every filtered dimension).
fn other_filters(
    sql: &mut Sql,
    hour: &str,
    weekday: &str,
    f: &Filter,
    col: impl Fn(Dim) -> Option<&'static str>,
) {
    if let Some(h) = f.hours {
        if h.start < h.end {
            sql.push(&format!(" AND {hour} >= ")).int(h.start.into());
            sql.push(&format!(" AND {hour} < ")).int(h.end.into());
        } else {
            sql.push(&format!(" AND ({hour} >= ")).int(h.start.into());
            sql.push(&format!(" OR {hour} < "))
                .int(h.end.into())
                .push(")");
        }
    }
    if f.weekdays_only {
        sql.push(&format!(" AND {weekday} <= 5"));
    }
    for (d, vals) in &f.dims {
        if let Some(c) = col(*d) {
            sql.push(&format!(" AND {c} IN "));
            sql.list(vals);
        }
    }
}

/// The sealed-day source of a query: `<table> WHERE` the day `runs`, only the rows of each day's
/// current seal (`split.seals`), and the filters.
fn sealed_rows(sql: &mut Sql, table: SealedTable, split: &Split, f: &Filter) {
    sql.push(&format!("{} WHERE (", table.name()));
    for (i, (first, end)) in split.sealed.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("(day >= toDate(").str(&first.to_string());
        sql.push(") AND day < toDate(")
            .str(&end.to_string())
            .push("))");
    }
    sql.push(") AND seal IN (");
    for (i, seal) in split.seals.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        // Seal ids are random 64-bit numbers; bound as text and converted, since the bound
        // integer type is signed.
        sql.push("toUInt64(").str(&seal.to_string()).push(")");
    }
    sql.push(")");
    other_filters(sql, "hod", "toDayOfWeek(day)", f, |d| table.dim(d));
}

/// The rows and total queries of `/v1/counts` on one table.
fn counts_sql(spec: &CountsSpec) -> (Sql, Sql) {
    let table = counts_table(spec);
    let cols: Vec<&str> = spec.by.iter().filter_map(|d| table.dim(*d)).collect();
    let b = bucket_expr(spec.bucket, table.time());
    let dims = dims_array(&cols);
    let mut sql = Sql::new(&format!(
        "SELECT {b} AS b, {dims} AS d, {} AS c FROM {}",
        table.count(),
        table.name()
    ));
    where_clause(&mut sql, table, &spec.filter);
    let mut group = vec!["b"];
    group.extend(cols.iter().copied());
    sql.push(&format!(
        " GROUP BY {} ORDER BY b, c DESC, d LIMIT ",
        group.join(", ")
    ));
    sql.int(i64::try_from(spec.max_rows.saturating_add(1)).unwrap_or(i64::MAX));
    let mut total_sql = Sql::new(&format!(
        "SELECT {} AS c FROM {}",
        table.count(),
        table.name()
    ));
    where_clause(&mut total_sql, table, &spec.filter);
    (sql, total_sql)
}

/// The rows and total queries of `/v1/counts` summed from sealed day runs and the rollups for the
/// rest of the range.
fn counts_split_sql(spec: &CountsSpec, st: SealedTable, split: &Split) -> (Sql, Sql) {
    let sealed_cols: Vec<&str> = spec.by.iter().filter_map(|d| st.dim(*d)).collect();
    let live = counts_table(spec);
    let live_cols: Vec<&str> = spec.by.iter().filter_map(|d| live.dim(*d)).collect();
    let f = &spec.filter;

    let parts = |sql: &mut Sql, grouped: bool| {
        let (sb, lb) = if grouped {
            (
                format!(
                    "{} AS b, {} AS d, ",
                    bucket_expr(spec.bucket, "day"),
                    dims_array(&sealed_cols)
                ),
                format!(
                    "{} AS b, {} AS d, ",
                    bucket_expr(spec.bucket, live.time()),
                    dims_array(&live_cols)
                ),
            )
        } else {
            (String::new(), String::new())
        };
        sql.push(&format!("SELECT {sb}sum(events) AS c FROM "));
        sealed_rows(sql, st, split, f);
        if grouped {
            let mut g = vec!["b"];
            g.extend(sealed_cols.iter().copied());
            sql.push(&format!(" GROUP BY {}", g.join(", ")));
        }
        if !split.live.is_empty() {
            sql.push(&format!(
                " UNION ALL SELECT {lb}{} AS c FROM {}",
                live.count(),
                live.name()
            ));
            where_ranges(sql, live, &split.live, f);
            if grouped {
                let mut g = vec!["b"];
                g.extend(live_cols.iter().copied());
                sql.push(&format!(" GROUP BY {}", g.join(", ")));
            }
        }
    };
    let mut sql = Sql::new("SELECT b, d, sum(c) AS c FROM (");
    parts(&mut sql, true);
    sql.push(") GROUP BY b, d ORDER BY b, c DESC, d LIMIT ");
    sql.int(i64::try_from(spec.max_rows.saturating_add(1)).unwrap_or(i64::MAX));
    let mut total_sql = Sql::new("SELECT sum(c) AS c FROM (");
    parts(&mut total_sql, false);
    total_sql.push(")");
    (sql, total_sql)
}

/// The heat-map query on one table.
fn cells_sql(spec: &CellsSpec) -> Sql {
    let table = cells_table(spec);
    let mut sql = Sql::new(&format!(
        "SELECT {} AS cell, {} AS c FROM {}",
        table.cell(spec.res),
        table.count(),
        table.name()
    ));
    where_clause(&mut sql, table, &spec.filter);
    if table == LiveTable::Raw {
        sql.push(" AND isNotNull(h3)");
    }
    sql.push(" GROUP BY cell HAVING cell != '' ORDER BY c DESC, cell LIMIT ");
    sql.int(i64::try_from(spec.limit).unwrap_or(i64::MAX));
    sql
}

/// The heat-map query summed from sealed cell days and `cells_hour` for the rest of the range.
fn cells_split_sql(spec: &CellsSpec, split: &Split) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT cell, sum(c) AS c FROM (SELECT {} AS cell, sum(events) AS c FROM ",
        LiveTable::Cells.cell(spec.res)
    ));
    sealed_rows(&mut sql, SealedTable::Cells, split, &spec.filter);
    sql.push(" GROUP BY cell");
    if !split.live.is_empty() {
        // Unaligned ends need the raw table, exactly as without sealing.
        let live = cells_table(spec);
        sql.push(&format!(
            " UNION ALL SELECT {} AS cell, {} AS c FROM {}",
            live.cell(spec.res),
            live.count(),
            live.name()
        ));
        where_ranges(&mut sql, live, &split.live, &spec.filter);
        if live == LiveTable::Raw {
            sql.push(" AND isNotNull(h3)");
        }
        sql.push(" GROUP BY cell");
    }
    sql.push(") GROUP BY cell HAVING cell != '' ORDER BY c DESC, cell LIMIT ");
    sql.int(i64::try_from(spec.limit).unwrap_or(i64::MAX));
    sql
}

/// The `/v1/counts` statements for every plan (raw, minute, hour, and sealed days with and
/// without an hour window), rendered with sample parameters — the paths a store without data
/// cannot reach — for the compatibility check on current ClickHouse (`tests/chdb`).
pub fn counts_sql_templates() -> Vec<(String, String)> {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    let spec = |from: &str, bucket: Bucket, hours: Option<&str>| -> Option<CountsSpec> {
        let range = TimeRange::new(t(from).ok()?, t("2020-01-01T05:00:00+08:00").ok()?)?;
        let mut filter = Filter::range(range)
            .with(Dim::Town, &["310112102", "310112107"])
            .with(Dim::Category, &["DSP"]);
        filter.hours = hours.and_then(|h| pingan_domain::time::HourWindow::parse(h).ok());
        Some(CountsSpec {
            filter,
            by: vec![Dim::Town, Dim::Subtype],
            bucket,
            max_rows: 100,
        })
    };
    let fresh: BTreeMap<NaiveDate, u64> = ["2019-01-02", "2019-01-03", "2019-06-01"]
        .iter()
        .filter_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .zip([u64::MAX, 1, 9_876_543_210_123])
        .collect();
    let plans = [
        (
            "hour",
            "2019-01-01T10:00:00+08:00",
            Bucket::Month,
            Some("21-3"),
            false,
        ),
        (
            "minute",
            "2019-01-01T10:05:00+08:00",
            Bucket::FiveMinutes,
            None,
            false,
        ),
        (
            "raw",
            "2019-01-01T10:05:07+08:00",
            Bucket::None,
            None,
            false,
        ),
        (
            "sealed_day",
            "2019-01-01T10:00:00+08:00",
            Bucket::Day,
            None,
            true,
        ),
        (
            "sealed_hod",
            "2019-01-01T10:00:00+08:00",
            Bucket::Day,
            Some("21-3"),
            true,
        ),
    ];
    let mut out = Vec::new();
    for (name, from, bucket, hours, sealed_days) in plans {
        let Some(spec) = spec(from, bucket, hours) else {
            continue;
        };
        let (rows, total) = match sealed::sealed_table(&spec) {
            Some(st) if sealed_days => {
                counts_split_sql(&spec, st, &sealed::split(&spec.filter.range, &fresh))
            }
            _ => counts_sql(&spec),
        };
        out.push((format!("query_counts_{name}"), rows.render()));
        out.push((format!("query_counts_{name}_total"), total.render()));
    }
    for (name, from, res) in [
        ("cells_sealed_r8", "2019-01-01T10:00:00+08:00", H3Res::R8),
        (
            "cells_sealed_r7_raw_ends",
            "2019-01-01T10:00:07+08:00",
            H3Res::R7,
        ),
    ] {
        let Some(c) = spec(from, Bucket::None, None) else {
            continue;
        };
        let mut filter = c.filter;
        filter.dims.remove(&Dim::Town);
        let cells = CellsSpec {
            filter,
            res,
            limit: 500,
        };
        out.push((
            format!("query_{name}"),
            cells_split_sql(&cells, &sealed::split(&cells.filter.range, &fresh)).render(),
        ));
    }
    out
}

fn map_err(e: clickhouse::error::Error) -> StoreError {
    match e {
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
            StoreError::Unavailable(e.to_string())
        }
        // 241 MEMORY_LIMIT_EXCEEDED, 159 TIMEOUT_EXCEEDED.
        clickhouse::error::Error::BadResponse(m)
            if m.contains("Code: 241") || m.contains("Code: 159") =>
        {
            StoreError::TooExpensive(m)
        }
        other => StoreError::Query(other.to_string()),
    }
}

/// Reads from ClickHouse.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    metrics: QueryMetrics,
    sql_log: Option<SqlLog>,
}

/// Every statement a store sent, with arguments inlined (see [`ClickHouseStore::with_sql_log`]).
pub type SqlLog = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").finish_non_exhaustive()
    }
}

#[derive(Row, Deserialize)]
struct SealMarkCh {
    d: String,
    t: u32,
    seal: u64,
}

#[derive(Row, Deserialize)]
struct DayTimeCh {
    d: String,
    t: u32,
}

#[derive(Row, Deserialize)]
struct CountRowCh {
    b: String,
    d: Vec<String>,
    c: u64,
}

#[derive(Row, Deserialize)]
struct CellRowCh {
    cell: String,
    c: u64,
}

#[derive(Row, Deserialize)]
struct TermRowCh {
    term: String,
    c: u64,
}

#[derive(Row, Deserialize)]
struct IncidentRowCh {
    id: String,
    source: String,
    t: i64,
    category: String,
    subtype: String,
    department: Option<String>,
    priority: u8,
    district_code: Option<String>,
    town_code: Option<String>,
    station_code: Option<String>,
    compound_id: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    h3: Option<String>,
    tags: Vec<String>,
    keywords: Vec<String>,
    description: String,
    s: i64,
}

impl From<IncidentRowCh> for Incident {
    fn from(r: IncidentRowCh) -> Incident {
        Incident {
            event_id: r.id,
            source: r.source,
            event_time: shanghai_time(r.t),
            category: r.category,
            subtype: r.subtype,
            department: r.department,
            priority: r.priority,
            district: r.district_code,
            town: r.town_code,
            station: r.station_code,
            compound: r.compound_id,
            lat: r.lat,
            lon: r.lon,
            h3: r.h3,
            tags: r.tags,
            keywords: r.keywords,
            description: r.description,
            stored_at: r.s,
        }
    }
}

#[derive(Row, Deserialize)]
struct AlertRowCh {
    id: String,
    area_level: String,
    area_code: String,
    category: String,
    subtype: Option<String>,
    ws: i64,
    we: i64,
    observed: u32,
    expected: f64,
    score: f64,
    level: String,
    method: String,
    ca: i64,
    ua: i64,
    p_value: f64,
    baseline: String,
}

#[derive(Row, Deserialize)]
struct CatRowCh {
    category: String,
    c: u64,
}

const INCIDENT_COLUMNS: &str = "SELECT toString(event_id) AS id, source, toInt64(toUInt32(event_time)) AS t, category, subtype, \
     department, priority, district_code, town_code, station_code, compound_id, lat, lon, h3, tags, keywords, description, \
     toInt64(toUInt32(stored_at)) AS s FROM incidents";

impl ClickHouseStore {
    /// A store over `settings`' database.
    pub fn new(settings: &ClickHouseConfig, metrics: QueryMetrics) -> ClickHouseStore {
        ClickHouseStore::from_client(
            pingan_warehouse::client(settings, pingan_warehouse::Role::Reader),
            metrics,
        )
    }

    /// A store over an existing client.
    pub fn from_client(client: Client, metrics: QueryMetrics) -> ClickHouseStore {
        ClickHouseStore {
            client,
            metrics,
            sql_log: None,
        }
    }

    /// Also appends every statement to `log` before sending it: the compatibility check runs
    /// what the API really sends on a current ClickHouse release (`tests/chdb`).
    #[must_use]
    pub fn with_sql_log(mut self, log: SqlLog) -> ClickHouseStore {
        self.sql_log = Some(log);
        self
    }

    fn log(&self, sql: &Sql) {
        if let Some(log) = &self.sql_log
            && let Ok(mut l) = log.lock()
        {
            l.push(sql.render());
        }
    }

    async fn timed<T>(
        &self,
        name: &'static str,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let out = fut.await;
        self.metrics
            .observe_store(name, out.is_ok(), start.elapsed().as_secs_f64());
        out
    }

    async fn all<T>(&self, sql: &Sql) -> StoreResult<Vec<T>>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        self.log(sql);
        sql.build(&self.client)
            .fetch_all::<T>()
            .await
            .map_err(map_err)
    }

    async fn one_u64(&self, sql: &Sql) -> StoreResult<u64> {
        self.log(sql);
        sql.build(&self.client)
            .fetch_one::<u64>()
            .await
            .map_err(map_err)
    }

    async fn counts_impl(&self, spec: &CountsSpec) -> StoreResult<CountsResult> {
        if let Some(st) = sealed::sealed_table(spec)
            && let Some((first, end)) = sealed::whole_days(&spec.filter.range)
        {
            let fresh = self.fresh_days(first, end).await?;
            if !fresh.is_empty() {
                let split = sealed::split(&spec.filter.range, &fresh);
                let (sql, total) = counts_split_sql(spec, st, &split);
                return self.count_rows(&sql, &total).await;
            }
        }
        let (sql, total) = counts_sql(spec);
        self.count_rows(&sql, &total).await
    }

    /// Days in `[first, end)` whose seal is newer than their last write.
    async fn fresh_days(
        &self,
        first: NaiveDate,
        end: NaiveDate,
    ) -> StoreResult<BTreeMap<NaiveDate, u64>> {
        let days = |select: &str, tail: &str| {
            let mut sql = Sql::new(&format!("{select} WHERE day >= toDate("));
            sql.str(&first.to_string())
                .push(") AND day < toDate(")
                .str(&end.to_string())
                .push(")")
                .push(tail);
            sql
        };
        let writes = days(
            "SELECT toString(day) AS d, toUInt32(maxMerge(last_write)) AS t FROM day_writes",
            " GROUP BY d",
        );
        let marks = days(
            "SELECT toString(day) AS d, toUInt32(sealed_as_of) AS t, seal FROM day_seals",
            "",
        );
        let (w, m) = futures::try_join!(
            self.all::<DayTimeCh>(&writes),
            self.all::<SealMarkCh>(&marks)
        )?;
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let writes: BTreeMap<NaiveDate, u32> = w
            .into_iter()
            .filter_map(|r| day(&r.d).map(|d| (d, r.t)))
            .collect();
        let marks: Vec<(NaiveDate, u32, u64)> = m
            .into_iter()
            .filter_map(|r| day(&r.d).map(|d| (d, r.t, r.seal)))
            .collect();
        Ok(sealed::fresh_days(&writes, &marks))
    }

    async fn count_rows(&self, sql: &Sql, total_sql: &Sql) -> StoreResult<CountsResult> {
        let (rows, total) =
            futures::try_join!(self.all::<CountRowCh>(sql), self.one_u64(total_sql))?;
        let rows = rows
            .into_iter()
            .map(|r| CountRow {
                bucket: parse_bucket(&r.b),
                dims: r.d,
                count: r.c,
            })
            .collect();
        Ok(CountsResult { rows, total })
    }

    async fn cells_impl(&self, spec: &CellsSpec) -> StoreResult<Vec<CellCount>> {
        let mut plan = None;
        if sealed::cells_sealable(spec)
            && let Some((first, end)) = sealed::whole_days(&spec.filter.range)
        {
            let fresh = self.fresh_days(first, end).await?;
            if !fresh.is_empty() {
                plan = Some(sealed::split(&spec.filter.range, &fresh));
            }
        }
        let sql = match &plan {
            Some(split) => cells_split_sql(spec, split),
            None => cells_sql(spec),
        };
        let rows = self.all::<CellRowCh>(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|r| CellCount {
                cell: r.cell,
                count: r.c,
            })
            .collect())
    }

    fn terms_where(sql: &mut Sql, spec: &TermsSpec, only: Option<&[String]>) {
        sql.push(" WHERE day >= toDate(")
            .str(&spec.from_day.to_string());
        sql.push(") AND day < toDate(")
            .str(&spec.to_day.to_string())
            .push(")");
        for (d, vals) in &spec.dims {
            if let Some(col) = LiveTable::Cells.dim(*d) {
                sql.push(&format!(" AND {col} IN "));
                sql.list(vals);
            }
        }
        if let Some(terms) = only {
            sql.push(" AND term IN ");
            sql.list(terms);
        }
    }

    async fn terms_impl(
        &self,
        spec: &TermsSpec,
        only: Option<&[String]>,
        limit: usize,
    ) -> StoreResult<TermCounts> {
        if only.is_some_and(<[String]>::is_empty) {
            return Ok(TermCounts::default());
        }
        let mut sql = Sql::new("SELECT term, uniqExactMerge(events) AS c FROM terms_day");
        Self::terms_where(&mut sql, spec, only);
        sql.push(" GROUP BY term ORDER BY c DESC, term LIMIT ")
            .int(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut total = Sql::new(
            "SELECT toUInt64(sum(c)) FROM (SELECT term, uniqExactMerge(events) AS c FROM terms_day",
        );
        Self::terms_where(&mut total, spec, None);
        total.push(" GROUP BY term)");
        let (rows, total) = futures::try_join!(self.all::<TermRowCh>(&sql), self.one_u64(&total))?;
        Ok(TermCounts {
            terms: rows.into_iter().map(|r| (r.term, r.c)).collect(),
            total,
        })
    }

    async fn incidents_impl(&self, spec: &IncidentsSpec) -> StoreResult<Vec<Incident>> {
        let mut sql = Sql::new(INCIDENT_COLUMNS);
        where_clause(&mut sql, LiveTable::Raw, &spec.filter);
        if let Some(c) = &spec.after {
            sql.push(" AND (event_time < toDateTime(").int(c.event_time);
            sql.push(") OR (event_time = toDateTime(").int(c.event_time);
            sql.push(") AND toString(event_id) < ")
                .str(&c.event_id)
                .push("))");
        }
        sql.push(" ORDER BY event_time DESC, id DESC LIMIT 1 BY id LIMIT ")
            .int(i64::try_from(spec.limit).unwrap_or(i64::MAX));
        Ok(self
            .all::<IncidentRowCh>(&sql)
            .await?
            .into_iter()
            .map(Incident::from)
            .collect())
    }

    async fn stored_since_impl(&self, stored_at: i64, limit: usize) -> StoreResult<Vec<Incident>> {
        let mut sql = Sql::new(INCIDENT_COLUMNS);
        // The event-time bound lets ClickHouse skip old partitions; a live screen does not show
        // replayed history.
        sql.push(" WHERE event_time >= toDateTime(")
            .int(stored_at - 2 * 86_400);
        sql.push(") AND stored_at >= toDateTime(")
            .int(stored_at)
            .push(")");
        sql.push(" ORDER BY s DESC, t DESC, id DESC LIMIT 1 BY id LIMIT ")
            .int(i64::try_from(limit).unwrap_or(i64::MAX));
        Ok(self
            .all::<IncidentRowCh>(&sql)
            .await?
            .into_iter()
            .map(Incident::from)
            .collect())
    }

    async fn alerts_impl(&self, since: DateTime<Utc>, limit: usize) -> StoreResult<Vec<Alert>> {
        let mut sql = Sql::new(
            "SELECT id, area_level, area_code, category, subtype, toInt64(toUInt32(window_start)) AS ws, \
             toInt64(toUInt32(window_end)) AS we, observed, expected, score, level, method, \
             toInt64(toUInt32(created_at)) AS ca, toInt64(toUInt32(updated_at)) AS ua, p_value, baseline \
             FROM alerts FINAL WHERE updated_at >= toDateTime(",
        );
        sql.int(since.timestamp())
            .push(") ORDER BY ca DESC, ua DESC, id LIMIT ")
            .int(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self.all::<AlertRowCh>(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|r| Alert {
                id: r.id,
                area_level: r.area_level,
                area_code: r.area_code,
                category: r.category,
                subtype: r.subtype.filter(|s| !s.is_empty()),
                window_start: shanghai_time(r.ws),
                window_end: shanghai_time(r.we),
                observed: r.observed,
                expected: r.expected,
                score: r.score,
                level: r.level,
                method: r.method,
                created_at: shanghai_time(r.ca),
                updated_at: shanghai_time(r.ua),
                p_value: r.p_value,
                baseline: r.baseline,
            })
            .collect())
    }

    async fn live_impl(
        &self,
        today_start: DateTime<Utc>,
        hour_ago: DateTime<Utc>,
    ) -> StoreResult<LiveCounts> {
        let mut by_cat = Sql::new(
            "SELECT category, uniqExactMerge(events) AS c FROM counts_minute WHERE minute >= toDateTime(",
        );
        by_cat
            .int(today_start.timestamp())
            .push(") GROUP BY category");
        let mut total = Sql::new(
            "SELECT uniqExactMerge(events) FROM counts_minute WHERE minute >= toDateTime(",
        );
        total.int(today_start.timestamp()).push(")");
        let mut hour = Sql::new(
            "SELECT uniqExactMerge(events) FROM counts_minute WHERE minute >= toDateTime(",
        );
        hour.int(hour_ago.timestamp() - hour_ago.timestamp().rem_euclid(60))
            .push(")");
        let (cats, today_total, last_hour) = futures::try_join!(
            self.all::<CatRowCh>(&by_cat),
            self.one_u64(&total),
            self.one_u64(&hour)
        )?;
        Ok(LiveCounts {
            today_by_category: cats.into_iter().map(|r| (r.category, r.c)).collect(),
            today_total,
            last_hour,
        })
    }
}

impl IncidentStore for ClickHouseStore {
    fn counts<'a>(&'a self, spec: &'a CountsSpec) -> BoxFuture<'a, StoreResult<CountsResult>> {
        self.timed("counts", self.counts_impl(spec)).boxed()
    }
    fn cells<'a>(&'a self, spec: &'a CellsSpec) -> BoxFuture<'a, StoreResult<Vec<CellCount>>> {
        self.timed("cells", self.cells_impl(spec)).boxed()
    }
    fn terms<'a>(
        &'a self,
        spec: &'a TermsSpec,
        only: Option<&'a [String]>,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<TermCounts>> {
        self.timed("terms", self.terms_impl(spec, only, limit))
            .boxed()
    }
    fn incidents<'a>(
        &'a self,
        spec: &'a IncidentsSpec,
    ) -> BoxFuture<'a, StoreResult<Vec<Incident>>> {
        self.timed("incidents", self.incidents_impl(spec)).boxed()
    }
    fn incidents_stored_since(
        &self,
        stored_at: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<Incident>>> {
        self.timed(
            "incidents_stored_since",
            self.stored_since_impl(stored_at, limit),
        )
        .boxed()
    }
    fn alerts(&self, since: DateTime<Utc>, limit: usize) -> BoxFuture<'_, StoreResult<Vec<Alert>>> {
        self.timed("alerts", self.alerts_impl(since, limit)).boxed()
    }
    fn live_counts(
        &self,
        today_start: DateTime<Utc>,
        hour_ago: DateTime<Utc>,
    ) -> BoxFuture<'_, StoreResult<LiveCounts>> {
        self.timed("live_counts", self.live_impl(today_start, hour_ago))
            .boxed()
    }
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            self.client
                .query("SELECT 1")
                .fetch_one::<u8>()
                .await
                .map(|_| ())
                .map_err(map_err)
        }
        .boxed()
    }
    fn log_access<'a>(&'a self, e: &'a AccessEntry) -> BoxFuture<'a, StoreResult<()>> {
        let row = pingan_warehouse::access::AccessLogRow {
            at: u32::try_from(e.at.timestamp()).unwrap_or(0),
            principal: e.principal.clone(),
            role: e.role.clone(),
            scope: e.scope.clone(),
            endpoint: e.endpoint.clone(),
            filters: e.filters.clone(),
            row_count: e.rows,
        };
        async move {
            pingan_warehouse::access::append(&self.client, &row)
                .await
                .map_err(map_err)
        }
        .boxed()
    }
    fn access_log(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<AccessEntry>>> {
        async move {
            let rows = pingan_warehouse::access::list(
                &self.client,
                since.timestamp(),
                u64::try_from(limit).unwrap_or(u64::MAX),
            )
            .await
            .map_err(map_err)?;
            Ok(rows
                .into_iter()
                .map(|r| AccessEntry {
                    at: DateTime::from_timestamp(i64::from(r.at), 0).unwrap_or_default(),
                    principal: r.principal,
                    role: r.role,
                    scope: r.scope,
                    endpoint: r.endpoint,
                    filters: r.filters,
                    rows: r.row_count,
                })
                .collect())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CountsSpec, TimeRange};
    use pingan_domain::time::HourWindow;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn spec(from: &str, to: &str, bucket: Bucket) -> CountsSpec {
        CountsSpec {
            filter: Filter::range(TimeRange::new(t(from), t(to)).unwrap()),
            by: vec![Dim::Town],
            bucket,
            max_rows: 10,
        }
    }

    #[test]
    fn picks_the_coarsest_rollup_the_request_allows() {
        assert_eq!(
            counts_table(&spec(
                "2020-01-01T00:00:00+08:00",
                "2020-01-02T00:00:00+08:00",
                Bucket::Day
            )),
            LiveTable::Hour
        );
        assert_eq!(
            counts_table(&spec(
                "2020-01-01T00:00:00+08:00",
                "2020-01-02T00:00:00+08:00",
                Bucket::FiveMinutes
            )),
            LiveTable::Minute
        );
        assert_eq!(
            counts_table(&spec(
                "2020-01-01T00:10:00+08:00",
                "2020-01-02T00:00:00+08:00",
                Bucket::Hour
            )),
            LiveTable::Minute
        );
        assert_eq!(
            counts_table(&spec(
                "2020-01-01T00:10:05+08:00",
                "2020-01-02T00:00:00+08:00",
                Bucket::None
            )),
            LiveTable::Raw
        );
    }

    #[test]
    fn user_values_are_bound_never_spliced() {
        let mut s = spec(
            "2020-01-01T00:00:00+08:00",
            "2020-01-02T00:00:00+08:00",
            Bucket::Hour,
        );
        s.filter
            .dims
            .insert(Dim::Town, vec!["x' OR 1=1 --".into(), "310112102".into()]);
        s.filter.hours = Some(HourWindow::parse("21-3").unwrap());
        let mut sql = Sql::new("SELECT 1 FROM counts_hour");
        where_clause(&mut sql, LiveTable::Hour, &s.filter);
        assert!(!sql.text.contains("OR 1=1"), "{}", sql.text);
        assert!(sql.text.contains("town_code IN (?, ?)"), "{}", sql.text);
        assert!(
            sql.text.contains("(toHour(hour) >= ? OR toHour(hour) < ?)"),
            "{}",
            sql.text
        );
        assert_eq!(sql.args.len(), 6);
    }

    #[test]
    fn buckets_parse_as_shanghai_times() {
        assert_eq!(
            parse_bucket("2019-12-31").unwrap().to_rfc3339(),
            "2019-12-31T00:00:00+08:00"
        );
        assert_eq!(
            parse_bucket("1577806200").unwrap().to_rfc3339(),
            "2019-12-31T23:30:00+08:00"
        );
        assert_eq!(parse_bucket(""), None);
    }
}
