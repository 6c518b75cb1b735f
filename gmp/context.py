"""Go's context package for Gs: cancellation, deadlines and request values.

A Context forms a tree.  Cancelling a Context (its cancel function, its
deadline, or its parent's cancellation) closes its ``done()`` channel, sets
``err()`` and cancels every child; it never affects the parent.  Gs observe
it by receiving from ``ctx.done()`` (usually in a ``gmp.select``) or polling
``ctx.err()``.

Deadlines are on the ``time.monotonic()`` clock, not wall time: a deadline
must not move when the system clock is set.  The deadline timer is a gmp
timer on the P of the G that created the Context, so creating one with a
deadline needs a running runtime; ``background()`` and ``with_cancel`` do not.

``done()`` is receive-only, as Go's ``<-chan struct{}``: sending on it or
closing it by hand raises TypeError (cancel the context instead), so a
context's channel and its ``err()`` always agree.  A deadline is validated
(and its timer armed) before the new context is linked to its parent, so a
bad one leaves nothing behind.
"""
import math
import time

from gmp._ext._core import Chan, TimeoutError, call_later

__all__ = ["Context", "Canceled", "DeadlineExceeded", "background",
           "with_cancel", "with_deadline", "with_timeout", "with_value"]


class Canceled(Exception):
    """context.Canceled: the context was cancelled."""


class DeadlineExceeded(TimeoutError):
    """context.DeadlineExceeded: the context's deadline passed."""


class Context:
    __slots__ = ("_parent", "_done", "_err", "_children", "_deadline",
                 "_key", "_val", "_timer")

    def __init__(self, parent=None, deadline=None):
        self._parent = parent
        self._done = Chan(0)
        self._done._receive_only()
        self._err = None
        self._children = set()
        self._deadline = deadline
        self._key = self._val = _NOKEY
        self._timer = None

    def done(self):
        """A channel that is closed when this context is cancelled."""
        return self._done

    def err(self):
        """None while active, else Canceled or DeadlineExceeded."""
        return self._err

    def deadline(self):
        """The monotonic deadline in force (own or inherited), or None."""
        c = self
        while c is not None:
            if c._deadline is not None:
                return c._deadline
            c = c._parent
        return None

    def value(self, key):
        c = self
        while c is not None:
            if c._key is not _NOKEY and c._key == key:
                return c._val
            c = c._parent
        return None

    def _cancel(self, err):
        if self._err is not None:
            return
        self._err = err
        self._done._close_receive_only()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        children, self._children = self._children, set()
        for child in children:
            child._cancel(err)
        if self._parent is not None:
            self._parent._children.discard(self)

    def __repr__(self):
        state = "active" if self._err is None else type(self._err).__name__
        return f"<gmp.Context {state}>"


class _NoKey:
    __slots__ = ()


_NOKEY = _NoKey()
_BACKGROUND = Context()


def background():
    """The root context: never cancelled, no deadline, no values."""
    return _BACKGROUND


def _child(parent, deadline=None):
    ctx = _new(parent, deadline)
    _link(parent, ctx)
    return ctx


def _new(parent, deadline):
    if not isinstance(parent, Context):
        raise TypeError(f"parent must be a gmp.Context, not {type(parent).__name__}")
    return Context(parent, deadline)


def _link(parent, ctx):
    if parent._err is not None:
        ctx._cancel(parent._err)
    elif parent is not _BACKGROUND:
        parent._children.add(ctx)
    return ctx


def with_cancel(parent):
    """(ctx, cancel): cancel() cancels ctx and its children with Canceled."""
    ctx = _child(parent)
    return ctx, lambda: ctx._cancel(Canceled("context canceled"))


def with_deadline(parent, when):
    """(ctx, cancel) cancelled with DeadlineExceeded at monotonic time `when`
    (or earlier, if the parent's deadline is earlier)."""
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"deadline must be a time.monotonic() value, not {type(when).__name__}")
    inherited = parent.deadline() if isinstance(parent, Context) else None
    if inherited is not None and inherited <= when:
        return with_cancel(parent)
    if math.isnan(when):
        raise ValueError("deadline must not be NaN")
    ctx = _new(parent, when)
    delay = when - time.monotonic()
    if delay > 0 and parent._err is None:
        ctx._timer = call_later(
            delay, lambda: ctx._cancel(DeadlineExceeded("context deadline exceeded")))
    _link(parent, ctx)
    if ctx._err is None and delay <= 0:
        ctx._cancel(DeadlineExceeded("context deadline exceeded"))
    return ctx, lambda: ctx._cancel(Canceled("context canceled"))


def with_timeout(parent, seconds):
    """with_deadline(parent, time.monotonic() + seconds)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(seconds).__name__}")
    if seconds < 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {seconds!r}")
    return with_deadline(parent, time.monotonic() + seconds)


def with_value(parent, key, value):
    """A child context carrying key -> value (looked up through ancestors)."""
    ctx = _child(parent)
    ctx._key = key
    ctx._val = value
    return ctx
