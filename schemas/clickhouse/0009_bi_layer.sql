-- BI views: finalized, labelled, plain numbers a BI tool can sum directly (Superset, Metabase,
-- Grafana). Replaces nothing: `incidents_labelled` (0005) stays for existing queries.
--
-- * Counts are exact distinct event counts per row. Every event has one event time and one set
--   of codes, so it is in exactly one row of bi_counts_hourly and one of bi_counts_daily:
--   `sum(events)` over any filter of them is the exact distinct count, equal to /v1/counts.
-- * bi_counts_daily combines sealed days (counts_day, the rows of each day's newest seal, only
--   while that seal is newer than the day's last write) with every other day computed from
--   counts_hour, like the query service does; it has no compound (sealed days have none): use
--   bi_counts_hourly for compounds.
-- * Labels come from the dimension tables through transform() over arrays read once per query
--   (scalar subqueries): no JOIN, no nesting, valid on 18.16 and current releases. A code with
--   no label (unknown area, '') has '' as its name; each array starts with '' so it is never
--   empty (transform() refuses empty arrays, and views are created before dimensions load).
-- * Every column has a comment (system.columns.comment, which BI tools show as its
--   description); the column list must match the SELECT, name for name and type for type.

CREATE VIEW IF NOT EXISTS {db}.bi_counts_hourly
(
    hour DateTime('Asia/Shanghai') COMMENT 'hour (Asia/Shanghai) the events happened in',
    day Date COMMENT 'day (Asia/Shanghai)',
    hour_of_day UInt8 COMMENT 'hour of day 0-23 (Asia/Shanghai)',
    district_code String COMMENT 'district code',
    town_code String COMMENT 'town code (empty = unknown)',
    town_zh String COMMENT 'Chinese name of the town (镇/街道)',
    town_en String COMMENT 'English name of the town (镇/街道)',
    station_code String COMMENT 'police station code (empty = unknown)',
    station_zh String COMMENT 'Chinese name of the police station (派出所)',
    station_en String COMMENT 'English name of the police station (派出所)',
    compound_id String COMMENT 'compound id (empty = none)',
    compound_zh String COMMENT 'Chinese name of the residential compound (小区)',
    compound_en String COMMENT 'English name of the residential compound (小区)',
    category String COMMENT 'incident category code',
    category_zh String COMMENT 'Chinese name of the incident category',
    category_en String COMMENT 'English name of the incident category',
    subtype String COMMENT 'incident type code',
    subtype_zh String COMMENT 'Chinese name of the incident type (subtype)',
    subtype_en String COMMENT 'English name of the incident type (subtype)',
    source String COMMENT 'call (110) or qr (citizen report)',
    department String COMMENT 'primary responsible department code (empty = none)',
    department_zh String COMMENT 'Chinese name of the responsible department',
    department_en String COMMENT 'English name of the responsible department',
    events UInt64 COMMENT 'exact number of distinct events: sum it over any filter'
) AS
WITH
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'town')) AS town_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'station')) AS station_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'compound')) AS compound_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_category FINAL)) AS category_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_subtype FINAL)) AS subtype_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_department FINAL)) AS department_names
SELECT
    hour, toDate(hour) AS day, toUInt8(toHour(hour)) AS hour_of_day,
    district_code,
    town_code, transform(town_code, town_names.1, town_names.2, '') AS town_zh, transform(town_code, town_names.1, town_names.3, '') AS town_en,
    station_code, transform(station_code, station_names.1, station_names.2, '') AS station_zh, transform(station_code, station_names.1, station_names.3, '') AS station_en,
    compound_id, transform(compound_id, compound_names.1, compound_names.2, '') AS compound_zh, transform(compound_id, compound_names.1, compound_names.3, '') AS compound_en,
    category, transform(category, category_names.1, category_names.2, '') AS category_zh, transform(category, category_names.1, category_names.3, '') AS category_en,
    subtype, transform(subtype, subtype_names.1, subtype_names.2, '') AS subtype_zh, transform(subtype, subtype_names.1, subtype_names.3, '') AS subtype_en,
    source,
    department, transform(department, department_names.1, department_names.2, '') AS department_zh, transform(department, department_names.1, department_names.3, '') AS department_en,
    events
