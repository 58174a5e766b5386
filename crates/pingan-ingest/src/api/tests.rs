//! Component tests: the whole router through `oneshot`, with an in-memory publisher.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use pingan_domain::events::{CallRecord, QrScanRecord, TOPIC_CALLS, TOPIC_QR};
use pingan_pipeline::producer::PublishError;
use pingan_runtime::config::Sensitive;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::publish::BoxFuture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    QueueFull,
    Timeout,
}

struct Fake {
    records: Mutex<Vec<Record>>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    flushed: std::sync::atomic::AtomicBool,
}

impl EventPublisher for Fake {
    fn publish(&self, records: Vec<Record>) -> BoxFuture<'_, Result<(), PublishError>> {
        let mode = *self.mode.lock().unwrap();
        let delay = *self.delay.lock().unwrap();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            match mode {
                Mode::Ok => {
                    self.records.lock().unwrap().extend(records);
                    Ok(())
                }
                Mode::QueueFull => Err(PublishError::QueueFull),
                Mode::Timeout => Err(PublishError::Deadline(Duration::from_secs(3))),
            }
        })
    }
    fn probe(&self, _: Duration) -> BoxFuture<'_, Result<(), String>> {
        let ok = *self.mode.lock().unwrap() == Mode::Ok;
        Box::pin(async move {
            if ok {
                Ok(())
            } else {
                Err("broker down".into())
            }
        })
    }
    fn queue_depth(&self) -> i64 {
        0
    }
    fn flush(&self, _: Duration) -> BoxFuture<'_, Result<(), String>> {
        self.flushed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

struct Harness {
    app: Router,
    fake: Arc<Fake>,
    registry: Registry,
    settings: IngestSettings,
    state: AppState,
}

fn harness_with(f: impl FnOnce(&mut IngestSettings)) -> Harness {
    let mut settings = IngestSettings::for_tests();
    f(&mut settings);
    let fake = Arc::new(Fake {
        records: Mutex::new(Vec::new()),
        mode: Mutex::new(Mode::Ok),
        delay: Mutex::new(Duration::ZERO),
        flushed: std::sync::atomic::AtomicBool::new(false),
    });
    let registry = Registry::new();
    let state = AppState::new(settings.clone(), fake.clone(), &registry).unwrap();
    Harness {
        app: router(state.clone()),
        fake,
        registry,
        settings,
        state,
    }
}

