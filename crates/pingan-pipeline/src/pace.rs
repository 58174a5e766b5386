//! Adaptive batch age: how long a partition's batch may wait for more records.
//!
//! A short age keeps events fresh at low load; at high load every partition would then cut a
//! small batch per age, and each batch is an INSERT that makes a part in the target table and in
//! every materialized view — ClickHouse's guidance is about one INSERT per second per table. So
//! once the source receives more than `above_per_s` records a second, the age grows with the
//! number of partitions that are buffering: with `n` such partitions and a budget of `r`
//! age-triggered cuts per second, each partition waits `n / r` seconds, clamped to
//! `[floor, ceiling]`. Below that rate the floor holds: a few small INSERTs a second are cheap
//! for ClickHouse to merge, and freshness is what a quiet night needs. Batches that fill by size
//! are cut at once regardless (they are already the large inserts ClickHouse wants).

use std::time::Duration;

/// The pacing policy of a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Age-triggered cuts per second the whole source aims to stay under under load.
    pub max_cuts_per_s: f64,
    /// The longest a batch may wait, however many partitions are busy.
    pub ceiling: Duration,
    /// Pacing applies only while the source receives more records per second than this.
    pub above_per_s: f64,
}

impl Pace {
    /// The age at which to cut, given the configured `floor`, the number of partitions that
    /// currently hold buffered records and the recent receive rate (records/s).
    pub fn age(&self, floor: Duration, buffering: usize, rate: f64) -> Duration {
        // NaN, zero and negative budgets all mean "no pacing".
        if self.max_cuts_per_s.is_nan() || self.max_cuts_per_s <= 0.0 || rate <= self.above_per_s {
            return floor;
        }
        let spread = Duration::from_secs_f64(buffering as f64 / self.max_cuts_per_s);
        spread.clamp(floor, self.ceiling.max(floor))
    }
}

/// A smoothed receive rate: an exponentially weighted average of records per second, updated
/// on every tick with the records counted since the previous one (time constant about 2 s).
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    count: u64,
    rate: f64,
}

impl RateMeter {
    /// Counts one received record.
    pub fn record(&mut self) {
        self.count += 1;
    }

    /// Folds the records since the last tick, `elapsed` ago, into the rate and returns it.
    pub fn tick(&mut self, elapsed: Duration) -> f64 {
        let secs = elapsed.as_secs_f64();
        if secs > 0.0 {
            let now = self.count as f64 / secs;
            let w = (secs / 2.0).min(1.0);
            self.rate += w * (now - self.rate);
            self.count = 0;
        }
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace() -> Pace {
        Pace {
            max_cuts_per_s: 2.0,
            ceiling: Duration::from_secs(5),
            above_per_s: 1000.0,
        }
    }

    #[test]
    fn under_load_age_grows_with_busy_partitions_within_floor_and_ceiling() {
        let p = pace();
        let floor = Duration::from_millis(500);
        let busy = 50_000.0;
        assert_eq!(p.age(floor, 0, busy), floor);
        assert_eq!(p.age(floor, 1, busy), floor);
        // Six busy partitions share two cuts per second: each waits three seconds.
        assert_eq!(p.age(floor, 6, busy), Duration::from_secs(3));
        // Never beyond the ceiling.
        assert_eq!(p.age(floor, 64, busy), Duration::from_secs(5));
        // A ceiling below the floor cannot shorten the floor; a zero budget disables pacing.
        let odd = Pace {
            max_cuts_per_s: 0.0,
            ceiling: Duration::from_millis(10),
            above_per_s: 0.0,
        };
        assert_eq!(odd.age(floor, 100, busy), floor);
    }

    #[test]
    fn at_low_load_the_floor_keeps_events_fresh() {
        // Twenty events a second spread over six partitions: every partition is buffering, but
        // waiting three seconds would only make the screen stale.
        assert_eq!(
            pace().age(Duration::from_millis(500), 6, 20.0),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn the_rate_follows_the_load() {
        let mut m = RateMeter::default();
        let tick = Duration::from_millis(125);
        for _ in 0..80 {
            for _ in 0..250 {
                m.record();
            }
            m.tick(tick);
        }
        let r = m.tick(Duration::ZERO);
        assert!((r - 2000.0).abs() < 50.0, "{r}");
        // Fifteen quiet seconds later it is back near zero.
        for _ in 0..120 {
            m.tick(tick);
        }
        assert!(m.tick(Duration::ZERO) < 10.0);
    }
}
