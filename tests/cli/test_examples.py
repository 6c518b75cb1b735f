"""The echo example serves real clients (a subprocess, as users run it)."""
import os
import socket
import subprocess
import sys

from helpers import ROOT


def test_echo_server_example():
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "examples", "echo_server.py"), "0",
                          "--procs", "2"], stdout=subprocess.PIPE, text=True)
    try:
        word, port = p.stdout.readline().split()
        assert word == "ready"
        socks = [socket.create_connection(("127.0.0.1", int(port)), timeout=5) for _ in range(20)]
        for r in range(10):
            for i, s in enumerate(socks):
                s.sendall(b"%d:%d;" % (i, r))
            for i, s in enumerate(socks):
                want = b"%d:%d;" % (i, r)
                got = b""
                while len(got) < len(want):
                    got += s.recv(100)
                assert got == want
        for s in socks:
            s.close()
    finally:
        p.kill()
        p.wait()


def start_server(argv):
    """Starts an example server; returns (process, port) once it is ready."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    word, port = p.stdout.readline().split()
    assert word == "ready"
    return p, int(port)


def run_example(*args, timeout=120):
    return subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, timeout=timeout)


def test_socketserver_rpc_example_runs_unmodified_under_gmp_run():
    p, port = start_server([sys.executable, "-m", "gmp", "run", "--procs", "2",
                            os.path.join(ROOT, "examples", "rpc_socketserver.py"), "0"])
    try:
        r = run_example(os.path.join(ROOT, "examples", "rpc_client.py"), str(port),
                        "--conns", "1000", "--calls", "3", "--sleep", "0.2")
        assert r.returncode == 0, r.stdout + r.stderr
        # 1000 handler "threads" were Gs on the server's 2 Ms, and their
        # time.sleep()s overlapped.
        assert "server threads seen: 1;" in r.stdout or "server threads seen: 2;" in r.stdout, r.stdout
        assert "failed: 0" in r.stdout and "sleeps overlapped: True" in r.stdout, r.stdout
    finally:
        p.kill()
        p.wait()


def test_gmp_net_rpc_example_serves_2000_concurrent_connections():
    p, port = start_server([sys.executable, os.path.join(ROOT, "examples", "rpc_server.py"), "0",
                            "--procs", "2"])
    try:
        r = run_example(os.path.join(ROOT, "examples", "rpc_client.py"), str(port),
                        "--conns", "2000", "--calls", "2", "--sleep", "0.2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "failed: 0" in r.stdout and "sleeps overlapped: True" in r.stdout, r.stdout
    finally:
        p.kill()
        p.wait()


def test_redis_fanout_example_under_gmp_run(redis_port):
    r = run_example("-m", "gmp", "run", os.path.join(ROOT, "examples", "redis_fanout.py"),
                    "--port", str(redis_port), "--gs", "500", "--cmds", "20")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "20000 commands from 500 threads" in r.stdout and "0 wrong replies" in r.stdout
