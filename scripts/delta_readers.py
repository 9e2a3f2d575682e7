#!/usr/bin/env python3
"""Delta Lake tables (`table_format: delta`) read back by readers that did not write them, and
the guarantees that need many processes (part of the test command).

1. Typed streams (ints, decimals, booleans, unicode text with newlines,
   date-times with offsets and nulls, dates, lists, nested objects) go into tables in the local
   folder and on the local S3 server; the Python `deltalake` package, polars (`read_delta`) and
   DuckDB (`delta_scan`, locally and through httpfs on S3) read every record back once, typed as
   documented. A second run adds a nullable column: the table's schema has it, older rows null.
2. Concurrent writers, as a property (seeded; SEED=n repeats a run): 2 to 8 processes with
   random sizes and settings commit to one table at once on the local folder, moto and SeaweedFS:
   every record once, no commit lost, each pipeline's STATE printed and found by --table-state;
   on a store that ignores conditional writes (a proxy dropping If-None-Match) all refuse.
3. Kill loops: target-s3 is SIGKILLed at random moments while loading (commits every second),
   then resumed, KILLS times (20 in CI; more by hand: `KILLS=50 scripts/delta_readers.py`):
   one table in the local folder resumed from the last printed STATE, and three tables on the
   local S3 server resumed from `--table-state` (KILLS/2 times). No record may be lost;
   duplicates may only come from a kill during a commit round: after each kill the records the
   tables hold from after the resume point are counted, and the duplicates must equal their sum.

Usage: scripts/delta_readers.py [path/to/target-s3]   (a build with the `delta` feature)
"""
import collections
import datetime as dt
import decimal
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
import testenv  # noqa: E402

testenv.reexec_in(os.path.join(ROOT, "target", "readersenv"), testenv.READERS_PACKAGES)

import boto3  # noqa: E402
import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3")
KILLS = int(os.environ.get("KILLS", "20"))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"], "multipleOf": 0.01},
        "ratio": {"type": ["null", "number"]},
        "ok": {"type": ["null", "boolean"]},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
        "day": {"type": ["null", "string"], "format": "date"},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "address": {"type": ["null", "object"], "properties": {"city": {"type": ["null", "string"]}}},
    },
    "required": ["id"],
}
# Table folders must be ASCII without escapes (docs/delta.md): polars cannot open
# a local table under a non-ASCII folder, delta-rs decodes `%` in locations.
STREAMS = ["orders", "Kunden-2"]
PER_STREAM = 60


def records(s):
    out = []
    for i in range(PER_STREAM):
        r = {"id": s * 1000 + i, "name": f'n{i}, "q" ü\n{"x" * (i % 3)}', "amount": f"{i * 1.25:.2f}",
             "ratio": i / 7, "ok": i % 2 == 0, "day": f"2026-10-{1 + i % 28:02d}", "tags": [f"t{i}", "ü"],
             "address": {"city": f"c{i}"}}
        r["amount"] = float(r["amount"])
        if i % 10 == 3:
            r["created_at"] = None
            r["address"] = None
        elif i % 10 != 7:
            r["created_at"] = ["2026-10-01T08:00:00Z", "2026-10-02T23:30:00-02:00", "2026-10-03T12:00:00.5+02:00"][i % 3]
        out.append(r)
    return out


def singer_input(extra_column=False):
    lines = []
    for s, name in enumerate(STREAMS):
        schema = json.loads(json.dumps(SCHEMA))
        if extra_column:
            schema["properties"]["email"] = {"type": ["null", "string"]}
        lines.append(json.dumps({"type": "SCHEMA", "stream": name, "schema": schema, "key_properties": ["id"]}))
        for r in records(s):
            if extra_column:
                r = dict(r, id=r["id"] + 500, email=f"{r['id']}@x")
            lines.append(json.dumps({"type": "RECORD", "stream": name, "record": r}))
        lines.append(json.dumps({"type": "STATE", "value": {"stream": name, "extra": extra_column}}))
    return "\n".join(lines) + "\n"


def run(config, text, timeout=300):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    p = subprocess.run([BIN, "--config", f.name], input=text, capture_output=True, text=True, timeout=timeout)
    os.unlink(f.name)
    if p.returncode != 0:
        sys.exit(f"target-s3 failed: {p.stderr[-2000:]}")
    return p


