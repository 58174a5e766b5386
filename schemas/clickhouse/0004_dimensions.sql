-- Dimension tables with Chinese and English labels. `pingan migrate` (re)loads them from the
-- reference data compiled into the binary whenever that data changes; a reload writes a higher
-- `loaded_at`, and readers use FINAL (or the views below) to see the newest row per code.
CREATE TABLE IF NOT EXISTS {db}.dim_category
(
    code String,
    num UInt16,
    name_zh String,
    name_en String,
    loaded_at UInt64
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.dim_subtype
(
    code String,
    num UInt16,
    category String,
    name_zh String,
    name_en String,
    police String,
    default_priority UInt8,
    loaded_at UInt64
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

CREATE TABLE IF NOT EXISTS {db}.dim_department
(
    code String,
    name_zh String,
    name_en String,
    loaded_at UInt64
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY code;

-- Every area of every level: district, town, station, committee, compound, poi, safe_house.
CREATE TABLE IF NOT EXISTS {db}.dim_area
(
    level String,
    code String,
    parent_code String,
    town_code String,
    name_zh String,
    name_en String,
    synthetic UInt8,
    lat Float64,
    lon Float64,
    loaded_at UInt64
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (level, code);
