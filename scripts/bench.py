#!/usr/bin/env python3
"""Benchmark: replays generated Singer input through the release binary.

Usage: scripts/bench.py [--records N] [--runs R] [--s3] [--cases NAME,...] [--bin PATH ...] [--no-build]
                       [--one-core] [--limit] [--peer]

Builds `target-s3` (with the `delta` feature, for the `delta-parquet` case) and the
`gen_singer` example in release mode (`--no-build`: use what is there), generates N records once
(target/bench/input-N.singer), then runs each case R times with `--input`, through
`/usr/bin/time -v`, and prints the medians: records/s, input MB/s, CPU seconds (also per million
records: the figure to compare on a shared machine, where wall time is noisy), peak RSS and
objects written. `--s3` adds cases writing to a local S3 server on $BENCH_S3_PORT (9320) started
with scripts/servers.py, moto or the kind S3_SERVER names (S3_SERVER=seaweedfs is the realistic
one; moto is slow); `python3 scripts/servers.py stop 9320` stops it.
`--one-core` also runs each binary pinned to one core (`taskset -c 0`, alternating with the
unpinned runs) and prints the scaling ratio: records/s on all cores over records/s on one.
`--peer` runs the fastest Python peer, `target-s3-jsonl` 2.0.1 from PyPI (installed into
target/bench/peer once), and target-s3 on the same first 200,000 records into the same local S3
server (jsonl, gzip), each `--runs` times alternating, all into one bucket made and written to
(a 6 MB object) beforehand (our runs under a prefix each, the peer's keys are timestamped), and
prints both and their ratio.
`--bin A --bin B` compares binaries (e.g. a saved build of an earlier commit against the
current one): their runs alternate (A, B, A, B, ...) so both see the same machine load, and
each case prints one row per binary.
`--limit` also runs `target/release/examples/parts` (examples/parts.rs, built with the rest) once
per case on the same input: the parts of a run timed alone on one thread, in thread CPU time
(the envelope decode, the record check, the case's compressor; Parquet and Avro: the first two
only, a lower bound), and prints a second table: their sum turned into records/s on one core
(the limit), ours on one core (records/s of the `--one-core` runs if given) and per CPU-second
(records over the CPU seconds of those runs, or of the unpinned runs without `--one-core`), and
the ratios limit / ours: how far the target is from the sum of its parts. The parts are this
checkout's code, whatever `--bin` runs. This is a benchmark, not a test: nothing here asserts a
speed.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "target-s3")
GEN = os.path.join(ROOT, "target", "release", "examples", "gen_singer")
PARTS = os.path.join(ROOT, "target", "release", "examples", "parts")

CASES = {
    "jsonl-gzip6": {"format": "jsonl", "compression": "gzip"},
    "csv-gzip6": {"format": "csv", "compression": "gzip"},
    "jsonl-none": {"format": "jsonl", "compression": "none"},
    "jsonl-novalidate": {"format": "jsonl", "compression": "none", "validate_records": False},
    "jsonl-gzip1": {"format": "jsonl", "compression": "gzip", "compression_level": 1},
    "csv-none": {"format": "csv", "compression": "none"},
    "parquet-snappy": {"format": "parquet"},
    "parquet-zstd": {"format": "parquet", "parquet_compression": "zstd"},
    "avro-deflate": {"format": "avro"},
    "avro-snappy": {"format": "avro", "avro_codec": "snappy"},
    "parquet-rg20k": {"format": "parquet", "row_group_size": 20000},
    # Delta Lake tables (needs a build with `--features delta`): the Parquet files above plus the
    # commits; the input's STATEs make a commit at most every commit_interval_seconds (60).
    "delta-parquet": {"format": "parquet", "table_format": "delta"},
    # Iceberg tables (a build with `--features iceberg`): the same Parquet files, committed to
    # tables in the SQLite catalog of the output folder.
    "iceberg-parquet": {"format": "parquet", "table_format": "iceberg"},
    # Unsorted data: records of 270 daily partitions in random order (its own input, a fifth of
    # --records): every partition stays open, one file each, bounded by max_open_bytes.
    "jsonl-gzip6-270-partitions": {"format": "jsonl", "compression": "gzip", "input": "partitions",
                                   "key_template": "{stream}/dt={record.day:%Y-%m-%d}/{run_id}-{part}.{extension}"},
    "parquet-270-partitions": {"format": "parquet", "input": "partitions",
                               "key_template": "{stream}/dt={record.day:%Y-%m-%d}/{run_id}-{part}.{extension}"},
}


def partitions_input(path, records):
    """Records of one stream over 270 days, in random order (seeded)."""
    import datetime
    import random
    rng = random.Random(7)
    base = 1767225600  # 2026-01-01T00:00:00Z
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps({"type": "SCHEMA", "stream": "ev", "key_properties": ["id"], "schema": {"properties": {
            "id": {"type": "integer"}, "day": {"type": "string", "format": "date-time"},
            "payload": {"type": "string"}}}}) + "\n")
        for i in range(records):
            t = datetime.datetime.fromtimestamp(base + rng.randrange(270 * 86400), datetime.timezone.utc)
            record = {"id": i, "day": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "payload": "p" * rng.randrange(50, 300)}
            f.write(json.dumps({"type": "RECORD", "stream": "ev", "record": record}) + "\n")
            if i % 10000 == 9999:
                f.write(json.dumps({"type": "STATE", "value": {"ev": i}}) + "\n")
    os.rename(path + ".tmp", path)


def time_run(cmd):
    p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    t = p.stderr
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    parts = [float(x) for x in wall.split(":")]
    secs = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) > 2 else 0)
    user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
    return secs, user + sys_, rss / 1024


def s3_env():
    import servers  # scripts/servers.py, next to this script

    return servers.start_s3(int(os.environ.get("BENCH_S3_PORT", "9320")), kind=os.environ.get("S3_SERVER", "moto"))


def s3_objects(env, bucket):
    code = ("import boto3,sys;c=boto3.client('s3',endpoint_url=sys.argv[1],region_name='us-east-1',"
            "aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3]);"
            "print(sum(p.get('KeyCount',0) for p in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[4])))")
    return None if not shutil.which("python3") else subprocess.run(
        [sys.executable, "-c", code, env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], bucket],
        capture_output=True, text=True).stdout.strip() or "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--s3", action="store_true")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--bin", action="append", help="binary to run (repeat to compare; default: the release build)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    ap.add_argument("--one-core", action="store_true", help="also run pinned to one core; print the scaling ratio")
    ap.add_argument("--peer", action="store_true", help="compare with target-s3-jsonl (PyPI) into the local S3 server")
    ap.add_argument("--limit", action="store_true", help="time the parts alone (examples/parts.rs); print our ratio to their sum")
    a = ap.parse_args()
    # (binary, command prefix, label) for every variant run, alternating.
    variants = [(b, [], os.path.basename(b)) for b in (a.bin or [BIN])]
    if a.one_core:
        variants += [(b, ["taskset", "-c", "0"], f"{label}, 1 core") for b, _, label in variants]
    bins = list(range(len(variants)))
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--features", "iceberg", "--bin", "target-s3", "--example", "gen_singer",
                        *(["--example", "parts"] if a.limit else [])], cwd=ROOT, check=True)
    if a.limit and not os.path.exists(PARTS):
        sys.exit(f"--limit needs {PARTS}: cargo build --release --example parts")
    os.makedirs(os.path.join(ROOT, "target", "bench"), exist_ok=True)
    data = os.path.join(ROOT, "target", "bench", f"input-{a.records}.singer")
    if not os.path.exists(data):
        with open(data + ".tmp", "wb") as f:
            subprocess.run([GEN, str(a.records)], stdout=f, check=True)
        os.rename(data + ".tmp", data)
    size_mb = os.path.getsize(data) / 1e6
    print(f"input: {a.records} records, {size_mb:.0f} MB, {os.cpu_count()} cores, {a.runs} runs per case (medians)\n")
    label = (lambda v: f" [{variants[v][2]}]") if len(bins) > 1 else (lambda v: "")
    print("| case | records/s | input MB/s | CPU s | CPU s per M records | peak RSS MiB | objects |")
    print("|---|---|---|---|---|---|---|")
    cases = [(c, CASES[c], None) for c in a.cases.split(",") if c]
    env = None
    if a.s3:
        env = s3_env()
        cases += [(f"s3-{c}", CASES[c], env) for c in ("jsonl-gzip6", "jsonl-none")]
    limits = []  # (case, parts' JSON, {variant: (records, wall, cpu)}) with --limit
    for name, settings, s3 in cases:
        results = {b: [] for b in bins}
        objects = {b: "?" for b in bins}
        source = data
        if settings.get("input") == "partitions":
            source = os.path.join(ROOT, "target", "bench", f"partitions-{a.records // 5}.singer")
            if not os.path.exists(source):
                partitions_input(source, a.records // 5)
        for run in range(a.runs):
            for bin_path in bins:
                with tempfile.TemporaryDirectory() as tmp:
                    cfg = {"log_level": "warn", **settings}
                    cfg.pop("input", None)
                    if s3:
                        bucket = f"bench-{os.getpid()}-{name}-{run}-{bins.index(bin_path)}".replace("_", "-")[:63]
                        subprocess.run([sys.executable, "-c",
                                        "import boto3,sys;boto3.client('s3',endpoint_url=sys.argv[1],region_name='us-east-1',"
                                        "aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3]).create_bucket(Bucket=sys.argv[4])",
                                        s3["S3_ENDPOINT"], s3["S3_ACCESS_KEY"], s3["S3_SECRET_KEY"], bucket], check=True)
                        cfg.update(bucket=bucket, endpoint_url=s3["S3_ENDPOINT"], force_path_style=True, region="us-east-1",
                                   aws_access_key_id=s3["S3_ACCESS_KEY"], aws_secret_access_key=s3["S3_SECRET_KEY"])
                    else:
                        cfg["local_path"] = os.path.join(tmp, "out")
                    path = os.path.join(tmp, "config.json")
                    with open(path, "w") as f:
                        json.dump(cfg, f)
                    binary, prefix, _ = variants[bin_path]
                    results[bin_path].append(time_run([*prefix, binary, "--config", path, "--input", source]))
                    if s3:
                        objects[bin_path] = s3_objects(s3, cfg["bucket"])
                    else:
                        objects[bin_path] = sum(len(fs) for _, _, fs in os.walk(cfg["local_path"]))
        speeds, medians = {}, {}
        for bin_path in bins:
            rs = results[bin_path]
            wall = statistics.median(r[0] for r in rs)
            cpu = statistics.median(r[1] for r in rs)
            rss = statistics.median(r[2] for r in rs)
            n = a.records // 5 if settings.get("input") == "partitions" else a.records
            speeds[bin_path] = n / wall
            medians[bin_path] = (n, wall, cpu)
            print(f"| {name}{label(bin_path)} | {n / wall:,.0f} | {os.path.getsize(source) / 1e6 / wall:,.0f} | {cpu:.2f} | {cpu / n * 1e6:.2f} | {rss:.0f} | {objects[bin_path]} |",
                  flush=True)
        if a.one_core:
            half = len(variants) // 2
            for v in range(half):
                print(f"|   scaling [{variants[v][2]}]: all cores / 1 core = {speeds[v] / speeds[v + half]:.2f}x | | | | | | |", flush=True)
        if a.limit:
            limits.append((name, parts(settings, source), medians))
    if a.limit:
        print_limits(limits, variants, a.one_core)
    if a.peer:
        peer(variants[0][0], data, a.runs)


def parts(settings, source):
    """examples/parts.rs on the case's input and settings: nanoseconds per record of each part."""
    # The limit of a Delta table's data files is Parquet's (and `parts` may be built without delta).
    cfg = {k: v for k, v in settings.items() if k not in ("input", "table_format")}
    p = subprocess.run([PARTS, "--input", source, "--config", json.dumps(cfg)], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {PARTS} on {source}\n{p.stderr[-2000:]}")
    return json.loads(p.stdout)


def print_limits(limits, variants, one_core):
    """The parts' sum on one core against ours, per case and binary."""
    half = len(variants) // 2 if one_core else len(variants)
    ours = "the `--one-core` runs" if one_core else "the unpinned runs (no `--one-core`)"
    print(f"\nlimit: the parts alone on one thread (examples/parts.rs, best of 3, thread CPU time) against {ours}\n")
    print("| case | envelope ns | validate ns | compress ns | limit rec/s (1 core) | ours rec/s, 1 core | ours rec per CPU s "
          "| limit / ours (1 core) | limit / ours (CPU s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, p, medians in limits:
        compress = "n/a (typed)" if p["compress_ns"] is None else f"{p['compress_ns']:,.0f}" + (" (approx)" if p["compress_approx"] else "")
        limit = p["limit_records_per_s"]
        for v in range(half):
            n, wall, cpu = medians[v + half] if one_core else medians[v]
            pinned = f"{n / wall:,.0f}" if one_core else ""
            ratio_wall = f"{limit / (n / wall):.2f}x" if one_core else ""
            label = f" [{variants[v][2]}]" if half > 1 else ""
            print(f"| {name}{label} | {p['envelope_ns']:,.0f} | {p['validate_ns']:,.0f} | {compress} | {limit:,.0f} | {pinned} "
                  f"| {n / cpu:,.0f} | {ratio_wall} | {limit / (n / cpu):.2f}x |", flush=True)


PEER = "target-s3-jsonl==2.0.1"


def peer(bin_path, data, runs):
    """target-s3-jsonl and target-s3 on the same 200,000 records into one local S3 server."""
    venv = os.path.join(ROOT, "target", "bench", "peer")
    exe = os.path.join(venv, "bin", "target-s3-jsonl")
    if not os.path.exists(exe):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", PEER], check=True)
    n = 200_000
    source = os.path.join(ROOT, "target", "bench", f"peer-{n}.singer")
    if not os.path.exists(source):
        with open(data) as f, open(source + ".tmp", "w") as out:
            records = 0
            for line in f:
                out.write(line)
                records += '"RECORD"' in line
                if records >= n:
                    break
        os.rename(source + ".tmp", source)
    env = s3_env()
    # One bucket, as users have one: made and written to before the runs (SeaweedFS allocates a
    # bucket's volumes at its first write, ~1 s, and runs out of volumes after some dozens of
    # buckets); our runs write under a prefix each, the peer's keys carry the time of the run.
    bucket = f"peer-{os.getpid()}"
    make = ("import boto3,sys;c=boto3.client('s3',endpoint_url=sys.argv[1],region_name='us-east-1',"
            "aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3]);c.create_bucket(Bucket=sys.argv[4]);"
            "c.put_object(Bucket=sys.argv[4],Key='warm-up/object',Body=b'x'*6000000)")
    subprocess.run([sys.executable, "-c", make, env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"], bucket],
                   check=True)
    times = {"target-s3": [], PEER: []}
    for run in range(runs):
        for who in times:
            prefix = f"run-{run}-{'ours' if who == 'target-s3' else 'peer'}/"
            with tempfile.TemporaryDirectory() as tmp:
                if who == "target-s3":
                    cfg = {"bucket": bucket, "endpoint_url": env["S3_ENDPOINT"], "force_path_style": True, "region": "us-east-1",
                           "aws_access_key_id": env["S3_ACCESS_KEY"], "aws_secret_access_key": env["S3_SECRET_KEY"],
                           "prefix": prefix, "log_level": "warn"}
                    cmd = [bin_path, "--config", os.path.join(tmp, "c.json"), "--input", source]
                else:
                    cfg = {"s3_bucket": bucket, "aws_endpoint_url": env["S3_ENDPOINT"], "aws_access_key_id": env["S3_ACCESS_KEY"],
                           "aws_secret_access_key": env["S3_SECRET_KEY"], "compression": "gzip", "temp_dir": tmp}
                    cmd = ["sh", "-c", f"{exe} --config {os.path.join(tmp, 'c.json')} < {source} > /dev/null"]
                with open(os.path.join(tmp, "c.json"), "w") as f:
                    json.dump(cfg, f)
                times[who].append(time_run(cmd))
    print(f"\npeer: {n:,} records into the local S3 server ({env['S3_SERVER_KIND']}), jsonl gzip, medians of {runs}\n")
    print("| loader | records/s | CPU s | peak RSS MiB |\n|---|---|---|---|")
    speed = {}
    for who, rs in times.items():
        wall = statistics.median(r[0] for r in rs)
        speed[who] = n / wall
        print(f"| {who} | {n / wall:,.0f} | {statistics.median(r[1] for r in rs):.2f} | {statistics.median(r[2] for r in rs):.0f} |")
    print(f"\ntarget-s3 / {PEER}: {speed['target-s3'] / speed[PEER]:.1f}x", flush=True)


if __name__ == "__main__":
    main()
