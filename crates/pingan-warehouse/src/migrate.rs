//! `pingan migrate`: numbered SQL migrations plus the dimension tables, idempotent.
//!
//! Migrations are the files of `schemas/clickhouse/`, compiled in. Each is applied once and
//! recorded in `schema_migrations` with its checksum; a second run applies nothing. Dimension tables
//! are reloaded only when the reference data compiled into this binary changed. Server-specific
//! extras are gated on a capability check: servers with non-replicated insert deduplication
//! (22.2+) get a deduplication window on `incidents`, so retried batches with the same token are
//! dropped by the server as well.

use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::{Client, Row};
use pingan_domain::area::AreaIndex;
use pingan_domain::taxonomy::Taxonomy;
use pingan_runtime::config::ClickHouseConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One migration file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version (the file's number).
    pub version: u32,
    /// File name.
    pub name: &'static str,
    /// SQL with `{db}` placeholders; statements separated by `;`.
    pub sql: &'static str,
}

/// The migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_incidents.sql",
        sql: include_str!("../../../schemas/clickhouse/0001_incidents.sql"),
    },
    Migration {
        version: 2,
        name: "0002_rollups.sql",
        sql: include_str!("../../../schemas/clickhouse/0002_rollups.sql"),
    },
    Migration {
        version: 3,
        name: "0003_alerts_dead_letters.sql",
        sql: include_str!("../../../schemas/clickhouse/0003_alerts_dead_letters.sql"),
    },
    Migration {
        version: 4,
        name: "0004_dimensions.sql",
        sql: include_str!("../../../schemas/clickhouse/0004_dimensions.sql"),
    },
    Migration {
        version: 5,
        name: "0005_bi_views.sql",
        sql: include_str!("../../../schemas/clickhouse/0005_bi_views.sql"),
    },
    Migration {
        version: 6,
        name: "0006_insert_audit.sql",
        sql: include_str!("../../../schemas/clickhouse/0006_insert_audit.sql"),
    },
    Migration {
        version: 7,
        name: "0007_sealed_days.sql",
        sql: include_str!("../../../schemas/clickhouse/0007_sealed_days.sql"),
    },
    Migration {
        version: 8,
        name: "0008_dead_letter_replays.sql",
        sql: include_str!("../../../schemas/clickhouse/0008_dead_letter_replays.sql"),
    },
    Migration {
        version: 9,
        name: "0009_bi_layer.sql",
        sql: include_str!("../../../schemas/clickhouse/0009_bi_layer.sql"),
    },
    Migration {
        version: 10,
        name: "0010_access_log.sql",
        sql: include_str!("../../../schemas/clickhouse/0010_access_log.sql"),
    },
];

/// Version number under which the dimension data checksum is recorded.
const DIMS_VERSION: u32 = 0;
/// Version number of the modern-server deduplication window.
const DEDUP_WINDOW_VERSION: u32 = 9001;

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Server version string.
    pub server_version: String,
    /// Files applied in this run.
    pub applied: Vec<String>,
    /// Files already applied earlier.
    pub already_applied: usize,
    /// Whether the dimension tables were (re)loaded, and how many rows.
    pub dimension_rows: Option<usize>,
    /// Capability-gated extras applied in this run.
    pub extras: Vec<String>,
}

impl MigrationReport {
    /// Whether the run changed nothing.
    pub fn is_noop(&self) -> bool {
        self.applied.is_empty() && self.dimension_rows.is_none() && self.extras.is_empty()
    }
}

/// Why a migration failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed.
    #[error("{file}: statement {index} failed: {source}")]
    Statement {
        /// File name.
        file: String,
        /// 1-based statement number.
        index: usize,
        /// The error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// Talking to ClickHouse failed.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// The schema cannot be laid out as asked (cluster name, a statement without a cluster form).
    #[error("{0}")]
    Layout(String),
}

/// Splits a migration into statements, with `{db}` replaced and comment lines removed.
pub fn statements(sql: &str, db: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{db}", db))
        .collect()
}

fn checksum(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(Debug, Row, Serialize)]
struct MigrationRow {
    version: u32,
    name: String,
    checksum: String,
    applied_at: u32,
}

#[derive(Debug, Row, Serialize)]
struct CategoryRow {
    code: String,
    num: u16,
    name_zh: String,
    name_en: String,
    loaded_at: u64,
}

