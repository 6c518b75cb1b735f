"""gmp.monkey.grpc: grpcio's sync API, client and server, on Gs.

grpcio drives its C core from Python threads that sit in blocking C calls
(``completion_queue.poll``, ``channel.next_call_event``) with the GIL
released.  As Gs those calls would hold their M, so every G bound to it
stops: client calls run one at a time and an in-process server misses its
deadlines.  gmp therefore splits the work the way the C core expects:

* grpc's own threads (the server's ``_serve`` poller, the channel's spin
  and connectivity threads, request-iterator consumers, all started through
  ``threading.Thread`` in ``grpc._server``, ``grpc._channel`` and
  ``cygrpc.ForkManagedThread``) stay real OS threads: those modules see a
  ``threading`` whose ``Thread`` is gmp.monkey.threading.OSThread (a real
  thread that deadlock detection counts as a possible waker), everything
  else the patched module (so their Conditions park Gs and still block
  threads);
* handlers run where the user's executor runs them: a
  ``ThreadPoolExecutor``'s workers are Gs;
* a blocking unary-response call (``stub.Method(req)``, ``with_call``)
  takes grpc's future path: the spin thread completes the call and the
  calling G parks on the call's Condition, instead of waiting in
  ``call.next_event()`` on its M.  Streaming responses already wait that
  way.  Errors are the same ``grpc.RpcError``/``grpc.Call`` (the call
  object itself is raised, as ``future().result()`` does).

A request iterator of a streaming-request call is consumed on a grpc
thread, as without gmp: it is not a G.
"""
import threading
import types

from gmp.monkey.threading import OSThread


class _OSThreads(types.ModuleType):
    """``threading`` for grpc's modules: real Thread, the rest delegated."""

    Thread = OSThread

    def __getattr__(self, name):
        return getattr(threading, name)


OS_THREADS = _OSThreads("threading")


def use_os_threads(module):
    module.threading = OS_THREADS


def _call(self, *args, **kwargs):
    return self.future(*args, **kwargs).result()


def _with_call(self, *args, **kwargs):
    rendezvous = self.future(*args, **kwargs)
    return rendezvous.result(), rendezvous


def patch_channel(channel):
    use_os_threads(channel)
    for cls in (channel._UnaryUnaryMultiCallable, channel._StreamUnaryMultiCallable):
        cls.__call__ = _call
        cls.with_call = _with_call


# What gmp.monkey.patch_grpc hooks: the C core's and the server's thread
# starts (OS threads), and the channel's blocking waits.
IMPORT_HOOKS = (("grpc._cython.cygrpc", use_os_threads), ("grpc._server", use_os_threads),
                ("grpc._channel", patch_channel))