def utc(value):
    if value is None:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def expected_row(r):
    return {
        "id": r["id"], "name": r["name"], "amount": decimal.Decimal(f"{r['amount']:.2f}"), "ratio": r["ratio"],
        "ok": r["ok"], "created_at": utc(r.get("created_at")), "day": dt.date.fromisoformat(r["day"]),
        "tags": r["tags"], "address": r["address"],
    }


def normalise(row):
    row = dict(row)
    if isinstance(row.get("created_at"), dt.datetime) and row["created_at"].tzinfo is not None:
        row["created_at"] = row["created_at"].astimezone(dt.timezone.utc)
    if row.get("amount") is not None:
        row["amount"] = decimal.Decimal(row["amount"]).quantize(decimal.Decimal("0.01"))
    return row


def compare(reader, where, stream, rows):
    want = {r["id"]: expected_row(r) for r in records(STREAMS.index(stream))}
    ids = [r["id"] for r in rows]
    check(sorted(ids) == sorted(want), f"{reader} {where} {stream!r}: every record exactly once ({len(ids)}/{len(want)})")
    bad = [(r["id"], k, r.get(k), want[r["id"]][k]) for r in map(normalise, rows) if r["id"] in want
           for k in want[r["id"]] if r.get(k) != want[r["id"]][k]]
    check(not bad, f"{reader} {where} {stream!r}: every value typed and equal {bad[:3]}")


def read_tables(where, uri_of, storage_options, duck):
    for stream in STREAMS:
        uri = uri_of(stream)
        table = DeltaTable(uri, storage_options=storage_options)
        fields = {f.name: str(f.type) for f in table.schema().fields}
        check(fields.get("amount") == 'PrimitiveType("decimal(38,2)")' and fields.get("created_at") == 'PrimitiveType("timestamp")'
              and fields.get("day") == 'PrimitiveType("date")' and fields.get("id") == 'PrimitiveType("long")',
              f"deltalake {where} {stream!r}: column types as documented {fields}")
        compare("deltalake", where, stream, table.to_pyarrow_table().to_pylist())
        compare("polars", where, stream, pl.read_delta(uri, storage_options=storage_options).to_dicts())
        if duck is not None:
            cur = duck.execute(f"SELECT * FROM delta_scan('{uri}')")
            names = [d[0] for d in cur.description]
            compare("duckdb", where, stream, [dict(zip(names, row)) for row in cur.fetchall()])

# partition_by: values that need escaping in a folder name (docs/delta.md); the empty
# string is null, as in Hive and Spark.
PARTITION_VALUES = ["a/b", "東京", "", "x%y", "__HIVE_DEFAULT_PARTITION__", " sp", "_u", ".dot", None, "a=b", "c:d", "Ü?*"]
PARTITION_SCHEMA = {"type": "object", "required": ["id"], "properties": {
    "id": {"type": "integer"}, "country": {"type": ["null", "string"]}, "n": {"type": ["null", "integer"]},
    "flag": {"type": ["null", "boolean"]}, "on": {"type": ["null", "string"], "format": "date"},
    "at": {"type": ["null", "string"], "format": "date-time"}}}
PARTITION_BY = ["country", "n", "flag", "on:day", "at:day", "at:month"]


def partition_records(run_no):
    out = []
    for i, value in enumerate(PARTITION_VALUES * 3):
        at = [None, "2024-01-05T23:59:59Z", "2024-01-06T00:30:00+02:00", "2023-12-31T23:00:00-01:00"][i % 4]
        out.append({"id": run_no * 1000 + i, "country": value, "n": None if i % 5 == 0 else (float(i % 3) if i % 4 == 1 else i % 3),
                    "flag": [True, False, None][i % 3], "on": None if i % 7 == 0 else f"2024-02-{1 + i % 3:02d}", "at": at})
    return out


def partition_input(run_no):
    lines = [json.dumps({"type": "SCHEMA", "stream": "parts", "schema": PARTITION_SCHEMA, "key_properties": ["id"]})]
    lines += [json.dumps({"type": "RECORD", "stream": "parts", "record": r}) for r in partition_records(run_no)]
    lines.append(json.dumps({"type": "STATE", "value": {"run": run_no}}))
    return "\n".join(lines) + "\n"


