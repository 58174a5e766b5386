//! An in-memory [`IncidentStore`] for component tests: the same semantics as the ClickHouse
//! store (distinct events, Asia/Shanghai buckets, hour windows) computed over a `Vec`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{IncidentStore, StoreResult};
use crate::model::{
    AccessEntry, Alert, Bucket, CellCount, CellsSpec, CountRow, CountsResult, CountsSpec, Dim,
    Filter, H3Res, Incident, IncidentsSpec, LiveCounts, TermCounts, TermsSpec,
};

/// Incidents and alerts held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    incidents: Vec<Incident>,
    alerts: Vec<Alert>,
    access: Vec<AccessEntry>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Adds incidents (duplicated event ids are allowed and count once, as in ClickHouse).
    pub fn insert(&self, incidents: impl IntoIterator<Item = Incident>) {
        if let Ok(mut g) = self.inner.lock() {
            g.incidents.extend(incidents);
        }
    }

    /// Adds or replaces alerts by id.
    pub fn insert_alerts(&self, alerts: impl IntoIterator<Item = Alert>) {
        if let Ok(mut g) = self.inner.lock() {
            for a in alerts {
                g.alerts.retain(|x| x.id != a.id);
                g.alerts.push(a);
            }
        }
    }

    fn snapshot(&self) -> (Vec<Incident>, Vec<Alert>) {
        self.inner
            .lock()
            .map(|g| (g.incidents.clone(), g.alerts.clone()))
            .unwrap_or_default()
    }
}

/// The code of `dim` for an incident (`""` when unknown).
pub fn dim_value(i: &Incident, dim: Dim) -> String {
    match dim {
        Dim::District => i.district.clone().unwrap_or_default(),
        Dim::Town => i.town.clone().unwrap_or_default(),
        Dim::Station => i.station.clone().unwrap_or_default(),
        Dim::Compound => i.compound.clone().unwrap_or_default(),
        Dim::Category => i.category.clone(),
        Dim::Subtype => i.subtype.clone(),
        Dim::Source => i.source.clone(),
        Dim::Department => i.department.clone().unwrap_or_default(),
    }
}

/// A counts group: bucket start and dimension codes.
type GroupKey = (Option<DateTime<FixedOffset>>, Vec<String>);

fn matches(i: &Incident, f: &Filter) -> bool {
    let t = i.event_time.with_timezone(&Utc);
    if t < f.range.from() || t >= f.range.to() {
        return false;
    }
    let local = i.event_time.with_timezone(&pingan_domain::time::shanghai());
    if let Some(h) = f.hours
        && !h.contains(local.hour())
    {
        return false;
    }
    if f.weekdays_only && local.weekday().number_from_monday() > 5 {
        return false;
    }
    f.dims
        .iter()
        .all(|(d, vals)| vals.contains(&dim_value(i, *d)))
}

fn bucket_start(t: DateTime<FixedOffset>, b: Bucket) -> Option<DateTime<FixedOffset>> {
    let tz = pingan_domain::time::shanghai();
    let l = t.with_timezone(&tz);
    let floor = |secs: i64| {
        let u = l.timestamp();
        crate::model::shanghai_time(u - u.rem_euclid(secs))
    };
    match b {
        Bucket::None => None,
        Bucket::Minute => Some(floor(60)),
        Bucket::FiveMinutes => Some(floor(300)),
        Bucket::FifteenMinutes => Some(floor(900)),
        Bucket::Hour => Some(floor(3600)),
        Bucket::Day => tz
            .with_ymd_and_hms(l.year(), l.month(), l.day(), 0, 0, 0)
            .single(),
        Bucket::Month => tz
            .with_ymd_and_hms(l.year(), l.month(), 1, 0, 0, 0)
            .single(),
    }
}

fn cell_of(i: &Incident, res: H3Res) -> Option<String> {
    let cell: h3o::CellIndex = i.h3.as_deref()?.parse().ok()?;
    let r = match res {
        H3Res::R7 => h3o::Resolution::Seven,
        H3Res::R8 => h3o::Resolution::Eight,
        H3Res::R9 => h3o::Resolution::Nine,
    };
    cell.parent(r).map(|c| c.to_string())
}

impl IncidentStore for MemoryStore {
    fn counts<'a>(&'a self, spec: &'a CountsSpec) -> BoxFuture<'a, StoreResult<CountsResult>> {
        let (incidents, _) = self.snapshot();
        let mut groups: BTreeMap<GroupKey, BTreeSet<String>> = BTreeMap::new();
        let mut all = BTreeSet::new();
        for i in incidents.iter().filter(|i| matches(i, &spec.filter)) {
            let key = (
                bucket_start(i.event_time, spec.bucket),
                spec.by.iter().map(|d| dim_value(i, *d)).collect(),
            );
            groups.entry(key).or_default().insert(i.event_id.clone());
            all.insert(i.event_id.clone());
        }
        let mut rows: Vec<CountRow> = groups
            .into_iter()
            .map(|((bucket, dims), ids)| CountRow {
                bucket,
                dims,
                count: ids.len() as u64,
            })
            .collect();
        rows.sort_by(|a, b| {
            a.bucket
                .cmp(&b.bucket)
                .then(b.count.cmp(&a.count))
                .then(a.dims.cmp(&b.dims))
        });
        rows.truncate(spec.max_rows.saturating_add(1));
        async move {
            Ok(CountsResult {
                rows,
                total: all.len() as u64,
            })
        }
        .boxed()
    }

