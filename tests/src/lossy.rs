//! A TCP proxy in front of ClickHouse that loses the reply to an INSERT on demand.
//!
//! Killing the server at the right instant (part committed, reply not yet sent) is a race a test
//! wins only sometimes; this proxy makes it certain. The INSERT reaches the real server and is
//! executed, its reply is cut off, and the "server" then stays unreachable for a moment, so the
//! client can neither hear the outcome nor ask about it right away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct State {
    /// INSERT replies still to lose.
    inserts_to_lose: u32,
    /// How long the server looks unreachable after a lost reply.
    outage: Duration,
    /// Until when every connection is cut.
    down_until: Option<Instant>,
    /// INSERT replies lost so far.
    lost: u32,
}

impl State {
    fn down(&self) -> bool {
        self.down_until.is_some_and(|t| Instant::now() < t)
    }
}

/// The proxy; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct LossyProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl LossyProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> LossyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let proxy = LossyProxy {
            addr: listener.local_addr().expect("proxy address"),
            state: Arc::default(),
        };
        let upstream = upstream.to_owned();
        let state = proxy.state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = state.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if state.lock().unwrap().down() {
                        return;
                    }
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, state).await;
                    }
                });
            }
        });
        proxy
    }

    /// `http://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Loses the replies of the next `n` INSERTs, each followed by `outage` of cut connections.
    pub fn lose_insert_replies(&self, n: u32, outage: Duration) {
        let mut s = self.state.lock().unwrap();
        s.inserts_to_lose = n;
        s.outage = outage;
    }

    /// INSERT replies lost so far.
    pub fn lost(&self) -> u32 {
        self.state.lock().unwrap().lost
    }
}

async fn relay(client: TcpStream, server: TcpStream, state: Arc<Mutex<State>>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let doomed = Arc::new(AtomicBool::new(false));
    let marker = doomed.clone();
    let upstream_state = state.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // clickhouse-rs sends the statement form-encoded in the URL: `query=INSERT+INTO+…`.
            if contains(&buf[..n], b"query=INSERT") {
                let mut s = upstream_state.lock().unwrap();
                if s.inserts_to_lose > 0 {
                    s.inserts_to_lose -= 1;
                    marker.store(true, Ordering::SeqCst);
                }
            }
            if server_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut s = state.lock().unwrap();
                if doomed.load(Ordering::SeqCst) {
                    // The server has executed the INSERT and begun to answer: cut the reply.
                    s.lost += 1;
                    s.down_until = Some(Instant::now() + s.outage);
                    break;
                }
                if s.down() {
                    break;
                }
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    // Whichever direction ends first closes both connections (the other future is dropped).
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
