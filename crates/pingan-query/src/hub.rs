//! The live hub: fans each message out to every connected `GET /v1/live` client through a
//! `tokio::sync::broadcast` channel, and keeps the latest `counts` message as the greeting of new
//! clients. What is published (the poller) and how it is served (server-sent events) are the
//! endpoint's (`api/live.rs`); the hub knows neither.

use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMessage {
    /// Event name (`counts`, `incident`, `alert`).
    pub kind: &'static str,
    /// JSON payload.
    pub data: String,
}

/// Fan-out of live messages to every SSE client.
#[derive(Debug, Clone)]
pub struct LiveHub {
    tx: broadcast::Sender<Arc<LiveMessage>>,
    latest: Arc<RwLock<Option<Arc<LiveMessage>>>>,
    stop: CancellationToken,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub::new()
    }
}

impl LiveHub {
    /// A hub with room for 1024 undelivered messages per slow client.
    pub fn new() -> LiveHub {
        let (tx, _) = broadcast::channel(1024);
        LiveHub {
            tx,
            latest: Arc::new(RwLock::new(None)),
            stop: CancellationToken::new(),
        }
    }

    /// A hub whose streams end when `stop` is cancelled (graceful shutdown).
    pub fn with_stop(stop: CancellationToken) -> LiveHub {
        LiveHub {
            stop,
            ..LiveHub::new()
        }
    }

    /// Sends `msg` to every client; a `counts` message also becomes the greeting of new clients.
    pub fn publish(&self, msg: LiveMessage) {
        let msg = Arc::new(msg);
        if msg.kind == "counts"
            && let Ok(mut g) = self.latest.write()
        {
            *g = Some(msg.clone());
        }
        let _ = self.tx.send(msg);
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Every message published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.tx.subscribe()
    }

    fn latest(&self) -> Option<Arc<LiveMessage>> {
        self.latest.read().ok().and_then(|g| g.clone())
    }

    /// What one client receives: the latest `counts` message, then every message published from
    /// now on (a client that falls more than 1024 behind skips what it missed), until the hub
    /// stops.
    pub fn stream(&self) -> impl Stream<Item = Arc<LiveMessage>> + Send + use<> {
        let greeting = futures::stream::iter(self.latest());
        let updates = futures::stream::unfold(self.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(m) => return Some((m, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let stop = self.stop.clone();
        greeting
            .chain(updates)
            .take_until(async move { stop.cancelled().await })
    }
}
