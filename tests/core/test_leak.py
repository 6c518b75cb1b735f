"""Nothing outlives its G, or the runtime: memory, greenlets, threads."""
import gc

import greenlet
import psutil
import pytest

import gmp

MiB = 1 << 20


def _live_greenlets(excluding=frozenset()):
    """Greenlets that are not dead, main greenlets (parent None) and those
    whose id is in ``excluding`` left out."""
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, greenlet.greenlet)
        and not o.dead
        and o.parent is not None
        and id(o) not in excluding
    ]


def _noop():
    pass


def _spawn_and_finish(n_batches, batch):
    go = gmp.go
    for _ in range(n_batches):
        gs = [go(_noop) for _ in range(batch)]
        for g in gs:
            g.join()


@pytest.mark.hang_timeout(300)
def test_a_million_gs_leave_no_memory_or_greenlets_behind():
    proc = psutil.Process()
    before = {id(o) for o in _live_greenlets()}

    def main():
        _spawn_and_finish(20, 1000)  # warm-up: freelists, pools, arenas
        gc.collect()
        base = proc.memory_info().rss
        _spawn_and_finish(1000, 1000)
        gc.collect()
        # this G and one scheduler greenlet per M may be alive, not 1 M Gs
        return proc.memory_info().rss - base, len(_live_greenlets(before))

    grown, live_inside = gmp.run(main, procs=1)
    assert grown < 50 * MiB, f"RSS grew by {grown / MiB:.1f} MiB over 1,000,000 Gs"
    assert live_inside < 16, f"{live_inside} greenlets alive after every G finished"
    gc.collect()
    left = _live_greenlets(before)
    assert not left, f"{len(left)} greenlets outlived gmp.run"


def _return():
    pass


def _raise():
    raise KeyError("main fails")


def _deadlock():
    gmp.Chan().recv()


def _g_fails():
    gmp.go(_raise)
    gmp.Chan().recv()


ENDINGS = {
    "main-returns": (_return, {}, None),
    "main-raises": (_raise, {}, KeyError),
    "deadlock": (_deadlock, {}, gmp.Deadlock),
    "abort-on-error": (_g_fails, {"abort_on_error": True}, KeyError),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_no_greenlet_outlives_run_with_gs_parked_at_exit(procs, ending):
    end, options, raises = ENDINGS[ending]
    before = {id(o) for o in _live_greenlets()}

    def main():
        ready, gate = gmp.Chan(), gmp.Chan()
        for _ in range(50):
            gmp.go(lambda: (ready.send(None), gate.recv()))
        for _ in range(50):
            ready.recv()
        for _ in range(50):
            gmp.go(_noop)  # some never start
        end()

    if raises is None:
        gmp.run(main, procs=procs, **options)
    else:
        with pytest.raises(raises):
            gmp.run(main, procs=procs, **options)
    gc.collect()
    left = _live_greenlets(before)
    assert not left, f"{len(left)} greenlets outlived gmp.run"


def test_repeated_runs_do_not_accumulate_threads():
    proc = psutil.Process()
    gmp.run(lambda: gmp.sleep(0), procs=4)
    baseline = proc.num_threads()
    for _ in range(20):
        gmp.run(lambda: [g.join() for g in [gmp.go(gmp.sleep, 0.001) for _ in range(8)]], procs=4)
    assert proc.num_threads() <= baseline + 4
