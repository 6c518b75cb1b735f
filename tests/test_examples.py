"""The echo example serves real clients (a subprocess, as users run it)."""
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
