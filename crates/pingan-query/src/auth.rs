//! Who may read what (CONTRACT §9 "Read tokens"): read tokens with a role and an area scope,
//! dashboard sessions, and the [`Principal`] every `/v1` request is answered for.
//!
//! Every `/v1/*` request passes `api::authorize` before its handler: it finds the principal (a
//! `Bearer` token or a dashboard session cookie), checks the role the endpoint needs and puts the
//! principal into the request, where the handlers narrow every query to its scope
//! ([`crate::api::params::Params::dim_filters`]) and filter what they cannot narrow in SQL
//! (alerts, the live stream). Scope and role are enforced here, on the server, never by the
//! dashboard.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use pingan_domain::area::{AreaIndex, AreaLevel, DISTRICT_CODE};
use pingan_runtime::config::Sensitive;
use serde::Serialize;

use crate::model::Dim;

/// Shortest accepted token secret (CONTRACT §9: at least 16 visible ASCII characters).
pub const MIN_SECRET_LEN: usize = 16;
/// Name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "pingan_session";
/// How long a dashboard session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions kept at once; the oldest is dropped beyond it (logins need a valid token, so
/// this only bounds memory).
const MAX_SESSIONS: usize = 10_000;

/// What a read token may do, in increasing order of trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadRole {
    /// Aggregates only: counts, heat maps (no finer than H3 resolution 8), rankings, terms,
    /// alerts, the report and the live counters and alerts; never an incident row, free text or
    /// an exact coordinate.
    Viewer,
    /// Viewer plus `/v1/incidents` (redacted text) and CSV export.
    Analyst,
    /// Everything, including the access log.
    Admin,
}

impl ReadRole {
    fn parse(s: &str) -> Option<ReadRole> {
        match s {
            "viewer" => Some(ReadRole::Viewer),
            "analyst" => Some(ReadRole::Analyst),
            "admin" => Some(ReadRole::Admin),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadRole::Viewer => "viewer",
            ReadRole::Analyst => "analyst",
            ReadRole::Admin => "admin",
        }
    }
}

/// The area a token may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `*`: everything.
    All,
    /// The district. The deployment covers one district (`310112`), so this sees everything
    /// `*` sees; it exists so a token can name its area explicitly.
    District(String),
    /// One town (街镇), 9-digit code.
    Town(String),
    /// One police station's events.
    Station(String),
}

impl Scope {
    /// Parses `*` or a known district, town or station code.
    pub fn parse(code: &str) -> Option<Scope> {
        let index = AreaIndex::builtin();
        if code == "*" {
            Some(Scope::All)
        } else if code == DISTRICT_CODE {
            Some(Scope::District(code.to_owned()))
        } else if index.is_valid_town_code(code) {
            Some(Scope::Town(code.to_owned()))
        } else if index.is_valid_station_code(code) {
            Some(Scope::Station(code.to_owned()))
        } else {
            None
        }
    }

    /// The wire form: `*` or the area code.
    pub fn code(&self) -> &str {
        match self {
            Scope::All => "*",
            Scope::District(c) | Scope::Town(c) | Scope::Station(c) => c,
        }
    }

    /// The filter every query of this scope gets, when it narrows anything.
    pub fn filter_dim(&self) -> Option<(Dim, &str)> {
        match self {
            Scope::All | Scope::District(_) => None,
            Scope::Town(t) => Some((Dim::Town, t)),
            Scope::Station(s) => Some((Dim::Station, s)),
        }
    }

    /// Whether a filter value `code` of area dimension `dim` lies inside this scope (for a
    /// station: a town the station serves, or one of its compounds). Unknown codes are outside
    /// every scope but `*`.
    pub fn covers(&self, dim: Dim, code: &str) -> bool {
        let index = AreaIndex::builtin();
        match (self, dim) {
            (Scope::All, _) => true,
            (Scope::District(d), Dim::District) => code == d,
            (Scope::District(_), _) => true,
            (Scope::Town(_) | Scope::Station(_), Dim::District) => false,
            (Scope::Town(t), Dim::Town) => code == t,
            (Scope::Town(t), Dim::Station) => index
                .station(code)
                .is_some_and(|s| s.towns.iter().any(|x| x == t)),
            (Scope::Town(t), Dim::Compound) => {
                index.compound(code).is_some_and(|c| &c.town_code == t)
            }
            (Scope::Station(s), Dim::Town) => index
                .station(s)
                .is_some_and(|st| st.towns.iter().any(|x| x == code)),
            (Scope::Station(s), Dim::Station) => code == s,
            (Scope::Station(s), Dim::Compound) => {
                index.compound(code).is_some_and(|c| &c.station_code == s)
            }
            // Not area dimensions: nothing to check.
            _ => true,
        }
    }

