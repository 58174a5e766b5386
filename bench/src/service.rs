//! A service run as its own process of the release binary, so its memory is its own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::proc_kb;

/// A service run as its own process of the release binary, so its memory is its own.
pub(crate) struct Service {
    name: &'static str,
    child: Child,
}

impl Service {
    pub(crate) fn start(
        bin: &Path,
        command: &str,
        env: &[(String, String)],
        logs: &Path,
    ) -> Service {
        let name: &'static str = match command {
            "classify" => "classify",
            "aggregate" => "aggregate",
            "serve" => "serve",
            other => panic!("no service {other}"),
        };
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        // Benchmarks run against local throwaway data: development mode (no read tokens).
        let child = Command::new(bin)
            .arg("--dev")
            .arg(command)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PINGAN__LOG__FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {command}: {e}", bin.display()));
        Service { name, child }
    }

    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "pingan {} exited early ({status}); see target/bench/logs/{}.log",
                self.name, self.name
            );
        }
    }

    /// Peak resident set so far (the kernel's high-water mark), in MB.
    fn peak_rss_mb(&self) -> Option<f64> {
        proc_kb(&format!("/proc/{}/status", self.child.id()), "VmHWM:").map(|k| k as f64 / 1024.0)
    }

    /// SIGTERM (graceful: the service stores what is durable), then the peak RSS read just
    /// before it.
    pub(crate) fn stop(mut self) -> Option<f64> {
        let hwm = self.peak_rss_mb();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return hwm;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        hwm
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A panicking bench must not leave consumers running in someone else's broker.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