def partition_expected(r):
    at = utc(r["at"])
    return {"id": r["id"], "country": r["country"] or None, "n": r["n"], "flag": r["flag"],
            "on": dt.date.fromisoformat(r["on"]) if r["on"] else None, "at": at,
            "on_day": dt.date.fromisoformat(r["on"]) if r["on"] else None,
            "at_day": at.date() if at else None, "at_month": at.strftime("%Y-%m") if at else None}


def compare_partitioned(reader, where, rows):
    want = {r["id"]: partition_expected(r) for n in (1, 2) for r in partition_records(n)}
    ids = [r["id"] for r in rows]
    check(sorted(ids) == sorted(want), f"{reader} {where} partitioned: every record exactly once ({len(ids)}/{len(want)})")
    # A partition value that is the text of Hive's null marker is in the log as that text; DuckDB
    # and deltalake (on S3) read it as null, as Spark does (docs/delta.md).
    marker = [r for r in rows if want.get(r["id"], {}).get("country") == "__HIVE_DEFAULT_PARTITION__"]
    check(len(marker) == 6 and all(r["country"] in (None, "__HIVE_DEFAULT_PARTITION__") for r in marker),
          f"{reader} {where} partitioned: the null marker's text reads as itself or null ({marker[0]['country']!r})")
    bad = [(r["id"], k, r.get(k), want[r["id"]][k]) for r in map(normalise_at, rows) if r["id"] in want
           for k in want[r["id"]] if r.get(k) != want[r["id"]][k] and not (r in marker and k == "country")]
    check(not bad, f"{reader} {where} partitioned: partition and data columns equal {bad[:3]}")


def normalise_at(row):
    row = dict(row)
    if isinstance(row.get("at"), dt.datetime):
        row["at"] = row["at"].astimezone(dt.timezone.utc)
    return row


def partitioned_tables(where, config, uri, storage_options, duck):
    """Two runs into one table partitioned by text (every escaping case), integer, boolean and date
    fields and a date-time cut to day and month: the readers take every partition value from the
    log, and prune by it."""
    config = dict(config, partition_by=PARTITION_BY)
    for run_no in (1, 2):
        run(config, partition_input(run_no))
    table = DeltaTable(uri, storage_options=storage_options)
    check(table.metadata().partition_columns == ["country", "n", "flag", "on_day", "at_day", "at_month"],
          f"deltalake {where} partitioned: partition columns {table.metadata().partition_columns}")
    compare_partitioned("deltalake", where, table.to_pyarrow_table().to_pylist())
    pruned = table.to_pyarrow_table(filters=[("country", "=", "a/b")]).to_pylist()
    check(len(pruned) == 6 and {r["country"] for r in pruned} == {"a/b"}, f"deltalake {where}: a partition filter on 'a/b' ({len(pruned)})")
    compare_partitioned("polars", where, pl.read_delta(uri, storage_options=storage_options).to_dicts())
    cur = duck.execute(f"SELECT * FROM delta_scan('{uri}')")
    names = [d[0] for d in cur.description]
    compare_partitioned("duckdb", where, [dict(zip(names, row)) for row in cur.fetchall()])
    nulls = duck.execute(f"SELECT count(*) FROM delta_scan('{uri}') WHERE country IS NULL").fetchone()[0]
    check(nulls in (12, 18), f"duckdb {where} partitioned: null and empty values are null ({nulls})")


def duckdb_with_delta():
    con = duckdb.connect()
    from duckdb_extensions import import_extension
    import_extension("delta", con=con)
    import_extension("httpfs", con=con)
    con.execute("LOAD delta; LOAD httpfs")
    return con


def s3_env():
    return servers.start_s3(int(os.environ.get("S3_TEST_PORT", "9310")))


