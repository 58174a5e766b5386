//! Ingest against the real broker (issue 3): calls and QR reports land on their topics
//! pseudonymised; resends keep their ids; bad signatures produce nothing; every bad-input corpus
//! case gets its status and produces nothing; a broker outage yields 503s and never a 202, and
//! after the restart every acknowledged event id is on the topic exactly as sent.
//!
//! The service runs in-process on `127.0.0.1:0` through `pingan_ingest::serve`; requests are
//! written as raw HTTP/1.1 over TCP so the corpus can send exactly the bytes it wants (invalid
//! UTF-8, lying `Content-Length`, unterminated chunked bodies, half-sent headers).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingan_domain::area::AreaIndex;
use pingan_domain::events::{CallRecord, QrScanRecord, TOPIC_CALLS, TOPIC_QR};
use pingan_ingest::publish::KafkaPublisher;
use pingan_ingest::{AppState, IngestConfig, IngestSettings, PiiConfig, QrConfig};
use pingan_pipeline::client::KafkaConfig;
use pingan_runtime::config::Sensitive;
use pingan_tests::{TestEnv, infra_exclusive, infra_shared, services, wait_until};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TOKEN: &str = "integration-cad-token-0123456789";

// ---------------------------------------------------------------------------------------------
// An in-process ingest service
// ---------------------------------------------------------------------------------------------

struct Service {
    addr: SocketAddr,
    settings: IngestSettings,
    registry: prometheus::Registry,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pingan_ingest::IngestError>>,
}

