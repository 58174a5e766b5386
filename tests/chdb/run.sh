#!/usr/bin/env bash
# Checks the schema and every query template on a current ClickHouse engine (chDB from PyPI).
# Installs chdb-core into .cache/chdb-venv on first use.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.cache/chdb-venv"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
  echo "==> installing chdb-core (ClickHouse embedded, current release) into .cache/chdb-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'chdb-core>=25'
fi
templates="$root/target/sql-templates"
rm -rf "$templates"
mkdir -p "$templates"
( cd "$root" && PINGAN_SQL_TEMPLATES="$templates" cargo test --locked -q -p pingan-tests --test sql_templates >/dev/null )
"$venv/bin/python" "$root/tests/chdb/check_schema.py" "$root/schemas/clickhouse" "$templates"