FROM
(
    SELECT hour, district_code, town_code, station_code, compound_id, category, subtype, source, department,
        toUInt64(uniqExactMerge(events)) AS events
    FROM {db}.counts_hour
    GROUP BY hour, district_code, town_code, station_code, compound_id, category, subtype, source, department
);

CREATE VIEW IF NOT EXISTS {db}.bi_counts_daily
(
    day Date COMMENT 'day (Asia/Shanghai)',
    district_code String COMMENT 'district code',
    town_code String COMMENT 'town code (empty = unknown)',
    town_zh String COMMENT 'Chinese name of the town (镇/街道)',
    town_en String COMMENT 'English name of the town (镇/街道)',
    station_code String COMMENT 'police station code (empty = unknown)',
    station_zh String COMMENT 'Chinese name of the police station (派出所)',
    station_en String COMMENT 'English name of the police station (派出所)',
    category String COMMENT 'incident category code',
    category_zh String COMMENT 'Chinese name of the incident category',
    category_en String COMMENT 'English name of the incident category',
    subtype String COMMENT 'incident type code',
    subtype_zh String COMMENT 'Chinese name of the incident type (subtype)',
    subtype_en String COMMENT 'English name of the incident type (subtype)',
    source String COMMENT 'call (110) or qr (citizen report)',
    department String COMMENT 'primary responsible department code (empty = none)',
    department_zh String COMMENT 'Chinese name of the responsible department',
    department_en String COMMENT 'English name of the responsible department',
    events UInt64 COMMENT 'exact number of distinct events: sum it over any filter',
    sealed UInt8 COMMENT '1 = from a sealed day (counts_day), 0 = from the hourly rollup'
) AS
WITH
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'town')) AS town_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'station')) AS station_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_category FINAL)) AS category_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_subtype FINAL)) AS subtype_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_department FINAL)) AS department_names
SELECT
    day,
    district_code,
    town_code, transform(town_code, town_names.1, town_names.2, '') AS town_zh, transform(town_code, town_names.1, town_names.3, '') AS town_en,
    station_code, transform(station_code, station_names.1, station_names.2, '') AS station_zh, transform(station_code, station_names.1, station_names.3, '') AS station_en,
    category, transform(category, category_names.1, category_names.2, '') AS category_zh, transform(category, category_names.1, category_names.3, '') AS category_en,
    subtype, transform(subtype, subtype_names.1, subtype_names.2, '') AS subtype_zh, transform(subtype, subtype_names.1, subtype_names.3, '') AS subtype_en,
    source,
    department, transform(department, department_names.1, department_names.2, '') AS department_zh, transform(department, department_names.1, department_names.3, '') AS department_en,
    events, sealed
FROM
(
    SELECT day, district_code, town_code, station_code, category, subtype, source, department,
        sum(events) AS events, toUInt8(1) AS sealed
    FROM {db}.counts_day
    WHERE (day, seal) IN
        (
            SELECT day, newest.2 AS seal
            FROM
            (
                SELECT day, max(tuple(sealed_as_of, seal)) AS newest FROM {db}.day_seals GROUP BY day
            ) AS marks
            ANY LEFT JOIN
            (
                SELECT day, maxMerge(last_write) AS last_write FROM {db}.day_writes GROUP BY day
            ) AS writes USING day
            WHERE last_write < newest.1
        )
    GROUP BY day, district_code, town_code, station_code, category, subtype, source, department
    UNION ALL
    SELECT toDate(hour) AS day, district_code, town_code, station_code, category, subtype, source, department,
        toUInt64(uniqExactMerge(events)) AS events, toUInt8(0) AS sealed
    FROM {db}.counts_hour
    WHERE toDate(hour) NOT IN
        (
            SELECT day FROM
            (
            SELECT day, newest.2 AS seal
            FROM
            (
                SELECT day, max(tuple(sealed_as_of, seal)) AS newest FROM {db}.day_seals GROUP BY day
            ) AS marks
            ANY LEFT JOIN
            (
                SELECT day, maxMerge(last_write) AS last_write FROM {db}.day_writes GROUP BY day
            ) AS writes USING day
            WHERE last_write < newest.1
            )
        )
    GROUP BY day, district_code, town_code, station_code, category, subtype, source, department
);

