#!/usr/bin/env python3
"""Applies every ClickHouse migration and runs every query template on a *current* ClickHouse
engine (chDB, ClickHouse embedded in-process, from the PyPI package chdb-core), so the schema and
the SQL the services send keep working on the releases users run, not only on the 18.16 server
the test machines install.

Usage: check_schema.py <schemas/clickhouse dir> <templates dir>
The templates dir holds *.sql files written by `cargo test -p pingan-tests sql_templates`
(one rendered statement per file, `{db}` already replaced by `pingan_chdb`).
"""
import glob
import os
import sys
import tempfile

from chdb import session

DB = "pingan_chdb"


def statements(text):
    lines = [l for l in text.splitlines() if not l.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def main():
    schema_dir, templates_dir = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        s = session.Session(os.path.join(tmp, "chdb"))
        version = s.query("SELECT version()", "CSV").bytes().decode().strip()
        print(f"chdb engine {version}")
        s.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        files = sorted(glob.glob(os.path.join(schema_dir, "[0-9][0-9][0-9][0-9]_*.sql")))
        for path in files:
            for i, stmt in enumerate(statements(open(path, encoding="utf-8").read().replace("{db}", DB)), 1):
                try:
                    s.query(stmt)
                except Exception as e:  # noqa: BLE001 - report every failure, keep going
                    failures.append(f"{os.path.basename(path)} statement {i}: {e}")
            print(f"  applied {os.path.basename(path)}")
        # The capability-gated extra that `pingan migrate` applies on modern servers.
        try:
            s.query(f"ALTER TABLE {DB}.incidents MODIFY SETTING non_replicated_deduplication_window = 1000")
            print("  applied dedup window")
        except Exception as e:  # noqa: BLE001
            failures.append(f"dedup window: {e}")
        # Sample data so views and templates run over real rows: two records of one event.
        try:
            s.query(
                f"INSERT INTO {DB}.incidents (event_id, source, source_ref, event_time, category, subtype, town_code, "
                f"compound_id, keywords, h3, h3_r8, h3_r7, kafka_topic, kafka_partition, kafka_offset) VALUES "
                f"('0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10','call','','2019-12-31 21:43:05','CRIM','CRIM_BURGLARY','310112101','C1',['撬门'],'8931aa1b2a3ffff','8831aa1b2bfffff','8731aa1b2ffffff','t',0,1),"
                f"('0190f3a2-7c1e-7b2a-9d1e-3f2a5c7e9b10','call','','2019-12-31 21:43:05','CRIM','CRIM_BURGLARY','310112101','C1',['撬门'],'8931aa1b2a3ffff','8831aa1b2bfffff','8731aa1b2ffffff','t',0,2)"
            )
            n = s.query(f"SELECT uniqExactMerge(events) FROM {DB}.counts_hour", "CSV").bytes().decode().strip()
            if n != "1":
                failures.append(f"counts_hour distinct count is {n}, expected 1")
            a = s.query(f"SELECT count() FROM {DB}.insert_audit", "CSV").bytes().decode().strip()
            if a != "2":
                failures.append(f"insert_audit has {a} rows, expected 2")
            s.query(f"SELECT * FROM {DB}.incidents_labelled", "CSV")
            # The BI views over the same rows: one event, wherever it is summed.
            for view, expr in [("bi_counts_hourly", "sum(events)"), ("bi_counts_daily", "sum(events)"),
                               ("bi_incidents", "count()")]:
                n = s.query(f"SELECT {expr} FROM {DB}.{view}", "CSV").bytes().decode().strip()
                if n != "1":
                    failures.append(f"{view} counts {n} events, expected 1")
            for view in ["bi_alerts", "bi_dead_letters"]:
                s.query(f"SELECT * FROM {DB}.{view}", "CSV")
            bare = s.query(f"SELECT count() FROM system.columns WHERE database = '{DB}' AND startsWith(table, 'bi_') "
                           f"AND comment = ''", "CSV").bytes().decode().strip()
            if bare != "0":
                failures.append(f"{bare} columns of the bi_* views have no comment")
        except Exception as e:  # noqa: BLE001
            failures.append(f"sample data: {e}")
        s.query(f"USE {DB}")
        templates = sorted(glob.glob(os.path.join(templates_dir, "*.sql")))
        for path in templates:
            sql = open(path, encoding="utf-8").read().replace("{db}", DB)
            try:
                s.query(sql, "CSV")
            except Exception as e:  # noqa: BLE001
                failures.append(f"template {os.path.basename(path)}: {e}")
        print(f"  ran {len(templates)} query templates")
        s.close()
    if failures:
        print(f"{len(failures)} failed, current ClickHouse ({version}) rejects:")
        for f in failures:
            print("  - " + f)
        return 1
    print(f"{len(files) + len(templates)} passed, 0 failed: schema and queries run on ClickHouse {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
