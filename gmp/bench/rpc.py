"""RPC workloads of ``gmp bench steal-vs-global``: a loopback RPC server
under each policy, driven by an open-loop client in its own process.

The server (the bench child, under gmp.run with the cell's policy and
procs) listens with gmp.net; one plain connection G per connection, bound
round-robin to the Ps, reads length-prefixed frames and admits each request
with ``gmp.policy.submit(handler, ..., key=, deadline=)``: a fresh G per
request under ``go``/``global``, a pool task under ``tars``/``sofa``.
``gmp.Rejected`` is answered BUSY, ``gmp.QueueTimeout`` from submit (sofa
blocking at max) TIMEOUT; a task that expired in a tars queue never runs and
gets no reply, as a Tars server drops it (the client has given up).

The client (this file run as a script, so it imports no gmp and cannot
compete for the server's GIL) first measures the server's capacity closed
loop (64 requests in flight, without deadlines, so that none is dropped
and the loop keeps its 64), then offers Poisson arrivals at each load
(50 %, 90 %, 120 % of that capacity) for a fixed time, and drains.  Each
request carries its deadline (intended send time + CLIENT_TIMEOUT, on the
CLOCK_MONOTONIC that both processes share): the request attribute a
server's admission uses.  Latency is measured from the request's intended
send time in the Poisson schedule, not from when the client got round to
sending it (wrk2's coordinated-omission correction), and recorded in an
HdrHistogram (the ``hdrh`` package).  Sends may be up to ~0.2 ms late, the
client's sleep granularity; that is in every figure alike.

Frames (little-endian)
    request   u32 len=20 | u32 id | u32 key | u64 deadline_ns (0: none) | u8 kind | 3 pad
    reply     u32 len=8  | u32 id | u32 status    (OK, BUSY, TIMEOUT)
    control   kind STATS: reply status STATS followed by JSON (server CPU
              seconds and the pool's counters), read before and after each
              load to give per-load CPU, rejections and queue timeouts.

Workloads (request mixes)
    rpc_short   pure Python (~100 us, holds the GIL)
    rpc_gil     sha256 of 64 KiB (drops the GIL) and a little Python
    rpc_stall   rpc_short, but 1 % make a 50 ms C call gmp cannot see
                (libc usleep through ctypes)
    rpc_skew    rpc_short with Zipf(1.2) keys over 1000 keys; tars and sofa
                run keyed (``tars-keyed``: per-key queues, ``sofa-sharded``),
                where one hot key's queue is what ordering costs

Figures per (workload, policy, procs, load): offered and goodput (OK replies
per second of the load's duration), rejected (BUSY), qtimeout (the pool's
queue timeouts: dropped from the queue or timed out waiting for a worker),
late (OK replies slower than CLIENT_TIMEOUT: a real client would have
given up on them), P50/P99/P999 of OK replies, server CPU seconds.
"""
import json
import os
import random
import selectors
import socket
import struct
import sys
import time

WORKLOADS = ("rpc_short", "rpc_gil", "rpc_stall", "rpc_skew")
LOADS = (0.5, 0.9, 1.2)
QUICK_LOADS = (0.5, 1.2)
CLIENT_TIMEOUT = 0.025
IDLE_DRAIN = 0.5
KEYED = {"tars": "tars-keyed", "sofa": "sofa-sharded"}

REQ = struct.Struct("<IIIQB3x")
REP = struct.Struct("<III")
OK, BUSY, TIMEOUT, STATS = 0, 1, 2, 3
SHORT, SHA, STALL, CONTROL = 0, 1, 2, 255

_BUF64K = b"\x5a" * (64 << 10)


# --- the server (the bench child, under gmp.run) -------------------------------

def _short():
    s = 0
    for i in range(700):
        s += i * i % 7
    return s


def _work(kind):
    if kind == SHORT:
        _short()
    elif kind == SHA:
        import hashlib
        hashlib.sha256(_BUF64K).digest()
        for _ in range(20):
            pass
    else:
        _libc().usleep(50_000)


_libc_handle = []


def _libc():
    if not _libc_handle:
        import ctypes
        _libc_handle.append(ctypes.CDLL(None))
    return _libc_handle[0]


def _serve_conn(gmp, conn, stats_reply):
    from gmp import policy
    wlock = gmp.Mutex()

    def reply(rid, status, extra=b""):
        with wlock:
            conn.sendall(REP.pack(8 + len(extra), rid, status) + extra)

    def handle(rid, kind):
        _work(kind)
        reply(rid, OK)

    buf = bytearray()
    size = REQ.size
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            n = len(buf) - len(buf) % size
            for off in range(0, n, size):
                _, rid, key, deadline_ns, kind = REQ.unpack_from(buf, off)
                if kind == CONTROL:
                    reply(rid, STATS, stats_reply())
                    continue
                try:
                    policy.submit(handle, rid, kind, key=key,
                                  deadline=deadline_ns / 1e9 if deadline_ns else None)
                except gmp.Rejected:
                    reply(rid, BUSY)
                except gmp.QueueTimeout:
                    reply(rid, TIMEOUT)
            del buf[:n]
    except (gmp.net.NetClosed, ConnectionError):
        return                  # the client is gone
    finally:
        conn.close()