def local_tables(tmp):
    root = os.path.join(tmp, "lake")
    config = {"local_path": root, "table_format": "delta", "log_level": "warn"}
    p = run(config, singer_input())
    check([json.loads(line) for line in p.stdout.strip().splitlines()][-1:] == [{"stream": STREAMS[-1], "extra": False}],
          f"local: the last STATE is printed once the tables committed ({p.stdout.strip()!r})")
    read_tables("local", lambda s: os.path.join(root, s), None, duckdb_with_delta())
    partitioned_tables("local", config, os.path.join(root, "parts"), None, duckdb_with_delta())
    # Schema evolution: a new nullable column; the table reads it, older rows as null.
    run(config, singer_input(extra_column=True))
    for stream in STREAMS:
        rows = DeltaTable(os.path.join(root, stream)).to_pyarrow_table().to_pylist()
        old = [r for r in rows if r["id"] % 1000 < 500]
        new = [r for r in rows if r["id"] % 1000 >= 500]
        check(len(old) == len(new) == PER_STREAM and all(r["email"] is None for r in old)
              and all(r["email"] == f"{r['id'] - 500}@x" for r in new),
              f"deltalake local {stream!r}: after a schema evolution every row once, the new column null in older rows")
        check(len(pl.read_delta(os.path.join(root, stream)).filter(pl.col("email").is_not_null())) == PER_STREAM,
              f"polars local {stream!r}: reads the evolved schema")
    # incompatible_schema: new_table: text ids cannot join the integer-id table, so they go to
    # `<stream>_v2`, which every reader opens; the old table keeps its rows.
    retyped = dict(SCHEMA, properties=dict(SCHEMA["properties"], id={"type": "string"}))
    text_ids = "\n".join([json.dumps({"type": "SCHEMA", "stream": "orders", "schema": retyped, "key_properties": ["id"]})]
                         + [json.dumps({"type": "RECORD", "stream": "orders", "record": {"id": f"t{i}"}}) for i in range(5)]) + "\n"
    run(dict(config, incompatible_schema="new_table"), text_ids)
    v2 = os.path.join(root, "orders_v2")
    want = [f"t{i}" for i in range(5)]
    check(sorted(DeltaTable(v2).to_pyarrow_table()["id"].to_pylist()) == want, "deltalake local: the new table version holds the text ids")
    check(sorted(pl.read_delta(v2)["id"].to_list()) == want, "polars local: reads the new table version")
    check(sorted(r[0] for r in duckdb_with_delta().execute(f"SELECT id FROM delta_scan('{v2}')").fetchall()) == want,
          "duckdb local: reads the new table version")
    check(len(DeltaTable(os.path.join(root, "orders")).to_pyarrow_table()) == 2 * PER_STREAM, "the old table keeps its rows")
    state = subprocess.run([BIN, "--config", write_config(tmp, config), "--table-state"], capture_output=True, text=True)
    check(json.loads(state.stdout) == {"stream": STREAMS[-1], "extra": True}, f"--table-state: the newest committed STATE ({state.stdout.strip()})")


