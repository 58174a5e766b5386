//! The replicated form of the schema: `pingan migrate --cluster NAME`.
//!
//! The migrations are written once, for one server. On a cluster every statement runs
//! `ON CLUSTER` (ZooKeeper's distributed DDL queue applies it on every replica, including one
//! that is down now and comes back later), and every `*MergeTree` table becomes its `Replicated*`
//! form, keyed in ZooKeeper by shard, database and table, with the server's `{shard}` and
//! `{replica}` macros. Materialized views fire on the replica that took the INSERT and write to
//! replicated targets, so rollups replicate as parts and never count twice.
//!
//! Data statements (`INSERT … SELECT` backfills) run once, on the connected replica; replication
//! copies their parts.
//!
//! The rewrite is deliberately narrow: it knows the statement forms the migrations use and
//! refuses anything else, so a future migration with a new form fails in the unit test that runs
//! every migration through it instead of creating a table that silently does not replicate.

/// Why a statement cannot be made cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot run on a cluster (unknown statement form, add it to cluster.rs): {head}")]
pub struct UnknownForm {
    /// The statement's first line.
    pub head: String,
}

/// Statement forms the migrations use, in the order tried.
const FORMS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
    "CREATE VIEW IF NOT EXISTS ",
    "CREATE DATABASE IF NOT EXISTS ",
    "ALTER TABLE ",
    "DROP TABLE IF EXISTS ",
    "DROP VIEW IF EXISTS ",
];

/// A cluster name as it may appear unquoted in DDL.
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// `stmt` (with `{db}` already replaced by `db`) as it runs on every replica of `cluster`.
pub fn on_cluster(stmt: &str, db: &str, cluster: &str) -> Result<String, UnknownForm> {
    let unknown = || UnknownForm {
        head: stmt.lines().next().unwrap_or_default().to_string(),
    };
    // Data, not schema: it runs once, on the replica we are connected to, and the replicated
    // target copies it (ON CLUSTER would insert it once per replica).
    if stmt.starts_with("INSERT INTO ") {
        return Ok(stmt.to_string());
    }
    let form = FORMS
        .iter()
        .find(|f| stmt.starts_with(**f))
        .ok_or_else(unknown)?;
    let rest = &stmt[form.len()..];
    let name_len = rest
        .find(|c: char| c.is_whitespace() || c == '(')
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() {
        return Err(unknown());
    }
    let mut out = format!("{form}{name} ON CLUSTER {cluster}{}", &rest[name_len..]);
    if form.starts_with("CREATE TABLE") {
        let table = name.rsplit('.').next().unwrap_or(name);
        out = replicated_engine(&out, db, table).ok_or_else(unknown)?;
    }
    Ok(out)
}

/// Rewrites `ENGINE = <Kind>MergeTree[(args)]` to its replicated form.
fn replicated_engine(stmt: &str, db: &str, table: &str) -> Option<String> {
    const ENGINE: &str = "ENGINE = ";
    let at = stmt.find(ENGINE)? + ENGINE.len();
    let after = &stmt[at..];
    let kind_len = after
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    let kind = &after[..kind_len];
    if !kind.ends_with("MergeTree") || kind.starts_with("Replicated") {
        return None;
    }
    let mut tail = &after[kind_len..];
    let mut args = String::new();
    if let Some(inner) = tail.strip_prefix('(') {
        let close = inner.find(')')?;
        let given = inner[..close].trim();
        if !given.is_empty() {
            args = format!(", {given}");
        }
        tail = &inner[close + 1..];
    }
    Some(format!(
        "{}Replicated{kind}('/clickhouse/tables/{{shard}}/{db}/{table}', '{{replica}}'{args}){tail}",
        &stmt[..at]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{MIGRATIONS, statements};

    #[test]
    fn every_migration_statement_has_a_cluster_form() {
        let mut tables = 0;
        for m in MIGRATIONS {
            for s in statements(m.sql, "pingan") {
                let c = on_cluster(&s, "pingan", "pingan_cluster")
                    .unwrap_or_else(|e| panic!("{}: {e}", m.name));
                if s.starts_with("INSERT") {
                    assert_eq!(c, s, "data is inserted once and replicated");
                    continue;
                }
                assert!(c.contains(" ON CLUSTER pingan_cluster"), "{c}");
                if s.starts_with("CREATE TABLE") {
                    tables += 1;
                    assert!(c.contains("ENGINE = Replicated"), "{c}");
                    assert!(c.contains("'{replica}'"), "{c}");
                }
                assert_eq!(c.matches(" ON CLUSTER ").count(), 1, "{c}");
            }
        }
        assert!(tables >= 15, "{tables} tables");
    }

    #[test]
    fn engine_arguments_follow_the_replication_path() {
        let s = "CREATE TABLE IF NOT EXISTS pingan.alerts\n(\n    k String\n)\nENGINE = ReplacingMergeTree(version)\nORDER BY k";
        assert_eq!(
            on_cluster(s, "pingan", "c1").unwrap(),
            "CREATE TABLE IF NOT EXISTS pingan.alerts ON CLUSTER c1\n(\n    k String\n)\n\
             ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/pingan/alerts', '{replica}', version)\nORDER BY k"
        );
        let plain = "CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = MergeTree ORDER BY x";
        assert_eq!(
            on_cluster(plain, "d", "c1").unwrap(),
            "CREATE TABLE IF NOT EXISTS d.t ON CLUSTER c1 (x UInt8) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t', '{replica}') ORDER BY x"
        );
    }

    #[test]
    fn unknown_forms_and_engines_are_refused() {
        for s in [
            "SYSTEM FLUSH LOGS",
            "CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = Log",
            "CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = Memory",
            "RENAME TABLE d.a TO d.b",
        ] {
            assert!(on_cluster(s, "d", "c").is_err(), "{s}");
        }
        assert!(valid_cluster_name("pingan_cluster"));
        for bad in ["", "1x", "a b", "a;DROP", "a-b"] {
            assert!(!valid_cluster_name(bad), "{bad}");
        }
    }
}
