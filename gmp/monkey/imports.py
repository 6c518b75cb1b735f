"""gmp.monkey.imports: run a patch when a third-party module is imported.

Drivers such as psycopg2 are patched through their own hooks (a wait
callback, a wait function), which exist only once they are imported; a
program may import them before or after patch_all().  ``when_imported``
applies the patch at once if the module is already loaded, else after the
module's own code has run, from a finder on ``sys.meta_path`` that defers
the search to the other finders and wraps only the loader it gets back.
The hook stays registered: a later import that builds a new module object
(``importlib.reload``, ``test.support.import_fresh_module``) is patched
too, since its objects are new and unpatched (gmp.monkey.queue needs this
for ``_queue``, whose C type is rebuilt by a fresh import).
Importing the drivers eagerly instead would load libpq (or grpc's C core)
into every patched program.
"""
import importlib.util
import sys

_hooks = {}
# Names being resolved by the finder itself (find_spec calls back into
# sys.meta_path).  One set suffices: importlib holds the module's import
# lock around find_spec.
_searching = set()


class _Loader:
    """Delegates to the real loader, then runs the hooks on the module."""

    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        for fn in _hooks.get(self._name, ()):
            fn(module)

    def __getattr__(self, name):     # get_source, is_package, ... for tools
        return getattr(self._loader, name)


class _Finder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in _hooks or name in _searching:
            return None
        _searching.add(name)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            _searching.discard(name)
        # A reload finds the module's own spec, whose loader is wrapped.
        if spec is None or spec.loader is None or isinstance(spec.loader, _Loader):
            return spec
        spec.loader = _Loader(spec.loader, name)
        return spec


_finder = _Finder()


def when_imported(name, fn):
    """Calls fn(module) now if `name` is imported, and right after each
    later import of it that runs the module's code."""
    module = sys.modules.get(name)
    if module is not None:
        fn(module)
    _hooks.setdefault(name, []).append(fn)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