    fn cells<'a>(&'a self, spec: &'a CellsSpec) -> BoxFuture<'a, StoreResult<Vec<CellCount>>> {
        let (incidents, _) = self.snapshot();
        let mut cells: HashMap<String, BTreeSet<String>> = HashMap::new();
        for i in incidents.iter().filter(|i| matches(i, &spec.filter)) {
            if let Some(c) = cell_of(i, spec.res) {
                cells.entry(c).or_default().insert(i.event_id.clone());
            }
        }
        let mut out: Vec<CellCount> = cells
            .into_iter()
            .map(|(cell, ids)| CellCount {
                cell,
                count: ids.len() as u64,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.cell.cmp(&b.cell)));
        out.truncate(spec.limit);
        async move { Ok(out) }.boxed()
    }

    fn terms<'a>(
        &'a self,
        spec: &'a TermsSpec,
        only: Option<&'a [String]>,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<TermCounts>> {
        let (incidents, _) = self.snapshot();
        let mut terms: HashMap<String, BTreeSet<String>> = HashMap::new();
        for i in &incidents {
            let day = i
                .event_time
                .with_timezone(&pingan_domain::time::shanghai())
                .date_naive();
            if day < spec.from_day || day >= spec.to_day {
                continue;
            }
            if !spec
                .dims
                .iter()
                .all(|(d, vals)| vals.contains(&dim_value(i, *d)))
            {
                continue;
            }
            for k in &i.keywords {
                terms
                    .entry(k.clone())
                    .or_default()
                    .insert(i.event_id.clone());
            }
        }
        let total = terms.values().map(|s| s.len() as u64).sum();
        let mut list: Vec<(String, u64)> = terms
            .into_iter()
            .filter(|(t, _)| only.is_none_or(|o| o.contains(t)))
            .map(|(t, ids)| (t, ids.len() as u64))
            .collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list.truncate(limit);
        async move { Ok(TermCounts { terms: list, total }) }.boxed()
    }

    fn incidents<'a>(
        &'a self,
        spec: &'a IncidentsSpec,
    ) -> BoxFuture<'a, StoreResult<Vec<Incident>>> {
        let (incidents, _) = self.snapshot();
        let mut seen = BTreeSet::new();
        let mut list: Vec<Incident> = incidents
            .into_iter()
            .filter(|i| matches(i, &spec.filter))
            .collect();
        list.sort_by(|a, b| {
            b.event_time
                .cmp(&a.event_time)
                .then(b.event_id.cmp(&a.event_id))
        });
        let list: Vec<Incident> = list
            .into_iter()
            .filter(|i| seen.insert(i.event_id.clone()))
            .filter(|i| {
                spec.after.as_ref().is_none_or(|c| {
                    let t = i.event_time.timestamp();
                    t < c.event_time || (t == c.event_time && i.event_id < c.event_id)
                })
            })
            .take(spec.limit)
            .collect();
        async move { Ok(list) }.boxed()
    }

    fn incidents_stored_since(
        &self,
        stored_at: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<Incident>>> {
        let (incidents, _) = self.snapshot();
        let mut list: Vec<Incident> = incidents
            .into_iter()
            .filter(|i| i.stored_at >= stored_at)
            .collect();
        list.sort_by(|a, b| {
            b.stored_at
                .cmp(&a.stored_at)
                .then(b.event_time.cmp(&a.event_time))
        });
        list.truncate(limit);
        async move { Ok(list) }.boxed()
    }

    fn alerts(&self, since: DateTime<Utc>, limit: usize) -> BoxFuture<'_, StoreResult<Vec<Alert>>> {
        let (_, alerts) = self.snapshot();
        let mut list: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| a.updated_at.with_timezone(&Utc) >= since)
            .collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        list.truncate(limit);
        async move { Ok(list) }.boxed()
    }

    fn live_counts(
        &self,
        today_start: DateTime<Utc>,
        hour_ago: DateTime<Utc>,
    ) -> BoxFuture<'_, StoreResult<LiveCounts>> {
        let (incidents, _) = self.snapshot();
        let mut by_cat: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let (mut today, mut hour) = (BTreeSet::new(), BTreeSet::new());
        for i in &incidents {
            let t = i.event_time.with_timezone(&Utc);
            if t >= today_start {
                by_cat
                    .entry(i.category.clone())
                    .or_default()
                    .insert(i.event_id.clone());
                today.insert(i.event_id.clone());
            }
            if t >= hour_ago {
                hour.insert(i.event_id.clone());
            }
        }
        let out = LiveCounts {
            today_by_category: by_cat
                .into_iter()
                .map(|(k, v)| (k, v.len() as u64))
                .collect(),
            today_total: today.len() as u64,
            last_hour: hour.len() as u64,
        };
        async move { Ok(out) }.boxed()
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn log_access<'a>(&'a self, entry: &'a AccessEntry) -> BoxFuture<'a, StoreResult<()>> {
        if let Ok(mut g) = self.inner.lock() {
            g.access.push(entry.clone());
        }
        async { Ok(()) }.boxed()
    }

    fn access_log(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<AccessEntry>>> {
        let mut list: Vec<AccessEntry> = self
            .inner
            .lock()
            .map(|g| g.access.iter().filter(|e| e.at >= since).cloned().collect())
            .unwrap_or_default();
        list.reverse();
        list.truncate(limit);
        async move { Ok(list) }.boxed()
    }
}
