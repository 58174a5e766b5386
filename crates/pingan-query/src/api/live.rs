//! Live push: `GET /v1/live` (server-sent events).
//!
//! One poller task per process asks the store about once a second for today's counters, newly
//! stored incidents and new or escalated alerts, and broadcasts what changed to every connected
//! client through a `tokio::sync::broadcast` channel. The database load is therefore constant in
//! the number of screens: a hundred dashboards cost the same three small queries per second as
//! one. The poller idles while nobody listens.
//!
//! Events: `counts` (`{today_by_category, today_total, last_hour, as_of}`, also sent on connect),
//! `incident` (one labelled incident row) and `alert` (one labelled alert row).
//!
//! Every message carries what it is about ([`LiveAudience`]), and each client's stream lets
//! through only what its principal may see: incidents go to analysts and admins inside their
//! scope, alerts to everyone inside the alert's area, and counters are computed per scope — the
//! poller also counts for every scope that has a client connected, so a town's wall screen shows
//! its town's numbers and never the district's.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::feeds::{alert_row, incident_row};
use super::params::shanghai_midnight;
use super::{AppState, Clock, rfc3339};
use crate::auth::{Principal, Scope};
use crate::hub::{LiveAudience, LiveHub, LiveMessage};
use crate::metrics::QueryMetrics;
use crate::model::{CountsSpec, Dim, Filter, LiveCounts, TimeRange};
use crate::store::IncidentStore;

/// Held by a live stream: on drop it updates the client gauge, leaves its scope and frees its
/// live-stream slot.
struct ClientGuard {
    metrics: QueryMetrics,
    hub: LiveHub,
    scope: Scope,
    /// Frees the stream's slot when dropped.
    _slot: crate::auth::OwnedSlot,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.metrics.live_clients_add(-1);
        self.hub.leave(&self.scope);
    }
}

fn event(m: &LiveMessage) -> Result<Event, Infallible> {
    Ok(Event::default().event(m.kind).data(m.data.clone()))
}

