"""gunicorn with gmp's worker class on a loopback port: responses, keep-alive,
a graceful reload (HUP) and a shutdown (TERM) that lose no in-flight request."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BOOT_LIMIT = 30.0

pytest.importorskip("gunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, timeout=20):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_for(predicate, what, limit=BOOT_LIMIT):
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)                  # polling a subprocess's observable state


def answers(port):
    try:
        return get(port, "/pid", timeout=2)[0] == 200
    except OSError:
        return False


class SlowRequest(threading.Thread):
    """A /slow request on its own thread; .mark exists once the worker runs it."""

    def __init__(self, port, tmp_path, seconds):
        super().__init__(daemon=True)
        self.mark = tmp_path / f"started-{time.monotonic_ns()}"
        self.path = f"/slow?s={seconds}&mark={self.mark}"
        self.port = port
        self.result = None

    def run(self):
        try:
            self.result = get(self.port, self.path)
        except OSError as e:
            self.result = e

    def started(self):
        self.start()
        wait_for(self.mark.exists, "the slow request to start")
        return self


@pytest.fixture(params=[1, 2], ids=["procs1", "procs2"])
def gunicorn(request, tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]), GMPMAXPROCS=str(request.param))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gmp.gunicorn.Worker", "-w", "1",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "15", "--keep-alive", "5",
         "--no-control-socket", "--access-logfile", "-", "gunicorn_test_app:app"],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or answers(port), "gunicorn to answer")
        assert proc.poll() is None, proc.stdout.read().decode()
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate(timeout=30)[0].decode()
        print(out)                        # shown when the test fails


@pytest.mark.hang_timeout(120)
def test_gunicorn_serves_reloads_and_stops_without_losing_requests(gunicorn, tmp_path):
    proc, port = gunicorn
    assert get(port, "/") == (200, b"Hello, World!")

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)   # keep-alive
    c.request("GET", "/")
    c.getresponse().read()
    sock = c.sock
    for _ in range(3):
        c.request("GET", "/pid")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Connection") is None
        old_pid = r.read()
        assert c.sock is sock, "the connection was not kept alive"
    c.close()

    slow = SlowRequest(port, tmp_path, 1.0).started()
    os.kill(proc.pid, signal.SIGHUP)                 # graceful reload: a new worker, old one TERMed
    wait_for(lambda: answers(port) and get(port, "/pid")[1] != old_pid, "the reloaded worker")
    slow.join(30)
    assert slow.result == (200, b"slow done"), "the reload lost an in-flight request"

    slow = SlowRequest(port, tmp_path, 1.0).started()
    os.kill(proc.pid, signal.SIGTERM)
    slow.join(30)
    assert slow.result == (200, b"slow done"), "TERM lost an in-flight request"
    assert proc.wait(30) == 0
    out = proc.stdout.read().decode()
    assert '"GET /pid HTTP/1.1" 200' in out              # gunicorn's access log
    assert "Traceback" not in out, out