def write_config(tmp, config):
    path = os.path.join(tmp, f"config-{random.random()}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def s3_config(env, bucket, **extra):
    return dict({"bucket": bucket, "endpoint_url": env["S3_ENDPOINT"], "force_path_style": True, "region": "us-east-1",
                 "aws_access_key_id": env["S3_ACCESS_KEY"], "aws_secret_access_key": env["S3_SECRET_KEY"],
                 "table_format": "delta", "log_level": "warn"}, **extra)


def s3_tables(env):
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"])
    bucket = f"delta-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    run(s3_config(env, bucket, prefix="lake"), singer_input())
    options = {"AWS_ENDPOINT_URL": env["S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": env["S3_ACCESS_KEY"],
               "AWS_SECRET_ACCESS_KEY": env["S3_SECRET_KEY"], "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    endpoint = urllib.parse.urlparse(env["S3_ENDPOINT"])
    duck = duckdb_with_delta()
    duck.execute(f"CREATE SECRET (TYPE S3, KEY_ID '{env['S3_ACCESS_KEY']}', SECRET '{env['S3_SECRET_KEY']}', "
                 f"REGION 'us-east-1', ENDPOINT '{endpoint.netloc}', URL_STYLE 'path', USE_SSL false)")
    read_tables("s3", lambda s: f"s3://{bucket}/lake/{s}", options, duck)
    partitioned_tables("s3", s3_config(env, bucket, prefix="lake"), f"s3://{bucket}/lake/parts", options, duck)
    return s3, options


def no_conditional_writes_proxy(upstream):
    """A store that ignores conditional writes, as some S3-compatible stores do: a forwarding
    proxy in front of `upstream` that drops the If-None-Match header. Returns its endpoint."""
    import http.client
    import http.server
    up = urllib.parse.urlparse(upstream)

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("if-none-match", "connection")}
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self.send_response_only(answer.status, answer.reason)
            for k, v in answer.getheaders():
                if k.lower() not in ("transfer-encoding", "connection") and (k.lower() != "content-length" or self.command == "HEAD"):
                    self.send_header(k, v)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def writer_lines(rng, w):
    """One writer's input: its own ids, STATEs at random intervals, ending with a STATE."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "writer": {"type": "integer"}}}
    count, every = rng.randint(1, 3000), rng.randint(20, 1000)
    lines = [json.dumps({"type": "SCHEMA", "stream": "events", "schema": schema, "key_properties": ["id"]})]
    for i in range(count):
        lines.append(json.dumps({"type": "RECORD", "stream": "events", "record": {"id": w * 10000 + i, "writer": w}}))
        if i % every == every - 1 or i == count - 1:
            lines.append(json.dumps({"type": "STATE", "value": {"writer": w, "i": i}}))
    return lines, [w * 10000 + i for i in range(count)], {"writer": w, "i": count - 1}


def run_writers(rng, tmp, base, writers):
    """`writers` processes with random inputs and settings on the same table, fed in
    interleaved slices; returns (exit code, stdout, stderr) each, the ids and final STATEs sent."""
    procs, ids, finals = [], [], []
    for w in range(writers):
        lines, sent, final = writer_lines(rng, w)
        ids += sent
        finals.append(final)
        config = dict(base, pipeline_id=f"writer-{w}", commit_interval_seconds=rng.choice([1, 2]),
                      max_records_per_file=rng.randint(50, 2000), log_level="warn")
        out, err = (open(os.path.join(tmp, f"writer-{w}.{kind}"), "w+") for kind in ("out", "err"))
        p = subprocess.Popen([BIN, "--config", write_config(tmp, config)], stdin=subprocess.PIPE,
                             stdout=out, stderr=err, text=True)
        p.files = (out, err)
        procs.append((p, lines, rng.randint(50, 400), rng.random() * 0.3))

    def feed(p, lines, step, pause):
        try:
            for start in range(0, len(lines), step):
                p.stdin.write("\n".join(lines[start:start + step]) + "\n")
                p.stdin.flush()
                time.sleep(pause)
            p.stdin.close()
        except BrokenPipeError:
            pass  # it stopped (the refusing store): its exit code and message say why

    threads = [threading.Thread(target=feed, args=args) for args in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = []
    for p, *_ in procs:
        p.wait(timeout=600)
        texts = []
        for f in p.files:
            f.seek(0)
            texts.append(f.read())
            f.close()
        results.append((p.returncode, *texts))
    return results, ids, finals


def concurrent_writers(env, s3, options):
    """A property: 2 to 8 processes with random sizes, STATE intervals, file sizes and commit
    intervals commit to one table at once, on the local folder, moto and SeaweedFS: every process
    succeeds, every record is in the table once, no log version is lost, each pipeline's last
    STATE is printed and found again by --table-state. On a store that ignores conditional writes
    (moto behind a proxy that drops If-None-Match) every process refuses and nothing is written."""
    seed = int(os.environ.get("SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"concurrent writers: seed {seed} (SEED={seed} repeats this run)", flush=True)
    weed = servers.start_s3(int(os.environ.get("S3_TEST_WEED_PORT", "9340")), kind="seaweedfs")
    weed_s3 = boto3.client("s3", endpoint_url=weed["S3_ENDPOINT"], region_name="us-east-1",
                           aws_access_key_id=weed["S3_ACCESS_KEY"], aws_secret_access_key=weed["S3_SECRET_KEY"])
    weed_options = dict(options, AWS_ENDPOINT_URL=weed["S3_ENDPOINT"], AWS_ACCESS_KEY_ID=weed["S3_ACCESS_KEY"],
                        AWS_SECRET_ACCESS_KEY=weed["S3_SECRET_KEY"])
    with tempfile.TemporaryDirectory() as tmp:
        stores = []
        root = os.path.join(tmp, "many")
        stores.append(("local folder", {"local_path": root, "table_format": "delta"}, os.path.join(root, "events"), None, None))
        bucket = f"delta-many-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        stores.append(("moto", s3_config(env, bucket), f"s3://{bucket}/events", options, None))
        weed_s3.create_bucket(Bucket=bucket)
        stores.append(("SeaweedFS", s3_config(weed, bucket), f"s3://{bucket}/events", weed_options, None))
        plain = f"delta-plain-{os.getpid()}"
        s3.create_bucket(Bucket=plain)
        stores.append(("a store ignoring If-None-Match", s3_config(env, plain, endpoint_url=no_conditional_writes_proxy(env["S3_ENDPOINT"])),
                       None, None, (s3, plain)))
        # Each store twice (TRIALS), each time a new table and new random writers.
        trials = [(t, *store) for t in range(int(os.environ.get("TRIALS", "2"))) for store in stores]
        for trial, name, base, uri, storage, refused in trials:
            if trial:
                base = dict(base, table_path=f"t{trial}/{{stream}}")
                uri = uri and uri.replace("/events", f"/t{trial}/events")
            writers = rng.randint(2, 8)
            began = time.monotonic()
            results, ids, finals = run_writers(rng, tmp, base, writers)
            what = f"{writers} writers on {name} ({len(ids)} records, {time.monotonic() - began:.0f} s)"
            if refused:
                client, bucket = refused
                wrong = [(c, e.strip().splitlines()[-1:]) for c, out, e in results
                         if c != 1 or out or "ignores conditional writes" not in e.strip().splitlines()[-1]]
                check(not wrong, f"{what}: every process refuses, naming the cause, and prints no STATE {wrong}")
                check(client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0, f"{what}: nothing written")
                continue
            check(all(code == 0 for code, _, _ in results), f"{what}: every process succeeded {[e[-300:] for c, _, e in results if c]}")
            printed = [json.loads(out.strip().splitlines()[-1]) if out.strip() else None for _, out, _ in results]
            check(printed == finals, f"{what}: each process printed its last STATE")
            table = DeltaTable(uri, storage_options=storage)
            got = sorted(table.to_pyarrow_table()["id"].to_pylist())
            check(got == sorted(ids), f"{what}: every record once ({len(got)} rows, {len(set(got))} distinct, {len(ids)} sent)")
            versions = sorted(h["version"] for h in table.history())
            check(versions == list(range(len(versions))), f"{what}: {len(versions)} commits, no version lost")
            for w in range(writers):
                state = subprocess.run([BIN, "--config", write_config(tmp, dict(base, pipeline_id=f"writer-{w}")), "--table-state"],
                                       capture_output=True, text=True)
                if state.returncode != 0 or json.loads(state.stdout) != finals[w]:
                    check(False, f"{what}: --table-state of writer {w} gives {state.stdout.strip()!r} {state.stderr[-300:]}")
                    break
            else:
                check(True, f"{what}: --table-state finds each pipeline's last STATE")


def kill_loop(tmp, kills_wanted, streams=1, s3=None, resume="printed"):
    """Loads 40,000 records (round-robin over `streams` streams; on S3 in 5 partitions) with a STATE every 250, killing
    target-s3 at random moments and resuming from the last printed STATE (`resume="printed"`)
    or from `--table-state` (`"table"`). After each kill the records the tables already hold
    from after the resume point are counted: they are the duplicates a kill during a commit
    round may cause, and the final count must equal their sum (and nothing may be lost)."""
    name = f"kill loop ({'s3' if s3 else 'local'}, {streams} stream{'s' * (streams > 1)}, resume from {resume} STATE)"
    if s3:
        env, client, options = s3
        bucket = f"kills-{os.getpid()}-{streams}"
        client.create_bucket(Bucket=bucket)
        # Partitioned, so kills also land between the files of many partitions.
        config = s3_config(env, bucket, commit_interval_seconds=1, partition_by=["part"])
        uri = lambda t: f"s3://{bucket}/{t}"  # noqa: E731
    else:
        root = os.path.join(tmp, f"killed-{streams}")
        config = {"local_path": root, "table_format": "delta", "commit_interval_seconds": 1, "log_level": "warn"}
        options = None
        uri = lambda t: os.path.join(root, t)  # noqa: E731
    path = write_config(tmp, config)
    total, every = 40000, 250
    names = [f"k{s}" for s in range(streams)]
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "pad": {"type": "string"}, "part": {"type": "integer"}}}
    headers = [json.dumps({"type": "SCHEMA", "stream": n, "schema": schema, "key_properties": ["id"]}) for n in names]

    def lines_from(pos):
        out = list(headers)
        for i in range(pos, total):
            out.append(json.dumps({"type": "RECORD", "stream": names[i % streams], "record": {"id": i, "pad": "x" * 40, "part": i % 5}}))
            if i % every == every - 1:
                out.append(json.dumps({"type": "STATE", "value": {"pos": i + 1}}))
        return out

    def table_ids():
        ids = []
        for n in names:
            try:
                ids += DeltaTable(uri(n), storage_options=options).to_pyarrow_table()["id"].to_pylist()
            except Exception:  # noqa: BLE001 (no table yet)
                pass
        return ids

    rng = random.Random(int(os.environ.get("KILL_SEED", "7")) + streams)
    pos, kills, windows, runs, possible_duplicates, ahead_before = 0, 0, 0, 0, 0, collections.Counter()
    while True:
        runs += 1
        if runs > 10 * kills_wanted + 20:
            # Runs that keep failing on their own (not killed) would loop for ever.
            check(False, f"{name}: {runs} runs for {kills_wanted} kills: target-s3 keeps failing by itself")
            return
        p = subprocess.Popen([BIN, "--config", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        printed = []
        reader = threading.Thread(target=lambda: printed.extend(p.stdout))
        reader.start()
        # Kill after a random number of input chunks and a random pause (in which the target
        # may be closing files, committing, or printing STATE); the last run goes to the end.
        lines = lines_from(pos)
        chunks = (len(lines) + 199) // 200
        kill_after = rng.randint(1, min(chunks, 60)) if kills < kills_wanted else None
        try:
            for n, start in enumerate(range(0, len(lines), 200), 1):
                p.stdin.write("\n".join(lines[start:start + 200]) + "\n")
                p.stdin.flush()
                time.sleep(0.02)
                if n == kill_after:
                    time.sleep(rng.uniform(0, 1.5))
                    p.send_signal(signal.SIGKILL)
                    break
            else:
                p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = p.wait()
        reader.join()
        last = json.loads(printed[-1])["pos"] if printed else None
        if code == 0 and kill_after is None:
            break
        if code == 0:  # finished before the kill: what is left is run again
            pos = last if last is not None else pos
            continue
        kills += 1
        if resume == "table":
            out = subprocess.run([BIN, "--config", path, "--table-state"], capture_output=True, text=True).stdout.strip()
            pos = json.loads(out).get("pos", 0) if out else 0
        elif last is not None:
            pos = last
        # Copies committed by this run beyond the resume point: the run was killed during a
        # commit round (after a commit, before its STATE line), and they will come again. Counted
        # as copies, not ids: two runs killed in turn with the same resume point may each commit
        # the same records once more.
        ahead = collections.Counter(i for i in table_ids() if i >= pos)
        new = ahead - ahead_before
        ahead_before = ahead
        if os.environ.get("KILL_DEBUG"):
            print("kill", kills, "printed", last, "resume", pos, "newly ahead", sum(new.values()), flush=True)
        if new:
            windows += 1
            possible_duplicates += sum(new.values())
    ids = table_ids()
    lost = total - len(set(ids))
    duplicates = len(ids) - len(set(ids))
    print(f"{name}: {kills} kills in {runs} runs, {len(ids)} rows read, {lost} lost, {duplicates} duplicates, "
          f"{windows} kills during a commit round", flush=True)
    check(kills == kills_wanted, f"{name}: {kills_wanted} kills")
    check(lost == 0, f"{name}: no record lost ({lost})")
    check(duplicates <= possible_duplicates,
          f"{name}: duplicates only from kills during a commit round ({duplicates} <= {possible_duplicates} in {windows} rounds)")


def main():
    # PARTS=writers,kills (by hand) runs only those parts; the S3 tables are always written.
    parts = set((os.environ.get("PARTS") or "local,writers,kills").split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "local" in parts:
            local_tables(tmp)
        env = s3_env()
        s3, options = s3_tables(env)
        if "writers" in parts:
            concurrent_writers(env, s3, options)
        if "kills" in parts:
            kill_loop(tmp, KILLS)
            kill_loop(tmp, max(KILLS // 2, 1), streams=3, s3=(env, s3, options), resume="table")
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
