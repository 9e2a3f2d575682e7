"""Test scripts run inside their own venv under target/, created once from PyPI."""
import os
import subprocess
import sys


def reexec_in(venv, packages):
    """Re-runs the calling script inside `venv` with `packages` installed (installed once, and
    again when the list changes)."""
    python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    marker = os.path.join(venv, ".ready")
    wanted = "\n".join(packages)
    current = open(marker).read() if os.path.exists(marker) else None
    if current != wanted:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], check=True)
        with open(marker, "w") as f:
            f.write(wanted)
    os.execv(python, [python, *sys.argv])
