#!/usr/bin/env python3
"""Runs every code example of the docs against real output of the binary.

Usage: scripts/docs_examples.py PATH/TO/target-s3

Extracts the fenced blocks of README.md and docs/**/*.md tagged
  ```sql duckdb   run by DuckDB (one connection per block; `-- expect rows: N` checks the last
                  statement's row count, `-- expect value: X` its first value)
  ```sql spark    run by PySpark's Spark SQL with Hive support (the dialect of Athena and Glue
                  DDL), statement by statement, in one session shared by all blocks in order
  ```python       run by Python with `spark` (a SparkSession) available; each
                  `# expect: EXPRESSION` comment must then evaluate to True
and checks that a block tagged `untested` has a paragraph starting with "Untested:" right above
it (the reason). Before running them it makes the data with the binary into a temporary folder
that stands for `s3://my-bucket/` (every `s3://my-bucket/` in a block is replaced by it):
  output/      the sample streams with the default settings (JSONL, gzip, manifests)
  lake/        a generated `events` stream as Hive-partitioned Parquet, loaded twice (a rerun:
               every record twice)
  lake_csv/    the same once as CSV (`csv_null_value: \\N`), lake_jsonl/ as JSONL
  tables/      the same once as a Delta table partitioned by `country`, plus one data file no
               commit names (a failed run's), for the VACUUM example
  warehouse/   the same once as an Iceberg table, its SQLite catalog inside
Runs in target/readersenv (scripts/testenv.py: DuckDB, PySpark, pyarrow, polars, deltalake).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import testenv  # noqa: E402

testenv.reexec_in(os.path.join(ROOT, "target", "readersenv"), testenv.READERS_PACKAGES)

BUCKET = "s3://my-bucket/"
EVENTS = 100
FAILURES = []


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what, flush=True)
    if not ok:
        FAILURES.append(what)


def events_input():
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "updated_at": {"type": ["null", "string"], "format": "date-time"},
            "country": {"type": ["null", "string"]},
            "amount": {"type": ["null", "number"], "multipleOf": 0.01},
            "note": {"type": ["null", "string"]},
        },
        "required": ["id"],
    }
    lines = [{"type": "SCHEMA", "stream": "events", "schema": schema, "key_properties": ["id"],
              "bookmark_properties": ["updated_at"]}]
    countries = ["DE", "FR", "a/b", None, "US"]
    notes = ["plain", "with, comma", 'with "quotes"', "two\nlines", None, "ünïcödé"]
    for i in range(1, EVENTS + 1):
        record = {"id": i, "country": countries[i % len(countries)], "amount": round(i * 1.25, 2),
                  "note": notes[i % len(notes)]}
        if i % 10 == 0:
            record["updated_at"] = None
        elif i % 10 != 5:
            record["updated_at"] = f"2026-01-0{1 + i % 5}T{i % 24:02}:30:00Z"
        lines.append({"type": "RECORD", "stream": "events", "record": record})
        if i % 25 == 0:
            lines.append({"type": "STATE", "value": {"bookmarks": {"events": {"id": i}}}})
    return "".join(json.dumps(line) + "\n" for line in lines)


def load(binary, work, config, input_path):
    path = os.path.join(work, "config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    run = subprocess.run([binary, "--config", path, "--input", input_path], capture_output=True, text=True)
    detail = "" if run.returncode == 0 else run.stderr[-800:]
    check(run.returncode == 0, f"load {config.get('prefix', 'output')}: exit {run.returncode} {detail}")


def make_data(binary, work):
    events = os.path.join(work, "events.singer")
    with open(events, "w") as f:
        f.write(events_input())
    hive = "{stream}/dt={record.updated_at:%Y-%m-%d}/{run_id}-{part}.{extension}"
    load(binary, work, {"local_path": os.path.join(work, "output")}, os.path.join(ROOT, "sample_streams", "sample.singer"))
    for _ in range(2):
        load(binary, work, {"local_path": work, "prefix": "lake", "format": "parquet", "key_template": hive}, events)
    load(binary, work, {"local_path": work, "prefix": "lake_csv", "format": "csv", "csv_null_value": "\\N",
                        "key_template": hive}, events)
    load(binary, work, {"local_path": work, "prefix": "lake_jsonl", "format": "jsonl", "key_template": hive}, events)
    load(binary, work, {"local_path": work, "prefix": "tables", "table_format": "delta", "format": "parquet",
                        "partition_by": ["country"]}, events)
    # docs/iceberg.md's tables: the local folder `warehouse` with its catalog inside.
    load(binary, work, {"local_path": os.path.join(work, "warehouse"), "table_format": "iceberg", "format": "parquet"}, events)
    # A failed run's data file: in the table's folder, named by no commit (docs/delta.md's VACUUM).
    table = os.path.join(work, "tables", "events")
    live = sorted(glob.glob(os.path.join(table, "country=*", "part-*.parquet")))
    shutil.copy(live[0], os.path.join(os.path.dirname(live[0]), "part-99999-orphan-of-a-failed-run.parquet"))


def blocks():
    """(file, line, tag, code, paragraph above) of every fenced block with an info string."""
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    for path in files:
        lines = open(path).read().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^\s*```(\S.*)?$", lines[i])
            if not m:
                i += 1
                continue
            tag = (m.group(1) or "").strip()
            j = i + 1
            while not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            above = []
            k = i - 1
            while k >= 0 and lines[k].strip() == "":
                k -= 1
            while k >= 0 and lines[k].strip() != "":
                above.insert(0, lines[k])
                k -= 1
            yield os.path.relpath(path, ROOT), i + 1, tag, "\n".join(lines[i + 1:j]), "\n".join(above)
            i = j + 1


class Spark:
    session = None

    @classmethod
    def get(cls, work):
        if cls.session is None:
            from pyspark.sql import SparkSession

            cls.session = (SparkSession.builder.master("local[1]").appName("target-s3-docs")
                           .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                           .config("spark.sql.session.timeZone", "UTC").config("spark.driver.memory", "1g")
                           .config("spark.sql.warehouse.dir", os.path.join(work, "warehouse"))
                           .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
                           .enableHiveSupport().getOrCreate())
            cls.session.sparkContext.setLogLevel("ERROR")
        return cls.session


def expected_rows(code):
    m = re.search(r"--\s*expect rows:\s*(\d+)", code)
    return int(m.group(1)) if m else None


def expected_value(code):
    """`-- expect value: X`: the first column of the first row, compared as text."""
    m = re.search(r"--\s*expect value:\s*(\S+)", code)
    return m.group(1) if m else None


def statements(code):
    """SQL statements split at `;` ending a line (no `;` inside the examples' strings)."""
    out, current = [], []
    for line in code.split("\n"):
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    if "".join(current).strip():
        out.append("\n".join(current))
    return out


def run_duckdb(code, work):
    import duckdb
    from duckdb_extensions import import_extension

    con = duckdb.connect()
    if "delta" in code:
        import_extension("delta", con=con)
    con.execute(f"SET file_search_path = '{work}'")
    rows = None
    for statement in statements(code):
        rows = con.execute(statement).fetchall()
    return rows


def run_spark(code, work):
    spark = Spark.get(work)
    rows = None
    for statement in statements(code):
        rows = spark.sql(statement).collect()
    return rows


def run_python(code, work):
    """Runs the block, then checks each `# expect: EXPRESSION` comment in its namespace."""
    namespace = {}
    if "spark" in code:
        namespace["spark"] = Spark.get(work)
    exec(compile(code, "<docs>", "exec"), namespace)
    for expression in re.findall(r"#\s*expect:\s*(.+)$", code, flags=re.M):
        value = eval(expression, namespace)
        if value is not True:
            raise AssertionError(f"expect: {expression} is {value!r}")
    return None


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="target-s3-docs-")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        make_data(binary, work)
        # DuckDB's extensions from their PyPI wheels, installed where `INSTALL x` finds them
        # (no download): the docs' blocks install and load them as users do.
        from duckdb_extensions import import_extension
        for extension in ("avro", "iceberg"):
            import_extension(extension)
        counts = {}
        for path, line, tag, code, above in blocks():
            where = f"{path}:{line} ({tag})"
            if "untested" in tag.split():
                check(re.search(r"(^|\n)(<!--\s*)?Untested:", above) is not None,
                      f"{where}: an untested block says why right above it")
                continue
            runner = {"sql duckdb": run_duckdb, "sql spark": run_spark, "python": run_python}.get(tag)
            if runner is None:
                continue
            if runner is run_spark or (runner is run_python and "spark" in code):
                if shutil.which("java") is None:
                    check(False, f"{where}: needs Java for Spark")
                    continue
            code = code.replace(BUCKET, work + "/")
            try:
                rows = runner(code, work)
            except Exception as e:  # noqa: BLE001 - report every failing block, then fail
                check(False, f"{where}: {type(e).__name__}: {str(e)[:800]}")
                continue
            want = expected_rows(code)
            value = expected_value(code)
            if value is not None:
                got = str(rows[0][0]) if rows else None
                check(got == value, f"{where}: first value {value} (got {got})")
            elif want is not None:
                check(rows is not None and len(rows) == want, f"{where}: {want} rows (got {None if rows is None else len(rows)})")
            elif rows is not None:
                check(len(rows) > 0, f"{where}: returns rows ({len(rows)})")
            else:
                check(True, f"{where}: ran")
            counts[tag] = counts.get(tag, 0) + 1
        check(counts.get("sql duckdb", 0) > 0 and counts.get("sql spark", 0) > 0 and counts.get("python", 0) > 0,
              f"blocks of every kind ran: {counts}")
    finally:
        os.chdir(cwd)
        if Spark.session is not None:
            Spark.session.stop()
        if not FAILURES:
            shutil.rmtree(work, ignore_errors=True)
    if FAILURES:
        print(f"\n{len(FAILURES)} failed (data kept in {work})", file=sys.stderr)
        sys.exit(1)
    print("all documented examples ran")


if __name__ == "__main__":
    main()