    /// Whether an alert about area `code` at `level` (`district`, `town`, `station`,
    /// `compound`, …) is inside this scope.
    pub fn covers_alert(&self, level: &str, code: &str) -> bool {
        let Some((scope_dim, scope_code)) = self.filter_dim() else {
            return true;
        };
        let index = AreaIndex::builtin();
        let (scope_level, level_of) = match scope_dim {
            Dim::Town => (AreaLevel::Town, "town"),
            _ => (AreaLevel::Station, "station"),
        };
        if level == level_of {
            return code == scope_code;
        }
        match level {
            "compound" => index.compound(code).is_some_and(|c| match scope_level {
                AreaLevel::Town => c.town_code == scope_code,
                _ => c.station_code == scope_code,
            }),
            _ => AreaLevel::ALL
                .iter()
                .find(|l| l.as_str() == level)
                .and_then(|l| index.ancestors(*l, code))
                .is_some_and(|chain| {
                    chain
                        .iter()
                        .any(|(l, c)| *l == scope_level && c == scope_code)
                }),
        }
    }

    /// Whether an incident with these area codes is inside this scope.
    pub fn covers_incident(&self, town: Option<&str>, station: Option<&str>) -> bool {
        match self {
            Scope::All | Scope::District(_) => true,
            Scope::Town(t) => town == Some(t.as_str()),
            Scope::Station(s) => station == Some(s.as_str()),
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token name (what the access log records; never the secret).
    pub name: String,
    /// Role.
    pub role: ReadRole,
    /// Area scope.
    pub scope: Scope,
}

impl Principal {
    /// The caller in development mode without tokens: an admin seeing everything.
    pub fn dev() -> Principal {
        Principal {
            name: "dev".into(),
            role: ReadRole::Admin,
            scope: Scope::All,
        }
    }
}

/// One configured read token.
#[derive(Debug, Clone)]
pub struct ReadToken {
    /// Who presents it.
    pub principal: Principal,
    secret: Sensitive,
}

/// Parses `serve.tokens` entries `"<name>:<role>:<scope>:<secret>"`, appending every problem to
/// `errors` (by position and name, never with the secret).
pub fn parse_tokens(entries: &[Sensitive], errors: &mut Vec<String>) -> Vec<ReadToken> {
    let mut out: Vec<ReadToken> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let mut parts = entry.expose().splitn(4, ':');
        let (Some(name), Some(role), Some(scope), Some(secret)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            errors.push(format!(
                "serve.tokens[{i}] must look like \"<name>:<role>:<scope>:<secret>\""
            ));
            continue;
        };
        let at = format!("serve.tokens[{i}] ({name})");
        let mut ok = true;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            errors.push(format!(
                "serve.tokens[{i}]: the name must be ASCII letters, digits, -, _ or ."
            ));
            ok = false;
        }
        let role = ReadRole::parse(role);
        if role.is_none() {
            errors.push(format!("{at}: the role must be viewer, analyst or admin"));
            ok = false;
        }
        let scope = Scope::parse(scope);
        if scope.is_none() {
            errors.push(format!(
                "{at}: the scope must be * or a known district, town or station code"
            ));
            ok = false;
        }
        if secret.len() < MIN_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            errors.push(format!(
                "{at}: the secret must be at least {MIN_SECRET_LEN} visible ASCII characters"
            ));
            ok = false;
        }
        if out.iter().any(|t| t.principal.name == name) {
            errors.push(format!("{at}: the name is used twice"));
            ok = false;
        }
        if out.iter().any(|t| t.secret.expose() == secret) {
            errors.push(format!("{at}: the secret is used by another token"));
            ok = false;
        }
        if let (true, Some(role), Some(scope)) = (ok, role, scope) {
            out.push(ReadToken {
                principal: Principal {
                    name: name.to_owned(),
                    role,
                    scope,
                },
                secret: Sensitive::new(secret),
            });
        }
    }
    out
}

