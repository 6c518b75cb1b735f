"""gmp.monkey: stdlib and third-party blocking code under patch_all()."""
import pytest
from patched import run_patched


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_requests_against_http_server(tmp_path, procs):
    out = run_patched(tmp_path, """
        import http.server, threading, time, requests, queue
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(0.2)                 # parks only this G
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        class S(http.server.ThreadingHTTPServer):
            request_queue_size = 1024
        srv = S(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        results = queue.Queue()
        def get(i):
            r = requests.get(f"http://127.0.0.1:{port}/item/{i}", timeout=20)
            results.put((r.status_code, r.text == f"/item/{i}"))
        t0 = time.monotonic()
        ts = [threading.Thread(target=get, args=(i,)) for i in range(100)]
        for t in ts: t.start()
        for t in ts: t.join()
        elapsed = time.monotonic() - t0
        got = [results.get() for _ in range(100)]
        assert got == [(200, True)] * 100, got
        assert elapsed < 5, elapsed              # 100 x 0.2 s overlapped
        srv.shutdown(); srv.server_close()
        print("ok", round(elapsed, 2))
    """, procs=procs)
    assert out.startswith("ok")


def test_threading_tcp_server_1000_clients(tmp_path):
    out = run_patched(tmp_path, """
        import socket, socketserver, threading, time
        class Echo(socketserver.BaseRequestHandler):
            def handle(self):
                f = self.request.makefile("rb")
                line = f.readline()
                self.request.sendall(line.upper())
        class S(socketserver.ThreadingTCPServer):
            request_queue_size = 2048
            allow_reuse_address = True
            daemon_threads = True
        srv = S(("127.0.0.1", 0), Echo)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        ok = []
        gate = threading.Semaphore(1000)
        def client(i):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(b"hello %d\\n" % i)
                data = b""
                while not data.endswith(b"\\n"):
                    chunk = s.recv(100)
                    assert chunk
                    data += chunk
                assert data == b"HELLO %d\\n" % i, data
                ok.append(i)
        ts = [threading.Thread(target=client, args=(i,)) for i in range(1000)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert sorted(ok) == list(range(1000)), len(ok)
        srv.shutdown(); srv.server_close()
        print("served", len(ok))
    """)
    assert out.strip() == "served 1000"


def test_socket_semantics(tmp_path):
    out = run_patched(tmp_path, """
        import os, socket, tempfile, threading, time
        import gmp
        assert socket.socket.__name__ == "GSocket"
        a, b = socket.socketpair()
        a.settimeout(0.05)
        t0 = time.monotonic()
        try:
            a.recv(10)
            raise SystemExit("no timeout")
        except socket.timeout:
            pass
        assert 0.04 <= time.monotonic() - t0 < 2
        a.setblocking(False)
        try:
            a.recv(10)
            raise SystemExit("no BlockingIOError")
        except BlockingIOError:
            pass
        assert a.gettimeout() == 0.0 and not a.getblocking()
        a.setblocking(True)
        # a blocked reader parks only its G
        g = gmp.go(a.recv, 100)
        b.sendall(b"x")
        assert g.result(timeout=5) == b"x"
        # makefile, sendfile
        w = b.makefile("wb")
        w.write(b"line one\\nline two\\n"); w.flush()
        r = a.makefile("rb")
        assert r.readline() == b"line one\\n" and r.readline() == b"line two\\n"
        with tempfile.TemporaryFile() as f:
            f.write(b"F" * 100000); f.seek(0)
            sender = gmp.go(b.sendfile, f)
            got = 0
            while got < 100000:
                got += len(a.recv(65536))
            assert sender.result(timeout=5) == 100000
        # connect/accept with a listening socket, accept parks the G
        ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen()
        acc = gmp.go(ls.accept)
        c = socket.create_connection(ls.getsockname(), timeout=5)
        s, addr = acc.result(timeout=5)
        assert addr == c.getsockname()
        # UDP
        u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rg = gmp.go(u1.recvfrom, 100)
        u2.sendto(b"dgram", u1.getsockname())
        data, frm = rg.result(timeout=5)
        assert data == b"dgram"
        # close while parked wakes the reader with an error
        rd = gmp.go(s.recv, 10)
        gmp.sleep(0)
        s.close()
        try:
            rd.result(timeout=5)
            raise SystemExit("no error")
        except OSError:
            pass
        # getaddrinfo through gmp.blocking
        assert socket.getaddrinfo("localhost", 80)
        assert socket.gethostbyname("localhost") in ("127.0.0.1", "::1")
        for x in (a, b, c, ls, u1, u2):
            x.close()
        print("ok")
    """)
    assert out.strip() == "ok"


