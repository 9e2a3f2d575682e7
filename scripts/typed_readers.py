#!/usr/bin/env python3
"""Independent readers agree with target-s3's Parquet and Avro files.

Writes the sample streams, tests/data/typed.singer and the Singer SDK's standard target test
streams (fetched by scripts/sdk_streams.py) as `format: parquet` and `format: avro`, reads
every file back with pyarrow and fastavro (installed from PyPI into target/pyenv, once), and
checks: one row per RECORD, in order; every value equal to the input under the documented
type rules (docs/formats.md "Parquet and Avro"); the column types of typed.singer and postgres.singer;
identical schemas for all files of a stream. Prints `N passed, N failed`.

Usage: scripts/typed_readers.py [path/to/target-s3]
"""
import datetime as dt
import decimal
import glob
import json
import math
import os
import re
import urllib.parse
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "pyenv")
PACKAGES = ["pyarrow==26.0.1", "fastavro==1.13.1"]


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testenv  # noqa: E402

testenv.reexec_in(VENV, PACKAGES)
import fastavro  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import sdk_streams  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3")


def types_of(schema):
    t = schema.get("type")
    if t is None:
        return None
    return [t] if isinstance(t, str) else list(t)


def target(root, ref):
    """The schema a local `$ref` points to, or None."""
    if not isinstance(ref, str) or not ref.startswith("#") or "%" in ref:
        return None
    node = root
    for seg in [p for p in ref[1:].split("/")[1:]]:
        seg = seg.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and seg in node:
            node = node[seg]
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return None
    return node


def bound(schema, inclusive, exclusive):
    at = schema.get(inclusive)
    ex = schema.get(exclusive)
    if ex is True:
        return None if at is None else (float(at), True)
    if isinstance(ex, (int, float, decimal.Decimal)) and not isinstance(ex, bool):
        if at is not None and abs(float(at)) < abs(float(ex)):
            return float(at), False
        return float(ex), True
    return None if at is None else (float(at), False)


def number_kind(schema):
    """decimal(38, k) when multipleOf is 10^-k and the values fit; exact text when they cannot."""
    step = schema.get("multipleOf")
    if not isinstance(step, (int, float, decimal.Decimal)) or not 0 < float(step) <= 1:
        return "float"
    guess = round(-math.log10(float(step)))
    scales = [k for k in (guess - 1, guess, guess + 1) if k >= 0 and float(f"1e-{k}") == float(step)]
    if not scales:
        return "float"
    k = scales[0]
    if k > 38:
        return "numeric"
    room = float(f"1e{38 - k}")
    bounds = [bound(schema, "maximum", "exclusiveMaximum"), bound(schema, "minimum", "exclusiveMinimum")]
    if None in bounds:
        return "decimal" if k <= 18 else "numeric"
    fits = all(abs(limit) < room or (exclusive and abs(limit) <= room) for limit, exclusive in bounds)
    return "decimal" if fits else "numeric"


def recursive_item(items, root):
    """Postgres taps' recursive array definitions: the element schema, or None."""
    ref = items.get("$ref") if isinstance(items, dict) else None
    t = target(root, ref)
    if not isinstance(t, dict):
        return None
    types = types_of(t) or []
    others = [x for x in types if x not in ("null", "array")]
    if len(others) != 1 or "array" not in types:
        return None
    inner = (t.get("items") or {}).get("$ref") if isinstance(t.get("items"), dict) else None
    if target(root, inner) is not t:
        return None
    element = dict(t)
    element["type"] = ["null", others[0]] if "null" in types else [others[0]]
    element.pop("items", None)
    return element


