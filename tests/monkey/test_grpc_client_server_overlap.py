"""grpcio under ``gmp run``: client and server in one process, calls
overlapping.  Handlers sleep 0.2 s; 200 concurrent unary calls take about
one sleep, not 200 x 0.2 s, and streaming calls and deadlines work."""
import pytest
from gmprun import gmp_run

BODY = """
    import threading, time
    from concurrent import futures
    import grpc

    def echo(req, ctx):
        time.sleep(0.2)
        return req.upper()
    def count(req, ctx):                       # unary -> stream
        for i in range(int(req)):
            time.sleep(0.05)
            yield str(i).encode()
    def join(reqs, ctx):                       # stream -> unary
        return b"+".join(reqs)
    def chat(reqs, ctx):                       # stream -> stream
        for r in reqs:
            yield r * 2
    handler = grpc.method_handlers_generic_handler("t.S", {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Join": grpc.stream_unary_rpc_method_handler(join),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=256))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    ch = grpc.insecure_channel(f"127.0.0.1:{port}")
    echo_c = ch.unary_unary("/t.S/Echo")
    assert echo_c(b"warm", timeout=10) == b"WARM"

    results = []
    def call(i):
        results.append(echo_c(b"x%d" % i, timeout=30))
    t0 = time.monotonic()
    ts = [threading.Thread(target=call, args=(i,)) for i in range(200)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    unary_s = time.monotonic() - t0
    assert sorted(results) == sorted(b"X%d" % i for i in range(200))

    streams = []
    def stream(n):
        streams.append(list(ch.unary_stream("/t.S/Count")(str(n).encode(), timeout=30)))
    t0 = time.monotonic()
    ts = [threading.Thread(target=stream, args=(5,)) for _ in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stream_s = time.monotonic() - t0
    assert streams == [[b"0", b"1", b"2", b"3", b"4"]] * 20

    joined, call_obj = ch.stream_unary("/t.S/Join").with_call(iter([b"a", b"b", b"c"]), timeout=10)
    assert joined == b"a+b+c" and call_obj.code() == grpc.StatusCode.OK
    assert list(ch.stream_stream("/t.S/Chat")(iter([b"x", b"y"]), timeout=10)) == [b"xx", b"yy"]
    try:
        echo_c(b"late", timeout=0.05)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code()
    else:
        raise AssertionError("deadline not enforced")
    ch.close()
    server.stop(None).wait()
    print(unary_s < 4.0, stream_s < 3.0, round(unary_s, 2), round(stream_s, 2))
"""


@pytest.mark.parametrize("procs", [1, 2])
def test_grpc_unary_and_streaming_calls_overlap(tmp_path, procs):
    pytest.importorskip("grpc")
    p = gmp_run(tmp_path, BODY, procs=procs, timeout=100)
    assert p.stdout.split()[:2] == ["True", "True"], (p.stdout, p.stderr[-2000:])