CREATE VIEW IF NOT EXISTS {db}.bi_incidents
(
    event_id UUID COMMENT 'stable event id (duplicates folded)',
    source String COMMENT 'call (110) or qr (citizen report)',
    source_ref String COMMENT 'CAD number or doorplate id (empty = none)',
    event_time DateTime('Asia/Shanghai') COMMENT 'when it happened (Asia/Shanghai)',
    day Date COMMENT 'day (Asia/Shanghai)',
    hour DateTime('Asia/Shanghai') COMMENT 'hour it happened in',
    category String COMMENT 'incident category code',
    category_zh String COMMENT 'Chinese name of the incident category',
    category_en String COMMENT 'English name of the incident category',
    subtype String COMMENT 'incident type code',
    subtype_zh String COMMENT 'Chinese name of the incident type (subtype)',
    subtype_en String COMMENT 'English name of the incident type (subtype)',
    department String COMMENT 'primary responsible department code (empty = none)',
    department_zh String COMMENT 'Chinese name of the responsible department',
    department_en String COMMENT 'English name of the responsible department',
    secondary_departments Array(String) COMMENT 'other departments involved',
    priority UInt8 COMMENT 'priority 1 (most urgent) to 4, 0 = none',
    district_code String COMMENT 'district code',
    town_code String COMMENT 'town code (empty = unknown)',
    town_zh String COMMENT 'Chinese name of the town (镇/街道)',
    town_en String COMMENT 'English name of the town (镇/街道)',
    station_code String COMMENT 'police station code (empty = unknown)',
    station_zh String COMMENT 'Chinese name of the police station (派出所)',
    station_en String COMMENT 'English name of the police station (派出所)',
    committee_id String COMMENT 'neighbourhood committee id (empty = none)',
    committee_zh String COMMENT 'Chinese name of the neighbourhood committee (居委会)',
    committee_en String COMMENT 'English name of the neighbourhood committee (居委会)',
    compound_id String COMMENT 'compound id (empty = none)',
    compound_zh String COMMENT 'Chinese name of the residential compound (小区)',
    compound_en String COMMENT 'English name of the residential compound (小区)',
    poi_id String COMMENT 'declared hot spot id (empty = none)',
    poi_zh String COMMENT 'Chinese name of the declared hot spot (POI)',
    poi_en String COMMENT 'English name of the declared hot spot (POI)',
    plate_id String COMMENT 'QR doorplate id (empty = none)',
    lat Nullable(Float64) COMMENT 'latitude (WGS84)',
    lon Nullable(Float64) COMMENT 'longitude (WGS84)',
    h3 String COMMENT 'H3 cell, resolution 9',
    h3_r8 String COMMENT 'H3 cell, resolution 8',
    tags Array(String) COMMENT 'tags (e.g. repeat)',
    keywords Array(String) COMMENT 'keywords found in the text',
    classifier_version String COMMENT 'classifier version',
    score Float32 COMMENT 'classification score',
    rule String COMMENT 'deciding classifier rule',
    evidence Array(String) COMMENT 'text evidence of the classification',
    runner_up String COMMENT 'second most likely type (empty = none)',
    repeat_of Nullable(UUID) COMMENT 'earlier event this call repeats',
    is_repeat UInt8 COMMENT '1 = a repeat call of an earlier report',
    description String COMMENT 'redacted call text'
) AS
WITH
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'town')) AS town_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'station')) AS station_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'committee')) AS committee_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'compound')) AS compound_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'poi')) AS poi_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_category FINAL)) AS category_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_subtype FINAL)) AS subtype_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_department FINAL)) AS department_names
SELECT
    event_id, source, source_ref, event_time, toDate(event_time) AS day, toStartOfHour(event_time) AS hour,
    category, transform(category, category_names.1, category_names.2, '') AS category_zh, transform(category, category_names.1, category_names.3, '') AS category_en,
    subtype, transform(subtype, subtype_names.1, subtype_names.2, '') AS subtype_zh, transform(subtype, subtype_names.1, subtype_names.3, '') AS subtype_en,
    ifNull(department, '') AS department, transform(ifNull(department, ''), department_names.1, department_names.2, '') AS department_zh, transform(ifNull(department, ''), department_names.1, department_names.3, '') AS department_en,
    secondary_departments, priority,
    ifNull(district_code, '') AS district_code,
    ifNull(town_code, '') AS town_code, transform(ifNull(town_code, ''), town_names.1, town_names.2, '') AS town_zh, transform(ifNull(town_code, ''), town_names.1, town_names.3, '') AS town_en,
    ifNull(station_code, '') AS station_code, transform(ifNull(station_code, ''), station_names.1, station_names.2, '') AS station_zh, transform(ifNull(station_code, ''), station_names.1, station_names.3, '') AS station_en,
    ifNull(committee_id, '') AS committee_id, transform(ifNull(committee_id, ''), committee_names.1, committee_names.2, '') AS committee_zh, transform(ifNull(committee_id, ''), committee_names.1, committee_names.3, '') AS committee_en,
    ifNull(compound_id, '') AS compound_id, transform(ifNull(compound_id, ''), compound_names.1, compound_names.2, '') AS compound_zh, transform(ifNull(compound_id, ''), compound_names.1, compound_names.3, '') AS compound_en,
    ifNull(poi_id, '') AS poi_id, transform(ifNull(poi_id, ''), poi_names.1, poi_names.2, '') AS poi_zh, transform(ifNull(poi_id, ''), poi_names.1, poi_names.3, '') AS poi_en,
    ifNull(plate_id, '') AS plate_id,
    lat, lon, ifNull(h3, '') AS h3, ifNull(h3_r8, '') AS h3_r8,
    tags, keywords, classifier_version, score, rule, evidence, runner_up,
    repeat_of, toUInt8(isNotNull(repeat_of)) AS is_repeat, description