def kind(schema, root, seen=("#",)):
    """(type name, sub-schema, seen) under the documented rules."""
    if not isinstance(schema, dict):
        return "json", schema, seen
    ref = schema.get("$ref")
    if isinstance(ref, str):
        t = target(root, ref)
        if t is None or ref in seen:
            return "json", schema, seen
        return kind(t, root, seen + (ref,))
    types = types_of(schema)
    if types is None:
        alts = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(alts, list):
            others = [a for a in alts if not (isinstance(a, dict) and a.get("type") == "null")]
            if len(others) == 1:
                return kind(others[0], root, seen)
        return "json", schema, seen
    non_null = sorted(x for x in types if x != "null")
    if non_null == ["integer"]:
        return "int", schema, seen
    if non_null in (["number"], ["integer", "number"]):
        return number_kind(schema), schema, seen
    if non_null == ["boolean"]:
        return "bool", schema, seen
    if non_null == ["string"]:
        return {"date-time": "timestamp", "date": "date"}.get(schema.get("format"), "text"), schema, seen
    if non_null == ["object"]:
        return ("struct" if schema.get("properties") else "json"), schema, seen
    if non_null == ["array"]:
        return "list", schema, seen
    return "json", schema, seen


def item_of(schema, root):
    items = schema.get("items", {})
    return recursive_item(items, root) or items


def timestamp(s):
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def expected(value, schema, root, seen=("#",)):
    """The value a reader must give back for input `value` of a column with `schema`."""
    if value is None:
        return None
    k, s, seen = kind(schema, root, seen)
    if k == "int":
        return int(value)
    if k == "float":
        return float(value)
    if k in ("decimal", "numeric"):
        return decimal.Decimal(str(value))
    if k == "timestamp":
        return timestamp(value)
    if k == "date":
        return dt.date.fromisoformat(value[:10])
    if k == "json":
        return value
    if k == "struct":
        return {name: expected(value.get(name), sub, root, seen) for name, sub in s["properties"].items()}
    if k == "list":
        items = item_of(s, root)
        return [expected(v, items, root, seen) for v in value]
    return value


def normalize(value, schema, root, seen=("#",)):
    """A reader's value in the form `expected` gives (JSON columns are parsed back)."""
    if value is None:
        return None
    k, s, seen = kind(schema, root, seen)
    if k == "json":
        return json.loads(value, parse_float=decimal.Decimal)
    if k == "numeric":
        return decimal.Decimal(value)
    if k == "timestamp" and isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if k == "struct":
        names = list(s["properties"])
        keys = list(value)  # Avro field names are sanitised; the order is the schema's
        return {n: normalize(value[keys[i]], s["properties"][n], root, seen) for i, n in enumerate(names)}
    if k == "list":
        items = item_of(s, root)
        return [normalize(v, items, root, seen) for v in value]
    return value


def records_by_stream(path):
    """Each stream's records with the schema in force when each was read."""
    schemas, out = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            # Decimals stay exact: numbers are compared with what the tap sent, not a float of it.
            m = json.loads(line, parse_float=decimal.Decimal)
            if m.get("type") == "SCHEMA":
                schemas[m["stream"]] = m["schema"]
            elif m.get("type") == "RECORD":
                out.setdefault(m["stream"], []).append((m["record"], schemas[m["stream"]]))
    return out


def read_rows(fmt, files):
    rows, schemas = [], []
    for f in files:
        if fmt == "parquet":
            table = pq.read_table(f)
            schemas.append(table.schema)
            rows.extend(table.to_pylist())
        else:
            with open(f, "rb") as fh:
                reader = fastavro.reader(fh)
                schemas.append(json.dumps(reader.writer_schema, sort_keys=True))
                rows.extend(reader)
    return rows, schemas


TYPED_COLUMNS = {
    "id": (pa.int64(), False),
    "big": (pa.int64(), True),
    "price": (pa.decimal128(38, 2), True),
    "ratio": (pa.float64(), True),
    "ok": (pa.bool_(), True),
    "name": (pa.string(), True),
    "at": (pa.timestamp("us", tz="UTC"), True),
    "day": (pa.date32(), True),
    "free": (pa.string(), True),
    "mixed": (pa.string(), True),
    "odd name-with.dots": (pa.string(), True),
}


