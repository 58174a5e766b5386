//! Exponential backoff, the one used by every retry loop in the workspace: the stage runner,
//! the source's position lookup, the alert writer and webhook, and the simulator's senders.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits that start at `initial` and double per attempt up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// No wait is longer, a server's own `Retry-After` included.
    pub max: Duration,
}

impl Backoff {
    /// Backoff from `initial` doubling up to `max`.
    pub const fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max }
    }

    /// The wait after failed attempt `attempt` (0 for the first failure).
    pub fn delay(&self, attempt: u32) -> Duration {
        // 2^20 × the initial wait is past any sensible cap; saturating keeps huge counts safe.
        self.initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max)
    }

    /// The server's hint (`Retry-After`) when it gave one, else [`Self::delay`]; capped either way.
    pub fn delay_or(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        hint.unwrap_or_else(|| self.delay(attempt)).min(self.max)
    }

    /// Sleeps [`Self::delay`]`(attempt)`; `false` when `shutdown` came first.
    pub async fn sleep(&self, attempt: u32, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(self.delay(attempt)) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_caps_hints() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u64> = (0..6).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(
            b.delay_or(0, Some(Duration::from_secs(30))),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.delay_or(1, Some(Duration::from_millis(50))),
            Duration::from_millis(50)
        );
        assert_eq!(b.delay_or(1, None), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn sleep_stops_at_shutdown() {
        let stop = CancellationToken::new();
        stop.cancel();
        let b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        assert!(!b.sleep(0, &stop).await);
    }
}