FROM
(
    -- A sub-query: on 18.16 FINAL computes the sorting key toDate(event_time) itself, and an
    -- outer `toDate(event_time) AS day` beside it would be a duplicate column.
    SELECT event_id, source, source_ref, event_time, category, subtype, department, secondary_departments,
        priority, district_code, town_code, station_code, committee_id, compound_id, poi_id, plate_id,
        lat, lon, h3, h3_r8, tags, keywords, classifier_version, score, rule, evidence, runner_up,
        repeat_of, description
    FROM {db}.incidents FINAL
);

CREATE VIEW IF NOT EXISTS {db}.bi_alerts
(
    alert_key String COMMENT 'one alert per episode of a series',
    id String COMMENT 'alert id (key and version)',
    version UInt64 COMMENT 'rises with the level',
    level String COMMENT 'yellow, orange or red',
    method String COMMENT 'detection method',
    state String COMMENT 'open while the window has not ended, else closed',
    area_level String COMMENT 'town, station, compound, h3_r8, h3_r8_k1 or poi',
    area_code String COMMENT 'area code at that level',
    area_zh String COMMENT 'Chinese name of the alert area',
    area_en String COMMENT 'English name of the alert area',
    town_code String COMMENT 'town of the area (empty = unknown)',
    town_zh String COMMENT 'Chinese name of the town (镇/街道)',
    town_en String COMMENT 'English name of the town (镇/街道)',
    category String COMMENT 'incident category code',
    category_zh String COMMENT 'Chinese name of the incident category',
    category_en String COMMENT 'English name of the incident category',
    subtype String COMMENT 'incident type code (empty = whole category)',
    subtype_zh String COMMENT 'Chinese name of the incident type (subtype)',
    subtype_en String COMMENT 'English name of the incident type (subtype)',
    window_start DateTime('Asia/Shanghai') COMMENT 'window start (Asia/Shanghai)',
    window_end DateTime('Asia/Shanghai') COMMENT 'window end (Asia/Shanghai)',
    observed UInt32 COMMENT 'events counted in the window',
    expected Float64 COMMENT 'events expected from the baseline',
    ratio Float64 COMMENT 'observed / expected',
    score Float64 COMMENT 'test statistic',
    p_value Float64 COMMENT 'tail probability',
    baseline String COMMENT 'the baseline as JSON',
    contributors Array(String) COMMENT 'event ids counted',
    created_at DateTime('Asia/Shanghai') COMMENT 'first emitted',
    updated_at DateTime('Asia/Shanghai') COMMENT 'last changed',
    evidence String COMMENT 'the whole alert as JSON: baseline, method detail, group members'
) AS
WITH
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'town')) AS town_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'station')) AS station_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'compound')) AS compound_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_area FINAL WHERE level = 'poi')) AS poi_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_category FINAL)) AS category_names,
    (SELECT (arrayConcat([''], groupArray(code)), arrayConcat([''], groupArray(name_zh)), arrayConcat([''], groupArray(name_en))) FROM (SELECT code, name_zh, name_en FROM {db}.dim_subtype FINAL)) AS subtype_names
