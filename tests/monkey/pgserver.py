"""A real PostgreSQL server for the driver tests: ``initdb`` and ``pg_ctl``
from Debian's ``postgresql`` package, in a temporary directory, on a free
loopback port, trust authentication, stopped at teardown.  postgres refuses
to run as root, so as root the server runs as the ``postgres`` user."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


@pytest.fixture(scope="module")
def pg_dsn():
    """libpq keyword DSN of a fresh server, for this module's tests."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries absent (Debian: apt-get install -y postgresql)")
    as_user = []
    root = tempfile.mkdtemp(prefix="gmp-pg-")
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, log = os.path.join(root, "data"), os.path.join(root, "log")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(tool, *args):
        subprocess.run([*as_user, os.path.join(bindir, tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    try:
        pg("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        pg("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start", "-o",
           f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off")
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            pg("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
