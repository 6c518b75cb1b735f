"""Tests of CPython's suites that cannot pass under any monkey patching.

Keys are fnmatch patterns over test ids without the leading ``test.``
(``test_socket.GeneralModuleTests.test_x``); values say why.  Every entry is
a test that pokes interpreter internals, forks without exec and expects real
OS threads in the child, or counts OS threads; anything else that fails
under gmp is a bug to fix, not an entry to add.
"""
KNOWN = {
}