def child(cfg):
    """The bench child of one RPC cell: serve under cfg's policy and procs
    while the client process runs every load; returns the figures."""
    import subprocess

    import psutil

    import gmp
    import gmp.net
    from gmp import policy as gpolicy
    from gmp._ext import _core

    proc = psutil.Process()
    name, procs = cfg["workload"], cfg["procs"]
    pol = KEYED.get(cfg["policy"], cfg["policy"]) if name == "rpc_skew" else cfg["policy"]
    res = {"workload": name, "runtime": "gmp", "policy": cfg["policy"], "procs": procs,
           "unit": "reqs", "ran_policy": pol}

    def stats_reply():
        t = proc.cpu_times()
        return json.dumps({"cpu": t.user + t.system, "pool": gpolicy.current().stats()}).encode()

    def main():
        ln = gmp.net.listen(("127.0.0.1", 0))
        port = ln.addr[1]

        def accept_loop():
            i = 0
            while True:
                try:
                    conn, _ = ln.accept()
                except gmp.net.NetClosed:
                    return
                _core.go_on(i % procs, _serve_conn, gmp, conn, stats_reply)
                i += 1
        gmp.go(accept_loop)
        ccfg = {"port": port, "workload": name, "quick": cfg.get("quick", False),
                "scale": cfg["scale"]}
        p = gmp.blocking(subprocess.run, [sys.executable, os.path.abspath(__file__),
                                          "--client", json.dumps(ccfg)],
                         capture_output=True, text=True, timeout=300)
        ln.close()
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise RuntimeError("rpc client failed: " + (p.stderr.strip().splitlines() or ["?"])[-1])
        return json.loads(p.stdout.strip().splitlines()[-1])
    t0 = time.perf_counter()
    out = gmp.run(main, procs=procs, policy=pol)
    res.update(out, seconds=time.perf_counter() - t0, throughput=out["capacity"],
               ops=sum(ld["ok"] for ld in out["loads"]),
               cpu_s=sum(ld["cpu_s"] for ld in out["loads"]))
    return res


# --- the client (this file run as a script: no gmp) ------------------------------

class _Client:
    def __init__(self, port, nconn):
        self.socks = []
        self.sel = selectors.DefaultSelector()
        for _ in range(nconn):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_READ, [bytearray(), bytearray()])
        self.next_id = 0
        self.pending = {}          # id -> intended send time, ns
        self.on_reply = None

    def send(self, intended_ns, kind, key, i, deadline=True):
        rid = self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        self.pending[rid] = intended_ns
        s = self.socks[i % len(self.socks)]
        inb, outb = self.sel.get_key(s).data
        outb += REQ.pack(REQ.size - 4, rid, key,
                         intended_ns + int(CLIENT_TIMEOUT * 1e9) if deadline else 0, kind)
        self._flush(s, inb, outb)
        return rid

    def _flush(self, s, inb, outb):
        if outb:
            try:
                n = s.send(outb)
            except BlockingIOError:
                n = 0
            del outb[:n]
        self.sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if outb else 0),
                        [inb, outb])

    def poll(self, timeout):
        for k, ev in self.sel.select(timeout):
            inb, outb = k.data
            if ev & selectors.EVENT_WRITE:
                self._flush(k.fileobj, inb, outb)
            if ev & selectors.EVENT_READ:
                data = k.fileobj.recv(65536)
                if not data:
                    raise RuntimeError("server closed a connection")
                inb += data
                now = time.monotonic_ns()
                off = 0
                while len(inb) - off >= 4:
                    (ln,) = struct.unpack_from("<I", inb, off)
                    if len(inb) - off < 4 + ln:
                        break
                    _, rid, status = REP.unpack_from(inb, off)
                    extra = bytes(inb[off + REP.size:off + 4 + ln])
                    off += 4 + ln
                    sent = self.pending.pop(rid, None)
                    if sent is not None:    # else a reply given up on in an earlier phase
                        self.on_reply(rid, status, now - sent, extra)
                del inb[:off]

    def drain(self, limit):
        """Waits for the replies still on their way, for at most `limit`
        seconds and until none has come for IDLE_DRAIN: a request that
        expired in a pool's queue gets no reply."""
        stop = time.monotonic() + limit
        while self.pending and time.monotonic() < stop:
            n = len(self.pending)
            self.poll(IDLE_DRAIN)
            if len(self.pending) == n:
                return

    def control(self):
        """The server's STATS reply (its CPU and pool counters)."""
        got = []
        saved = self.on_reply
        self.on_reply = lambda rid, st, lat, extra: got.append(json.loads(extra))
        self.send(time.monotonic_ns(), CONTROL, 0, 0)
        while not got:
            self.poll(1.0)
        self.on_reply = saved
        return got[0]


