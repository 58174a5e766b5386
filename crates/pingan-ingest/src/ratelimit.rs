//! In-process keyed rate limiting with GCRA (the generic cell rate algorithm).
//!
//! Each key stores one instant, its *theoretical arrival time* (TAT). A request at `now` is
//! allowed when `max(TAT, now) + T - now <= T * burst`, where `T = 60 s / per_minute` is the
//! emission interval; the TAT then advances by `T`. This allows `burst` requests at once and
//! `per_minute` sustained, needs no timer, and tells a refused caller exactly when to retry.
//!
//! Memory is bounded: keys whose TAT lies in the past carry no state (a fresh key behaves the
//! same), so they are pruned when the map reaches its capacity. If every key is still active at
//! capacity, new keys are refused: under a flood from that many distinct addresses, shedding
//! is the right answer (a citizen is told to dial 110).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateSettings;

/// Default number of keys a limiter tracks before it prunes.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A GCRA limiter per key.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    interval: Duration,
    tolerance: Duration,
    capacity: usize,
    tats: Mutex<HashMap<K, Instant>>,
}

/// The request was refused; retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for a `Retry-After` header, at least 1.
    pub fn secs(self) -> u64 {
        let s = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        s.max(1)
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter for `rate`, tracking at most `capacity` keys.
    pub fn new(rate: RateSettings, capacity: usize) -> KeyedLimiter<K> {
        let per_minute = rate.per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        KeyedLimiter {
            interval,
            tolerance: interval * rate.burst.max(1),
            capacity: capacity.max(1),
            tats: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        // A poisoned lock only means another thread panicked mid-update of a plain map of
        // instants; the data is still usable.
        let mut tats = self
            .tats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = tats.get(key).copied().map_or(now, |t| t.max(now));
        let new_tat = tat + self.interval;
        let ahead = new_tat - now;
        if ahead > self.tolerance {
            return Err(RetryAfter(ahead - self.tolerance));
        }
        if !tats.contains_key(key) && tats.len() >= self.capacity {
            tats.retain(|_, t| *t > now);
            if tats.len() >= self.capacity {
                return Err(RetryAfter(self.interval));
            }
        }
        tats.insert(key.clone(), new_tat);
        Ok(())
    }

    /// Number of keys currently tracked.
    pub fn len(&self) -> usize {
        self.tats.lock().map(|t| t.len()).unwrap_or(0)
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> KeyedLimiter<&'static str> {
        KeyedLimiter::new(RateSettings { per_minute, burst }, 3)
    }

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let l = limiter(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check(&"a", t0).is_ok());
        }
        let refused = l.check(&"a", t0).unwrap_err();
        assert_eq!(refused.0, Duration::from_secs(1));
        assert_eq!(refused.secs(), 1);
        // One token per second comes back.
        assert!(l.check(&"a", t0 + Duration::from_millis(999)).is_err());
        assert!(l.check(&"a", t0 + Duration::from_secs(1)).is_ok());
        assert!(l.check(&"a", t0 + Duration::from_secs(1)).is_err());
        // After a long pause the full burst is available again.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(l.check(&"a", later).is_ok());
        }
        assert!(l.check(&"a", later).is_err());
    }

    #[test]
    fn keys_are_independent() {
        let l = limiter(1, 1);
        let t0 = Instant::now();
        assert!(l.check(&"a", t0).is_ok());
        assert!(l.check(&"b", t0).is_ok());
        let wait = l.check(&"a", t0).unwrap_err();
        assert_eq!(wait.secs(), 60);
    }

    #[test]
    fn idle_keys_are_pruned_and_a_full_table_sheds() {
        let l = limiter(60, 1);
        let t0 = Instant::now();
        for k in ["a", "b", "c"] {
            assert!(l.check(&k, t0).is_ok());
        }
        assert_eq!(l.len(), 3);
        assert!(
            l.check(&"d", t0).is_err(),
            "all three keys are still active"
        );
        let later = t0 + Duration::from_secs(5);
        assert!(l.check(&"d", later).is_ok(), "expired keys make room");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(2001)).secs(), 3);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }
}
