-- Live rollups, maintained by materialized views inside the same INSERT as the raw rows.
-- Counts are exact distinct counts (uniqExact over event_id states), never increments: an
-- upstream duplicate or a replayed block merges into the same state and never counts twice.
-- Unknown area levels are '' here (sorting keys cannot be NULL on every server version).
CREATE TABLE IF NOT EXISTS {db}.counts_minute
(
    minute DateTime('Asia/Shanghai'),
    district_code String,
    town_code String,
    station_code String,
    compound_id String,
    category String,
    subtype String,
    source String,
    department String,
    events AggregateFunction(uniqExact, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, town_code, category, subtype, source, department, station_code, compound_id, district_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.counts_minute_mv TO {db}.counts_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    ifNull(district_code, '') AS district_code,
    ifNull(town_code, '') AS town_code,
    ifNull(station_code, '') AS station_code,
    ifNull(compound_id, '') AS compound_id,
    category,
    subtype,
    source,
    ifNull(department, '') AS department,
    uniqExactState(event_id) AS events
FROM {db}.incidents
GROUP BY minute, district_code, town_code, station_code, compound_id, category, subtype, source, department;

CREATE TABLE IF NOT EXISTS {db}.counts_hour
(
    hour DateTime('Asia/Shanghai'),
    district_code String,
    town_code String,
    station_code String,
    compound_id String,
    category String,
    subtype String,
    source String,
    department String,
    events AggregateFunction(uniqExact, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, town_code, category, subtype, source, department, station_code, compound_id, district_code);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.counts_hour_mv TO {db}.counts_hour AS
SELECT
    toStartOfHour(event_time) AS hour,
    ifNull(district_code, '') AS district_code,
    ifNull(town_code, '') AS town_code,
    ifNull(station_code, '') AS station_code,
    ifNull(compound_id, '') AS compound_id,
    category,
    subtype,
    source,
    ifNull(department, '') AS department,
    uniqExactState(event_id) AS events
FROM {db}.incidents
GROUP BY hour, district_code, town_code, station_code, compound_id, category, subtype, source, department;

-- Heat map cells per hour (H3 resolution 9 with its resolution 8 and 7 parents).
CREATE TABLE IF NOT EXISTS {db}.cells_hour
(
    hour DateTime('Asia/Shanghai'),
    h3 String,
    h3_r8 String,
    h3_r7 String,
    town_code String,
    category String,
    subtype String,
    events AggregateFunction(uniqExact, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, category, subtype, h3, town_code, h3_r8, h3_r7);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.cells_hour_mv TO {db}.cells_hour AS
SELECT
    toStartOfHour(event_time) AS hour,
    assumeNotNull(h3) AS h3,
    ifNull(h3_r8, '') AS h3_r8,
    ifNull(h3_r7, '') AS h3_r7,
    ifNull(town_code, '') AS town_code,
    category,
    subtype,
    uniqExactState(event_id) AS events
FROM {db}.incidents
WHERE isNotNull(h3)
GROUP BY hour, h3, h3_r8, h3_r7, town_code, category, subtype;

-- Word frequency per day (词频分析).
CREATE TABLE IF NOT EXISTS {db}.terms_day
(
    day Date,
    town_code String,
    category String,
    subtype String,
    term String,
    events AggregateFunction(uniqExact, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, category, subtype, town_code, term);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.terms_day_mv TO {db}.terms_day AS
SELECT
    toDate(event_time) AS day,
    ifNull(town_code, '') AS town_code,
    category,
    subtype,
    term,
    uniqExactState(event_id) AS events
FROM {db}.incidents
ARRAY JOIN keywords AS term
GROUP BY day, town_code, category, subtype, term;
