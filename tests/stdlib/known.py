"""Tests of CPython's suites that cannot pass under any monkey patching.

Keys are fnmatch patterns over test ids without the leading ``test.``
(``test_socket.GeneralModuleTests.test_x``); values say why.  Every entry is
a test that pokes interpreter internals, forks without exec and expects real
OS threads in the child, or counts OS threads; anything else that fails
under gmp is a bug to fix, not an entry to add.
"""
KNOWN = {
    # Interpreter internals of OS threads, which a G does not have.
    "test_threading.ThreadTests.test_PyThreadState_SetAsyncExc":
        "ctypes PyThreadState_SetAsyncExc on get_ident(): a G's ident is no thread state",
    "test_threading.ThreadTests.test_tstate_lock":
        "Thread._tstate_lock, the C thread state's lock; a G has none (and the test "
        "blocks its G in an unpatched _thread lock, holding the M)",
    "test_threading.ThreadTests.test_shutdown_locks":
        "threading._shutdown_locks holds C thread-state locks; Gs are joined by gmp run",
    "test_threading.ThreadTests.test_limbo_cleanup":
        "replaces threading._start_new_thread, which a G-started Thread never calls",
    # fork() without exec: the child has one OS thread and no running Ms.
    "test_threading.ThreadTests.test_is_alive_after_fork":
        "fork() in a G: the child has no scheduler threads to run the Thread's G",
}
