//! Authenticated, role- and area-scoped reads against a real `pingan serve` (HTTP on a local
//! port) over real ClickHouse (CONTRACT §9 "Read tokens"): the role × endpoint × scope matrix
//! (401 / 403 / 200) including CSV and the live stream, answers narrowed to the token's scope,
//! the dashboard login cookie, and the access log of incident-level reads.

use std::time::Duration;

use pingan_runtime::config::Sensitive;
use pingan_tests::TestEnv;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const QIBAO: &str = "310112102";
const HONGQIAO: &str = "310112107";

const VIEWER: &str = "viewer-secret-0000001";
const VIEWER_QIBAO: &str = "viewer-qibao-secret-01";
const ANALYST_QIBAO: &str = "analyst-qibao-secret-1";
const ANALYST_STATION: &str = "analyst-station-secret";
const ADMIN: &str = "admin-secret-000000001";

struct Server {
    addr: std::net::SocketAddr,
    client: clickhouse::Client,
    db: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pingan_query::QueryError>>,
}

/// One incident an hour ago in `town` (stored now).
fn row(id: u128, town: &str, minutes_ago: u32, description: &str) -> String {
    format!(
        "('{}', 'call', now() - {}, 'FRAUD', 'FRAUD_FAKE_GOV', 'ANTIFRAUD', '310112', '{town}', NULL, NULL, 31.16, 121.35, '{description}')",
        uuid::Uuid::from_u128(id),
        u64::from(minutes_ago) * 60
    )
}

async fn insert(client: &clickhouse::Client, rows: &[String]) {
    client
        .query(&format!(
            "INSERT INTO incidents (event_id, source, event_time, category, subtype, department, district_code, town_code, station_code, compound_id, lat, lon, description) VALUES {}",
            rows.join(", ")
        ))
        .execute()
        .await
        .unwrap();
}

impl Server {
    async fn start() -> Server {
        let env = TestEnv::from_env();
        let settings = env.migrated_database().await;
        let db = settings.database.clone();
        let client = env.clickhouse().with_database(&db);
        insert(
            &client,
            &[
                row(1, QIBAO, 60, "七宝甲"),
                row(2, QIBAO, 90, "七宝乙"),
                row(3, HONGQIAO, 60, "虹桥甲"),
            ],
        )
        .await;
        let entries: Vec<Sensitive> = [
            format!("wall:viewer:*:{VIEWER}"),
            format!("qibao-wall:viewer:{QIBAO}:{VIEWER_QIBAO}"),
            format!("qibao-analyst:analyst:{QIBAO}:{ANALYST_QIBAO}"),
            format!("hq-analyst:analyst:MH-PS-HONGQIAO:{ANALYST_STATION}"),
            format!("ops:admin:*:{ADMIN}"),
        ]
        .into_iter()
        .map(Sensitive::new)
        .collect();
        let mut errors = Vec::new();
        let tokens = pingan_query::auth::parse_tokens(&entries, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let mut q = pingan_query::QuerySettings::new(
            "127.0.0.1:0".parse().unwrap(),
            settings,
            tokens,
            false,
        );
        q.live_interval = Duration::from_millis(200);
        let shutdown = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sd = shutdown.clone();
        let task = tokio::spawn(async move { pingan_query::run_with(q, sd, Some(tx)).await });
        let addr = rx.await.unwrap();
        Server {
            addr,
            client,
            db,
            shutdown,
            task,
        }
    }

    /// One HTTP/1.0 request: (status, headers, body).
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let (status, _, body) = self.request("GET", path, &headers, "").await;
        (status, body)
    }

