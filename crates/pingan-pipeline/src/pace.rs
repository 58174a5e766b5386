//! Adaptive batch age: how long a partition's batch may wait for more records.
//!
//! A short age keeps events fresh at low load; at high load every partition would then cut a
//! small batch per age, and each batch is an INSERT that makes a part in the target table and in
//! every materialized view — ClickHouse's guidance is about one INSERT per second per table. So
//! the age grows with the number of partitions that are buffering: with `n` such partitions and a
//! budget of `r` age-triggered cuts per second, each partition waits `n / r` seconds, clamped to
//! `[floor, ceiling]`. Batches that fill by size are cut at once regardless (they are already
//! the large inserts ClickHouse wants).

use std::time::Duration;

/// The pacing policy of a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Age-triggered cuts per second the whole source aims to stay under.
    pub max_cuts_per_s: f64,
    /// The longest a batch may wait, however many partitions are busy.
    pub ceiling: Duration,
}

impl Pace {
    /// The age at which to cut, given the configured `floor` and the number of partitions that
    /// currently hold buffered records.
    pub fn age(&self, floor: Duration, buffering: usize) -> Duration {
        // NaN, zero and negative budgets all mean "no pacing".
        if self.max_cuts_per_s.is_nan() || self.max_cuts_per_s <= 0.0 {
            return floor;
        }
        let spread = Duration::from_secs_f64(buffering as f64 / self.max_cuts_per_s);
        spread.clamp(floor, self.ceiling.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_grows_with_busy_partitions_within_floor_and_ceiling() {
        let p = Pace {
            max_cuts_per_s: 2.0,
            ceiling: Duration::from_secs(5),
        };
        let floor = Duration::from_millis(500);
        // Low load: one partition buffering keeps the floor (fresh within ~0.5 s).
        assert_eq!(p.age(floor, 0), floor);
        assert_eq!(p.age(floor, 1), floor);
        // Six busy partitions share two cuts per second: each waits three seconds.
        assert_eq!(p.age(floor, 6), Duration::from_secs(3));
        // Never beyond the ceiling.
        assert_eq!(p.age(floor, 64), Duration::from_secs(5));
        // A ceiling below the floor cannot shorten the floor; a zero budget disables pacing.
        let odd = Pace {
            max_cuts_per_s: 0.0,
            ceiling: Duration::from_millis(10),
        };
        assert_eq!(odd.age(floor, 100), floor);
    }
}
