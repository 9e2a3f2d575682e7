#!/usr/bin/env python3
"""Readers users point at a bucket read target-s3's output back (part of the test command).

Writes streams whose names once hid or merged data (unicode, `a/b`, `a b`, `.dot`, `_x`) with
Hive partitions from a date-time field (some null, some missing) in Parquet, CSV (gzip) and
JSONL (gzip), to the local folder and to the local S3 server, then reads everything back with
pyarrow.dataset (hive partitioning), DuckDB (read_parquet/read_csv/read_json with
hive_partitioning; on S3 through the httpfs extension), polars and PySpark (basePath and Hive
partition discovery), and checks that every record comes back exactly once, typed as
documented, with nulls as nulls. The output is counted with the manifest and with a listing.
gzip files are written as a series of members (src/writer/gzip.rs): a CSV and a JSONL file of
several members are read back whole by Python's gzip, zcat, pyarrow, DuckDB, polars and PySpark.
Readers are installed from PyPI into target/readersenv once (PySpark needs a Java runtime; it
is skipped with a note when there is none).

Usage: scripts/readers.py [path/to/target-s3]
"""
import datetime as dt
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
import testenv  # noqa: E402

PACKAGES = testenv.READERS_PACKAGES
testenv.reexec_in(os.path.join(ROOT, "target", "readersenv"), PACKAGES)

import boto3  # noqa: E402
import duckdb  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.fs as pafs  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3")
STREAMS = ["用户", "a/b", "a b", ".dot", "_x", "plain"]
DAYS = ["2026-10-01T08:00:00Z", "2026-10-02T23:30:00-02:00", "2026-10-03T12:00:00+02:00"]
TEMPLATE = "{stream}/dt={record.created_at:%Y-%m-%d}/{run_id}-{part}.{extension}"
FORMATS = [("parquet", "none", "parquet"), ("csv", "gzip", "csv.gz"), ("jsonl", "gzip", "jsonl.gz")]
PER_STREAM = 40

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def utc_day(value):
    if value is None:
        return None
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.astimezone(dt.timezone.utc).date().isoformat()


def records(stream_index):
    """Records of one stream: ids unique across streams; names with commas, quotes, newlines and
    unicode; created_at on three days (UTC), null, or missing."""
    out = []
    for i in range(PER_STREAM):
        rid = stream_index * 1000 + i
        r = {"id": rid, "name": f'n{i}, "q" ü\nline', "amount": round(i * 1.25, 2), "ok": i % 2 == 0}
        if i % 10 == 3:
            r["created_at"] = None
        elif i % 10 != 7:
            r["created_at"] = DAYS[i % 3]
        out.append(r)
    return out


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "ok": {"type": ["null", "boolean"]},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
    },
}


def singer_input():
    lines = []
    for s, name in enumerate(STREAMS):
        lines.append(json.dumps({"type": "SCHEMA", "stream": name, "schema": SCHEMA, "key_properties": ["id"]}))
        lines += [json.dumps({"type": "RECORD", "stream": name, "record": r}) for r in records(s)]
    lines.append(json.dumps({"type": "STATE", "value": {"done": True}}))
    return "\n".join(lines) + "\n"


def expected(stream):
    """id -> UTC day (None for the null partition) of one stream's records."""
    return {r["id"]: utc_day(r.get("created_at")) for r in records(STREAMS.index(stream))}


