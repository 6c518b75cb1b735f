"""gmp.monkey.patch_ssl: TLS over the netpoller, under patch_all(), with a
real TLS server on 127.0.0.1 and a test CA made here (trustme, or the
openssl CLI where trustme is missing)."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from patched import ROOT, run_patched


def _certs_trustme(d):
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))


def _certs_openssl(d):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("neither trustme nor the openssl CLI is available")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=gmp test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "basicConstraints=critical,CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectKeyIdentifier=hash\n"
                               "authorityKeyIdentifier=keyid\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    (d / "server.pem").write_bytes((d / "server.key").read_bytes() + (d / "server.crt").read_bytes())


@pytest.fixture
def certs(tmp_path):
    """(ca.pem, server.pem with key and chain) for 127.0.0.1 and localhost."""
    d = tmp_path / "certs"
    d.mkdir()
    try:
        import trustme  # noqa: F401
    except ImportError:
        _certs_openssl(d)
    else:
        _certs_trustme(d)
    return str(d / "ca.pem"), str(d / "server.pem")


# Prepended to every script: contexts from argv and a TLS echo server served
# by Gs (one G per connection, handshake in that G).
PRELUDE = """
import socket, ssl, sys, threading, time
import gmp
CA, PEM = sys.argv[1], sys.argv[2]
SCTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
SCTX.load_cert_chain(PEM)
CCTX = ssl.create_default_context(cafile=CA)

def echo_server(backlog=1024):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(backlog)
    def handle(c):
        with SCTX.wrap_socket(c, server_side=True) as s:
            buf = bytearray(65536)
            while True:
                n = s.recv_into(buf)
                if not n:
                    break
                s.sendall(buf[:n])
    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            gmp.go(handle, c)
    gmp.go(serve)
    return ls