    async fn json(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, Some(token)).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The status line and first bytes of the live stream (it never ends by itself).
    async fn live_status(&self, token: Option<&str>) -> u16 {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        s.write_all(format!("GET /v1/live HTTP/1.0\r\nHost: test\r\n{auth}\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n])
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        let _ = self
            .client
            .query(&format!("DROP DATABASE IF EXISTS {}", self.db))
            .execute()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_by_role_and_scope_401_403_200() {
    let _infra = pingan_tests::infra_shared().await;
    let srv = Server::start().await;
    let endpoints = [
        "/v1/meta",
        "/v1/counts?by=town",
        "/v1/heatmap?res=8",
        "/v1/rankings?level=town",
        "/v1/terms",
        "/v1/report",
        "/v1/alerts",
        "/v1/incidents",
        "/v1/counts?by=town&format=csv",
        "/v1/incidents?format=csv",
        "/v1/access-log",
    ];
    // (token, expected status per endpoint above)
    let matrix: [(Option<&str>, [u16; 11]); 7] = [
        (None, [401; 11]),
        (Some("not-a-token-at-all-000"), [401; 11]),
        (
            Some(VIEWER),
            [200, 200, 200, 200, 200, 200, 200, 403, 403, 403, 403],
        ),
        (
            Some(VIEWER_QIBAO),
            [200, 200, 200, 200, 200, 200, 200, 403, 403, 403, 403],
        ),
        (
            Some(ANALYST_QIBAO),
            [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 403],
        ),
        // A station scope cannot be applied to terms and the report (they have no station
        // dimension): refused rather than answered for more than the scope.
        (
            Some(ANALYST_STATION),
            [200, 200, 200, 200, 403, 403, 200, 200, 200, 200, 403],
        ),
        (Some(ADMIN), [200; 11]),
    ];
    for (token, want) in matrix {
        for (path, want) in endpoints.iter().zip(want) {
            let (status, body) = srv.get(path, token).await;
            assert_eq!(status, want, "{token:?} {path}: {body}");
            if want == 401 || want == 403 {
                let v: Value = serde_json::from_str(&body).unwrap();
                let code = if want == 401 {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                assert_eq!(v["error"]["code"], code, "{body}");
                assert!(v["error"]["message"].is_string() && v["error"]["details"].is_array());
            }
            for secret in [VIEWER, VIEWER_QIBAO, ANALYST_QIBAO, ANALYST_STATION, ADMIN] {
                assert!(!body.contains(secret), "a secret in a body: {body}");
            }
        }
        let want_live = match token {
            None | Some("not-a-token-at-all-000") => 401,
            _ => 200,
        };
        assert_eq!(
            srv.live_status(token).await,
            want_live,
            "{token:?} /v1/live"
        );
    }
    // Viewers never get building-level cells.
    assert_eq!(srv.get("/v1/heatmap?res=9", Some(VIEWER)).await.0, 403);
    // Health stays open.
    assert_eq!(srv.get("/healthz", None).await.0, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_token_sees_its_area_only_and_the_access_log_records_incident_reads() {
    let _infra = pingan_tests::infra_shared().await;
    let srv = Server::start().await;
    // Unfiltered: answered for the scope only.
    let v = srv.json("/v1/counts?by=town", VIEWER_QIBAO).await;
    assert_eq!(v["total"], 2, "{v}");
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["town"] == QIBAO),
        "{v}"
    );
    let all = srv.json("/v1/counts?by=town", VIEWER).await;
    assert_eq!(all["total"], 3, "{all}");
    // A filter outside the scope is refused, one inside it answered.
    let (status, body) = srv
        .get(&format!("/v1/counts?town={HONGQIAO}"), Some(VIEWER_QIBAO))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("outside this token's scope"), "{body}");
    assert_eq!(
        srv.get("/v1/counts?district=310112", Some(VIEWER_QIBAO))
            .await
            .0,
        403
    );
    assert_eq!(
        srv.json(&format!("/v1/counts?town={QIBAO}"), VIEWER_QIBAO)
            .await["total"],
        2
    );
    // Incident rows: only the scope's, with their (redacted) text for the analyst.
    let inc = srv.json("/v1/incidents", ANALYST_QIBAO).await;
    let towns: Vec<&str> = inc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["town"].as_str().unwrap())
        .collect();
    assert_eq!(towns, [QIBAO, QIBAO], "{inc}");
    let (status, csv) = srv
        .get("/v1/incidents?format=csv", Some(ANALYST_QIBAO))
        .await;
    assert_eq!(status, 200);
    assert!(csv.contains("七宝甲") && !csv.contains("虹桥甲"), "{csv}");

    // The access log: who read what, how many rows; admins only.
    let log = srv.json("/v1/access-log", ADMIN).await;
    let entries = log["entries"].as_array().unwrap();
    let reads: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap(),
                e["endpoint"].as_str().unwrap(),
                e["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        reads.contains(&("qibao-analyst", "/v1/incidents", 2)),
        "{reads:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["filters"] == "format=csv" && e["principal"] == "qibao-analyst"),
        "{log}"
    );
    assert!(
        !reads.iter().any(|(p, _, _)| *p == "qibao-wall"),
        "aggregate reads are not incident-level: {reads:?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_carries_only_what_the_token_may_see() {
    let _infra = pingan_tests::infra_shared().await;
    let srv = Server::start().await;
    let open = |token: &'static str| {
        let addr = srv.addr;
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!(
                    "GET /v1/live HTTP/1.0\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
            s
        }
    };
    let mut analyst = open(ANALYST_QIBAO).await;
    let mut viewer = open(VIEWER_QIBAO).await;
    // Let both subscribe before anything is stored, then store 虹桥 first and 七宝 second:
    // a stream that leaked would carry 虹桥's incident before 七宝's.
    tokio::time::sleep(Duration::from_millis(800)).await;
    insert(
        &srv.client,
        &[row(10, HONGQIAO, 3, "虹桥新"), row(11, QIBAO, 1, "七宝新")],
    )
    .await;
    let qibao_id = uuid::Uuid::from_u128(11).to_string();
    let hongqiao_id = uuid::Uuid::from_u128(10).to_string();
    let mut seen = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(&qibao_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the 七宝 incident never reached the analyst's stream: {seen}"
        );
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(500), analyst.read(&mut buf)).await
        {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(
        !seen.contains(&hongqiao_id),
        "another town's incident leaked: {seen}"
    );
    assert!(
        seen.contains("event: counts"),
        "scoped counters are sent: {seen}"
    );
    // The viewer gets counters, never incident rows.
    let mut vseen = String::new();
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), viewer.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        vseen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(vseen.starts_with("HTTP/1.0 200"), "{vseen}");
    assert!(!vseen.contains("event: incident"), "{vseen}");
    assert!(!vseen.contains("七宝新"), "{vseen}");
    // Scoped counters: the 七宝 viewer's total counts 七宝 only (3 stored there by now).
    let totals: Vec<u64> = vseen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["today_total"].as_u64())
        .collect();
    assert!(!totals.is_empty(), "{vseen}");
    assert!(totals.iter().all(|t| *t <= 3), "{totals:?}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_login_sets_a_strict_http_only_session_cookie() {
    let _infra = pingan_tests::infra_shared().await;
    let srv = Server::start().await;
    let (status, _, body) = srv
        .request(
            "POST",
            "/v1/session",
            &[],
            r#"{"token":"wrong-token-000000000"}"#,
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, head, body) = srv
        .request(
            "POST",
            "/v1/session",
            &[("X-Forwarded-Proto", "https")],
            &format!(r#"{{"token":"{VIEWER_QIBAO}"}}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie_line.contains(attr), "{cookie_line}");
    }
    assert!(
        !cookie_line.contains(VIEWER_QIBAO),
        "the cookie is not the token"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["role"].as_str(), v["dev"].as_bool()),
        (Some("viewer"), Some(false))
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (status, _, body) = srv
        .request("GET", "/v1/counts", &[("Cookie", &cookie)], "")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = srv
        .request("GET", "/v1/incidents", &[("Cookie", &cookie)], "")
        .await;
    assert_eq!(status, 403, "the session has the token's role");
    srv.request("DELETE", "/v1/session", &[("Cookie", &cookie)], "")
        .await;
    let (status, _, _) = srv
        .request("GET", "/v1/counts", &[("Cookie", &cookie)], "")
        .await;
    assert_eq!(status, 401, "logged out");
    // Without TLS the cookie is not marked Secure (the browser would drop it on http://).
    let (_, head, _) = srv
        .request(
            "POST",
            "/v1/session",
            &[],
            &format!(r#"{{"token":"{VIEWER}"}}"#),
        )
        .await;
    assert!(!head.contains("Secure"), "{head}");
    srv.stop().await;
}

#[test]
fn serve_refuses_to_start_without_tokens_unless_dev() {
    let bin = pingan_tests::pingan_bin();
    let out = std::process::Command::new(&bin)
        .arg("serve")
        .env_remove("PINGAN__SERVE__TOKENS")
        .env_remove("PINGAN__DEV")
        .env("PINGAN__SERVE__LISTEN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serve.tokens is not set"), "{err}");
    // `ingest` lists every missing secret at once.
    let out = std::process::Command::new(&bin)
        .arg("ingest")
        .env_remove("PINGAN__DEV")
        .env_remove("PINGAN__PII__KEY")
        .env_remove("PINGAN__QR__KEYS")
        .env_remove("PINGAN__INGEST__API_TOKENS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["pii.key", "qr.keys", "ingest.api_tokens"] {
        assert!(err.contains(&format!("{key} is not set")), "{key}: {err}");
    }
    // --dev accepts the development keys: the configuration check passes.
    let out = std::process::Command::new(&bin)
        .args(["--dev", "--check-config", "serve"])
        .env_remove("PINGAN__SERVE__TOKENS")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_type_names_its_key_and_secrets_never_reach_the_output() {
    let bin = pingan_tests::pingan_bin();
    let out = std::process::Command::new(&bin)
        .args(["--dev", "--check-config", "ingest"])
        .env("PINGAN__INGEST__QR_CLIENT_PER_MINUTE", "-3")
        .env("PINGAN__KAFKA__MESSAGE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ingest.qr_client_per_minute: "), "{err}");
    assert!(err.contains("kafka.message_timeout"), "{err}");
    let secrets = [
        "pii-key-secret-98765432",
        "qr-key-secret-98765432",
        "cad-token-secret-98765432",
        "read-token-secret-98765432",
        "ch-password-98765432",
    ];
    let dir = std::env::temp_dir().join(pingan_tests::unique("pingan_cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pingan.toml");
    std::fs::write(
        &file,
        "[kafka.librdkafka]\n\"sasl.password\" = \"sasl-secret-98765432\"\n\"sasl.username\" = \"svc\"\n",
    )
    .unwrap();
    for svc in ["ingest", "serve"] {
        let out = std::process::Command::new(&bin)
            .args(["--config", file.to_str().unwrap(), "--check-config", svc])
            .env("PINGAN__PII__KEY", secrets[0])
            .env("PINGAN__QR__KEYS", format!("v1:{}", secrets[1]))
            .env("PINGAN__INGEST__API_TOKENS", secrets[2])
            .env(
                "PINGAN__SERVE__TOKENS",
                format!("ops:admin:*:{}", secrets[3]),
            )
            .env("PINGAN__CLICKHOUSE__PASSWORD", secrets[4])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        for s in secrets.iter().chain(&["sasl-secret-98765432"]) {
            assert!(
                !text.contains(s),
                "{s} printed by --check-config {svc}:\n{text}"
            );
        }
    }
    // A setting this build cannot serve is refused, naming it.
    let out = std::process::Command::new(&bin)
        .args(["--dev", "--check-config", "aggregate"])
        .env("PINGAN__CLICKHOUSE__URL", "https://ch.example:8443")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https:// is not supported"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Starts `pingan <args>` with `env`, waits until its log contains `ready` (or it exits), stops
/// it and returns everything it printed.
fn run_until_logged(args: &[&str], env: &[(&str, String)], ready: &str) -> String {
    use std::io::Read;
    let dir = std::env::temp_dir().join(pingan_tests::unique("pingan_log"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("out.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(pingan_tests::pingan_bin());
    cmd.args(args)
        .env("PINGAN__LOG__FORMAT", "json")
        .env("PINGAN__LOG__FILTER", "debug,rdkafka=warn,librdkafka=warn")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = pingan_tests::KillOnDrop(cmd.spawn().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text.clear();
        std::fs::File::open(&log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        if text.contains(ready) || child.0.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child);
    std::fs::remove_dir_all(&dir).ok();
    assert!(text.contains(ready), "never logged {ready:?}:\n{text}");
    text
}

#[test]
fn secrets_never_reach_the_logs_of_ingest_and_serve() {
    // ingest needs the broker to start.
    let _env = pingan_tests::TestEnv::from_env();
    let secrets = [
        "pii-key-secret-55554444",
        "qr-key-secret-55554444",
        "cad-token-secret-55554444",
        "read-token-secret-55554444",
    ];
    let env = [
        ("PINGAN__PII__KEY", secrets[0].to_owned()),
        ("PINGAN__QR__KEYS", format!("v1:{}", secrets[1])),
        ("PINGAN__INGEST__API_TOKENS", secrets[2].to_owned()),
        (
            "PINGAN__SERVE__TOKENS",
            format!("ops:admin:*:{}", secrets[3]),
        ),
        ("PINGAN__INGEST__LISTEN", "127.0.0.1:0".to_owned()),
        ("PINGAN__SERVE__LISTEN", "127.0.0.1:0".to_owned()),
    ];
    for (svc, ready) in [("ingest", "ingest service started"), ("serve", "listening")] {
        let text = run_until_logged(&[svc], &env, ready);
        for s in secrets {
            assert!(!text.contains(s), "{s} in the log of {svc}:\n{text}");
        }
    }
}
