//! Dumps every SQL statement the services send (with sample parameters) into the directory named
//! by `PINGAN_SQL_TEMPLATES`, for `tests/chdb/run.sh`, which runs them on a current ClickHouse
//! engine. Without the variable it only checks that every template is non-empty.

#[test]
fn sql_templates() {
    let all = pingan_tests::all_sql_templates();
    assert!(!all.is_empty());
    // The documentation's SQL is among them (README, schema README, production guide).
    assert!(
        all.iter()
            .filter(|(n, _)| n.starts_with("doc_schemas_clickhouse_README_"))
            .count()
            >= 5
    );
    for (name, sql) in &all {
        assert!(!sql.trim().is_empty(), "{name}");
    }
    if let Some(dir) = std::env::var_os("PINGAN_SQL_TEMPLATES") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, sql) in all {
            std::fs::write(dir.join(format!("{name}.sql")), sql).unwrap();
        }
    }
}