def tls_client(port, timeout=20):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return CCTX.wrap_socket(raw, server_hostname="127.0.0.1")
"""


def run_tls(tmp_path, certs, body, procs=2, timeout=120):
    return run_patched(tmp_path, PRELUDE + textwrap.dedent(body), *certs, procs=procs,
                       timeout=timeout)


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_echo_200_concurrent_tls_connections(tmp_path, certs, procs):
    out = run_tls(tmp_path, certs, """
        import hashlib
        ls = echo_server()
        port = ls.getsockname()[1]
        def payload(i):
            n = (i * 7919) % 150000 + 1          # 1 B .. 150 KB
            seed = hashlib.sha256(b"%d" % i).digest()
            return (seed * (n // 32 + 1))[:n]
        def client(i):
            data = payload(i)
            with tls_client(port) as s:
                assert type(s).__name__ == "GSSLSocket", type(s)
                assert s.version() is not None
                if i % 3 == 0:                   # makefile over the TLS socket
                    w, r = s.makefile("wb"), s.makefile("rb")
                    w.write(data); w.flush()
                    got = r.read(len(data))
                    w.close(); r.close()
                else:
                    s.sendall(data)
                    got = bytearray()
                    while len(got) < len(data):
                        chunk = s.recv(65536) if i % 2 else s.read(65536)
                        assert chunk, "early EOF"
                        got += chunk
                assert got == data, (i, len(got), len(data))
                return len(data)
        t0 = time.monotonic()
        gs = [gmp.go(client, i) for i in range(200)]
        total = sum(g.result(timeout=60) for g in gs)
        assert total == sum(len(payload(i)) for i in range(200))
        ls.close()
        print("ok", total, round(time.monotonic() - t0, 2))
    """, procs=procs)
    assert out.startswith("ok")


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_handshake_and_read_timeouts_stall_only_their_g(tmp_path, certs, procs):
    out = run_tls(tmp_path, certs, """
        # a server that accepts TCP and never says a word
        mute = socket.socket(); mute.bind(("127.0.0.1", 0)); mute.listen(16)
        held = []
        def hold():
            while True:
                try:
                    held.append(mute.accept()[0])
                except OSError:
                    return
        gmp.go(hold)
        ls = echo_server()
        ticks = [0]
        stop = threading.Event()
        def ticker():
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0.005)
        gmp.go(ticker)
        def stalled():
            raw = socket.create_connection(mute.getsockname(), timeout=0.3)
            t0 = time.monotonic()
            try:
                CCTX.wrap_socket(raw, server_hostname="127.0.0.1")
            except socket.timeout as e:
                assert isinstance(e, TimeoutError) and "handshake" in str(e), e
                return time.monotonic() - t0
            raise AssertionError("handshake did not time out")
        g = gmp.go(stalled)
        # meanwhile TLS round trips on other Gs go on
        done = 0
        while not g.dead and done < 1000:
            with tls_client(ls.getsockname()[1]) as s:
                s.sendall(b"ping"); assert s.recv(10) == b"ping"
            done += 1
        elapsed = g.result(timeout=10)
        assert 0.25 <= elapsed < 3, elapsed
        assert done >= 1, done
        # a read timeout after a good handshake, then the socket still works
        with tls_client(ls.getsockname()[1]) as s:
            s.settimeout(0.2)
            t0 = time.monotonic()
            try:
                s.recv(10)
                raise AssertionError("no read timeout")
            except socket.timeout as e:
                assert "read" in str(e), e
            assert 0.15 <= time.monotonic() - t0 < 3
            s.settimeout(5)
            s.sendall(b"again"); assert s.recv(10) == b"again"
        stop.set()
        assert ticks[0] >= 20, ticks        # the ticker ran through both waits
        mute.close(); ls.close()
        print("ok", done, ticks[0])
    """, procs=procs)
    assert out.startswith("ok")


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_https_clients_against_tls_http_server(tmp_path, certs, procs):
    out = run_tls(tmp_path, certs, """
        import http.client, http.server, queue, urllib.request
        import requests
        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                time.sleep(0.1)                 # parks only this G
                body = self.path.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *a):
                pass
        class S(http.server.ThreadingHTTPServer):
            request_queue_size = 1024
            daemon_threads = True
        srv = S(("127.0.0.1", 0), H)
        srv.socket = SCTX.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        base = f"https://127.0.0.1:{port}"
        results = queue.Queue()
        def with_requests(i):
            r = requests.get(f"{base}/r/{i}", verify=CA, timeout=20)
            results.put((r.status_code, r.text == f"/r/{i}"))
        def with_http_client(i):
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=20, context=CCTX)
            c.request("GET", f"/h/{i}")
            r = c.getresponse()
            results.put((r.status, r.read() == f"/h/{i}".encode()))
            c.close()
        def with_urllib(i):
            with urllib.request.urlopen(f"{base}/u/{i}", timeout=20, context=CCTX) as r:
                results.put((r.status, r.read() == f"/u/{i}".encode()))
        kinds = [with_requests, with_http_client, with_urllib]
        # one of each first (imports, pools), then 50 overlapped requests
        for k in kinds:
            k(0)
        assert [results.get(timeout=5) for _ in kinds] == [(200, True)] * 3
        t0 = time.monotonic()
        ts = [threading.Thread(target=kinds[i % 3], args=(i,)) for i in range(50)]
        for t in ts: t.start()
        for t in ts: t.join()
        elapsed = time.monotonic() - t0
        got = [results.get(timeout=5) for _ in range(50)]
        assert got == [(200, True)] * 50, got
        assert elapsed < 2.5, elapsed           # serial: 50 x 0.1 s = 5 s
        srv.shutdown(); srv.server_close()
        print("ok", round(elapsed, 2))
    """, procs=procs)
    assert out.startswith("ok")


def test_unwrap_nonblocking_and_stdlib_semantics(tmp_path, certs):
    out = run_tls(tmp_path, certs, """
        import tempfile
        import gmp.monkey
        # STARTTLS both ways on a socketpair: clear, TLS, clear again
        a, b = socket.socketpair()
        def server_side():
            assert b.recv(9) == b"STARTTLS\\n"
            s = SCTX.wrap_socket(b, server_side=True)
            assert s.recv(100) == b"secret"
            s.sendall(b"SECRET")
            plain = s.unwrap()
            assert plain.recv(100) == b"clear again"
            plain.sendall(b"CLEAR AGAIN")
            return plain
        srv = gmp.go(server_side)
        a.sendall(b"STARTTLS\\n")
        s = CCTX.wrap_socket(a, server_hostname="localhost")
        s.sendall(b"secret"); assert s.recv(100) == b"SECRET"
        plain = s.unwrap()
        plain.sendall(b"clear again"); assert plain.recv(100) == b"CLEAR AGAIN"
        srv.result(timeout=10).close(); plain.close()

        ls = echo_server()
        port = ls.getsockname()[1]
        # non-blocking (timeout 0): SSLWantReadError / SSLWantWriteError as the stdlib
        with tls_client(port) as s:
            s.setblocking(False)
            try:
                got = s.recv(10)
                raise AssertionError(f"no SSLWantReadError: {got!r}")
            except ssl.SSLWantReadError:
                pass
            s.setblocking(True)
            s.sendall(b"x"); assert s.recv(10) == b"x"
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setblocking(False)
        try:
            CCTX.wrap_socket(raw, server_hostname="127.0.0.1")
            raise AssertionError("no ValueError")
        except ValueError as e:
            assert "non-blocking" in str(e)
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setblocking(False)
        s = CCTX.wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False)
        try:
            s.do_handshake()
            raise AssertionError("no SSLWantReadError")
        except ssl.SSLWantReadError:
            pass
        s.do_handshake(block=True)
        s.settimeout(5)
        s.sendall(b"nb"); assert s.recv(10) == b"nb"
        s.close()
        # a peer that does not read: a non-blocking write ends in SSLWantWriteError
        a, b = socket.socketpair()
        hs = gmp.go(SCTX.wrap_socket, b, server_side=True)
        c = CCTX.wrap_socket(a, server_hostname="localhost")
        peer = hs.result(timeout=10)
        c.setblocking(False)
        chunk = b"w" * 65536
        for _ in range(10000):
            try:
                c.send(chunk)
            except ssl.SSLWantWriteError:
                break
        else:
            raise AssertionError("no SSLWantWriteError")
        c.close(); peer.close()
        # stdlib restrictions kept; sendfile over TLS falls back to send
        with tls_client(port) as s:
            for call in (lambda: s.recvfrom(10), lambda: s.sendto(b"x", ("127.0.0.1", 1)),
                         lambda: s.send(b"x", 1)):
                try:
                    call()
                    raise AssertionError("accepted")
                except ValueError:
                    pass
            with tempfile.TemporaryFile() as f:
                f.write(b"F" * 300000); f.seek(0)
                sender = gmp.go(s.sendfile, f)
                got = 0
                while got < 300000:
                    n = len(s.recv(65536)); assert n; got += n
                assert sender.result(timeout=10) == 300000 and got == 300000
        # outside a G (a real OS thread): blocks its thread, like the stdlib
        out = []
        finished = threading.Event()            # G-aware, set from the thread
        def plain_thread():
            try:
                assert gmp.current() is None
                with tls_client(port) as s:
                    assert type(s).__name__ == "GSSLSocket"
                    s.sendall(b"thread"); out.append(s.recv(10))
            finally:
                finished.set()
        gmp.monkey.original("threading", "Thread")(target=plain_thread, daemon=True).start()
        assert finished.wait(20)
        assert out == [b"thread"], out
        # a server-side SSL listening socket: accept() hands back a handshaken socket
        lss = SCTX.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)
        acc = gmp.go(lss.accept)
        with tls_client(lss.getsockname()[1]) as s:
            conn, _ = acc.result(timeout=10)
            assert type(conn).__name__ == "GSSLSocket" and conn.version()
            s.sendall(b"acc"); assert conn.recv(10) == b"acc"
            conn.close()
        lss.close(); ls.close()
        print("ok")
    """, procs=2)
    assert out.strip() == "ok"


def test_ssl_imported_and_context_made_before_patching(certs):
    """ssl.SSLSocket then derives from the real socket class; a context made
    before patch_all() still gets the cooperative class, and no warning says
    ssl stays blocking.  One M: a blocking handshake would deadlock."""
    code = PRELUDE + textwrap.dedent("""
        import warnings
        assert not issubclass(ssl.SSLSocket, __import__("gmp.monkey").monkey.GSocket)
        import gmp.monkey
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            gmp.monkey.patch_all()
        assert not [x for x in w if "ssl." in str(x.message)], [str(x.message) for x in w]
        from gmp.monkey.ssl import GSSLSocket
        assert CCTX.sslsocket_class is GSSLSocket and SCTX.sslsocket_class is GSSLSocket
        def main():
            ls = echo_server()
            def client(i):
                with tls_client(ls.getsockname()[1]) as s:
                    s.sendall(b"early %d" % i)
                    return s.recv(100)
            gs = [gmp.go(client, i) for i in range(20)]
            assert [g.result(timeout=30) for g in gs] == [b"early %d" % i for i in range(20)]
            ls.close()
        gmp.run(main, procs=1)
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-c", code, *certs], check=False, capture_output=True, text=True,
                       timeout=120, env=env)
    assert p.returncode == 0, p.stderr[-4000:]
    assert p.stdout.strip() == "ok"


@pytest.mark.parametrize("procs", [1, 2])
def test_wrap_then_connect_and_connect_ex(tmp_path, certs, procs):
    # The stdlib's SSLSocket.connect reaches the patched socket's connect
    # through super() after wrapping; connect must not go back through the
    # SSLSocket's connect_ex (which would wrap again: "already-connected").
    out = run_tls(tmp_path, certs, """
        ls = echo_server()
        addr = ls.getsockname()
        def client(i):
            s = CCTX.wrap_socket(socket.socket(), server_hostname="127.0.0.1")
            if i % 2:
                s.connect(addr)
            else:
                assert s.connect_ex(addr) == 0
            with s:
                s.sendall(b"ping %d" % i)
                return s.recv(64)
        gs = [gmp.go(client, i) for i in range(20)]
        assert [g.result(timeout=30) for g in gs] == [b"ping %d" % i for i in range(20)]
        refused = CCTX.wrap_socket(socket.socket(), server_hostname="127.0.0.1")
        probe = socket.socket(); probe.bind(("127.0.0.1", 0)); free = probe.getsockname(); probe.close()
        assert refused.connect_ex(free) != 0
        refused.close()
        ls.close()
        print("ok")
    """, procs=procs)
    assert out.startswith("ok")
