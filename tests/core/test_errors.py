"""Deadlock detection, errors in Gs, and bad input at the API boundary."""
import time

import pytest

import gmp

# --- deadlock ------------------------------------------------------------------


def test_main_blocked_on_a_channel_nobody_sends_to_is_a_deadlock(grun):
    def main():
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock) as info:
        grun(main)
    assert "chan receive" in str(info.value)


def test_deadlock_message_lists_parked_gs_and_wait_reasons(grun):
    ids = {}

    def main():
        ready = gmp.Chan()
        blocked_send = gmp.Chan()
        g_send = gmp.go(lambda: (ready.send(None), blocked_send.send("never taken")))
        g_select = gmp.go(lambda: (ready.send(None), gmp.select(gmp.Recv(gmp.Chan()), gmp.Recv(gmp.Chan()))))
        ids.update(main=gmp.current().id, send=g_send.id, select=g_select.id)
        ready.recv()
        ready.recv()
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock) as info:
        grun(main)
    message = str(info.value)
    for reason in ("chan receive", "chan send", "select"):
        assert reason in message, message
    for g_id in ids.values():
        assert str(g_id) in message, message


def test_no_deadlock_while_a_foreign_os_thread_may_still_wake_main(grun):
    # An OS thread gmp did not start (here: _thread, which gmp does not
    # patch; in real programs C libraries' threads) may set the Event the
    # main G waits on once every G is asleep: that is not a deadlock.
    import _thread

    go_on = _thread.allocate_lock()
    go_on.acquire()

    def main():
        ev = gmp.Event()

        def foreign():
            go_on.acquire()             # runs only once main has parked
            ev.set()                    # wakes the G from a plain thread

        _thread.start_new_thread(foreign, ())
        gmp.go(lambda: (gmp.sleep(0.01), go_on.release()))
        assert ev.wait(timeout=None)
        return "woken"

    assert grun(main) == "woken"


def test_gmp_helper_threads_do_not_hide_a_deadlock(grun):
    # gmp.blocking's helper threads stay alive after their call; they are
    # gmp's own and must not stop deadlock detection.
    def main():
        gmp.blocking(time.sleep, 0)
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock):
        grun(main)


def test_no_deadlock_while_a_timer_is_pending(grun):
    def main():
        ch = gmp.Chan()
        gmp.go(lambda: (gmp.sleep(0.05), ch.send("woke")))
        return ch.recv()

    assert grun(main) == "woke"


def test_no_deadlock_while_the_blocked_g_has_a_timeout(grun):
    def main():
        with pytest.raises(gmp.TimeoutError):
            gmp.Chan().recv(timeout=0.03)
        with pytest.raises(gmp.TimeoutError), gmp.Timeout(0.03):
            gmp.Chan().recv()
        ctx = gmp.with_timeout(gmp.background(), 0.03)
        ctx = ctx[0] if isinstance(ctx, tuple) else ctx
        with pytest.raises(gmp.ChanClosed):
            ctx.done().recv()
        return "timed out, not deadlocked"

    assert grun(main) == "timed out, not deadlocked"


def test_no_deadlock_while_a_g_is_in_a_blocking_call(grun):
    """A G blocked in a plain blocking call (time.sleep holds its M, not a
    gmp park) is running: main waiting for it is not a deadlock."""

    def main():
        ch = gmp.Chan()
        gmp.go(lambda: (time.sleep(0.05), ch.send("after the blocking call")))
        return ch.recv()

    assert grun(main) == "after the blocking call"


def test_deadlock_is_found_once_the_last_timer_has_fired(grun):
    def main():
        def short_lived():
            with pytest.raises(gmp.TimeoutError), gmp.Timeout(0.02):
                gmp.Chan().recv()

        gmp.go(short_lived)
        gmp.Chan().recv()

    with pytest.raises(gmp.Deadlock):
        grun(main)


def test_deadlock_on_a_mutex_and_a_waitgroup(grun):
    def on_mutex():
        mu = gmp.Mutex()
        mu.lock()
        gmp.go(mu.lock)
        mu.lock()

    def on_waitgroup():
        wg = gmp.WaitGroup()
        wg.add(1)
        wg.wait()

    for main in (on_mutex, on_waitgroup):
        with pytest.raises(gmp.Deadlock):
            grun(main)