def _request_maker(workload, rnd):
    key_uniform = lambda: rnd.randrange(1 << 20)
    if workload == "rpc_skew":
        keys = list(range(1000))
        cum = []
        acc = 0.0
        for k in keys:
            acc += 1.0 / ((k + 1) ** 1.2)
            cum.append(acc)

        def key_zipf():
            return rnd.choices(keys, cum_weights=cum)[0]
        return lambda: (SHORT, key_zipf())
    if workload == "rpc_gil":
        return lambda: (SHA, key_uniform())
    if workload == "rpc_stall":
        return lambda: (STALL if rnd.random() < 0.01 else SHORT, key_uniform())
    return lambda: (SHORT, key_uniform())


def _capacity(cl, make, seconds, inflight=64):
    done = [0]

    def on_reply(rid, status, lat, extra):
        done[0] += status == OK
        kind, key = make()
        cl.send(time.monotonic_ns(), kind, key, rid, deadline=False)
    cl.on_reply = on_reply
    for i in range(inflight):
        kind, key = make()
        cl.send(time.monotonic_ns(), kind, key, i, deadline=False)
    warm = time.monotonic() + seconds / 4
    while time.monotonic() < warm:
        cl.poll(0.01)
    base, tb = done[0], time.monotonic()
    while time.monotonic() < tb + seconds:
        cl.poll(0.01)
    rate = (done[0] - base) / (time.monotonic() - tb)
    if rate <= 0:
        raise RuntimeError("the server answered nothing in the capacity run")
    cl.on_reply = lambda *a: None
    cl.drain(5.0)
    cl.pending.clear()
    return rate


def _load(cl, make, rnd, rate, seconds):
    from hdrh.histogram import HdrHistogram
    hist = HdrHistogram(1, 60_000_000, 3)           # us
    fig = {"ok": 0, "busy": 0, "timeout": 0, "late": 0}
    late_us = CLIENT_TIMEOUT * 1e6

    def on_reply(rid, status, lat_ns, extra):
        if status == OK:
            us = max(1, lat_ns // 1000)
            hist.record_value(min(us, 60_000_000))
            fig["ok"] += 1
            fig["late"] += us > late_us
        elif status == BUSY:
            fig["busy"] += 1
        else:
            fig["timeout"] += 1
    before = cl.control()
    cl.on_reply = on_reply
    t0 = time.monotonic_ns() + 2_000_000
    end = t0 + int(seconds * 1e9)
    t, i = t0, 0
    while t < end:
        now = time.monotonic_ns()
        while t <= now and t < end:
            kind, key = make()
            cl.send(t, kind, key, i)
            i += 1
            t += int(rnd.expovariate(rate) * 1e9)
        wait = (t - time.monotonic_ns()) / 1e9
        cl.poll(0)
        if wait > 0:
            time.sleep(min(wait, 0.0002))
    cl.drain(max(2.0, seconds))
    lost = len(cl.pending)
    cl.pending.clear()
    cl.on_reply = lambda *a: None
    after = cl.control()
    pa, pb = after["pool"], before["pool"]
    fig.update(sent=i, offered=i / seconds, goodput=fig["ok"] / seconds, unanswered=lost,
               cpu_s=after["cpu"] - before["cpu"],
               rejected=pa.get("rejected", 0) - pb.get("rejected", 0),
               queue_timeouts=pa.get("queue_timeouts", 0) - pb.get("queue_timeouts", 0),
               lat={"p50": hist.get_value_at_percentile(50),
                    "p99": hist.get_value_at_percentile(99),
                    "p999": hist.get_value_at_percentile(99.9)} if fig["ok"] else {})
    return fig


def client(cfg):
    rnd = random.Random(1234)
    quick = cfg["quick"]
    scale = cfg["scale"]
    make = _request_maker(cfg["workload"], rnd)
    cl = _Client(cfg["port"], 8)
    cap = _capacity(cl, make, 0.4 if quick else 1.5)
    seconds = max(0.3, (1.2 if quick else 2.0) * scale)
    loads = []
    for load in (QUICK_LOADS if quick else LOADS):
        fig = _load(cl, make, rnd, load * cap, seconds)
        fig["load"] = load
        loads.append(fig)
    return {"capacity": cap, "seconds_per_load": seconds, "loads": loads}


# --- the parent: table rows, readings, targets --------------------------------

def _ms(v):
    if v is None:
        return "-"
    return f"{v / 1e3:.1f}ms" if v >= 1e3 else f"{v:.0f}us"


def format_table(rows):
    hdr = ("workload", "runtime", "procs", "load", "offered/s", "goodput/s", "x offered",
           "rejected", "qtimeout", "late", "p50", "p99", "p999", "cpu s")
    lines, errors = [], []
    for r in rows:
        label = f"gmp/{r['policy']}" + ("" if r.get("ran_policy", r["policy"]) == r["policy"]
                                        else f" ({r['ran_policy']})")
        if "error" in r:
            errors.append(f"{r['workload']}  {label}  procs {r['procs']}: ERROR {r['error']}")
            continue
        for ld in r["loads"]:
            lat = ld["lat"]
            lines.append((r["workload"], label, str(r["procs"]), f"{100 * ld['load']:.0f}%",
                          f"{ld['offered']:,.0f}", f"{ld['goodput']:,.0f}",
                          f"{ld['goodput'] / ld['offered']:.2f}" if ld["offered"] else "-",
                          str(ld["rejected"]), str(ld["queue_timeouts"]),
                          f"{100 * ld['late'] / max(1, ld['ok']):.1f}%",
                          _ms(lat.get("p50")), _ms(lat.get("p99")), _ms(lat.get("p999")),
                          f"{ld['cpu_s']:.2f}"))
    widths = [max(len(h), *(len(x[i]) for x in lines)) if lines else len(h)
              for i, h in enumerate(hdr)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*hdr), fmt.format(*("-" * w for w in widths))]
    return "\n".join(out + [fmt.format(*x) for x in lines] + errors)