/// Why a request has no principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token and no session.
    Missing,
    /// A token or session that is not (or no longer) valid.
    Invalid,
}

/// Per-token abuse limits of the query API: a leaked or misconfigured token (a wall screen stuck
/// in a reload loop, a script exporting everything) slows down alone instead of starving every
/// screen and the aggregator's ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Sustained `/v1` requests per minute per token.
    pub per_minute: f64,
    /// Requests a token may make at once above the sustained rate.
    pub burst: f64,
    /// `/v1` requests of one token in flight at once (live streams not counted).
    pub concurrent: usize,
    /// Live-stream connections of one token.
    pub live_per_token: usize,
    /// Live-stream connections in all.
    pub live_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_minute: 600.0,
            burst: 120.0,
            concurrent: 16,
            live_per_token: 50,
            live_total: 500,
        }
    }
}

/// Why a request was refused by [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// Over the per-token rate.
    Rate,
    /// Too many requests of the token in flight.
    Concurrency,
    /// Too many live streams (of the token or in all).
    LiveStreams,
}

#[derive(Debug, Default)]
struct Usage {
    /// Token bucket: tokens left and when it was last filled.
    bucket: Option<(f64, Instant)>,
    in_flight: usize,
    live: usize,
}

/// A slot held while a request (or a live stream) runs; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot<'a> {
    access: &'a Access,
    name: String,
    live: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.access.release(&self.name, self.live);
    }
}

/// A slot that outlives the request (a live stream), by name.
#[derive(Debug)]
pub struct OwnedSlot {
    access: std::sync::Arc<Access>,
    name: String,
}

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        self.access.release(&self.name, true);
    }
}

/// Tokens, sessions and the development switch of one `pingan serve`.
#[derive(Debug)]
pub struct Access {
    tokens: Vec<ReadToken>,
    dev: bool,
    sessions: Mutex<HashMap<String, (Principal, Instant)>>,
    limits: Limits,
    usage: Mutex<HashMap<String, Usage>>,
}

impl Access {
    /// Access with `tokens`. With `dev` and no tokens every request is answered as
    /// [`Principal::dev`] (the open development API); with tokens they are always required.
    pub fn new(tokens: Vec<ReadToken>, dev: bool) -> Access {
        Access {
            tokens,
            dev,
            sessions: Mutex::new(HashMap::new()),
            limits: Limits::default(),
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// The same access with other limits.
    pub fn with_limits(self, limits: Limits) -> Access {
        Access { limits, ..self }
    }

    /// Takes one request of `who` against its rate and concurrency limits. The open development
    /// API (no tokens) has none: every caller there is the same "dev" principal.
    pub fn admit(&self, who: &Principal) -> Result<Slot<'_>, LimitHit> {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let u = usage.entry(who.name.clone()).or_default();
        if self.is_open() {
            u.in_flight += 1;
            return Ok(Slot {
                access: self,
                name: who.name.clone(),
                live: false,
            });
        }
        let now = Instant::now();
        let (left, at) = u.bucket.unwrap_or((self.limits.burst, now));
        let refill = now.duration_since(at).as_secs_f64() * self.limits.per_minute / 60.0;
        let left = (left + refill).min(self.limits.burst);
        if left < 1.0 {
            u.bucket = Some((left, now));
            return Err(LimitHit::Rate);
        }
        if u.in_flight >= self.limits.concurrent {
            u.bucket = Some((left, now));
            return Err(LimitHit::Concurrency);
        }
        u.bucket = Some((left - 1.0, now));
        u.in_flight += 1;
        Ok(Slot {
            access: self,
            name: who.name.clone(),
            live: false,
        })
    }

    /// Takes one live-stream slot of `who` (per token and in all).
    pub fn admit_live(self: &std::sync::Arc<Self>, who: &Principal) -> Result<OwnedSlot, LimitHit> {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = usage.values().map(|u| u.live).sum();
        let u = usage.entry(who.name.clone()).or_default();
        let per_token = if self.is_open() {
            self.limits.live_total
        } else {
            self.limits.live_per_token
        };
        if u.live >= per_token || total >= self.limits.live_total {
            return Err(LimitHit::LiveStreams);
        }
        u.live += 1;
        Ok(OwnedSlot {
            access: self.clone(),
            name: who.name.clone(),
        })
    }

    fn release(&self, name: &str, live: bool) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = usage.get_mut(name) {
            if live {
                u.live = u.live.saturating_sub(1);
            } else {
                u.in_flight = u.in_flight.saturating_sub(1);
            }
        }
    }

