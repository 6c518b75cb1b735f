"""The RPC server on gmp.net: one G per connection, 10 k connections at once.

    python examples/rpc_server.py [PORT] [--procs N]

Same protocol and methods as rpc_socketserver.py (see rpcproto.py), written
directly against gmp.net.  Each call is a gmp.latency request classed by its
method: run with GMPDEBUG=latency=FILE and read FILE with
``gmp latency report``.  Raises its soft open-file limit to the hard limit
at start-up so that 10 000 concurrent connections fit.  Prints "ready PORT".
"""
import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rpcproto  # noqa: E402

import gmp  # noqa: E402
from gmp import latency, net  # noqa: E402


METHODS = rpcproto.methods(gmp.sleep)


def handle(conn, addr):
    try:
        while True:
            req = rpcproto.read_frame(conn.recv)
            if req is None:
                return
            # One latency record per call, classed by method (recorded only
            # while sampling is on: GMPDEBUG=latency=FILE, gmp.latency).
            with latency.begin(str(req.get("method"))) as rec:
                reply = rpcproto.dispatch(METHODS, req)
                rec.status = 500 if "error" in reply else 200
                conn.sendall(rpcproto.encode(reply))
    except (ConnectionError, ValueError):
        pass
    finally:
        conn.close()


def main(port):
    ln = net.listen(("127.0.0.1", port))
    print("ready", ln.addr[1], flush=True)
    net.serve(ln, handle)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int, nargs="?", default=9100)
    ap.add_argument("--procs", type=int, default=None)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gmp.run(main, a.port, procs=a.procs)