def test_runtime_works_after_a_deadlock(grun):
    with pytest.raises(gmp.Deadlock):
        grun(lambda: gmp.Chan().recv())
    assert grun(lambda: gmp.go(lambda: 7).result()) == 7


# --- errors in Gs ----------------------------------------------------------------


def _failing(token):
    raise ValueError(token)


def test_unhandled_error_is_reported_once_and_kept(grun, capfd):
    token = "token-" + "3f9c1b"  # assembled so the source line does not contain it

    def main():
        g = gmp.go(_failing, token)
        assert g.join() is True
        survivor = gmp.go(lambda: "runtime goes on")
        return g, survivor.result()

    g, survivor = grun(main)
    assert survivor == "runtime goes on"
    assert isinstance(g.exception, ValueError)
    with pytest.raises(ValueError, match=token):
        g.result()
    err = capfd.readouterr().err
    assert err.count(token) == 1, err
    assert "ValueError" in err
    assert str(g.id) in err and g.name in err, err


def test_errors_in_many_gs_are_each_reported_once(grun, capfd):
    tokens = [f"tok{i:03d}-" + "e7" for i in range(10)]

    def main():
        gs = [gmp.go(_failing, t) for t in tokens]
        for g in gs:
            g.join()
        return "main unaffected"

    assert grun(main) == "main unaffected"
    err = capfd.readouterr().err
    assert [err.count(t) for t in tokens] == [1] * len(tokens), err


def test_abort_on_error_makes_run_raise_the_g_error(procs):
    def main():
        g = gmp.go(_failing, "abort me")
        g.join()
        return "main finished"

    with pytest.raises(ValueError, match="abort me"):
        gmp.run(main, procs=procs, abort_on_error=True)


def test_abort_on_error_while_main_is_blocked(procs):
    def main():
        gmp.go(_failing, "abort while blocked")
        gmp.Chan().recv()

    with pytest.raises(ValueError, match="abort while blocked"):
        gmp.run(main, procs=procs, abort_on_error=True)


def test_abort_on_error_ignores_kills(procs):
    def main():
        gate, ready = gmp.Chan(), gmp.Chan()
        killed = gmp.go(gate.recv)
        killed.kill()
        killed.join()
        gmp.go(lambda: (ready.send(None), gate.recv()))  # killed when main returns
        ready.recv()
        return "main finished"

    assert gmp.run(main, procs=procs, abort_on_error=True) == "main finished"


# --- bad input -----------------------------------------------------------------


def test_negative_capacity_is_a_value_error_naming_capacity():
    with pytest.raises(ValueError, match="capacity"):
        gmp.Chan(-1)


def test_bad_arguments_inside_a_runtime(grun):
    def main():
        with pytest.raises(TypeError):
            gmp.go(42)
        with pytest.raises(ValueError):
            gmp.sleep(-1)
        with pytest.raises(TypeError):
            gmp.sleep("x")
        return "checked"

    assert grun(main) == "checked"


def _blocked_wg():
    wg = gmp.WaitGroup()
    wg.add(1)
    return wg


BLOCKING_OUTSIDE = {
    "recv": lambda: gmp.Chan().recv(),
    "send": lambda: gmp.Chan().send(1),
    "recv-timeout": lambda: gmp.Chan().recv(timeout=0.01),
    "sleep": lambda: gmp.sleep(0.01),
    "select": lambda: gmp.select(gmp.Recv(gmp.Chan())),
    "event": lambda: gmp.Event().wait(),
    "waitgroup": lambda: _blocked_wg().wait(),
}


@pytest.mark.parametrize("call", BLOCKING_OUTSIDE.values(), ids=BLOCKING_OUTSIDE.keys())
def test_blocking_call_outside_a_runtime_raises_no_runtime(call):
    with pytest.raises(gmp.NoRuntime):
        call()


def test_no_runtime_again_after_run_returns():
    gmp.run(lambda: gmp.sleep(0), procs=1)
    with pytest.raises(gmp.NoRuntime):
        gmp.sleep(0.01)
    assert gmp.current() is None


def test_non_blocking_channel_ops_work_outside_a_runtime():
    ch = gmp.Chan(2)
    assert ch.try_send("a") is True
    assert len(ch) == 1
    assert ch.try_recv() == ("a", True)
    ch.close()
    assert ch.closed