def run(config, text=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    p = subprocess.run([BIN, "--config", f.name], input=text or singer_input(), capture_output=True, text=True, timeout=300)
    os.unlink(f.name)
    if p.returncode != 0:
        sys.exit(f"target-s3 failed: {p.stderr[-2000:]}")
    return p


def stream_folder(root, stream):
    """The stream's folder: the one whose name unescapes to the stream (docs/reference/macros.md
    "What is safe in a key"); no folder may be hidden from Hive-convention readers."""
    for entry in os.listdir(root):
        if urllib.parse.unquote(entry) == stream:
            check(not entry.startswith(("_", ".")), f"folder of {stream!r} is visible to Hive readers ({entry})")
            return os.path.join(root, entry)
    check(False, f"a folder for stream {stream!r} in {sorted(os.listdir(root))}")
    return None


def compare(reader, fmt, stream, rows):
    """rows: (id, dt) pairs read back; dt None for the null partition."""
    want = expected(stream)
    got_ids = [int(i) for i, _ in rows]
    check(sorted(got_ids) == sorted(want), f"{reader} {fmt} {stream!r}: every record exactly once ({len(got_ids)}/{len(want)})")
    bad = [(i, d) for i, d in rows if want.get(int(i)) != (None if d is None else str(d)[:10])]
    check(not bad, f"{reader} {fmt} {stream!r}: partition values right, nulls as nulls {bad[:3]}")


def read_local(root, fmt, ext):
    for stream in STREAMS:
        folder = stream_folder(root, stream)
        if folder is None:
            continue
        files = glob.glob(os.path.join(folder, "*", f"*.{ext}"))
        # pyarrow.dataset, Hive partitioning (skips `_`/`.` files and folders, maps the null
        # partition to null)
        if fmt == "parquet":
            table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
            compare("pyarrow", fmt, stream, zip(table["id"].to_pylist(), table["dt"].to_pylist()))
            check(str(table.schema.field("amount").type) == "double" and str(table.schema.field("created_at").type).startswith("timestamp"),
                  f"pyarrow parquet {stream!r}: typed columns {table.schema}")
        # DuckDB
        con = duckdb.connect()
        pattern = os.path.join(folder, "*", f"*.{ext}").replace("'", "''")
        # DuckDB reads Hive's null partition as its text (it maps only `NULL`): NULLIF, as
        # docs/querying.md says.
        dt_col = "NULLIF(dt::VARCHAR, '__HIVE_DEFAULT_PARTITION__')"
        if fmt == "parquet":
            q = f"SELECT id, {dt_col} FROM read_parquet('{pattern}', hive_partitioning = true)"
        elif fmt == "csv":
            q = (f"SELECT id, {dt_col} FROM read_csv('{pattern}', hive_partitioning = true, header = true, "
                 f"quote = '\"', escape = '\"')")
        else:
            q = f"SELECT id, {dt_col} FROM read_json('{pattern}', hive_partitioning = true, format = 'newline_delimited')"
        compare("duckdb", fmt, stream, con.execute(q).fetchall())
        # polars
        if fmt == "parquet":
            frame = pl.scan_parquet(os.path.join(folder, "**", "*.parquet"), hive_partitioning=True).collect()
            compare("polars", fmt, stream, zip(frame["id"].to_list(), frame["dt"].to_list()))
        check(len(files) > 0, f"{fmt} {stream!r}: files found")


MULTI = 12000  # records of the multi-member files: ~1.7 MB of JSONL, 4 members of <= 512 KiB


def gzip_members(path):
    """The members of a gzip file, each decoded on its own."""
    import zlib
    data, n = open(path, "rb").read(), 0
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        data, n = d.unused_data, n + 1
    return n


def multi_member_files(tmp):
    """One CSV and one JSONL file of several gzip members: {fmt: path}."""
    lines = [json.dumps({"type": "SCHEMA", "stream": "big", "schema": SCHEMA, "key_properties": ["id"]})]
    lines += [json.dumps({"type": "RECORD", "stream": "big", "record": {
        "id": i, "name": f'n{i}, "q" ü\nline {"x" * (i % 50)}', "amount": i * 0.5, "ok": i % 2 == 0,
        "created_at": DAYS[i % 3]}}) for i in range(MULTI)]
    files = {}
    for fmt in ("csv", "jsonl"):
        root = os.path.join(tmp, f"multi-{fmt}")
        run({"local_path": root, "format": fmt, "compression": "gzip", "key_template": "{stream}/{run_id}-{part}.{extension}",
             "log_level": "warn"}, "\n".join(lines) + "\n")
        [path] = glob.glob(os.path.join(root, "big", f"*.{fmt}.gz"))
        check(gzip_members(path) > 1, f"{fmt}.gz of {MULTI} records has several members ({gzip_members(path)})")
        files[fmt] = path
    return files


def read_multi_member(files):
    import gzip
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    want = list(range(MULTI))
    for fmt, path in files.items():
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
        if fmt == "csv":
            import csv
            ids = [int(r["id"]) for r in csv.DictReader(text.splitlines(keepends=True))]
        else:
            ids = [json.loads(line)["id"] for line in text.splitlines()]
        check(ids == want, f"python gzip {fmt}: every member read ({len(ids)}/{MULTI})")
        z = subprocess.run(["zcat", path], capture_output=True, check=True).stdout
        check(z == text.encode("utf-8"), f"zcat {fmt}: the same bytes as Python's gzip")
        table = (pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True)) if fmt == "csv"
                 else pajson.read_json(path))
        check(sorted(table["id"].to_pylist()) == want, f"pyarrow {fmt}.gz: every member read ({table.num_rows})")
        q = (f"SELECT id FROM read_csv('{path}', header = true, quote = '\"', escape = '\"')" if fmt == "csv"
             else f"SELECT id FROM read_json('{path}', format = 'newline_delimited')")
        ids = sorted(r[0] for r in duckdb.connect().execute(q).fetchall())
        check(ids == want, f"duckdb {fmt}.gz: every member read ({len(ids)})")
        frame = pl.read_csv(path) if fmt == "csv" else pl.read_ndjson(path)
        check(sorted(frame["id"].to_list()) == want, f"polars {fmt}.gz: every member read ({frame.height})")


