#!/bin/sh
# Installs payor with every dependency at the lowest version pyproject.toml allows (uv's
# --resolution lowest-direct) in a scratch venv, then runs a smoke run and the test suite:
# the floors we promise are floors we run on. Usage: scripts/check_floors.sh [pytest args]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(mktemp -d)/floors
python3 -m venv "$venv"
"$venv/bin/pip" install -q uv
"$venv/bin/uv" pip install -q --python "$venv/bin/python" --resolution lowest-direct -e "$root[dev]"
echo "installed at the floors:"
"$venv/bin/uv" pip list --python "$venv/bin/python" 2>/dev/null |
    grep -E -i '^(typer|click|rich|requests|pyarrow|numpy|python-calamine|fastexcel|chardet|openpyxl|platformdirs|filelock|pandas|urllib3) '
cd "$(mktemp -d)"
"$venv/bin/payor" --version
"$venv/bin/payor" upload invoices "$root/sample_data/invoices.xlsx" --config "$root/config.example.toml" --dry-run --report-json report.json
"$venv/bin/payor" upload all --customers "$root/sample_data/customers.csv" --invoices "$root/sample_data/invoices.xlsx" --config "$root/config.example.toml" --sandbox --state-dir state
cd "$root"
"$venv/bin/python" -m pytest -n 4 -q -p no:randomly "$@"
