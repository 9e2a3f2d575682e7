#!/usr/bin/env python3
"""Feeds the Singer SDK's own standard target test streams to target-s3.

Fetches singer-sdk==0.54.9 from PyPI (the wheel, once, into target/), runs every
singer_sdk/testing/target_test_streams/*.singer through the binary with a local-folder
config, and checks: the four invalid inputs exit non-zero; every other file exits 0 and its
last stdout line is the file's last non-empty STATE value. Prints `N passed, N failed`.

Usage: scripts/sdk_streams.py [path/to/target-s3]
       scripts/sdk_streams.py --fetch     (only fetch; prints the streams' folder)
"""
import glob, json, os, subprocess, sys, tempfile, zipfile

VERSION = "0.54.9"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3")
CACHE = os.path.join(ROOT, "target", f"singer-sdk-{VERSION}")
MUST_FAIL = {"invalid_schema", "record_before_schema", "record_missing_key_property",
             "record_missing_required_property"}


def streams_dir():
    found = os.path.join(CACHE, "singer_sdk", "testing", "target_test_streams")
    if not os.path.isdir(found):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "--disable-pip-version-check", "-d", CACHE, f"singer-sdk=={VERSION}"], check=True)
        wheel = glob.glob(os.path.join(CACHE, f"singer_sdk-{VERSION}-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            z.extractall(CACHE, [n for n in z.namelist() if "target_test_streams/" in n])
    return found


def last_state(path):
    last = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            msg = json.loads(line)
            if msg.get("type") == "STATE" and msg.get("value"):
                last = msg["value"]
    return last


def check(path, out_dir):
    name = os.path.basename(path)[: -len(".singer")]
    cfg = os.path.join(out_dir, "config.json")
    with open(cfg, "w") as f:
        json.dump({"local_path": os.path.join(out_dir, name), "log_level": "warn"}, f)
    p = subprocess.run([BIN, "--config", cfg, "--input", path], capture_output=True, text=True, timeout=120)
    if name in MUST_FAIL:
        if p.returncode == 0:
            return f"{name}: expected a non-zero exit, got 0"
        return None
    if p.returncode != 0:
        return f"{name}: exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"
    want = last_state(path)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    got = json.loads(lines[-1]) if lines else None
    if got != want:
        return f"{name}: last STATE {got!r}, expected {want!r}"
    return None


def main():
    files = sorted(glob.glob(os.path.join(streams_dir(), "*.singer")))
    if not files:
        print("no SDK test streams found", file=sys.stderr)
        return 1
    passed = failed = 0
    with tempfile.TemporaryDirectory() as out_dir:
        for path in files:
            problem = check(path, out_dir)
            if problem:
                failed += 1
                print(f"FAIL {problem}")
            else:
                passed += 1
                print(f"ok   {os.path.basename(path)}")
        for args in (["--version"], ["--about"], ["--about", "--format", "json"], ["--about", "--format", "markdown"]):
            p = subprocess.run([BIN, *args], capture_output=True, text=True)
            ok = p.returncode == 0 and p.stdout.strip() != ""
            if ok and args[-1] == "json":
                try:
                    ok = isinstance(json.loads(p.stdout), dict)
                except ValueError:
                    ok = False
            if ok:
                passed += 1
                print(f"ok   target-s3 {' '.join(args)}")
            else:
                failed += 1
                print(f"FAIL target-s3 {' '.join(args)}: exit {p.returncode}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--fetch"]:
        print(streams_dir())
        sys.exit(0)
    sys.exit(main())
