"""select.select / select.poll / select.epoll / selectors on gmp's netpoller
(gmp.monkey, _ext/netpoll.pxi "Select"): under patch_all() a G that selects
parks on the poll descriptors of its fds, and no gmp.blocking helper thread
is ever started.  Each script runs in a fresh interpreter (patching is
process-wide) under 1, 2 and 4 Ms."""
import select
import socket

import pytest
from patched import run_patched

import gmp.monkey

# Shared by the scripts: park_then(fn) runs fn in a new G once the calling G
# (about to select) is parked on the netpoller - synchronised on its wait
# reason, never on a sleep.
PRELUDE = """
import errno, os, select, selectors, socket, time
import gmp
from gmp.blocking import pool_size

def park_then(fn, *args):
    me = gmp.current()
    def later():
        while me.wait_reason != "IO wait":
            gmp.gosched()
        fn(*args)
    return gmp.go(later)

def fill(sock):
    sock.setblocking(False)
    n = 0
    try:
        while True:
            n += sock.send(b"x" * 65536)
    except BlockingIOError:
        pass
    sock.setblocking(True)
    return n
"""


def run(tmp_path, body, procs):
    return run_patched(tmp_path, PRELUDE + body, procs=procs)


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_select_readiness_timeouts_and_errors(tmp_path, procs):
    out = run(tmp_path, """
a, b = socket.socketpair()
assert select.select is not gmp.monkey.original("select", "select")

# read readiness: the G parks, a write wakes it
park_then(b.send, b"r")
assert select.select([a], [], [], 10) == ([a], [], [])
assert a.recv(10) == b"r"

# write readiness: a's buffer full; draining b wakes the writer side
sent = fill(a)
assert select.select([], [a], [], 0) == ([], [], [])
def drain():
    got = 0
    while got < sent:
        got += len(b.recv(1 << 20))
park_then(drain)
assert select.select([], [a], [], 10) == ([], [a], [])

# timeout: empty lists, never early
for t in (0.05, 0.2):
    t0 = time.monotonic()
    assert select.select([a], [], [a], t) == ([], [], [])
    took = time.monotonic() - t0
    assert t <= took < t + 2, (t, took)

# timeout=0 polls: nothing to read, writable at once
t0 = time.monotonic()
assert select.select([a], [a], [], 0) == ([], [a], [])
assert time.monotonic() - t0 < 1

# several fds, objects and ints, the order given
c, d = socket.socketpair()
d.send(b"1"); b.send(b"2")
assert select.select([c, a.fileno()], [], [], 5) == ([c, a.fileno()], [], [])
c.recv(1); a.recv(1)

# a regular file is always ready (to read and to write), never exceptional
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.bin")
with open(path, "wb+") as f:
    assert select.select([f], [f], [], None) == ([f], [f], [])
    t0 = time.monotonic()
    assert select.select([], [], [f], 0.05) == ([], [], [])
    assert time.monotonic() - t0 >= 0.05

# an empty select with a timeout sleeps
t0 = time.monotonic()
assert select.select([], [], [], 0.05) == ([], [], [])
assert time.monotonic() - t0 >= 0.05

# errors as the stdlib raises them
real = gmp.monkey.original("select", "select")
r, w = os.pipe()
os.close(w); os.close(r)
for fn in (real, select.select):
    try:
        fn([r], [], [], 1)
    except OSError as e:
        assert e.errno == errno.EBADF, e
    else:
        raise AssertionError("no EBADF")
    for bad, exc in (([-1], ValueError), ([object()], TypeError)):
        try:
            fn(bad, [], [], 1)
        except exc:
            pass
        else:
            raise AssertionError(f"no {exc.__name__}")
    try:
        fn([a], [], [], -1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative timeout accepted")

# closed through gmp while waiting: reported ready, the next call raises
park_then(c.close)
assert select.select([c], [], [], 10) == ([c], [], [])
try:
    select.select([c], [], [], 0)
except ValueError:          # a closed socket's fileno() is -1, as in the stdlib
    pass
else:
    raise AssertionError("closed socket accepted")

# out-of-band data is an exceptional condition (POLLPRI)
ls = socket.socket()
ls.bind(("127.0.0.1", 0)); ls.listen()
x = socket.socket(); x.connect(ls.getsockname())
y, _ = ls.accept()
park_then(x.send, b"!", socket.MSG_OOB)
assert select.select([], [], [y], 10) == ([], [], [y])

assert pool_size() == 0
for s in (a, b, d, ls, x, y):
    s.close()
print("ok")
""", procs)
    assert out.strip() == "ok"


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_many_gs_select_own_socketpair(tmp_path, procs):
    # No lost wake-up: every select returns its fd (a lost one would time
    # out after 30 s) and every byte is counted exactly once.
    out = run(tmp_path, """
N, ROUNDS = 100, 20
got = [0] * N
timeouts = []
wg = gmp.WaitGroup()

def reader(i, a):
    try:
        while got[i] < ROUNDS:
            r, _, _ = select.select([a], [], [], 30)
            if not r:
                timeouts.append(i)
                return
            got[i] += len(a.recv(64))
    finally:
        wg.done()

def writer(b):
    for _ in range(ROUNDS):
        b.send(b"x")
        gmp.gosched()

pairs = [socket.socketpair() for _ in range(N)]
for i, (a, b) in enumerate(pairs):
    wg.add(1)
    gmp.go(reader, i, a)
for a, b in pairs:
    gmp.go(writer, b)
wg.wait()
assert not timeouts, timeouts
assert got == [ROUNDS] * N, got
assert pool_size() == 0
print("ok", sum(got))
""", procs)
    assert out.strip() == "ok 2000"


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_poll_epoll_and_selectors(tmp_path, procs):
    out = run(tmp_path, """
a, b = socket.socketpair()
IN, OUT = select.POLLIN, select.POLLOUT

# select.poll
p = select.poll()
p.register(a, IN)
t0 = time.monotonic()
assert p.poll(50) == []
assert time.monotonic() - t0 >= 0.05
assert p.poll(0) == []
park_then(b.send, b"p")
assert p.poll() == [(a.fileno(), IN)]
p.modify(a, IN | OUT)
assert p.poll(-1) == [(a.fileno(), IN | OUT)]
a.recv(1)
p.unregister(a)
try:
    p.modify(a, IN)
except FileNotFoundError:
    pass
else:
    raise AssertionError("modify of an unregistered fd")
r, w = os.pipe()
os.close(w)
p.register(r, IN)
assert p.poll(1000) == [(r, select.POLLHUP)]
os.close(r)
assert p.poll(0) == [(r, select.POLLNVAL)]

# select.epoll
with select.epoll() as ep:
    ep.register(a.fileno(), select.EPOLLIN)
    assert ep.poll(0.05) == []
    park_then(b.send, b"e")
    assert ep.poll(10) == [(a.fileno(), select.EPOLLIN)]
    a.recv(1)
    ep.modify(a.fileno(), select.EPOLLOUT)
    assert ep.poll(0) == [(a.fileno(), select.EPOLLOUT)]
    ep.unregister(a.fileno())
assert ep.closed

# selectors: DefaultSelector and the named ones
R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
for cls in (selectors.DefaultSelector, selectors.PollSelector,
            selectors.SelectSelector, selectors.EpollSelector):
    with cls() as sel:
        key = sel.register(a, R, "data")
        assert key.events == R and sel.get_key(a).data == "data"
        t0 = time.monotonic()
        assert sel.select(0.05) == []
        assert time.monotonic() - t0 >= 0.05, cls
        park_then(b.send, b"s")
        assert [(k.fileobj, ev) for k, ev in sel.select(10)] == [(a, R)], cls
        sel.modify(a, R | W)
        assert [(k.fileobj, ev) for k, ev in sel.select()] == [(a, R | W)], cls
        a.recv(1)
        assert [(k.fileobj, ev) for k, ev in sel.select(0)] == [(a, W)], cls
        sel.unregister(a)
        assert sel.get_map() == {}
        sel.register(b, R)
        assert sel.select(0) == []
assert selectors.DefaultSelector is gmp.monkey.GSelector

assert pool_size() == 0
a.close(); b.close()
print("ok")
""", procs)
    assert out.strip() == "ok"


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_socketserver_serve_forever_and_shutdown(tmp_path, procs):
    out = run(tmp_path, """
import socketserver

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.request.recv(100).upper())

srv = socketserver.TCPServer(("127.0.0.1", 0), Echo)
g = gmp.go(srv.serve_forever, 0.05)
while g.wait_reason != "IO wait":          # waiting in selector.select()
    gmp.gosched()
for i in range(20):
    with socket.socket() as c:
        c.connect(srv.server_address)
        c.sendall(b"hi %d" % i)
        assert c.recv(100) == b"HI %d" % i
srv.shutdown()
assert g.join(10)
srv.server_close()
assert pool_size() == 0
print("ok")
""", procs)
    assert out.strip() == "ok"