def test_time_select_threading_queue(tmp_path):
    out = run_patched(tmp_path, """
        import queue, select, selectors, socket, threading, time
        import gmp
        import gmp.monkey
        gmp.monkey.patch_all()                 # twice: harmless
        # time.sleep parks the G: 20 sleepers overlap
        t0 = time.monotonic()
        ts = [threading.Thread(target=time.sleep, args=(0.1,)) for _ in range(20)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert time.monotonic() - t0 < 1.0
        assert all(not t.is_alive() for t in ts)
        # select / selectors park the G, not the M
        a, b = socket.socketpair()
        ticks = []
        stop = threading.Event()
        def ticker():
            while not stop.is_set():
                ticks.append(1); time.sleep(0.005)
        threading.Thread(target=ticker).start()
        def writer():
            time.sleep(0.1); b.send(b"!")
        threading.Thread(target=writer).start()
        r, _, _ = select.select([a], [], [], 5)
        assert r == [a]
        a.recv(1)
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ)
        threading.Thread(target=writer).start()
        assert [k.fileobj for k, _ in sel.select(5)] == [a]
        # Level-triggered, as the stdlib's: unread data is reported again.
        assert [k.fileobj for k, _ in sel.select(0.05)] == [a]
        assert a.recv(1) == b"!"
        assert sel.select(0.05) == []
        stop.set()
        assert len(ticks) >= 5, len(ticks)
        # threading.local is per G; current_thread is the Thread
        loc = threading.local()
        loc.x = "main"
        seen = []
        def body(i):
            assert not hasattr(loc, "x")
            loc.x = i
            time.sleep(0.01)
            seen.append((loc.x == i, threading.current_thread().name))
        ts = [threading.Thread(target=body, args=(i,), name=f"T{i}") for i in range(10)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert sorted(seen) == sorted((True, f"T{i}") for i in range(10)), seen
        assert loc.x == "main"
        # Lock / RLock / Condition / Semaphore / queue across Gs
        lock, rlock = threading.Lock(), threading.RLock()
        n = [0]
        def inc():
            for _ in range(50):
                with lock:
                    with rlock:
                        with rlock:
                            v = n[0]; time.sleep(0); n[0] = v + 1
        ts = [threading.Thread(target=inc) for _ in range(8)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert n[0] == 400, n
        q = queue.Queue(maxsize=3)
        sq = queue.SimpleQueue()
        def producer():
            for i in range(100):
                q.put(i)
            q.put(None)
        threading.Thread(target=producer).start()
        got = []
        while (v := q.get(timeout=5)) is not None:
            got.append(v); sq.put(v)
        assert got == list(range(100))
        assert sq.get(timeout=1) == 0
        sem = threading.BoundedSemaphore(2)
        inside, peak = [0], [0]
        def crit():
            with sem:
                inside[0] += 1; peak[0] = max(peak[0], inside[0])
                time.sleep(0.01)
                inside[0] -= 1
        ts = [threading.Thread(target=crit) for _ in range(10)]
        for t in ts: t.start()
        for t in ts: t.join()
        assert peak[0] == 2, peak
        ev = threading.Event()
        threading.Thread(target=lambda: (time.sleep(0.02), ev.set())).start()
        assert ev.wait(5)
        assert not threading.Event().wait(0.01)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_warns_about_threads_started_before_patching(tmp_path):
    import os
    import subprocess
    import sys

    from patched import ROOT
    code = ("import threading, warnings, time\n"
            "ev = threading.Event()\n"
            "t = threading.Thread(target=ev.wait, name='early'); t.start()\n"
            "import gmp.monkey\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    gmp.monkey.patch_all()\n"
            "ev.set(); t.join()\n"
            "print(any('early' in str(x.message) for x in w))\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "True"
