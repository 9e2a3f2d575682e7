#!/usr/bin/env python3
"""A real Meltano run of this repository's meltano.yml, twice, into the local folder and into
the local S3 server.

Installs meltano from PyPI (into target/meltano, once), then with the project's own meltano.yml:
`meltano install` (pip installs tap-sample and target-s3; target-s3 through pyproject.toml and
maturin), checks the installed `target-s3 --version`, and per environment (`local`, `s3`) runs
`meltano run tap-sample target-s3` twice. Checks: every sample record lands once (objects read
back), the state Meltano stored holds the tap's final bookmarks, and the second run resumes
from it (no new records, same state). Prints `N passed, N failed`.

Meltano's own files (.meltano: venvs, state database) and the local output go to a temporary
folder (MELTANO_SYS_DIR_ROOT, TARGET_S3_LOCAL_PATH), so the working tree is left alone.
The S3 environment uses the moto server on $S3_TEST_PORT (started or reused by scripts/servers.py).

The pip build uses cargo's `dev` profile and the test build's features (MATURIN_PEP517_ARGS) so it
reuses the test build;
what gets published uses the `dist` profile of pyproject.toml.
"""
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "target", "meltano")
MELTANO = os.path.join(VENV, "bin", "meltano")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "sample_streams", "sample.singer")
# boto3 reads the bucket back.
PACKAGES = ["meltano==4.4.1", "boto3==1.44.5"]


def expected():
    """Records per stream and each stream's last bookmark, as tap-sample computes them."""
    counts, last = {}, {}
    keys = {}
    with open(SAMPLE, encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            if m["type"] == "SCHEMA":
                keys[m["stream"]] = m["bookmark_properties"][0]
            elif m["type"] == "RECORD":
                s = m["stream"]
                counts[s] = counts.get(s, 0) + 1
                value = m["record"][keys[s]]
                if s not in last or instant(value) > instant(last[s]):
                    last[s] = value
    return counts, last


def instant(value):
    import datetime as dt
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def meltano(env, *args):
    return subprocess.run([MELTANO, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def local_records(folder):
    counts = {}
    for path in glob.glob(os.path.join(folder, "*", "**", "*.jsonl.gz"), recursive=True):
        stream = os.path.relpath(path, folder).split(os.sep)[0]
        with gzip.open(path, "rt", encoding="utf-8") as f:
            counts[stream] = counts.get(stream, 0) + sum(1 for line in f if line.strip())
    return counts


def s3_records(client, bucket):
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    counts = {}
    for key in keys:
        if not key.endswith(".jsonl.gz"):
            continue
        body = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read()).decode("utf-8")
        stream = key.split("/")[0]
        counts[stream] = counts.get(stream, 0) + sum(1 for line in body.splitlines() if line.strip())
    return counts


def s3_server():
    import servers

    env = servers.start_s3(int(os.environ.get("S3_TEST_PORT", "9310")))
    return env["S3_ENDPOINT"], env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"]


def hub_definition(env, tmp, check):
    """The MeltanoHub-format loader definition (meltano-hub/loaders/target-s3--rust.yml), added to
    a fresh Meltano project by reference: Meltano lists every setting it declares, each with
    the TARGET_S3_* variable target-s3 itself reads."""
    import re
    definition = os.path.join(ROOT, "meltano-hub", "loaders", "target-s3--rust.yml")
    with open(definition, encoding="utf-8") as f:
        names = re.findall(r"^\s*- name: (\S+)$", f.read(), re.M)
    project = os.path.join(tmp, "hubcheck")
    p = subprocess.run([MELTANO, "init", project], capture_output=True, text=True, env=env)
    if not check(p.returncode == 0, "meltano init (a fresh project for the Hub definition)"):
        print(p.stderr[-2000:])
        return
    p = subprocess.run([MELTANO, "add", "loader", "target-s3", "--from-ref", definition, "--no-install"],
                       capture_output=True, text=True, env=env, cwd=project)
    if not check(p.returncode == 0, "meltano add loader target-s3 --from-ref meltano-hub/loaders/target-s3--rust.yml"):
        print(p.stderr[-2000:])
        return
    p = subprocess.run([MELTANO, "config", "list", "target-s3", "--all"], capture_output=True, text=True, env=env,
                       cwd=project)
    listed = set(re.findall(r"^([a-z0-9_]+) \[env: TARGET_S3_([A-Z0-9_]+)\]", p.stdout, re.M))
    missing = [n for n in names if (n, n.upper()) not in listed]
    check(p.returncode == 0 and names and not missing,
          f"meltano config list target-s3: all {len(names)} settings of the definition, as TARGET_S3_* variables"
          + (f" (missing: {missing})" if missing else ""))


def main():
    import testenv

    testenv.reexec_in(VENV, PACKAGES)
    import boto3
    want_counts, want_last = expected()
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}")
        return ok

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MELTANO_SYS_DIR_ROOT=os.path.join(tmp, ".meltano"),
                   TARGET_S3_LOCAL_PATH=os.path.join(tmp, "out"), MATURIN_PEP517_ARGS="--profile dev --features iceberg",
                   MELTANO_SEND_ANONYMOUS_USAGE_STATS="false")
        p = meltano(env, "install")
        if not check(p.returncode == 0, "meltano install (pip installs tap-sample and target-s3)"):
            print(p.stderr[-3000:])
            return 1
        installed = os.path.join(tmp, ".meltano", "loaders", "target-s3", "venv", "bin", "target-s3")
        p = subprocess.run([installed, "--version"], capture_output=True, text=True)
        check(p.returncode == 0 and p.stdout.startswith("target-s3 v"), f"pip-installed target-s3 --version: {p.stdout.strip()}")

        endpoint, key, secret = s3_server()
        bucket = "meltano-run-" + os.urandom(4).hex()
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                              region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        s3_env = dict(env, TARGET_S3_BUCKET=bucket, TARGET_S3_REGION="us-east-1", TARGET_S3_ENDPOINT_URL=endpoint,
                      TARGET_S3_AWS_ACCESS_KEY_ID=key, TARGET_S3_AWS_SECRET_ACCESS_KEY=secret)
        for name, run_env, records in (
            ("local", env, lambda: local_records(os.path.join(tmp, "out"))),
            ("s3", s3_env, lambda: s3_records(client, bucket)),
        ):
            state_id = f"{name}:tap-sample-to-target-s3"
            states = []
            for attempt in (1, 2):
                p = meltano(run_env, f"--environment={name}", "run", "tap-sample", "target-s3")
                if not check(p.returncode == 0, f"{name}: meltano run #{attempt}"):
                    print(p.stderr[-3000:])
                    break
                got = records()
                check(got == want_counts, f"{name}: after run #{attempt} every record is stored once: {got}")
                s = meltano(run_env, f"--environment={name}", "state", "get", state_id)
                state = json.loads(s.stdout.strip().splitlines()[-1]) if s.returncode == 0 and s.stdout.strip() else {}
                bookmarks = state.get("singer_state", {}).get("bookmarks", {})
                last = {stream: b.get("replication_key_value") for stream, b in bookmarks.items()}
                check(last == want_last, f"{name}: state stored by Meltano after run #{attempt}: {last}")
                states.append(state)
            if len(states) == 2:
                check(states[0] == states[1], f"{name}: the second run resumed from the first run's state")
        hub_definition(env, tmp, check)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
