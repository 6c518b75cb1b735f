"""The RPC server written against plain socketserver: no gmp in sight.

    python examples/rpc_socketserver.py [PORT]           # one OS thread per connection
    gmp run examples/rpc_socketserver.py [PORT]          # one G per connection, unmodified

Methods: add(a, b), echo(x), sleep(seconds) -> seconds, whoami() -> the OS
thread id serving the call.  Under ``gmp run`` every connection's handler
thread is a G, so thousands of connections share the Ms' few OS threads
(whoami shows it) and sleep() parks only its G.  Prints "ready PORT" once
listening.
"""
import os
import socketserver
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rpcproto  # noqa: E402


METHODS = rpcproto.methods(time.sleep)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        recv, send = self.request.recv, self.request.sendall
        while True:
            try:
                req = rpcproto.read_frame(recv)
            except (ConnectionError, ValueError):
                return
            if req is None:
                return
            send(rpcproto.encode(rpcproto.dispatch(METHODS, req)))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9100
    with Server(("127.0.0.1", port), Handler) as srv:
        print("ready", srv.server_address[1], flush=True)
        srv.serve_forever()
