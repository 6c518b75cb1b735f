"""The monitor is quiet by default: a busy server whose handlers hold their
M for a long time writes nothing to stderr under ``gmp run``; the
long-running-G report is one switch away (GMPDEBUG=sysmonlong=MS)."""
import pytest
from gmprun import gmp_run

SERVER = """
    import http.client, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self):
            end = time.monotonic() + 0.15      # CPU-bound: never parks
            while time.monotonic() < end:
                pass
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    got = []
    def client():
        c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=30)
        for _ in range(3):
            c.request("GET", "/")
            got.append(c.getresponse().read())
        c.close()
    clients = [threading.Thread(target=client) for _ in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    srv.shutdown()
    print(len(got), set(got))
"""


@pytest.mark.parametrize("procs", [1, 2])
def test_busy_server_writes_nothing_to_stderr(tmp_path, procs):
    p = gmp_run(tmp_path, SERVER, procs=procs)
    assert p.stdout.strip() == "12 {b'ok'}"
    assert p.stderr == ""


def test_long_g_report_is_one_switch_away(tmp_path):
    p = gmp_run(tmp_path, SERVER, env={"GMPDEBUG": "sysmonlong=50"})
    assert p.stdout.strip() == "12 {b'ok'}"
    assert "gmp: sysmon: G" in p.stderr and "do_GET" in p.stderr
