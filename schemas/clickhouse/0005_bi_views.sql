-- BI view: one row per distinct event (FINAL folds duplicated event ids), with Chinese and
-- English labels for category, subtype, town and compound. Nested single joins keep it valid on
-- ClickHouse 18.16, which allows one JOIN per SELECT.
CREATE VIEW IF NOT EXISTS {db}.incidents_labelled AS
SELECT
    event_id, source, source_ref, event_time, event_date, category, category_zh, category_en,
    subtype, subtype_zh, subtype_en, department, priority, district_code, town_code, town_zh, town_en,
    station_code, compound_id, compound_zh, compound_en, poi_id, lat, lon, h3, tags, keywords,
    classifier_version, repeat_of, description
FROM
(
    SELECT
        event_id, source, source_ref, event_time, event_date, category, category_zh, category_en,
        subtype, subtype_zh, subtype_en, department, priority, district_code, town_code, town_zh, town_en,
        station_code, compound_id, poi_id, lat, lon, h3, tags, keywords, classifier_version, repeat_of,
        description, ifNull(compound_id, '') AS compound_key
    FROM
    (
        SELECT
            event_id, source, source_ref, event_time, event_date, category, category_zh, category_en,
            subtype, subtype_zh, subtype_en, department, priority, district_code, town_code,
            station_code, compound_id, poi_id, lat, lon, h3, tags, keywords, classifier_version,
            repeat_of, description, ifNull(town_code, '') AS town_key
        FROM
        (
            SELECT
                event_id, source, source_ref, event_time, toDate(event_time) AS event_date, category,
                subtype, department, priority, district_code, town_code, station_code, compound_id,
                poi_id, lat, lon, h3, tags, keywords, classifier_version, repeat_of, description
            FROM {db}.incidents FINAL
        ) AS i
        ANY LEFT JOIN
        (
            SELECT subtype, subtype_zh, subtype_en, category_zh, category_en
            FROM
            (
                SELECT code AS subtype, category AS category_key, name_zh AS subtype_zh, name_en AS subtype_en
                FROM {db}.dim_subtype FINAL
            ) AS s
            ANY LEFT JOIN
            (
                SELECT code AS category_key, name_zh AS category_zh, name_en AS category_en
                FROM {db}.dim_category FINAL
            ) AS c USING category_key
        ) AS st USING subtype
    ) AS it
    ANY LEFT JOIN
    (
        SELECT code AS town_key, name_zh AS town_zh, name_en AS town_en FROM {db}.dim_area FINAL WHERE level = 'town'
    ) AS t USING town_key
) AS itt
ANY LEFT JOIN
(
    SELECT code AS compound_key, name_zh AS compound_zh, name_en AS compound_en FROM {db}.dim_area FINAL WHERE level = 'compound'
) AS cp USING compound_key;