#[derive(Debug, Row, Serialize)]
struct SubtypeRow {
    code: String,
    num: u16,
    category: String,
    name_zh: String,
    name_en: String,
    police: String,
    default_priority: u8,
    loaded_at: u64,
}

#[derive(Debug, Row, Serialize)]
struct DepartmentRow {
    code: String,
    name_zh: String,
    name_en: String,
    loaded_at: u64,
}

#[derive(Debug, Row, Serialize)]
struct AreaRow {
    level: String,
    code: String,
    parent_code: String,
    town_code: String,
    name_zh: String,
    name_en: String,
    synthetic: u8,
    lat: f64,
    lon: f64,
    loaded_at: u64,
}

fn area_rows(loaded_at: u64) -> Vec<AreaRow> {
    let idx = AreaIndex::builtin();
    let d = pingan_domain::area::DISTRICT_CODE;
    let mut rows = vec![AreaRow {
        level: "district".into(),
        code: d.into(),
        parent_code: String::new(),
        town_code: String::new(),
        name_zh: pingan_domain::area::DISTRICT_NAME_ZH.into(),
        name_en: pingan_domain::area::DISTRICT_NAME_EN.into(),
        synthetic: 0,
        lat: 0.0,
        lon: 0.0,
        loaded_at,
    }];
    let row = |level: &str,
               code: &str,
               parent: &str,
               town: &str,
               zh: &str,
               en: &str,
               synthetic: bool,
               lat: f64,
               lon: f64| AreaRow {
        level: level.into(),
        code: code.into(),
        parent_code: parent.into(),
        town_code: town.into(),
        name_zh: zh.into(),
        name_en: en.into(),
        synthetic: u8::from(synthetic),
        lat,
        lon,
        loaded_at,
    };
    for t in idx.towns() {
        rows.push(row(
            "town", &t.code, d, &t.code, &t.name_zh, &t.name_en, false, 0.0, 0.0,
        ));
    }
    for s in idx.stations() {
        let town = s.towns.first().map_or("", String::as_str);
        rows.push(row(
            "station", &s.code, town, town, &s.name_zh, &s.name_en, false, s.lat, s.lon,
        ));
    }
    for c in idx.committees() {
        rows.push(row(
            "committee",
            &c.id,
            &c.station_code,
            &c.town_code,
            &c.name_zh,
            &c.name_en,
            c.synthetic,
            c.lat,
            c.lon,
        ));
    }
    for c in idx.compounds() {
        rows.push(row(
            "compound",
            &c.id,
            &c.committee_id,
            &c.town_code,
            &c.name_zh,
            &c.name_en,
            c.synthetic,
            c.lat,
            c.lon,
        ));
    }
    for p in idx.pois() {
        rows.push(row(
            "poi",
            &p.id,
            &p.town_code,
            &p.town_code,
            &p.name_zh,
            &p.name_en,
            false,
            p.lat,
            p.lon,
        ));
    }
    for s in idx.safe_houses() {
        rows.push(row(
            "safe_house",
            &s.id,
            &s.station_code,
            &s.town_code,
            &s.name_zh,
            &s.name_en,
            s.synthetic,
            s.lat,
            s.lon,
        ));
    }
    rows
}

fn dims_checksum() -> String {
    let tax = Taxonomy::builtin();
    let mut text = String::new();
    for c in tax.categories() {
        text.push_str(&format!(
            "{}|{}|{}|{}\n",
            c.code, c.num, c.name_zh, c.name_en
        ));
    }
    for s in tax.subtypes() {
        text.push_str(&format!(
            "{}|{}|{}|{}|{:?}|{:?}\n",
            s.code, s.num, s.name_zh, s.name_en, s.police, s.default_priority
        ));
    }
    for d in tax.departments() {
        text.push_str(&format!("{}|{}|{}\n", d.code, d.name_zh, d.name_en));
    }
    for a in area_rows(0) {
        text.push_str(&format!(
            "{}|{}|{}|{}|{}|{}\n",
            a.level, a.code, a.parent_code, a.name_zh, a.name_en, a.synthetic
        ));
    }
    checksum(&text)
}

