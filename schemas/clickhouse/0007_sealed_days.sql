-- Sealed daily counts: exact distinct counts of closed days as plain numbers, so year-long
-- queries sum a few thousand rows per day instead of merging a uniqExact state per event.
-- The aggregator's maintenance task ("sealer") computes a day from counts_hour once the day has
-- been quiet for a while and records it in day_seals; readers use a day's sealed rows only when
-- no write reached that day after it was sealed (day_writes), and counts_hour otherwise.
-- Re-sealing a day inserts its rows again: counts only grow, so the largest value per key is
-- the current one (ReplacingMergeTree keeps it; readers take max() until parts merge).

CREATE TABLE IF NOT EXISTS {db}.counts_day
(
    day Date,
    district_code String,
    town_code String,
    station_code String,
    category String,
    subtype String,
    source String,
    department String,
    events UInt64
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYYYYMM(day)
ORDER BY (day, town_code, category, subtype, source, department, station_code, district_code);

-- The same per hour of day (Asia/Shanghai), for hour-of-day windows such as the night map's 21-3.
CREATE TABLE IF NOT EXISTS {db}.counts_day_hod
(
    day Date,
    hod UInt8,
    district_code String,
    town_code String,
    category String,
    subtype String,
    events UInt64
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYYYYMM(day)
ORDER BY (day, town_code, category, subtype, hod, district_code);

-- Heat-map cells of sealed days at resolutions 8 and 7 (resolution 9 stays on cells_hour: at
-- that size a cell-day holds about one event and sealing would save nothing).
CREATE TABLE IF NOT EXISTS {db}.cells_day
(
    day Date,
    h3_r8 String,
    h3_r7 String,
    town_code String,
    category String,
    subtype String,
    events UInt64
)
ENGINE = ReplacingMergeTree(events)
PARTITION BY toYYYYMM(day)
ORDER BY (day, category, subtype, h3_r8, town_code, h3_r7);

-- The last time (server clock) any INSERT brought rows for a day, maintained inside that INSERT.
CREATE TABLE IF NOT EXISTS {db}.day_writes
(
    day Date,
    last_write AggregateFunction(max, DateTime)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.day_writes_mv TO {db}.day_writes AS
SELECT
    toDate(event_time) AS day,
    maxState(now()) AS last_write
FROM {db}.incidents
GROUP BY day;

-- Which days are sealed: every write to the day stamped before sealed_as_of is in counts_day.
CREATE TABLE IF NOT EXISTS {db}.day_seals
(
    day Date,
    sealed_as_of DateTime,
    sealed_at DateTime
)
ENGINE = ReplacingMergeTree(sealed_as_of)
PARTITION BY toYYYYMM(day)
ORDER BY day;

-- Days written before this migration: mark them written now, so the sealer picks them up.
INSERT INTO {db}.day_writes
SELECT
    toDate(hour) AS day,
    maxState(now()) AS last_write
FROM {db}.counts_hour
GROUP BY day;
