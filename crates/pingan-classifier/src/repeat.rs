//! Repeat calls: the same caller (phone hash) or the same doorplate reporting a compatible incident
//! nearby within minutes is linked to the first report (`repeat_of`) and tagged `repeat`, so a
//! spike is not inflated by one incident reported ten times.
//!
//! The subtype is left as classified: a repeat is still a call about, say, a fight, and counts by
//! type stay a pure function of the event. Spike detection and "valid incident" totals exclude
//! events with `repeat_of`. The state is bounded and in memory: after a classifier restart the
//! link of a repeat whose first report came before the restart may be missing on reprocessing;
//! counts are unaffected because they never depend on the link.

use std::collections::{BTreeMap, VecDeque};

use uuid::Uuid;

#[derive(Debug, Clone)]
struct Seen {
    event_id: Uuid,
    time: i64,
    point: Option<(f64, f64)>,
    category: String,
}

/// Recent reports per caller/plate key.
#[derive(Debug)]
pub struct RepeatDetector {
    window_secs: i64,
    radius_m: f64,
    max_keys: usize,
    recent: BTreeMap<String, VecDeque<Seen>>,
    order: VecDeque<(i64, String)>,
}

impl Default for RepeatDetector {
    fn default() -> Self {
        RepeatDetector::new(600, 200.0, 200_000)
    }
}

fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

impl RepeatDetector {
    /// Reports within `window_secs` and `radius_m` of each other are repeats; at most `max_keys`
    /// callers/plates are remembered.
    pub fn new(window_secs: i64, radius_m: f64, max_keys: usize) -> RepeatDetector {
        RepeatDetector {
            window_secs,
            radius_m,
            max_keys,
            recent: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records a report and returns the first report it repeats, if any.
    pub fn observe(
        &mut self,
        key: &str,
        event_id: Uuid,
        time: i64,
        point: Option<(f64, f64)>,
        category: &str,
    ) -> Option<Uuid> {
        // Forget what is older than the window relative to the newest report seen.
        while let Some((t, k)) = self.order.front() {
            if *t >= time - self.window_secs && self.recent.len() <= self.max_keys {
                break;
            }
            let (t, k) = (*t, k.clone());
            self.order.pop_front();
            if let Some(q) = self.recent.get_mut(&k) {
                q.retain(|s| s.time > t);
                if q.is_empty() {
                    self.recent.remove(&k);
                }
            }
        }
        let compatible = |s: &Seen| {
            s.event_id != event_id
                && (time - s.time).abs() <= self.window_secs
                && (s.category == category || s.category == "OTH" || category == "OTH")
                && match (s.point, point) {
                    (Some(a), Some(b)) => distance_m(a, b) <= self.radius_m,
                    _ => true,
                }
        };
        let first = self
            .recent
            .get(key)
            .and_then(|q| q.iter().find(|s| compatible(s)).map(|s| s.event_id));
        let q = self.recent.entry(key.to_owned()).or_default();
        if !q.iter().any(|s| s.event_id == event_id) {
            q.push_back(Seen {
                event_id,
                time,
                point,
                category: category.to_owned(),
            });
            self.order.push_back((time, key.to_owned()));
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_second_call_nearby_within_minutes_links_to_the_first() {
        let mut d = RepeatDetector::default();
        assert_eq!(
            d.observe("caller-a", id(1), 1000, Some((31.15, 121.35)), "PUB"),
            None
        );
        assert_eq!(
            d.observe("caller-a", id(2), 1200, Some((31.1505, 121.3502)), "PUB"),
            Some(id(1))
        );
        assert_eq!(
            d.observe("caller-a", id(3), 1300, None, "PUB"),
            Some(id(1)),
            "still the first report"
        );
    }

    #[test]
    fn other_types_far_away_or_later_calls_are_not_repeats() {
        let mut d = RepeatDetector::default();
        d.observe("caller-a", id(1), 1000, Some((31.15, 121.35)), "PUB");
        assert_eq!(
            d.observe("caller-a", id(2), 1100, Some((31.15, 121.35)), "FRAUD"),
            None,
            "another type"
        );
        assert_eq!(
            d.observe("caller-a", id(3), 1100, Some((31.20, 121.35)), "PUB"),
            None,
            "5 km away"
        );
        assert_eq!(
            d.observe("caller-a", id(4), 1000 + 3600, Some((31.15, 121.35)), "PUB"),
            None,
            "an hour later"
        );
        assert_eq!(
            d.observe("caller-b", id(5), 1100, Some((31.15, 121.35)), "PUB"),
            None,
            "another caller"
        );
    }

    #[test]
    fn replaying_the_same_event_does_not_make_it_its_own_repeat() {
        let mut d = RepeatDetector::default();
        assert_eq!(d.observe("k", id(1), 1000, None, "PUB"), None);
        assert_eq!(d.observe("k", id(1), 1000, None, "PUB"), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut d = RepeatDetector::new(600, 200.0, 100);
        for i in 0..10_000 {
            d.observe(&format!("k{i}"), id(i as u128), 1000, None, "PUB");
        }
        assert!(d.recent.len() <= 101);
    }
}
