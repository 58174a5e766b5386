//! The live hub: fans each message out to every connected `GET /v1/live` client through a
//! `tokio::sync::broadcast` channel, keeps the latest `counts` message of each scope as the
//! greeting of new clients, and tracks which scopes have clients (the poller counts for each).
//! Every message says who may receive it ([`LiveAudience`]); what is published (the poller) and
//! how it is served (server-sent events) are the endpoint's (`api/live.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::{Principal, ReadRole, Scope};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMessage {
    /// Event name (`counts`, `incident`, `alert`).
    pub kind: &'static str,
    /// JSON payload.
    pub data: String,
    /// Who may receive it.
    pub audience: LiveAudience,
}

/// What a live message is about, which decides who receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveAudience {
    /// Counters of everything: clients whose scope is `*` or the district.
    Unscoped,
    /// Counters of one scope: the clients with exactly that scope.
    Scope(Scope),
    /// An incident in this town and station: analysts and admins whose scope covers it.
    Incident {
        /// Town code.
        town: Option<String>,
        /// Station code.
        station: Option<String>,
    },
    /// An alert about this area: every client whose scope covers it.
    Alert {
        /// Area level.
        level: String,
        /// Area code.
        code: String,
    },
}

impl LiveMessage {
    /// Whether `who` may receive this message.
    pub fn visible_to(&self, who: &Principal) -> bool {
        match &self.audience {
            LiveAudience::Unscoped => who.scope.filter_dim().is_none(),
            LiveAudience::Scope(s) => &who.scope == s,
            LiveAudience::Incident { town, station } => {
                who.role >= ReadRole::Analyst
                    && who
                        .scope
                        .covers_incident(town.as_deref(), station.as_deref())
            }
            LiveAudience::Alert { level, code } => who.scope.covers_alert(level, code),
        }
    }
}

/// Fan-out of live messages to every SSE client.
#[derive(Debug, Clone)]
pub struct LiveHub {
    pub(crate) tx: broadcast::Sender<Arc<LiveMessage>>,
    /// The newest `counts` message per scope code (`*` for unscoped), greeting new clients.
    latest: Arc<RwLock<BTreeMap<String, Arc<LiveMessage>>>>,
    /// Scopes with a client connected, and how many: the poller counts for each.
    scopes: Arc<RwLock<BTreeMap<String, (Scope, usize)>>>,
    pub(crate) stop: CancellationToken,
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
            latest: Arc::new(RwLock::new(BTreeMap::new())),
            scopes: Arc::new(RwLock::new(BTreeMap::new())),
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

    /// Sends `msg` to every client allowed to see it; a `counts` message also becomes the
    /// greeting of new clients of its scope.
    pub fn publish(&self, msg: LiveMessage) {
        let msg = Arc::new(msg);
        if msg.kind == "counts"
            && let Ok(mut g) = self.latest.write()
        {
            let key = match &msg.audience {
                LiveAudience::Scope(s) => s.code().to_owned(),
                _ => "*".to_owned(),
            };
            g.insert(key, msg.clone());
        }
        let _ = self.tx.send(msg);
    }

    /// The narrowing scopes that have at least one client connected.
    pub fn active_scopes(&self) -> Vec<Scope> {
        self.scopes
            .read()
            .map(|g| g.values().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn join(&self, scope: &Scope) {
        if scope.filter_dim().is_none() {
            return;
        }
        if let Ok(mut g) = self.scopes.write() {
            g.entry(scope.code().to_owned())
                .or_insert_with(|| (scope.clone(), 0))
                .1 += 1;
        }
    }

    pub(crate) fn leave(&self, scope: &Scope) {
        if let Ok(mut g) = self.scopes.write()
            && let Some((_, n)) = g.get_mut(scope.code())
        {
            *n -= 1;
            if *n == 0 {
                g.remove(scope.code());
            }
        }
    }

    /// Connected clients.
    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    pub(crate) fn latest(&self, scope: &Scope) -> Option<Arc<LiveMessage>> {
        let key = if scope.filter_dim().is_none() {
            "*"
        } else {
            scope.code()
        };
        self.latest.read().ok().and_then(|g| g.get(key).cloned())
    }
}