async fn insert_all<T>(
    client: &Client,
    table: &str,
    rows: &[T],
) -> Result<(), clickhouse::error::Error>
where
    T: Row + Serialize + Send + Sync + for<'a> Row<Value<'a> = T>,
{
    let mut insert = client.insert::<T>(table).await?;
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await
}

async fn load_dimensions(
    client: &Client,
    loaded_at: u64,
) -> Result<usize, clickhouse::error::Error> {
    let tax = Taxonomy::builtin();
    let cats: Vec<CategoryRow> = tax
        .categories()
        .iter()
        .map(|c| CategoryRow {
            code: c.code.clone(),
            num: c.num,
            name_zh: c.name_zh.clone(),
            name_en: c.name_en.clone(),
            loaded_at,
        })
        .collect();
    let subs: Vec<SubtypeRow> = tax
        .subtypes()
        .iter()
        .map(|s| SubtypeRow {
            code: s.code.clone(),
            num: s.num,
            category: s.category.clone(),
            name_zh: s.name_zh.clone(),
            name_en: s.name_en.clone(),
            police: format!("{:?}", s.police),
            default_priority: s.default_priority.unwrap_or(0),
            loaded_at,
        })
        .collect();
    let depts: Vec<DepartmentRow> = tax
        .departments()
        .iter()
        .map(|d| DepartmentRow {
            code: d.code.clone(),
            name_zh: d.name_zh.clone(),
            name_en: d.name_en.clone(),
            loaded_at,
        })
        .collect();
    let areas = area_rows(loaded_at);
    let n = cats.len() + subs.len() + depts.len() + areas.len();
    insert_all(client, "dim_category", &cats).await?;
    insert_all(client, "dim_subtype", &subs).await?;
    insert_all(client, "dim_department", &depts).await?;
    insert_all(client, "dim_area", &areas).await?;
    Ok(n)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses `major.minor` of a ClickHouse version string.
pub fn server_major_minor(version: &str) -> (u32, u32) {
    let mut p = version.split('.').filter_map(|x| x.parse::<u32>().ok());
    (p.next().unwrap_or(0), p.next().unwrap_or(0))
}

/// Where the schema goes: one server, or every replica of a cluster (see [`crate::cluster`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Layout {
    /// One server, plain `*MergeTree` tables.
    #[default]
    Single,
    /// `ON CLUSTER <name>` DDL and `Replicated*MergeTree` tables, from any one replica.
    Cluster(String),
}

impl Layout {
    /// `stmt` as this layout runs it.
    fn prepare(&self, stmt: &str, db: &str) -> Result<String, crate::cluster::UnknownForm> {
        match self {
            Layout::Single => Ok(stmt.to_string()),
            Layout::Cluster(name) => crate::cluster::on_cluster(stmt, db, name),
        }
    }
}

/// Applies every pending migration to `settings.database` on one server (see [`apply_to`]).
pub async fn apply(
    settings: &ClickHouseConfig,
    progress: impl FnMut(&str),
) -> Result<MigrationReport, MigrateError> {
    apply_to(settings, &Layout::Single, progress).await
}