def read_spark(root_by_format, multi=None):
    if shutil.which("java") is None:
        print("note PySpark skipped: no Java runtime on this machine")
        return
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[1]").appName("target-s3-readers")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "1g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        for fmt, root in root_by_format.items():
            for stream in STREAMS:
                folder = stream_folder(root, stream)
                if folder is None:
                    continue
                reader = spark.read.option("basePath", folder)
                if fmt == "parquet":
                    frame = reader.parquet(folder)
                elif fmt == "csv":
                    frame = (reader.option("header", True).option("multiLine", True).option("escape", '"')
                             .option("inferSchema", True).csv(folder))
                else:
                    frame = reader.json(folder)
                rows = [(r["id"], r["dt"]) for r in frame.select("id", "dt").collect()]
                compare("spark", fmt, stream, rows)
        for fmt, path in (multi or {}).items():
            reader = spark.read
            frame = (reader.option("header", True).option("multiLine", True).option("escape", '"').csv(path)
                     if fmt == "csv" else reader.json(path))
            ids = sorted(int(r["id"]) for r in frame.select("id").collect())
            check(ids == list(range(MULTI)), f"spark {fmt}.gz: every member read ({len(ids)})")
    finally:
        spark.stop()


def s3_env():
    return servers.start_s3(int(os.environ.get("S3_TEST_PORT", "9310")))


def read_s3():
    env = s3_env()
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"])
    bucket = f"readers-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    run({"bucket": bucket, "endpoint_url": env["S3_ENDPOINT"], "force_path_style": True, "region": "us-east-1",
         "aws_access_key_id": env["S3_ACCESS_KEY"], "aws_secret_access_key": env["S3_SECRET_KEY"],
         "format": "parquet", "key_template": TEMPLATE, "max_records_per_file": 7, "log_level": "warn"})
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    manifests = [k for k in keys if k.startswith("_manifests/")]
    data = sorted(k for k in keys if not k.startswith("_manifests/"))
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifests[0])["Body"].read())
    listed = sorted(o["key"] for o in manifest["objects"])
    check(len(manifests) == 1 and listed == data, f"s3: the manifest lists exactly the {len(data)} objects in the bucket")
    check(sum(o["records"] for o in manifest["objects"]) == PER_STREAM * len(STREAMS), "s3: the manifest counts every record")
    endpoint = urllib.parse.urlparse(env["S3_ENDPOINT"])
    fs = pafs.S3FileSystem(endpoint_override=endpoint.netloc, scheme=endpoint.scheme, region="us-east-1",
                           access_key=env["S3_ACCESS_KEY"], secret_key=env["S3_SECRET_KEY"])
    con = duckdb.connect()
    from duckdb_extensions import import_extension
    import_extension("httpfs", con=con)
    con.execute("LOAD httpfs")
    con.execute(f"SET s3_endpoint = '{endpoint.netloc}'; SET s3_url_style = 'path'; SET s3_use_ssl = false; "
                f"SET s3_region = 'us-east-1'; SET s3_access_key_id = '{env['S3_ACCESS_KEY']}'; "
                f"SET s3_secret_access_key = '{env['S3_SECRET_KEY']}'")
    for stream in STREAMS:
        folders = {k.split("/")[0] for k in data if urllib.parse.unquote(k.split("/")[0]) == stream}
        check(len(folders) == 1, f"s3 {stream!r}: one folder {folders}")
        if len(folders) != 1:
            continue
        folder = folders.pop()
        table = ds.dataset(f"{bucket}/{folder}", filesystem=fs, format="parquet", partitioning="hive").to_table()
        compare("pyarrow-s3", "parquet", stream, zip(table["id"].to_pylist(), table["dt"].to_pylist()))
        url_folder = folder
        rows = con.execute(
            f"SELECT id, NULLIF(dt::VARCHAR, '__HIVE_DEFAULT_PARTITION__') "
            f"FROM read_parquet('s3://{bucket}/{url_folder}/*/*.parquet', hive_partitioning = true)"
        ).fetchall()
        compare("duckdb-s3", "parquet", stream, rows)


def main():
    roots = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, compression, ext in FORMATS:
            root = os.path.join(tmp, fmt)
            run({"local_path": root, "format": fmt, "compression": compression, "key_template": TEMPLATE,
                 "max_records_per_file": 7, "log_level": "warn"})
            read_local(root, fmt, ext)
            roots[fmt] = root
        multi = multi_member_files(tmp)
        read_multi_member(multi)
        read_spark(roots, multi)
        read_s3()
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