def test_outside_a_g_the_stdlib_answers():
    # No runtime: the patched functions are the stdlib's (and block the
    # thread); gmp.monkey's functions are usable without patching.
    a, b = socket.socketpair()
    try:
        assert gmp.monkey.select.select([a], [a], [], 0) == ([], [a], [])
        b.send(b"x")
        assert gmp.monkey.select.select([a], [], [], 5) == ([a], [], [])
        p = gmp.monkey.select.poll()
        with pytest.raises(TypeError, match="cannot create"):
            type(p)()                   # as the C type: made only by poll()
        p.register(a, select.POLLIN)
        assert p.poll(1000) == [(a.fileno(), select.POLLIN)]
        with gmp.monkey.GSelector() as sel:
            sel.register(a, 1)
            assert len(sel.select(1)) == 1
        ep = gmp.monkey.GEpoll()
        ep.register(a.fileno(), select.EPOLLIN)
        assert ep.poll(1) == [(a.fileno(), select.EPOLLIN)]
        ep.close()
    finally:
        a.close()
        b.close()


def test_fd_closed_behind_its_polldesc_and_reused(procs):
    # select leaves a PollDesc registered for the fd; a bare os.close drops
    # the epoll registration with the file, and the reused fd number must
    # be registered afresh, or the second wait would never wake.
    import os
    import time

    from gmp._ext._core import netpoll_select

    import gmp

    def main():
        r, w = os.pipe()
        assert netpoll_select([r], [], [], 0.01) == [[], [], []]
        os.close(r)
        os.close(w)
        r2, w2 = os.pipe()
        me = gmp.current()

        def later():
            while me.wait_reason != "IO wait":
                gmp.gosched()
            os.write(w2, b"x")
        gmp.go(later)
        t0 = time.monotonic()
        got = netpoll_select([r2], [], [], 30)
        took = time.monotonic() - t0
        os.close(r2)
        os.close(w2)
        return r2 == r, got == [[r2], [], []], took < 10
    assert gmp.run(main, procs=procs) == (True, True, True)
