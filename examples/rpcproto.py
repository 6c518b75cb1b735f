"""The wire format of the RPC examples: length-prefixed JSON over TCP.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON.  A request is {"id": N, "method": "...", "params": [...]}; a reply is
{"id": N, "result": ...} or {"id": N, "error": "..."}.  Plain standard
library, so the socketserver example stays free of gmp.
"""
import json
import struct
import threading
import time

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 20


def encode(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def read_exact(recv, n):
    """Read n bytes with recv(k) -> bytes; None on a clean EOF at a frame edge."""
    chunks, got = [], 0
    while got < n:
        chunk = recv(n - got)
        if not chunk:
            if got == 0:
                return None
            raise ConnectionError("peer closed mid-frame")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(recv):
    head = read_exact(recv, HEADER.size)
    if head is None:
        return None
    (n,) = HEADER.unpack(head)
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes exceeds {MAX_FRAME}")
    return json.loads(read_exact(recv, n))


def dispatch(methods, request):
    fn = methods.get(request.get("method"))
    if fn is None:
        return {"id": request.get("id"), "error": f"unknown method {request.get('method')!r}"}
    try:
        return {"id": request.get("id"), "result": fn(*request.get("params", []))}
    except Exception as e:  # an RPC error goes back to the caller, not up the server
        return {"id": request.get("id"), "error": f"{type(e).__name__}: {e}"}


def methods(sleep):
    """The example's RPC methods; `sleep` is the sleep the server uses."""
    def nap(seconds):
        sleep(seconds)
        return seconds

    def spin(ms):
        """Pure-Python CPU work for `ms` milliseconds: holds its thread."""
        end = time.perf_counter() + ms / 1000.0
        n = 0
        while time.perf_counter() < end:
            n += 1
        return n

    return {
        "add": lambda a, b: a + b,
        "echo": lambda x: x,
        "sleep": nap,
        "spin": spin,
        "whoami": threading.get_native_id,   # the OS thread serving the call
    }