SELECT
    alert_key, id, version, level, method,
    if(window_end > now(), 'open', 'closed') AS state,
    area_level, area_code, multiIf(area_level = 'town', transform(area_code, town_names.1, town_names.2, ''), area_level = 'station', transform(area_code, station_names.1, station_names.2, ''), area_level = 'compound', transform(area_code, compound_names.1, compound_names.2, ''), area_level = 'poi', transform(area_code, poi_names.1, poi_names.2, ''), '') AS area_zh, multiIf(area_level = 'town', transform(area_code, town_names.1, town_names.3, ''), area_level = 'station', transform(area_code, station_names.1, station_names.3, ''), area_level = 'compound', transform(area_code, compound_names.1, compound_names.3, ''), area_level = 'poi', transform(area_code, poi_names.1, poi_names.3, ''), '') AS area_en,
    ifNull(town_code, '') AS town_code, transform(ifNull(town_code, ''), town_names.1, town_names.2, '') AS town_zh, transform(ifNull(town_code, ''), town_names.1, town_names.3, '') AS town_en,
    category, transform(category, category_names.1, category_names.2, '') AS category_zh, transform(category, category_names.1, category_names.3, '') AS category_en,
    ifNull(subtype, '') AS subtype, transform(ifNull(subtype, ''), subtype_names.1, subtype_names.2, '') AS subtype_zh, transform(ifNull(subtype, ''), subtype_names.1, subtype_names.3, '') AS subtype_en,
    window_start, window_end, observed, expected,
    if(expected > 0, observed / expected, 0) AS ratio,
    score, p_value, baseline, contributors, created_at, updated_at,
    record AS evidence
FROM {db}.alerts FINAL;

CREATE VIEW IF NOT EXISTS {db}.bi_dead_letters
(
    dead_lettered_at DateTime('Asia/Shanghai') COMMENT 'when the record was dead-lettered',
    day Date COMMENT 'day it was dead-lettered',
    stage String COMMENT 'stage that gave up on it',
    reason String COMMENT 'stable reason code',
    message String COMMENT 'error detail',
    topic String COMMENT 'origin Kafka topic',
    `partition` UInt16 COMMENT 'origin partition',
    `offset` UInt64 COMMENT 'origin offset',
    id String COMMENT 'topic/partition/offset: the id for pingan dlq show and replay',
    event_id String COMMENT 'event id in the payload (empty = none)',
    key String COMMENT 'original Kafka key',
    payload String COMMENT 'original bytes',
    payload_bytes UInt64 COMMENT 'payload size in bytes',
    replays UInt64 COMMENT 'times replayed with pingan dlq replay',
    last_replayed_at DateTime('Asia/Shanghai') COMMENT 'last replay (1970 = never)',
    replayed UInt8 COMMENT '1 = replayed at least once'
) AS
SELECT
    stored_at AS dead_lettered_at, toDate(stored_at) AS day, stage, reason, message,
    topic, `partition`, `offset`, concat(topic, '/', toString(`partition`), '/', toString(`offset`)) AS id,
    visitParamExtractString(payload, 'event_id') AS event_id,
    key, payload, length(payload) AS payload_bytes,
    replays, last_replayed_at, toUInt8(replays > 0) AS replayed
FROM
(
    SELECT stored_at, stage, reason, message, topic, `partition`, `offset`, key, payload FROM {db}.dead_letters FINAL
) AS letters
ANY LEFT JOIN
(
    SELECT topic, `partition`, `offset`, count() AS replays, max(replayed_at) AS last_replayed_at
    FROM {db}.dead_letter_replays GROUP BY topic, `partition`, `offset`
) AS replays_of USING (topic, `partition`, `offset`)