def _level(rows, workload, policy, procs, load):
    for r in rows:
        if (r["workload"], r["policy"], r["procs"]) == (workload, policy, procs) and "error" not in r:
            for ld in r["loads"]:
                if ld["load"] == load and ld["lat"]:
                    return ld
    return None


def _p999_growth(rows, w, pol, procs):
    lo, hi = _level(rows, w, pol, procs, 0.5), _level(rows, w, pol, procs, 1.2)
    if lo is None or hi is None:
        return None, None
    return hi["lat"]["p999"], hi["lat"]["p999"] / lo["lat"]["p999"]


def _by_workload(rows):
    """(workload, largest procs, its rows) for each RPC workload in rows."""
    for w in WORKLOADS:
        mine = [r for r in rows if r["workload"] == w]
        if mine:
            yield w, max(r["procs"] for r in mine), mine


def readings(rows):
    """One line per RPC workload, at the largest procs it ran."""
    out = []
    for w, procs, mine in _by_workload(rows):
        parts = {}
        for pol in dict.fromkeys(r["policy"] for r in mine):
            v, g = _p999_growth(rows, w, pol, procs)
            if v is not None:
                parts[pol] = f"{pol} {_ms(v)} ({g:.1f}x its 50 %)"
        pooled = [v for k, v in parts.items() if k in ("tars", "sofa")]
        per_task = [v for k, v in parts.items() if k not in ("tars", "sofa")]
        if not parts:
            out.append(f"{w}: no complete 50 %/120 % pair")
        elif pooled and per_task:
            out.append(f"{w} (procs {procs}): at 120 % load P999 of accepted requests was "
                       f"{', '.join(pooled)}, while {', '.join(per_task)}")
        else:
            out.append(f"{w} (procs {procs}): at 120 % load P999 was {', '.join(parts.values())}")
    return out


def targets(rows):
    """Issue 11's targets as (name, value, goal, ok), at the largest procs."""
    out = []
    for w, procs, mine in _by_workload(rows):
        for pol in ("tars", "sofa"):
            _, g = _p999_growth(rows, w, pol, procs)
            if g is not None:
                out.append((f"{w} p{procs} {pol}: P999 at 120 % / at 50 %", g, "<= 5", g <= 5))
        for pol in dict.fromkeys(r["policy"] for r in mine):
            lo = _level(rows, w, pol, procs, 0.5)
            if lo is not None:
                v = lo["goodput"] / lo["offered"]
                out.append((f"{w} p{procs} {pol}: goodput / offered at 50 %", v, "0.98..1.02",
                            0.98 <= v <= 1.02))
        go = _level(rows, w, "go", procs, 0.5)
        for pol in ("tars", "sofa"):
            lo = _level(rows, w, pol, procs, 0.5)
            if go is not None and lo is not None:
                v = lo["lat"]["p99"] / go["lat"]["p99"]
                out.append((f"{w} p{procs} {pol}: P99 at 50 % / go's", v, "<= 1.5", v <= 1.5))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] != ["--client"]:
        sys.exit("usage: rpc.py --client JSON (run by gmp bench steal-vs-global)")
    sys.stdout.write(json.dumps(client(json.loads(sys.argv[2]))) + "\n")