impl Service {
    async fn start(kafka: &KafkaConfig, tweak: impl FnOnce(&mut IngestConfig)) -> Service {
        let mut cfg = IngestConfig {
            listen: "127.0.0.1:0".into(),
            ..IngestConfig::default()
        };
        tweak(&mut cfg);
        let settings = IngestSettings::from_config(
            &cfg,
            &QrConfig::default(),
            &PiiConfig::default(),
            kafka,
            true,
        )
        .unwrap();
        let publisher = KafkaPublisher::new(kafka, settings.publish_deadline).unwrap();
        let registry = prometheus::Registry::new();
        let state = AppState::new(settings.clone(), Arc::new(publisher), &registry).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pingan_ingest::serve(listener, state, shutdown.clone()));
        Service {
            addr,
            settings,
            registry,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("ingest stops within the drain deadline");
        res.unwrap().expect("clean shutdown: producer flushed");
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .filter(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    }

    fn produced(&self) -> f64 {
        self.counter("pingan_ingest_records_produced_total", &[])
    }

    async fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> Resp {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        raw(self.addr, &bytes, Duration::from_secs(30))
            .await
            .expect("a response")
    }

    async fn get(&self, path: &str) -> Resp {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        raw(self.addr, req.as_bytes(), Duration::from_secs(10))
            .await
            .expect("a response")
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `request` (concurrently with reading, so an early answer to a huge body is seen) and
/// reads until the server closes. `None` when the server closed without answering.
async fn raw(addr: SocketAddr, request: &[u8], timeout: Duration) -> Option<Resp> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let req = request.to_vec();
    let done = CancellationToken::new();
    let writer_done = done.clone();
    tokio::spawn(async move {
        let _ = wr.write_all(&req).await;
        let _ = wr.flush().await;
        // Keep the write half open (no FIN): unterminated bodies and headers must be ended by
        // the server's timeouts, not by our EOF.
        writer_done.cancelled().await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no response within {timeout:?}; got {} bytes", buf.len()),
        }
        if response_complete(&buf) {
            break;
        }
    }
    done.cancel();
    parse_response(&buf)
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = head_end(buf) else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|n| buf.len() >= end + 4 + n)
}

fn parse_response(buf: &[u8]) -> Option<Resp> {
    let end = head_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < pos + 2 + n {
            break;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + n]);
        b = &b[(pos + 4 + n).min(b.len())..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading topics back
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Rec {
    key: String,
    payload: Vec<u8>,
    headers: HashMap<String, Vec<u8>>,
}

fn consumer(env: &TestEnv) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .set("group.id", pingan_tests::unique("ingest-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap()
}

/// High watermarks of every partition of `topic`.
fn watermarks(env: &TestEnv, topic: &str) -> BTreeMap<i32, i64> {
    let c = consumer(env);
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    assert!(
        !parts.is_empty(),
        "topic {topic} has partitions (run `make up`)"
    );
    parts
        .into_iter()
        .map(|p| {
            (
                p,
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
                    .1,
            )
        })
        .collect()
}

/// Every record of `topic` from `since` up to the current high watermarks.
fn read_since(env: &TestEnv, topic: &str, since: &BTreeMap<i32, i64>) -> Vec<Rec> {
    let until = watermarks(env, topic);
    let c = consumer(env);
    let mut tpl = TopicPartitionList::new();
    let mut pending: HashSet<i32> = HashSet::new();
    for (p, start) in since {
        if until[p] > *start {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*start))
                .unwrap();
            pending.insert(*p);
        }
    }
    let mut out = Vec::new();
    if pending.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        let Some(m) = c.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.unwrap();
        if m.offset() + 1 >= until[&m.partition()] {
            pending.remove(&m.partition());
        }
        if m.offset() >= until[&m.partition()] {
            continue;
        }
        let mut headers = HashMap::new();
        if let Some(h) = m.headers() {
            for hdr in h.iter() {
                headers.insert(hdr.key.to_owned(), hdr.value.unwrap_or_default().to_vec());
            }
        }
        out.push(Rec {
            key: String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn now_shanghai() -> String {
    pingan_domain::time::to_shanghai(&chrono::Utc::now()).to_rfc3339()
}

fn call(n: usize, phone: &str) -> Value {
    json!({
        "call_id": format!("310112-IT-{n:05}"),
        "received_at": now_shanghai(),
        "description": format!("报警人称七宝老街汤团店给错品种，双方发生纠纷 #{n}"),
        "caller_phone": phone,
        "address": "七宝镇青年路",
        "location": {"lat": 31.156, "lon": 121.3466},
        "town_code": "310112102",
        "priority": 3,
    })
}

fn plate(n: usize) -> String {
    AreaIndex::builtin()
        .doorplates()
        .nth(n)
        .unwrap()
        .plate_id
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_calls_land_on_the_topic_pseudonymised_and_resends_keep_their_ids() {
    let _infra = infra_shared().await;
    let env = TestEnv::from_env();
    let svc = Service::start(&env.kafka_config(), |_| {}).await;
    let since = watermarks(&env, TOPIC_CALLS);

    let phones = ["+86 138-1234-1234", "13912345678", "021-64881234"];
    let mut items: Vec<Value> = phones.iter().enumerate().map(|(i, p)| call(i, p)).collect();
    let client_id = Uuid::new_v4();
    items[0]["event_id"] = json!(client_id.to_string());
    let body = Value::Array(items.clone()).to_string();
    let rid = format!("it-{}", Uuid::new_v4().simple());
    let r1 = svc
        .post("/v1/calls", &body, &[("x-request-id", &rid)])
        .await;
    assert_eq!(r1.status, 202, "{:?}", r1.json());
    let v1 = r1.json();
    assert_eq!(v1["accepted"], 3);
    let ids: Vec<String> = v1["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids[0], client_id.to_string(), "client ids are kept");
    for id in &ids[1..] {
        assert_eq!(
            id.parse::<Uuid>().unwrap().get_version_num(),
            7,
            "server ids are UUIDv7"
        );
    }

    let recs = read_since(&env, TOPIC_CALLS, &since);
    let hasher = &svc.settings.hasher;
    for (i, id) in ids.iter().enumerate() {
        let mine: Vec<&Rec> = recs.iter().filter(|r| &r.key == id).collect();
        assert_eq!(
            mine.len(),
            1,
            "event {id} is on {TOPIC_CALLS} once, keyed by its id"
        );
        let rec = mine[0];
        assert_eq!(
            rec.headers.get("x-request-id").map(Vec::as_slice),
            Some(rid.as_bytes())
        );
        let text = String::from_utf8(rec.payload.clone()).unwrap();
        let digits: String = phones[i].chars().filter(char::is_ascii_digit).collect();
        let national = digits
            .strip_prefix("86")
            .filter(|_| phones[i].starts_with('+'))
            .unwrap_or(&digits);
        assert!(
            !text.contains(national) && !text.contains(phones[i]),
            "clear phone in {text}"
        );
        let parsed: CallRecord = serde_json::from_slice(&rec.payload).unwrap();
        let caller = parsed.caller.unwrap();
        assert_eq!(
            caller,
            hasher.tokenize(phones[i]).unwrap(),
            "keyed hash + mask"
        );
        assert!(caller.hash.starts_with("hmac-sha256:dev:"));
        assert!(caller.masked.contains("****"));
        assert_eq!(
            parsed.description,
            items[i]["description"].as_str().unwrap()
        );
        assert_eq!(parsed.call_id.as_deref(), items[i]["call_id"].as_str());
    }
    assert_eq!(
        recs.iter()
            .find(|r| r.key == ids[0])
            .map(|r| serde_json::from_slice::<CallRecord>(&r.payload)
                .unwrap()
                .caller
                .unwrap()
                .masked),
        Some("*******1234".into())
    );

    // Resending a body with client ids yields the same ids.
    let mut with_ids = items.clone();
    for (item, id) in with_ids.iter_mut().zip(&ids) {
        item["event_id"] = json!(id);
    }
    let body = Value::Array(with_ids).to_string();
    let a = svc.post("/v1/calls", &body, &[]).await;
    let b = svc.post("/v1/calls", &body, &[]).await;
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(a.json()["event_ids"], b.json()["event_ids"]);
    assert_eq!(a.json()["event_ids"], v1["event_ids"]);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_qr_reports_land_and_bad_signatures_produce_nothing() {
    let _infra = infra_shared().await;
    let env = TestEnv::from_env();
    let svc = Service::start(&env.kafka_config(), |_| {}).await;
    let since = watermarks(&env, TOPIC_QR);
    let p = plate(4242);

    // The form is served for a signed plate and shows its address.
    let path = svc.settings.signer.signed_path(&p).unwrap();
    let form = svc.get(&path).await;
    assert_eq!(form.status, 200);
    let html = String::from_utf8(form.body.clone()).unwrap();
    assert!(html.contains(&AreaIndex::builtin().doorplate(&p).unwrap().address_zh));
    assert_eq!(svc.get(&format!("/qr/{p}?sig=dev.00")).await.status, 403);

    let good_id = Uuid::new_v4();
    let body = json!({
        "plate_id": p, "sig": svc.settings.signer.sign(&p).unwrap(), "kind": "help",
        "description": "老人走失，穿蓝色外套", "contact_phone": "13812341234", "event_id": good_id.to_string(),
    });
    let r = svc.post("/v1/qr-scans", &body.to_string(), &[]).await;
    assert_eq!(r.status, 202, "{:?}", r.json());
    // The client's id is namespaced (it could be a 110 call's), stable across retries.
    let stored_id = pingan_domain::events::qr_event_id(&p, Some(good_id));
    assert_eq!(r.json(), json!({"event_id": stored_id.to_string()}));

    let bad_id = Uuid::new_v4();
    let mut bad = body.clone();
    bad["sig"] = json!(svc.settings.signer.sign(&plate(1)).unwrap());
    bad["event_id"] = json!(bad_id.to_string());
    let produced_before = svc.produced();
    let r = svc.post("/v1/qr-scans", &bad.to_string(), &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "bad_signature");
    assert_eq!(svc.produced(), produced_before, "a 403 produces nothing");

    let recs = read_since(&env, TOPIC_QR, &since);
    let good: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.key == stored_id.to_string())
        .collect();
    assert_eq!(good.len(), 1);
    let rec: QrScanRecord = serde_json::from_slice(&good[0].payload).unwrap();
    assert_eq!(rec.plate_id, p);
    assert_eq!(rec.submitted_at.offset().local_minus_utc(), 8 * 3600);
    assert_eq!(rec.contact.unwrap().masked, "*******1234");
    assert!(!String::from_utf8_lossy(&good[0].payload).contains("13812341234"));
    assert!(
        recs.iter().all(|r| r.key != bad_id.to_string()),
        "nothing produced for the forged report"
    );
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Bad-input corpus
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Case {
    name: String,
    expect: Expect,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Status(u16),
    /// The server closes the connection without an answer (header timeout).
    Closed,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/ingest")
}

/// Expands a case file: `# expect: NNN|closed` and `# …` comment lines first, then the request
/// head, a blank line, the body. Placeholders: `{{PLATE}}`, `{{SIG}}` (valid for PLATE) and its
/// variants `{{SIG_TRUNCATED}}`, `{{SIG_OLD_VERSION}}`, `{{SIG_VERSION_UPPER}}`,
/// `{{SIG_HEX_UPPER}}`, `{{OTHER_SIG}}` (valid for another plate), `{{UNKNOWN_PLATE}}` and
/// `{{UNKNOWN_PLATE_SIG}}` (a well-signed plate id that is not in service), `{{NOW}}`, `{{FUTURE_2H}}`, `{{PAST_2D}}`,
/// `{{UUID}}`, `{{AUTH}}` (the bearer header line), `{{REPEAT n text}}`, `{{HEX aa bb}}`
/// (raw bytes), `{{LEN}}` (the expanded body's length). Head lines are sent with CRLF.
fn load_case(path: &Path, settings: &IngestSettings, run: &str) -> Case {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let mut expect = None;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(l) = lines.peek() {
        let Some(comment) = l.strip_prefix('#') else {
            break;
        };
        if let Some(v) = comment.trim().strip_prefix("expect:") {
            expect = Some(match v.trim() {
                "closed" => Expect::Closed,
                n => Expect::Status(
                    n.parse()
                        .unwrap_or_else(|_| panic!("{name}: bad expect {n:?}")),
                ),
            });
        }
        lines.next();
    }
    let rest: String = lines.collect();
    let (head, body) = match rest.split_once("\n\n") {
        Some((h, b)) => (
            h.to_owned(),
            Some(b.strip_suffix('\n').unwrap_or(b).to_owned()),
        ),
        None => (rest.trim_end_matches('\n').to_owned(), None),
    };
    let p = plate(7);
    let sig = settings.signer.sign(&p).unwrap();
    let (version, tag) = sig.split_once('.').unwrap();
    let unknown_plate = "MHQR-999-00100001";
    let mut vars: Vec<(&str, String)> = vec![
        ("{{PLATE}}", p),
        ("{{SIG}}", sig.clone()),
        ("{{SIG_TRUNCATED}}", sig[..sig.len() - 2].to_owned()),
        ("{{SIG_OLD_VERSION}}", format!("v0.{tag}")),
        (
            "{{SIG_VERSION_UPPER}}",
            format!("{}.{tag}", version.to_uppercase()),
        ),
        (
            "{{SIG_HEX_UPPER}}",
            format!("{version}.{}", tag.to_uppercase()),
        ),
        ("{{UNKNOWN_PLATE}}", unknown_plate.to_owned()),
        (
            "{{UNKNOWN_PLATE_SIG}}",
            settings.signer.sign(unknown_plate).unwrap(),
        ),
        ("{{OTHER_SIG}}", settings.signer.sign(&plate(8)).unwrap()),
        ("{{NOW}}", now_shanghai()),
        (
            "{{FUTURE_2H}}",
            pingan_domain::time::to_shanghai(&(chrono::Utc::now() + chrono::Duration::hours(2)))
                .to_rfc3339(),
        ),
        (
            "{{PAST_2D}}",
            pingan_domain::time::to_shanghai(&(chrono::Utc::now() - chrono::Duration::days(2)))
                .to_rfc3339(),
        ),
        ("{{UUID}}", Uuid::new_v4().to_string()),
        ("{{AUTH}}", format!("Authorization: Bearer {TOKEN}")),
    ];
    let body = body.map(|b| expand(&b, &mut vars));
    let len = body.as_ref().map_or(0, Vec::len);
    vars.push(("{{LEN}}", len.to_string()));
    let head = String::from_utf8(expand(&head, &mut vars)).unwrap();
    let mut bytes = Vec::new();
    let mut head_lines: Vec<&str> = head.lines().collect();
    let request_id = format!("x-request-id: {run}-{name}");
    head_lines.insert(1, &request_id);
    let complete_head = body.is_some();
    for (i, l) in head_lines.iter().enumerate() {
        bytes.extend_from_slice(l.as_bytes());
        if complete_head || i + 1 < head_lines.len() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    if let Some(b) = body {
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&b);
    }
    Case {
        name: name.clone(),
        expect: expect.unwrap_or_else(|| panic!("{name}: no `# expect:` line")),
        bytes,
    }
}

fn expand(s: &str, vars: &mut [(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let end = start + rest[start..].find("}}").expect("closing }}") + 2;
        let token = &rest[start..end];
        let inner = &token[2..token.len() - 2];
        if let Some(args) = inner.strip_prefix("REPEAT ") {
            let (n, text) = args.split_once(' ').unwrap();
            out.extend_from_slice(text.repeat(n.parse().unwrap()).as_bytes());
        } else if let Some(hex) = inner.strip_prefix("HEX ") {
            out.extend(
                hex.split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).unwrap()),
            );
        } else {
            let v = vars
                .iter()
                .find(|(k, _)| *k == token)
                .unwrap_or_else(|| panic!("unknown placeholder {token}"));
            out.extend_from_slice(v.1.as_bytes());
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_bad_input_corpus() {
    let _infra = infra_shared().await;
    let env = TestEnv::from_env();
    let svc = Service::start(&env.kafka_config(), |c| {
        c.api_tokens = vec![Sensitive::new(TOKEN)];
        c.header_timeout = "2s".into();
        c.body_timeout = "2s".into();
        c.qr_client_per_minute = 100_000;
        c.qr_client_burst = 100_000;
        c.qr_plate_per_minute = 100_000;
        c.qr_plate_burst = 100_000;
    })
    .await;
    let since_calls = watermarks(&env, TOPIC_CALLS);
    let since_qr = watermarks(&env, TOPIC_QR);
    let run = format!("corpus-{}", Uuid::new_v4().simple());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 40,
        "the corpus has its cases ({})",
        paths.len()
    );

    let mut failures = Vec::new();
    let mut accepted_cases = HashSet::new();
    let mut statuses = BTreeMap::new();
    for path in &paths {
        let case = load_case(path, &svc.settings, &run);
        let produced_before = svc.produced();
        let got = match raw(svc.addr, &case.bytes, Duration::from_secs(20)).await {
            Some(r) => Expect::Status(r.status),
            None => Expect::Closed,
        };
        *statuses.entry(format!("{got:?}")).or_insert(0) += 1;
        if got != case.expect {
            failures.push(format!(
                "{}: expected {:?}, got {got:?}",
                case.name, case.expect
            ));
        }
        let produced = svc.produced() - produced_before;
        if matches!(case.expect, Expect::Status(202)) {
            accepted_cases.insert(format!("{run}-{}", case.name));
        } else if produced != 0.0 {
            failures.push(format!(
                "{}: produced {produced} record(s) for a rejected request",
                case.name
            ));
        }
        // The service keeps serving after every case.
        let health = svc.get("/healthz").await;
        if health.status != 200 {
            failures.push(format!(
                "{}: /healthz answered {} afterwards",
                case.name, health.status
            ));
        }
    }
    eprintln!("corpus: {} cases, statuses {statuses:?}", paths.len());
    assert!(
        failures.is_empty(),
        "corpus failures:\n  {}",
        failures.join("\n  ")
    );

    // Rejects were counted by reason.
    let rejects = svc.counter("pingan_ingest_rejected_requests_total", &[]);
    assert!(
        rejects >= (paths.len() - accepted_cases.len() - 2) as f64,
        "rejects counted: {rejects}"
    );
    // On the topics, exactly the accepted cases appear.
    let mut seen = HashSet::new();
    for rec in read_since(&env, TOPIC_CALLS, &since_calls)
        .into_iter()
        .chain(read_since(&env, TOPIC_QR, &since_qr))
    {
        let rid = String::from_utf8_lossy(
            rec.headers
                .get("x-request-id")
                .map_or(&[][..], Vec::as_slice),
        )
        .to_string();
        if rid.starts_with(&run) {
            assert!(
                accepted_cases.contains(&rid),
                "record from a rejected case {rid}"
            );
            seen.insert(rid);
        }
    }
    assert_eq!(seen, accepted_cases, "every accepted case is on its topic");
    // Still healthy and accepting.
    let ok = svc
        .post(
            "/v1/calls",
            &call(1, "13812341234").to_string(),
            &[("Authorization", &format!("Bearer {TOKEN}"))],
        )
        .await;
    assert_eq!(ok.status, 202);
    svc.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Broker outage
// ---------------------------------------------------------------------------------------------

/// Waits until the broker answers metadata for both ingest topics with a leader for every
/// partition. (No probe record is produced: anything on these topics is read by the classifier.)
async fn wait_for_broker(env: &TestEnv) {
    let c = consumer(env);
    wait_until(
        "the broker serves both ingest topics again",
        Duration::from_secs(120),
        || {
            let ok = [TOPIC_CALLS, TOPIC_QR].iter().all(|topic| {
                c.fetch_metadata(Some(topic), Duration::from_secs(3))
                    .is_ok_and(|md| {
                        md.topics().first().is_some_and(|t| {
                            t.error().is_none()
                                && !t.partitions().is_empty()
                                && t.partitions()
                                    .iter()
                                    .all(|p| p.leader() >= 0 && p.error().is_none())
                        })
                    })
            });
            async move { ok }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_broker_outage_gives_503_never_202_and_retries_land_exactly() {
    let _infra = infra_exclusive().await;
    let env = TestEnv::from_env();
    let kafka = KafkaConfig {
        message_timeout: "3s".into(),
        ..env.kafka_config()
    };
    let svc = Service::start(&kafka, |c| c.request_timeout = "20s".into()).await;
    let since = watermarks(&env, TOPIC_CALLS);

    let batch = |tag: &str| -> Value {
        Value::Array(
            (0..5)
                .map(|i| {
                    let mut c = call(i, "13812341234");
                    c["event_id"] = json!(Uuid::new_v4().to_string());
                    c["description"] = json!(format!("断网测试 {tag} #{i}"));
                    c
                })
                .collect(),
        )
    };
    let mut sent: HashMap<String, Value> = HashMap::new();
    let mut acked: HashSet<String> = HashSet::new();
    let remember = |sent: &mut HashMap<String, Value>, body: &Value| {
        for item in body.as_array().unwrap() {
            sent.insert(item["event_id"].as_str().unwrap().to_owned(), item.clone());
        }
    };

    let before = batch("before");
    remember(&mut sent, &before);
    let r = svc.post("/v1/calls", &before.to_string(), &[]).await;
    assert_eq!(r.status, 202);
    acked.extend(
        r.json()["event_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned()),
    );

    services::kill("kafka");
    // Whatever happens below, the broker comes back before the exclusive guard is released.
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            if std::thread::panicking() {
                services::start("kafka");
            }
        }
    }
    let restart_guard = Restart;

    let during: Vec<Value> = (0..3).map(|i| batch(&format!("during-{i}"))).collect();
    let deadline = svc.settings.publish_deadline + Duration::from_secs(2);
    for b in &during {
        remember(&mut sent, b);
        let t = Instant::now();
        let r = svc.post("/v1/calls", &b.to_string(), &[]).await;
        let took = t.elapsed();
        assert_eq!(
            r.status,
            503,
            "no 202 while the broker is down: {:?}",
            r.json()
        );
        assert!(r.header("retry-after").is_some(), "503 carries Retry-After");
        assert!(
            took <= deadline,
            "503 within the configured deadline: {took:?} > {deadline:?}"
        );
        eprintln!("outage: 503 after {took:?} ({})", r.json()["error"]["code"]);
    }
    assert_eq!(
        svc.get("/readyz").await.status,
        503,
        "not ready without the broker"
    );

    services::start("kafka");
    drop(restart_guard);
    wait_for_broker(&env).await;

    // Retry every batch with the same ids until Kafka takes it.
    for b in &during {
        let mut last = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(90) {
            let r = svc.post("/v1/calls", &b.to_string(), &[]).await;
            last = r.status;
            if r.status == 202 {
                let ids: Vec<String> = r.json()["event_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                let expected: Vec<String> = b
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["event_id"].as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(ids, expected, "a retry keeps the client's ids");
                acked.extend(ids);
                break;
            }
            assert_eq!(r.status, 503, "only 202 or 503: {:?}", r.json());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(last, 202, "the retry succeeds after the broker restarts");
    }
    assert_eq!(svc.get("/readyz").await.status, 200);

    // Every acknowledged event id is on the topic exactly as sent.
    let recs = read_since(&env, TOPIC_CALLS, &since);
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for rec in &recs {
        if let Some(item) = sent.get(&rec.key) {
            let parsed: CallRecord = serde_json::from_slice(&rec.payload).unwrap();
            assert_eq!(parsed.event_id.to_string(), rec.key);
            assert_eq!(parsed.description, item["description"].as_str().unwrap());
            assert_eq!(parsed.call_id.as_deref(), item["call_id"].as_str());
            assert_eq!(
                parsed.received_at.to_rfc3339(),
                item["received_at"].as_str().unwrap()
            );
            assert_eq!(parsed.caller.unwrap().masked, "*******1234");
            *copies.entry(rec.key.as_str()).or_default() += 1;
        }
    }
    for id in &acked {
        assert!(
            copies.contains_key(id.as_str()),
            "acknowledged event {id} is on {TOPIC_CALLS}"
        );
    }
    let dupes = copies.values().filter(|n| **n > 1).count();
    eprintln!(
        "outage: {} acknowledged ids all on the topic; {dupes} with more than one copy (timed out in flight, deduped downstream)",
        acked.len()
    );
    svc.stop().await;
}