POSTGRES_COLUMNS = {
    "id": (pa.int64(), True),  # the key, but not `required`: Singer records may omit members
    "amount": (pa.decimal128(38, 2), True),
    "ratio": (pa.string(), True),
    "big": (pa.decimal128(38, 4), True),
    "score": (pa.float64(), True),
    "created_at": (pa.timestamp("us", tz="UTC"), True),
    "doc": (pa.string(), True),
    "tags": (pa.list_(pa.string()), True),
    "scores": (pa.list_(pa.int64()), True),
    "prices": (pa.list_(pa.decimal128(38, 2)), True),
    "seen_at": (pa.list_(pa.timestamp("us", tz="UTC")), True),
    "docs": (pa.list_(pa.string()), True),
}


def check(path, fmt, out_dir):
    name = os.path.basename(path)
    folder = os.path.join(out_dir, f"{name}-{fmt}")
    cfg = os.path.join(out_dir, "config.json")
    with open(cfg, "w") as f:
        # Small files, so streams span several files and their schemas can be compared.
        json.dump({"local_path": folder, "format": fmt, "log_level": "warn", "write_manifest": False,
                   "max_records_per_file": 3}, f)
    p = subprocess.run([BIN, "--config", cfg, "--input", path], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return [f"{name} {fmt}: exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"]
    problems = []
    for stream, records in records_by_stream(path).items():
        # Keys start with the stream name, %XX-escaped reversibly (docs/reference/macros.md).
        files = sorted(f for f in glob.glob(os.path.join(folder, "*", "**", f"*.{fmt}"), recursive=True)
                       if urllib.parse.unquote(os.path.relpath(f, folder).split(os.sep)[0]) == stream)
        rows, schemas = read_rows(fmt, files)
        if len(rows) != len(records):
            problems.append(f"{name} {fmt} {stream}: {len(rows)} rows, {len(records)} records")
            continue
        columns = {"typed.singer": TYPED_COLUMNS, "postgres.singer": POSTGRES_COLUMNS}.get(name)
        if fmt == "parquet" and columns:
            for col, (typ, nullable) in columns.items():
                field = schemas[0].field(col)
                if field.type != typ or field.nullable != nullable:
                    problems.append(f"{name} column {col}: {field.type} nullable={field.nullable}, expected {typ}")
        distinct_schemas = {json.dumps(s, sort_keys=True, default=str) for _, s in records}
        if len(distinct_schemas) == 1 and any(s != schemas[0] for s in schemas):
            problems.append(f"{name} {fmt} {stream}: files of one schema have different file schemas")
        for i, ((record, schema), row) in enumerate(zip(records, rows)):
            props = schema.get("properties", {})
            row_values = list(row.values())
            for j, (col, sub) in enumerate(props.items()):
                want = expected(record.get(col), sub, schema)
                got = normalize(row_values[j], sub, schema)
                if want != got:
                    problems.append(f"{name} {fmt} {stream} record {i} `{col}`: got {got!r}, expected {want!r}")
    return problems


def main():
    data = os.path.join(ROOT, "tests", "data")
    inputs = [os.path.join(ROOT, "sample_streams", "sample.singer")]
    inputs += [os.path.join(data, name) for name in ("typed.singer", "postgres.singer")]
    sdk = sorted(glob.glob(os.path.join(sdk_streams.streams_dir(), "*.singer")))
    inputs += [p for p in sdk if os.path.basename(p)[: -len(".singer")] not in sdk_streams.MUST_FAIL]
    passed = failed = 0
    with tempfile.TemporaryDirectory() as out_dir:
        for path in inputs:
            for fmt in ("parquet", "avro"):
                problems = check(path, fmt, out_dir)
                if problems:
                    failed += 1
                    for problem in problems[:5]:
                        print(f"FAIL {problem}")
                else:
                    passed += 1
                    print(f"ok   {os.path.basename(path)} {fmt}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