/// Applies every pending migration to `settings.database` in `layout`, creating it if needed,
/// and reloads dimensions when their data changed. `progress` receives one line per step.
///
/// On a cluster, the DDL waits for every replica (up to the server's
/// `distributed_ddl_task_timeout`); a replica that is down gets the statements from the queue
/// when it returns, and a rerun after such a timeout applies nothing twice.
pub async fn apply_to(
    settings: &ClickHouseConfig,
    layout: &Layout,
    mut progress: impl FnMut(&str),
) -> Result<MigrationReport, MigrateError> {
    let db = &settings.database;
    if let Layout::Cluster(name) = layout
        && !crate::cluster::valid_cluster_name(name)
    {
        return Err(MigrateError::Layout(format!(
            "cluster name {name:?}: letters, digits and _ only, as in the servers' remote_servers"
        )));
    }
    let prepare = |file: &str, stmt: &str| {
        layout
            .prepare(stmt, db)
            .map_err(|e| MigrateError::Layout(format!("{file}: {e}")))
    };
    let root = crate::client(
        &ClickHouseConfig {
            database: "default".into(),
            ..settings.clone()
        },
        crate::Role::Migrate,
    );
    let server_version: String = root.query("SELECT version()").fetch_one().await?;
    root.query(&prepare(
        "database",
        &format!("CREATE DATABASE IF NOT EXISTS {db}"),
    )?)
    .execute()
    .await?;
    let client = crate::client(settings, crate::Role::Migrate);
    client
        .query(&prepare(
            "schema_migrations",
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) \
                 ENGINE = MergeTree ORDER BY (version, applied_at)"
            ),
        )?)
        .execute()
        .await?;
    let applied: Vec<(u32, String, String)> = client
        .query("SELECT version, name, checksum FROM schema_migrations ORDER BY version, applied_at")
        .fetch_all()
        .await?;
    let mut report = MigrationReport {
        server_version: server_version.clone(),
        ..Default::default()
    };
    for m in MIGRATIONS {
        let sum = checksum(m.sql);
        if let Some((_, _, old)) = applied.iter().find(|(v, _, _)| *v == m.version) {
            if *old != sum {
                progress(&format!(
                    "warning: {} changed since it was applied; migrations are append-only, add a new file",
                    m.name
                ));
            }
            report.already_applied += 1;
            continue;
        }
        progress(&format!("applying {}", m.name));
        for (i, stmt) in statements(m.sql, db).iter().enumerate() {
            client
                .query(&prepare(m.name, stmt)?)
                .execute()
                .await
                .map_err(|source| MigrateError::Statement {
                    file: m.name.into(),
                    index: i + 1,
                    source,
                })?;
        }
        insert_all(
            &client,
            "schema_migrations",
            &[MigrationRow {
                version: m.version,
                name: m.name.into(),
                checksum: sum,
                applied_at: now_secs() as u32,
            }],
        )
        .await?;
        report.applied.push(m.name.into());
    }
    // Replicated tables deduplicate inserts by themselves; the window is for plain MergeTree.
    if *layout == Layout::Single
        && server_major_minor(&server_version) >= (22, 2)
        && !applied.iter().any(|(v, _, _)| *v == DEDUP_WINDOW_VERSION)
    {
        progress(
            "server supports insert deduplication tokens: enabling a deduplication window on incidents",
        );
        client
            .query(
                "ALTER TABLE incidents MODIFY SETTING non_replicated_deduplication_window = 1000",
            )
            .execute()
            .await?;
        insert_all(
            &client,
            "schema_migrations",
            &[MigrationRow {
                version: DEDUP_WINDOW_VERSION,
                name: "dedup_window".into(),
                checksum: String::new(),
                applied_at: now_secs() as u32,
            }],
        )
        .await?;
        report.extras.push("dedup_window".into());
    }
    let dims = dims_checksum();
    let last_dims = applied
        .iter()
        .filter(|(v, _, _)| *v == DIMS_VERSION)
        .map(|(_, _, c)| c.clone())
        .next_back();
    if last_dims.as_deref() != Some(dims.as_str()) {
        progress("loading dimension tables (taxonomy, departments, areas)");
        let n = load_dimensions(&client, now_secs()).await?;
        insert_all(
            &client,
            "schema_migrations",
            &[MigrationRow {
                version: DIMS_VERSION,
                name: "dimensions".into(),
                checksum: dims,
                applied_at: now_secs() as u32,
            }],
        )
        .await?;
        report.dimension_rows = Some(n);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_split_into_statements() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            let stmts = statements(m.sql, "pingan_x");
            assert!(!stmts.is_empty());
            for s in &stmts {
                assert!(!s.contains("{db}"));
                // A backfill into an aggregate-state table is safe to repeat: the same max
                // state merges into the same value.
                let rerunnable_backfill = s.starts_with("INSERT INTO") && s.contains("maxState(");
                assert!(
                    s.contains("IF NOT EXISTS") || rerunnable_backfill,
                    "{} must be idempotent: {s}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(server_major_minor("18.16.1"), (18, 16));
        assert_eq!(server_major_minor("25.8.2.29"), (25, 8));
        assert!(server_major_minor("22.2.1") >= (22, 2));
    }

    #[test]
    fn dimension_rows_cover_every_level() {
        let rows = area_rows(1);
        for level in [
            "district",
            "town",
            "station",
            "committee",
            "compound",
            "poi",
            "safe_house",
        ] {
            assert!(rows.iter().any(|r| r.level == level), "{level}");
        }
        assert_eq!(dims_checksum(), dims_checksum());
    }
}
