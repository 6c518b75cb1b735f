"""fork() with a runtime running (issue 9, item 7): the child gets its own
netpoller, blocking pool and a single M; the parent is undisturbed.  See
_ext/fork.pxi for what survives in the child."""
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import gmp
from gmp._ext import _core

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_child(pid):
    _, status = gmp.blocking(os.waitpid, pid, 0)
    return os.waitstatus_to_exitcode(status)


def child_receives(pd, n):
    """In the child: receive n one-byte messages on pd, then check that
    gmp.blocking works; exits with the count (never returns)."""
    got = 0
    try:
        pd.set_read_deadline(time.monotonic() + 10)
        for _ in range(n):
            if pd.recv(1):
                got += 1
        if gmp.blocking(int, "7") != 7:
            got = 100
    finally:
        os._exit(got)


@pytest.mark.parametrize("on_p", [0, 1])
def test_forked_child_gets_every_message(on_p):
    """The socket is registered with the parent's epoll before the fork;
    the child must see all 20 edges, and the parent's own I/O goes on."""
    out = {}

    def forker():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        pd = _core.PollDesc(b.fileno())
        gmp.go(lambda: (gmp.sleep(0.01), a.send(b"x")))
        assert pd.recv(1) == b"x"           # parked once: registered here
        # The parent's own connection, busy across the fork.
        c, d = socket.socketpair()
        c.setblocking(False)
        d.setblocking(False)
        pc, pdd = _core.PollDesc(c.fileno()), _core.PollDesc(d.fileno())
        echoed = []

        def echo():
            for _ in range(20):
                echoed.append(pdd.recv(1))
        e = gmp.go(echo)
        pid = os.fork()
        if pid == 0:
            # The child has a copy of the echo G and of d: only the parent's
            # reads d (two readers of one socket would split its bytes).
            e.kill()
            child_receives(pd, 20)
        for _ in range(20):
            a.send(b"m")
            pc.send(b"p")
            gmp.sleep(0.002)
        out["child"] = wait_child(pid)
        e.join(timeout=10)
        out["parent"] = len(echoed)
        for pdx in (pd, pc, pdd):
            pdx.close()
        for s in (a, b, c, d):
            s.close()

    def main():
        if on_p == 0:
            forker()
        else:
            _core.go_on(1, forker).join()
    gmp.run(main, procs=2)
    assert out == {"child": 20, "parent": 20}


def _mp_target(conn):
    # Runs in the forked child, inside the forking G's runtime.
    ch = gmp.Chan()
    gmp.go(lambda: [ch.send(i) for i in range(5)])
    total = sum(ch.recv() for _ in range(5))
    conn.send((total, gmp.blocking(int, "9")))
    conn.close()


def test_multiprocessing_fork_from_a_g():
    ctx = multiprocessing.get_context("fork")

    def main():
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_mp_target, args=(w,))
        p.start()
        w.close()
        res = gmp.blocking(r.recv)
        gmp.blocking(p.join, 10)
        return res, p.exitcode
    assert gmp.run(main, procs=2) == ((10, 9), 0)


def test_child_of_a_running_runtime_continues_on_m0():
    """Forked by main on M0, the child's gmp.run returns main's value."""
    r, w = os.pipe()
    pid_box = []

    def main():
        g = gmp.go(gmp.sleep, 0.01)
        pid = os.fork()
        pid_box.append(pid)
        assert g.join(timeout=5)
        return gmp.blocking(int, "3") + len(_core.stats()["ps"])
    try:
        v = gmp.run(main, procs=2)
    except BaseException:
        if pid_box and pid_box[0] == 0:
            os._exit(3)             # never back into pytest in the child
        raise
    if pid_box[0] == 0:
        os.write(w, str(v).encode())
        os._exit(0)
    os.close(w)
    assert os.waitstatus_to_exitcode(os.waitpid(pid_box[0], 0)[1]) == 0
    assert os.read(r, 100) == b"4"       # 3 + one P in the child
    os.close(r)
    assert v == 5                        # 3 + both Ps in the parent


def test_gunicorn_style_workers_call_run_after_fork():
    """The arbiter imported gmp (and even ran it, using the blocking pool)
    before forking; each worker calls gmp.run afresh."""
    src = textwrap.dedent("""
        import os, socket, gmp
        from gmp._ext import _core
        assert gmp.run(lambda: gmp.blocking(int, "1"), procs=2) == 1
        def worker():
            a, b = socket.socketpair(); a.setblocking(False); b.setblocking(False)
            pd = _core.PollDesc(b.fileno())
            gmp.go(lambda: (gmp.sleep(0.01), a.send(b"hello")))
            data = pd.recv(5)
            pd.close()
            return len(data) + gmp.blocking(int, "2")
        pids = []
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                os._exit(gmp.run(worker, procs=2))
            pids.append(pid)
        print("codes", sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids))
    """)
    p = subprocess.run([sys.executable, "-c", src], cwd="/", env=dict(os.environ, PYTHONPATH=ROOT),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                       check=False)
    assert p.returncode == 0 and "codes [7, 7, 7]" in p.stdout, p.stdout


def test_fork_from_a_plain_thread_leaves_no_runtime_in_the_child():
    import threading
    res = {}

    def thread():
        pid = os.fork()
        if pid == 0:
            try:
                ok = not gmp.running() and gmp.run(lambda: gmp.blocking(int, "5"), procs=1) == 5
            finally:
                os._exit(0 if ok else 1)
        res["code"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def main():
        t = threading.Thread(target=thread)
        t.start()
        gmp.blocking(t.join)
    gmp.run(main, procs=2)
    assert res == {"code": 0}