    /// The open development API (tests, `pingan demo`).
    pub fn open_dev() -> Access {
        Access::new(Vec::new(), true)
    }

    /// Whether this is development mode (the dashboard shows a DEV marker).
    pub fn dev(&self) -> bool {
        self.dev
    }

    /// Whether requests need no credentials at all.
    pub fn is_open(&self) -> bool {
        self.dev && self.tokens.is_empty()
    }

    /// The principal a token secret belongs to.
    pub fn token(&self, secret: &str) -> Option<&Principal> {
        // Compare against every token in constant time per byte, so timing says nothing about
        // which token or how much of it matched.
        let mut found = None;
        for t in &self.tokens {
            if constant_time_eq(t.secret.expose().as_bytes(), secret.as_bytes()) {
                found = Some(&t.principal);
            }
        }
        found
    }

    /// Who sent a request with these headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        if self.is_open() {
            return Ok(Principal::dev());
        }
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let secret = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or(AuthFailure::Invalid)?;
            return self.token(secret).cloned().ok_or(AuthFailure::Invalid);
        }
        match session_cookie(headers) {
            Some(id) => self.session(id).ok_or(AuthFailure::Invalid),
            None => Err(AuthFailure::Missing),
        }
    }

    /// Opens a dashboard session for a valid token secret; returns the session id.
    pub fn login(&self, secret: &str) -> Option<(String, Principal)> {
        let principal = self.token(secret)?.clone();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, (_, at)| now.duration_since(*at) < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), (principal.clone(), now));
        Some((id, principal))
    }

    /// Ends the session of these headers, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
    }

    fn session(&self, id: &str) -> Option<Principal> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(id) {
            Some((p, at)) if at.elapsed() < SESSION_TTL => Some(p.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new session: `HttpOnly`, `SameSite=Strict`, `Secure` when the
/// dashboard is reached over TLS (directly or through a proxy that says so).
pub fn session_set_cookie(id: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let max_age = SESSION_TTL.as_secs();
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("pingan_session=; Path=/"))
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn session_clear_cookie() -> HeaderValue {
    HeaderValue::from_static("pingan_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// Whether the request reached us over TLS (a reverse proxy's `X-Forwarded-Proto`).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(list: &[&str]) -> (Vec<ReadToken>, Vec<String>) {
        let entries: Vec<Sensitive> = list.iter().map(|s| Sensitive::new(*s)).collect();
        let mut errors = Vec::new();
        let t = parse_tokens(&entries, &mut errors);
        (t, errors)
    }

    #[test]
    fn tokens_parse_and_every_problem_is_listed_without_secrets() {
        let (ok, errors) = tokens(&[
            "wall:viewer:310112102:wall-screen-secret-01",
            "ana:analyst:*:analyst-secret-0001",
            "st:admin:MH-PS-QIBAO:station-admin-secret",
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0].principal.scope, Scope::Town("310112102".into()));
        assert_eq!(ok[2].principal.scope, Scope::Station("MH-PS-QIBAO".into()));
        let (bad, errors) = tokens(&[
            "ok:viewer:*:long-enough-secret-009",
            "a:boss:*:long-enough-secret-000",
            "b:viewer:999999999:long-enough-secret-001",
            "c:viewer:*:short",
            "nocolons",
            "d:viewer:*:long-enough-secret-009",
        ]);
        assert_eq!(bad.len(), 1, "only the good one");
        assert_eq!(errors.len(), 5, "{errors:?}");
        let text = errors.join("\n");
        assert!(!text.contains("long-enough-secret"), "{text}");
    }

    #[test]
    fn scopes_cover_what_lies_inside_them() {
        let town = Scope::Town("310112102".into());
        assert!(town.covers(Dim::Town, "310112102"));
        assert!(!town.covers(Dim::Town, "310112107"));
        assert!(!town.covers(Dim::District, "310112"));
        assert!(town.covers(Dim::Station, "MH-PS-QIBAO"));
        assert!(!town.covers(Dim::Station, "MH-PS-HONGQIAO"));
        assert!(town.covers(Dim::Category, "FRAUD"));
        let station = Scope::Station("MH-PS-HONGQIAO".into());
        assert!(station.covers(Dim::Town, "310112107"));
        assert!(!station.covers(Dim::Town, "310112102"));
        assert!(town.covers_alert("town", "310112102"));
        assert!(!town.covers_alert("town", "310112107"));
        assert!(!town.covers_alert("district", "310112"));
        assert!(Scope::All.covers_alert("district", "310112"));
        assert!(town.covers_incident(Some("310112102"), None));
        assert!(!town.covers_incident(None, Some("MH-PS-QIBAO")));
    }

    #[test]
    fn a_token_over_its_rate_or_concurrency_is_refused_alone() {
        let (t, _) = tokens(&[
            "a:viewer:*:token-a-secret-000001",
            "b:viewer:*:token-b-secret-000001",
        ]);
        let access = std::sync::Arc::new(Access::new(t, false).with_limits(Limits {
            per_minute: 0.0,
            burst: 3.0,
            concurrent: 2,
            live_per_token: 1,
            live_total: 2,
        }));
        let a = access.token("token-a-secret-000001").unwrap().clone();
        let b = access.token("token-b-secret-000001").unwrap().clone();
        let s1 = access.admit(&a).unwrap();
        let s2 = access.admit(&a).unwrap();
        assert_eq!(access.admit(&a).unwrap_err(), LimitHit::Concurrency);
        drop((s1, s2));
        let _s3 = access.admit(&a).unwrap();
        assert_eq!(
            access.admit(&a).unwrap_err(),
            LimitHit::Rate,
            "burst of 3 spent"
        );
        assert!(access.admit(&b).is_ok(), "another token is not affected");
        let l1 = access.admit_live(&a).unwrap();
        assert_eq!(access.admit_live(&a).unwrap_err(), LimitHit::LiveStreams);
        let _l2 = access.admit_live(&b).unwrap();
        drop(l1);
        assert!(
            access.admit_live(&a).is_ok(),
            "a closed stream frees its slot"
        );
    }

    #[test]
    fn the_open_development_api_has_no_per_token_rate() {
        let access = Access::open_dev().with_limits(Limits {
            per_minute: 0.0,
            burst: 1.0,
            ..Limits::default()
        });
        let dev = Principal::dev();
        for _ in 0..10 {
            assert!(access.admit(&dev).is_ok());
        }
    }

    #[test]
    fn credentials_are_checked() {
        let (t, _) = tokens(&["wall:viewer:*:wall-screen-secret-01"]);
        let access = Access::new(t, false);
        let mut h = HeaderMap::new();
        assert_eq!(access.authenticate(&h), Err(AuthFailure::Missing));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wall-screen-secret-02"),
        );
        assert_eq!(access.authenticate(&h), Err(AuthFailure::Invalid));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wall-screen-secret-01"),
        );
        assert_eq!(access.authenticate(&h).unwrap().name, "wall");
        let (id, _) = access.login("wall-screen-secret-01").unwrap();
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}={id}")).unwrap(),
        );
        assert_eq!(access.authenticate(&c).unwrap().role, ReadRole::Viewer);
        access.logout(&c);
        assert_eq!(access.authenticate(&c), Err(AuthFailure::Invalid));
        assert!(access.login("nope-nope-nope-nope").is_none());
        assert!(Access::open_dev().authenticate(&HeaderMap::new()).is_ok());
    }
}
