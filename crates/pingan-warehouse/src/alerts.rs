//! What spike detection reads and writes: the `alerts` table (a ReplacingMergeTree by alert key
//! and version) and the reads that rebuild a detector from what ClickHouse holds.

/// The alert book ([`crate::rows::AlertRow::record`]): every alert whose window is still open at or after a time.
pub const RESTORE_SQL: &str = "SELECT record FROM alerts FINAL WHERE window_end >= toDateTime(?)";
/// Hourly history per series (repeat calls excluded): see [`SeedRow`].
pub const SEED_SQL: &str = "SELECT ifNull(town_code, ''), ifNull(station_code, ''), ifNull(compound_id, ''), ifNull(h3_r8, ''), ifNull(poi_id, ''), \
     category, subtype, toUInt32(toStartOfHour(event_time)) AS h, toUInt32(uniqExact(event_id)) \
     FROM incidents WHERE repeat_of IS NULL AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
     GROUP BY town_code, station_code, compound_id, h3_r8, poi_id, category, subtype, h";
/// The stored events of the still-open windows, oldest first (`?fields` are those of
/// [`crate::rows::IncidentRow`]).
pub const REPLAY_SQL: &str =
    "SELECT ?fields FROM incidents FINAL WHERE event_time >= toDateTime(?) ORDER BY event_time";

/// (town, station, compound, h3_r8, poi, category, subtype, hour start, events) of one seeded
/// hour ([`SEED_SQL`]).
pub type SeedRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    u32,
    u32,
);

/// The statements above with sample parameters.
pub(crate) fn templates() -> Vec<(&'static str, String)> {
    vec![
        ("alerts_restore", RESTORE_SQL.replacen('?', "1577800000", 1)),
        (
            "alerts_seed",
            SEED_SQL
                .replacen('?', "1577000000", 1)
                .replacen('?', "1577800000", 1),
        ),
        (
            "alerts_replay",
            REPLAY_SQL
                .replacen(
                    "?fields",
                    "event_id, event_time, town_code, category, subtype",
                    1,
                )
                .replacen('?', "1577800000", 1),
        ),
    ]
}