/// `GET /v1/live`: the messages the caller may see (see [`LiveMessage::visible_to`]).
pub async fn sse(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, crate::api::ApiError> {
    let slot = s
        .access
        .admit_live(&who)
        .map_err(crate::api::ApiError::TooMany)?;
    let rx = s.live.tx.subscribe();
    s.metrics.live_clients_add(1);
    s.live.join(&who.scope);
    let guard = ClientGuard {
        metrics: s.metrics.clone(),
        hub: s.live.clone(),
        scope: who.scope.clone(),
        _slot: slot,
    };
    let greeting = futures::stream::iter(s.live.latest(&who.scope)).map(|m| event(&m));
    let updates = futures::stream::unfold((rx, guard, who), |(mut rx, guard, who)| async move {
        loop {
            match rx.recv().await {
                Ok(m) if m.visible_to(&who) => return Some((event(&m), (rx, guard, who))),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stop = s.live.stop;
    let stream = greeting
        .chain(updates)
        .take_until(async move { stop.cancelled().await });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// The payload of a `counts` message.
pub fn counts_payload(c: &LiveCounts, now: DateTime<Utc>) -> String {
    json!({
        "today_by_category": c.today_by_category,
        "today_total": c.today_total,
        "last_hour": c.last_hour,
        "as_of": rfc3339(now),
    })
    .to_string()
}

/// Poller state between ticks.
#[derive(Debug, Default)]
struct Cursor {
    counts: Option<LiveCounts>,
    scoped_counts: BTreeMap<String, LiveCounts>,
    stored_at: i64,
    seen_at_cursor: HashSet<String>,
    alerts_since: Option<DateTime<Utc>>,
    seen_alerts: HashSet<(String, i64)>,
}

/// One poll: reads the store and publishes what changed.
async fn tick(
    store: &dyn IncidentStore,
    hub: &LiveHub,
    metrics: &QueryMetrics,
    now: DateTime<Utc>,
    cur: &mut Cursor,
) -> bool {
    let mut ok = true;
    match store
        .live_counts(shanghai_midnight(now), now - chrono::Duration::hours(1))
        .await
    {
        Ok(c) => {
            if cur.counts.as_ref() != Some(&c) {
                hub.publish(LiveMessage {
                    kind: "counts",
                    data: counts_payload(&c, now),
                    audience: LiveAudience::Unscoped,
                });
                metrics.live_message("counts");
                cur.counts = Some(c);
            }
        }
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e, "live poll of counts failed");
        }
    }
    let scopes = hub.active_scopes();
    cur.scoped_counts
        .retain(|k, _| scopes.iter().any(|s| s.code() == k));
    for scope in scopes {
        match scoped_counts(store, &scope, now).await {
            Ok(c) => {
                if cur.scoped_counts.get(scope.code()) != Some(&c) {
                    hub.publish(LiveMessage {
                        kind: "counts",
                        data: counts_payload(&c, now),
                        audience: LiveAudience::Scope(scope.clone()),
                    });
                    metrics.live_message("counts");
                    cur.scoped_counts.insert(scope.code().to_owned(), c);
                }
            }
            Err(e) => {
                ok = false;
                tracing::warn!(error = %e, scope = scope.code(), "live poll of scoped counts failed");
            }
        }
    }
    if cur.stored_at == 0 {
        cur.stored_at = now.timestamp();
    }
    match store.incidents_stored_since(cur.stored_at, 50).await {
        Ok(mut list) => {
            list.retain(|i| {
                !(i.stored_at == cur.stored_at && cur.seen_at_cursor.contains(&i.event_id))
            });
            list.sort_by(|a, b| {
                a.stored_at
                    .cmp(&b.stored_at)
                    .then(a.event_time.cmp(&b.event_time))
            });
            for i in &list {
                if i.stored_at > cur.stored_at {
                    cur.stored_at = i.stored_at;
                    cur.seen_at_cursor.clear();
                }
                cur.seen_at_cursor.insert(i.event_id.clone());
                hub.publish(LiveMessage {
                    kind: "incident",
                    data: json!(incident_row(i)).to_string(),
                    audience: LiveAudience::Incident {
                        town: i.town.clone(),
                        station: i.station.clone(),
                    },
                });
                metrics.live_message("incident");
            }
        }
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e, "live poll of incidents failed");
        }
    }
    let since = *cur.alerts_since.get_or_insert(now);
    match store.alerts(since, 50).await {
        Ok(mut list) => {
            list.sort_by_key(|a| a.updated_at);
            for a in &list {
                let key = (a.id.clone(), a.updated_at.timestamp());
                if cur.seen_alerts.insert(key) {
                    hub.publish(LiveMessage {
                        kind: "alert",
                        data: json!(alert_row(a)).to_string(),
                        audience: LiveAudience::Alert {
                            level: a.area_level.clone(),
                            code: a.area_code.clone(),
                        },
                    });
                    metrics.live_message("alert");
                }
                let u = a.updated_at.with_timezone(&Utc);
                if u > since {
                    cur.alerts_since = Some(u);
                }
            }
            if cur.seen_alerts.len() > 10_000 {
                cur.seen_alerts.clear();
            }
        }
        Err(e) => {
            ok = false;
            tracing::warn!(error = %e, "live poll of alerts failed");
        }
    }
    ok
}

/// Today's counters inside `scope`, from the same distinct counts `/v1/counts` answers.
async fn scoped_counts(
    store: &dyn IncidentStore,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<LiveCounts, crate::store::StoreError> {
    let filter = |from: DateTime<Utc>| {
        let mut f = Filter::range(TimeRange::new(from, now + chrono::Duration::seconds(1))?);
        if let Some((d, code)) = scope.filter_dim() {
            f = f.with(d, &[code]);
        }
        Some(f)
    };
    let (Some(today), Some(hour)) = (
        filter(shanghai_midnight(now)),
        filter(now - chrono::Duration::hours(1)),
    ) else {
        return Ok(LiveCounts::default());
    };
    let spec = |filter: Filter, by: Vec<Dim>| CountsSpec {
        filter,
        by,
        bucket: crate::model::Bucket::None,
        max_rows: 1000,
    };
    let by_cat = store.counts(&spec(today, vec![Dim::Category])).await?;
    let last_hour = store.counts(&spec(hour, Vec::new())).await?;
    Ok(LiveCounts {
        today_by_category: by_cat
            .rows
            .into_iter()
            .filter_map(|r| r.dims.into_iter().next().map(|c| (c, r.count)))
            .collect(),
        today_total: by_cat.total,
        last_hour: last_hour.total,
    })
}

/// Runs the poller until `shutdown`; polls every `interval` while at least one client listens.
pub async fn run_poller(
    store: Arc<dyn IncidentStore>,
    hub: LiveHub,
    metrics: QueryMetrics,
    clock: Clock,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut cur = Cursor::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if hub.clients() == 0 {
            // Nobody listens: forget positions so a new client starts from "now".
            cur = Cursor {
                counts: None,
                ..Cursor::default()
            };
            continue;
        }
        let ok = tick(store.as_ref(), &hub, &metrics, clock(), &mut cur).await;
        metrics.live_poll(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_new_incident_is_broadcast_once() {
        let store = MemoryStore::new();
        let hub = LiveHub::new();
        let mut rx = hub.tx.subscribe();
        let metrics = QueryMetrics::unregistered().unwrap();
        let now = DateTime::parse_from_rfc3339("2020-01-01T10:00:00+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let mut cur = Cursor::default();
        assert!(tick(&store, &hub, &metrics, now, &mut cur).await);
        assert_eq!(rx.recv().await.unwrap().kind, "counts");
        store.insert([crate::api::tests_support::incident(
            "00000000-0000-4000-8000-000000000001",
            "2020-01-01T09:59:00+08:00",
            now.timestamp(),
        )]);
        assert!(tick(&store, &hub, &metrics, now, &mut cur).await);
        let kinds: Vec<&str> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|m| m.kind)
            .collect();
        assert_eq!(kinds, ["counts", "incident"]);
        assert!(tick(&store, &hub, &metrics, now, &mut cur).await);
        assert!(rx.try_recv().is_err(), "nothing changed, nothing sent");
    }
}
