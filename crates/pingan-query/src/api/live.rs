//! `GET /v1/live` (server-sent events) and the poller that feeds it.
//!
//! One poller task per process asks the store about once a second for today's counters, newly
//! stored incidents and new or escalated alerts, and publishes what changed on the
//! [`LiveHub`], which fans it out to every connected client. The database load is therefore
//! constant in the number of screens: a hundred dashboards cost the same three small queries per
//! second as one. The poller idles while nobody listens.
//!
//! Events: `counts` (`{today_by_category, today_total, last_hour, as_of}`, also sent on connect),
//! `incident` (one labelled incident row) and `alert` (one labelled alert row).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::feeds::{alert_row, incident_row};
use super::params::shanghai_midnight;
use super::{AppState, Clock, rfc3339};
use crate::hub::{LiveHub, LiveMessage};
use crate::metrics::QueryMetrics;
use crate::model::LiveCounts;
use crate::store::IncidentStore;

struct ClientGuard(QueryMetrics);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.live_clients_add(-1);
    }
}

fn event(m: &LiveMessage) -> Result<Event, Infallible> {
    Ok(Event::default().event(m.kind).data(m.data.clone()))
}

/// `GET /v1/live`.
pub async fn sse(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    s.metrics.live_clients_add(1);
    let guard = ClientGuard(s.metrics.clone());
    // The guard lives as long as the client's stream.
    let stream = s.live.stream().map(move |m| {
        let _ = &guard;
        event(&m)
    });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
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
        let mut rx = hub.subscribe();
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