fn harness() -> Harness {
    harness_with(|_| {})
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, body)
    }

    async fn json(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let (s, h, b) = self.send(req).await;
        (s, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    fn published(&self) -> Vec<Record> {
        self.fake.records.lock().unwrap().clone()
    }

    fn set_mode(&self, m: Mode) {
        *self.fake.mode.lock().unwrap() = m;
    }

    fn metrics(&self) -> String {
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &self.registry.gather(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    post_from(path, body, "203.0.113.7:5555")
}

fn post_from(path: &str, body: impl Into<Body>, peer: &str) -> Request<Body> {
    let mut r = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    r
}

fn call() -> Value {
    json!({
        "call_id": "310112-20191231-004312",
        "received_at": "2019-12-31T21:43:05+08:00",
        "description": "报警人称七宝老街汤团店给错品种，双方发生纠纷，电话13812341234",
        "caller_phone": "+86 138-1234-1234",
        "location": {"lat": 31.156, "lon": 121.3466},
        "town_code": "310112102",
        "priority": 3
    })
}

fn plate() -> String {
    AreaIndex::builtin()
        .doorplates()
        .nth(1234)
        .unwrap()
        .plate_id
        .to_string()
}

fn qr_body(settings: &IngestSettings, plate_id: &str) -> Value {
    json!({
        "plate_id": plate_id,
        "sig": settings.signer.sign(plate_id).unwrap(),
        "kind": "dispute",
        "description": "楼下邻居深夜装修噪音，协商无果",
        "contact_phone": "13912345678",
    })
}

#[tokio::test]
async fn a_single_call_is_pseudonymised_and_published() {
    let h = harness();
    let (status, headers, body) = h.json(post("/v1/calls", call().to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 1);
    let id: Uuid = body["event_ids"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 7, "server-assigned ids are UUIDv7");
    let recs = h.published();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.topic, TOPIC_CALLS);
    assert_eq!(r.key, id.to_string().into_bytes());
    assert_eq!(r.headers[0].0, "x-request-id");
    assert_eq!(
        headers.get("x-request-id").unwrap().as_bytes(),
        r.headers[0].1.as_slice()
    );
    let text = String::from_utf8(r.payload.clone()).unwrap();
    assert!(
        !text.contains("138-1234-1234") && !text.contains("\"13812341234\""),
        "no clear phone: {text}"
    );
    let rec: CallRecord = serde_json::from_slice(&r.payload).unwrap();
    let caller = rec.caller.unwrap();
    assert_eq!(caller.masked, "*******1234");
    assert_eq!(caller, h.settings.hasher.tokenize("13812341234").unwrap());
    assert_eq!(rec.event_id, id);
    assert_eq!(rec.priority, Some(3));
    assert!(
        rec.description.contains("汤团"),
        "free text is kept as evidence"
    );
}

#[tokio::test]
async fn a_batch_keeps_client_ids_so_a_resend_gives_the_same_ids() {
    let h = harness();
    let mut items = vec![call(), call(), call()];
    items[1]["event_id"] = json!("0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10");
    items[2]["event_id"] = json!("0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b11");
    items[0]["event_id"] = json!("0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b12");
    let body = Value::Array(items).to_string();
    let (s1, _, b1) = h.json(post("/v1/calls", body.clone())).await;
    let (s2, _, b2) = h.json(post("/v1/calls", body)).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(b1["event_ids"], b2["event_ids"]);
    assert_eq!(b1["event_ids"][1], "0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10");
    assert_eq!(b1["accepted"], 3);
    assert_eq!(h.published().len(), 6);
}

#[tokio::test]
async fn validation_is_all_or_nothing_with_every_error() {
    let h = harness();
    let mut bad = call();
    bad["priority"] = json!(9);
    bad["verified"] = json!(true);
    let body = json!([call(), bad, {"received_at": "yesterday"}]).to_string();
    let (status, _, body) = h.json(post("/v1/calls", body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_failed");
    let details = body["error"]["details"].as_array().unwrap();
    let got: Vec<(u64, &str)> = details
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    for want in [
        (1, "priority"),
        (1, "verified"),
        (2, "received_at"),
        (2, "description"),
    ] {
        assert!(got.contains(&want), "{want:?} missing in {got:?}");
    }
    assert!(
        details
            .iter()
            .all(|d| d["reason"].is_string() && d["code"].is_string())
    );
    assert!(h.published().is_empty(), "nothing accepted");
    let m = h.metrics();
    assert!(m.contains("pingan_ingest_rejected_requests_total{reason=\"validation_failed\",route=\"/v1/calls\"} 1"), "{m}");
    assert!(
        m.contains("pingan_ingest_invalid_fields_total{code=\"out_of_range\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let h = harness();
    for (body, code) in [
        (b"{\"received_at\": ".to_vec(), "malformed_json"),
        (b"{} {}".to_vec(), "malformed_json"),
        (b"\xEF\xBB\xBF{}".to_vec(), "malformed_json"),
        (b"{\"description\": \"\xFF\"}".to_vec(), "invalid_utf8"),
        (b"{\"a\": NaN}".to_vec(), "malformed_json"),
        ("[".repeat(100_000).into_bytes(), "malformed_json"),
    ] {
        let (status, _, v) = h.json(post("/v1/calls", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], code);
        assert_eq!(v["error"]["details"], json!([]));
    }
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn too_large_bodies_are_413_by_header_and_by_stream() {
    let h = harness();
    let mut r = post("/v1/calls", "{}");
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("2000000"));
    let (status, _, v) = h.json(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "payload_too_large");
    // No length header: cut off while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, _, _) = h.json(post("/v1/calls", body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let h = harness();
    let mut r = post("/v1/calls", call().to_string());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let (status, _, v) = h.json(r).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(v["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let h = harness_with(|s| {
        s.api_tokens = vec![
            Sensitive::new("cad-token-0123456789"),
            Sensitive::new("other-token-0123456789"),
        ]
    });
    let (status, headers, v) = h.json(post("/v1/calls", call().to_string())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    for bad in [
        "Bearer wrong",
        "Basic Y2FkOnRva2Vu",
        "Bearer cad-token-012345678",
        "cad-token-0123456789",
    ] {
        let mut r = post("/v1/calls", call().to_string());
        r.headers_mut()
            .insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
        assert_eq!(h.send(r).await.0, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let mut r = post("/v1/calls", call().to_string());
    r.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer other-token-0123456789"),
    );
    assert_eq!(h.send(r).await.0, StatusCode::ACCEPTED);
    // The QR endpoint stays public.
    let (status, _, _) = h
        .json(post(
            "/v1/qr-scans",
            qr_body(&h.settings, &plate()).to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn kafka_trouble_is_503_with_retry_after_and_never_202() {
    let h = harness();
    for mode in [Mode::QueueFull, Mode::Timeout] {
        h.set_mode(mode);
        let (status, headers, v) = h.json(post("/v1/calls", call().to_string())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "5");
        assert_eq!(v["error"]["code"], "kafka_unavailable");
        let (status, _, _) = h
            .json(post(
                "/v1/qr-scans",
                qr_body(&h.settings, &plate()).to_string(),
            ))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let m = h.metrics();
    assert!(m.contains("pingan_ingest_produce_errors_total{code=\"kafka_queue_full\",topic=\"pingan.call110.v1\"} 1"), "{m}");
    assert!(
        !m.contains("pingan_ingest_records_produced_total"),
        "nothing was produced: {m}"
    );
    let (status, _, _) = h
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    h.set_mode(Mode::Ok);
    let (status, _, _) = h
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_valid_qr_report_is_published_with_shanghai_time() {
    let h = harness();
    let p = plate();
    let mut body = qr_body(&h.settings, &p);
    body["event_id"] = json!("0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b13");
    let (status, _, v) = h.json(post("/v1/qr-scans", body.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    // The client's id is namespaced, never kept: it could be a 110 call's id.
    let client_id: uuid::Uuid = "0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b13".parse().unwrap();
    let id = pingan_domain::events::qr_event_id(&p, Some(client_id));
    assert_ne!(id, client_id);
    assert_eq!(v, json!({"event_id": id.to_string()}));
    let recs = h.published();
    assert_eq!(recs[0].topic, TOPIC_QR);
    assert_eq!(recs[0].key, id.to_string().into_bytes());
    let rec: QrScanRecord = serde_json::from_slice(&recs[0].payload).unwrap();
    assert_eq!(rec.event_id, id);
    assert_eq!(rec.plate_id, p);
    assert_eq!(rec.submitted_at.offset().local_minus_utc(), 8 * 3600);
    assert_eq!(rec.contact.unwrap().masked, "*******5678");
    assert!(!String::from_utf8_lossy(&recs[0].payload).contains("13912345678"));
}

#[tokio::test]
async fn a_bad_signature_is_403_before_anything_else() {
    let h = harness();
    let p = plate();
    let other = AreaIndex::builtin()
        .doorplates()
        .nth(99)
        .unwrap()
        .plate_id
        .to_string();
    let good = h.settings.signer.sign(&p).unwrap();
    for sig in [
        "dev.00000000000000000000".to_owned(),
        good[..good.len() - 2].to_owned(),
        h.settings.signer.sign(&other).unwrap(),
        good.replace("dev.", "v9."),
        String::new() + "x",
    ] {
        let mut body = qr_body(&h.settings, &p);
        body["sig"] = json!(sig);
        body["description"] = json!(""); // invalid too, but the signature is judged first
        let (status, _, v) = h.json(post("/v1/qr-scans", body.to_string())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{sig}: {v}");
        assert_eq!(v["error"]["code"], "bad_signature");
    }
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn unknown_plates_are_404_and_mass_assignment_is_422() {
    let h = harness();
    let (status, _, v) = h
        .json(post(
            "/v1/qr-scans",
            qr_body(&h.settings, "MHQR-999-00100001").to_string(),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "unknown_plate");
    let mut body = qr_body(&h.settings, &plate());
    body["town_code"] = json!("310112102");
    body["priority"] = json!(1);
    let (status, _, v) = h.json(post("/v1/qr-scans", body.to_string())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"].as_array().unwrap().len(), 2);
    assert!(h.published().is_empty());
}

#[tokio::test]
async fn qr_reports_are_rate_limited_per_client_and_per_plate() {
    let h = harness_with(|s| {
        s.qr_client_rate = crate::config::RateSettings {
            per_minute: 2,
            burst: 3,
        };
        s.qr_plate_rate = crate::config::RateSettings {
            per_minute: 1,
            burst: 2,
        };
    });
    let p = plate();
    let body = qr_body(&h.settings, &p).to_string();
    // Per plate: two from different clients, the third is refused.
    for i in 0..2 {
        let (status, _, _) = h
            .json(post_from(
                "/v1/qr-scans",
                body.clone(),
                &format!("198.51.100.{i}:1"),
            ))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, headers, v) = h
        .json(post_from("/v1/qr-scans", body.clone(), "198.51.100.9:1"))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "60");
    assert!(v["error"]["message"].as_str().unwrap().contains("拨打110"));
    // Per client: three requests of any kind, then refused before the body is read.
    for i in 0..3 {
        let q = qr_body(
            &h.settings,
            &AreaIndex::builtin()
                .doorplates()
                .nth(i)
                .unwrap()
                .plate_id
                .to_string(),
        );
        let (status, _, _) = h
            .json(post_from("/v1/qr-scans", q.to_string(), "192.0.2.1:1"))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, headers, _) = h
        .json(post_from("/v1/qr-scans", "garbage", "192.0.2.1:2"))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "30");
    // Forged signatures do not use up a plate's budget.
    let h = harness_with(|s| {
        s.qr_plate_rate = crate::config::RateSettings {
            per_minute: 1,
            burst: 1,
        }
    });
    let mut forged = qr_body(&h.settings, &p);
    forged["sig"] = json!("dev.00000000000000000000");
    for i in 0..5 {
        let (status, _, _) = h
            .json(post_from(
                "/v1/qr-scans",
                forged.to_string(),
                &format!("198.51.100.{i}:1"),
            ))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert_eq!(
        h.json(post("/v1/qr-scans", body)).await.0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn qr_bodies_over_16_kib_are_413() {
    let h = harness();
    let mut body = qr_body(&h.settings, &plate());
    body["description"] = json!("x".repeat(17 * 1024));
    let (status, _, _) = h.json(post("/v1/qr-scans", body.to_string())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_form_shows_the_address_and_error_pages_are_clear() {
    let h = harness();
    let p = plate();
    let plate_rec = AreaIndex::builtin().doorplate(&p).unwrap();
    let path = h.settings.signer.signed_path(&p).unwrap();
    let (status, headers, body) = h
        .send(Request::get(path.as_str()).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains(&plate_rec.address_zh), "address shown");
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"));
    let (status, _, body) = h
        .send(
            Request::get(format!("/qr/{p}?sig=dev.00").as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8(body).unwrap().contains("二维码无效"));
    let (status, _, _) = h
        .send(
            Request::get(format!("/qr/{p}").as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no signature");
    let missing = "MHQR-999-00100001";
    let path = h.settings.signer.signed_path(missing).unwrap();
    let (status, _, body) = h
        .send(Request::get(path.as_str()).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8(body).unwrap().contains("未找到该门牌"));
}

#[tokio::test]
async fn ops_routes_and_fallbacks() {
    let h = harness();
    let (status, _, _) = h
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, v) = h
        .json(Request::get("/nope").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _, v) = h
        .json(Request::get("/v1/calls").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let _ = h.send(post("/v1/calls", call().to_string())).await;
    let (status, _, body) = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let m = String::from_utf8(body).unwrap();
    for needle in [
        "pingan_ingest_requests_total{route=\"/v1/calls\",status=\"202\"} 1",
        "pingan_ingest_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "pingan_ingest_records_produced_total{topic=\"pingan.call110.v1\"} 1",
        "pingan_ingest_produce_duration_seconds_bucket",
        "pingan_ingest_in_flight_requests 1",
        "pingan_ingest_producer_queue_depth_records 0",
    ] {
        assert!(m.contains(needle), "{needle} missing:\n{m}");
    }
    assert!(
        !m.contains("13812341234") && !m.contains("MHQR"),
        "no personal data or plate ids in metrics"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_flushes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = harness();
    *h.fake.delay.lock().unwrap() = Duration::from_millis(400);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(crate::serve(listener, h.state.clone(), shutdown.clone()));
    let body = call().to_string();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/calls HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown.cancel(); // while the publish is in flight
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).await.unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.starts_with("HTTP/1.1 202"),
        "the in-flight request completes: {text}"
    );
    server.await.unwrap().unwrap();
    assert!(
        h.fake.flushed.load(std::sync::atomic::Ordering::SeqCst),
        "producer flushed on shutdown"
    );
    assert_eq!(h.published().len(), 1);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
