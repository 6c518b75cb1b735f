"""A TCP echo server on gmp.net: one G per connection, reading into a
reused buffer.

    python examples/echo_server.py [PORT] [--procs N]

Listens on 127.0.0.1:PORT (default 9000), prints "ready PORT" once it
accepts connections, and serves until killed.
"""
import argparse

import gmp
from gmp import net


def handle(conn, addr):
    buf = bytearray(65536)
    view = memoryview(buf)
    recv_into = conn.recv_into
    sendall = conn.sendall
    try:
        while True:
            n = recv_into(buf)
            if not n:
                break
            sendall(view[:n])
    except ConnectionError:
        pass
    finally:
        conn.close()


def main(port):
    ln = net.listen(("127.0.0.1", port))
    print("ready", ln.addr[1], flush=True)
    net.serve(ln, handle)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int, nargs="?", default=9000)
    ap.add_argument("--procs", type=int, default=None)
    a = ap.parse_args()
    try:
        gmp.run(main, a.port, procs=a.procs)
    except KeyboardInterrupt:
        pass
