-- Sealed daily counts: exact distinct counts of closed days as plain numbers, so year-long
-- queries sum a few thousand rows per day instead of merging a uniqExact state per event.
-- The aggregator's maintenance task ("sealer") computes a day from counts_hour once the day has
-- been quiet for a while and records it in day_seals; readers use a day's sealed rows only when
-- no write reached that day after it was sealed (day_writes), and counts_hour otherwise.
-- Every sealing of a day writes its rows under a new random `seal` id and then its mark; readers
-- take only the rows of the day's newest mark, so a re-seal (after late events), a sealer that
-- crashed before its mark, or two sealers at once never add up: no read-time deduplication.

CREATE TABLE IF NOT EXISTS {db}.counts_day
(
    day Date,
    seal UInt64,
    district_code String,
    town_code String,
    station_code String,
    category String,
    subtype String,
    source String,
    department String,
    events UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, town_code, category, subtype, source, department, station_code, district_code);

-- The same per hour of day (Asia/Shanghai), for hour-of-day windows such as the night map's 21-3.
CREATE TABLE IF NOT EXISTS {db}.counts_day_hod
(
    day Date,
    seal UInt64,
    hod UInt8,
    district_code String,
    town_code String,
    category String,
    subtype String,
    events UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, town_code, category, subtype, hod, district_code);

-- Heat-map cells of sealed days at resolutions 8 and 7 (resolution 9 stays on cells_hour: at
-- that size a cell-day holds about one event and sealing would save nothing).
CREATE TABLE IF NOT EXISTS {db}.cells_day
(
    day Date,
    seal UInt64,
    h3_r8 String,
    h3_r7 String,
    town_code String,
    category String,
    subtype String,
    events UInt64
)
ENGINE = MergeTree
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

-- Seal marks: the rows of `seal` hold every write to `day` stamped before `sealed_as_of`.
-- The newest mark of a day (largest sealed_as_of, then seal) is the one readers use.
CREATE TABLE IF NOT EXISTS {db}.day_seals
(
    day Date,
    seal UInt64,
    sealed_as_of DateTime,
    sealed_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, sealed_as_of, seal);

-- Days written before this migration: mark them written now, so the sealer picks them up.
INSERT INTO {db}.day_writes
SELECT
    toDate(hour) AS day,
    maxState(now()) AS last_write
FROM {db}.counts_hour
GROUP BY day;
