"""asyncio inside Gs: the running loop is per G, so ten Gs may each be
inside asyncio.run at once (on one M or several), as ten threads may."""
import pytest
from gmprun import gmp_run


@pytest.mark.parametrize("procs", [1, 2, 4])
def test_ten_gs_each_in_asyncio_run_at_once(tmp_path, procs):
    p = gmp_run(tmp_path, """
        import asyncio, threading, time
        inside = threading.Barrier(10)
        def g_body(i, out):
            async def main():
                loop = asyncio.get_running_loop()
                assert asyncio.get_event_loop() is loop
                fut = asyncio.Future()          # C Future, no loop given
                assert fut.get_loop() is loop
                loop.call_later(0.05, fut.set_result, i)
                await asyncio.to_thread(inside.wait)   # all ten loops run now
                got = await asyncio.gather(fut, asyncio.sleep(0.05, result=i))
                assert asyncio.current_task().get_loop() is loop
                return got, loop
            out[i] = asyncio.run(main())
        out = {}
        t0 = time.monotonic()
        ts = [threading.Thread(target=g_body, args=(i, out)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(out) == list(range(10)), out
        assert all(out[i][0] == [i, i] for i in range(10)), out
        assert len({id(out[i][1]) for i in range(10)}) == 10
        print("ok", time.monotonic() - t0 < 5)
    """, procs=procs)
    assert p.stderr == ""
    assert p.stdout.split() == ["ok", "True"]
