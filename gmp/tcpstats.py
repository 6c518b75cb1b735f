"""TCP_INFO and the connection lifecycle counters of gmp.net.

``tcp_info(sock_or_fd)`` reads ``getsockopt(IPPROTO_TCP, TCP_INFO)`` into a
``TCPInfo`` named tuple: the state by name, rtt/rttvar/rto in microseconds,
cwnd, retransmits, and the byte and segment totals of newer kernels (None
where the kernel's struct is shorter).  On a LISTEN socket the kernel
reuses two fields: ``unacked`` is the accept queue's length and ``sacked``
the effective backlog (the requested one clipped by ``somaxconn``), which is
how a Listener reports its queue without /proc.

Lifecycle counters
    Every gmp.net Listener has a ``ListenerStats`` (``listener.stats``); the
    connections it accepts, and those made by ``gmp.net.dial`` (the default
    dialer, ``gmp.tcpstats.dialer``, as Go's zero net.Dialer), count into a
    ``ConnCounters``: open, closed, closed_by_peer, reset, timed_out,
    half_closed, next to the listener's ``accepted`` and the dialer's
    ``connected``.  ``snapshot()`` returns them as a dict;
    ``snapshots()`` lists every live listener's and the dialer's, which
    ``gmp.dump()`` prints and ``gmp.doctor.check()`` compares with the host.
    ``open`` counts connections not (yet) closed through gmp;
    one that only rises is a leak.  A listener asked for ``fast_open``
    also reports whether the kernel allows it (``fast_open_allowed``).

Decisions
    * Nothing is counted on the I/O path.  recv/send are C methods bound on
      the Conn, and a Python wrapper around them would cost more than the
      counters are worth.  Instead close() asks the kernel how the
      connection ended, with one TCP_INFO read per connection: CLOSE_WAIT or
      LAST_ACK means the peer's FIN came first (closed_by_peer); CLOSE
      without a FIN of ours means the connection was aborted, by a reset or,
      when SO_ERROR says ETIMEDOUT or the kernel was still retransmitting or
      probing, a retransmission/keep-alive timeout (timed_out).  Counting at
      close() also catches the peers that went away while nobody was
      reading, which an exception counter would miss.
    * An i/o deadline (gmp.TimeoutError) is the application's decision, not
      the connection's fate, so it is not a lifecycle event; timed_out is the
      kernel giving up on the peer.
    * half_closed counts shutdown(SHUT_WR/SHUT_RDWR) by the application; a
      Conn that half-closed carries ``ConnCounters.after_fin``, which knows
      that a CLOSE at close() is the end of an orderly exchange, not an
      abort.
    * Connect times go into fixed log2 buckets of microseconds and failures
      are keyed by errno name ("timeout" for a dial timeout), so recording
      allocates nothing but the first failure of each kind.
    * The counters are plain ints bumped with the GIL held (``+=`` on an
      attribute is not interrupted by a thread switch in CPython 3.11-3.13);
      a free-threaded build needs atomic counters here.
    * ``listen()`` warns once per process when the requested backlog is
      larger than the one the kernel applied (somaxconn clips it): that is a
      configuration problem, not a per-listener event, so one warning is
      enough and a process with many listeners is not flooded.
"""
import collections
import errno
import os
import socket
import struct
import time
import warnings
import weakref

__all__ = [
    "ConnCounters",
    "DialerStats",
    "ListenerStats",
    "TCPInfo",
    "dialer",
    "format_snapshots",
    "snapshots",
    "tcp_info",
]

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING", 12: "NEW_SYN_RECV"}
_CLOSE, _CLOSE_WAIT, _LAST_ACK = 7, 8, 9

# struct tcp_info (linux/tcp.h): 8 one-byte fields, then u32s from rto to
# total_retrans (104 bytes, every kernel since 2.6), then fields added later.
_BASE = struct.Struct("=8B24I")
_LATER = (  # (offset, format, name) of the later fields gmp reports
    (120, "Q", "bytes_acked"), (128, "Q", "bytes_received"),
    (136, "I", "segs_out"), (140, "I", "segs_in"), (148, "I", "min_rtt_us"),
    (160, "Q", "delivery_rate"), (200, "Q", "bytes_sent"), (208, "Q", "bytes_retrans"),
)
_INFO_LEN = 232

TCPInfo = collections.namedtuple("TCPInfo", [
    "state", "ca_state", "retransmits", "probes", "backoff", "rto_us", "snd_mss", "rcv_mss",
    "unacked", "sacked", "lost", "retrans", "pmtu", "rtt_us", "rttvar_us", "snd_ssthresh",
    "snd_cwnd", "rcv_space", "total_retrans"] + [name for _, _, name in _LATER])


def _sock(sock_or_fd):
    if isinstance(sock_or_fd, int):
        return socket.socket(fileno=sock_or_fd), True
    return getattr(sock_or_fd, "socket", sock_or_fd), False


def tcp_info(sock_or_fd):
    """TCPInfo of a TCP socket: a socket.socket, a gmp.net Conn/Listener, or
    an fd (not closed or taken over).  OSError for a non-TCP socket."""
    sock, borrowed = _sock(sock_or_fd)
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _INFO_LEN)
    finally:
        if borrowed:
            sock.detach()
    return _parse(raw)


def _parse(raw):
    if len(raw) < _BASE.size:
        raise OSError(errno.EINVAL, f"TCP_INFO returned {len(raw)} bytes, expected at least {_BASE.size}")
    b = _BASE.unpack_from(raw)
    later = [struct.unpack_from("=" + fmt, raw, off)[0] if off + struct.calcsize(fmt) <= len(raw) else None
             for off, fmt, _ in _LATER]
    # b[8:] = rto ato snd_mss rcv_mss unacked sacked lost retrans fackets
    #   last_data_sent last_ack_sent last_data_recv last_ack_recv pmtu
    #   rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss reordering
    #   rcv_rtt rcv_space total_retrans
    u = b[8:]
    return TCPInfo(TCP_STATES.get(b[0], str(b[0])), b[1], b[2], b[3], b[4], u[0], u[2], u[3],
                   u[4], u[5], u[6], u[7], u[13], u[15], u[16], u[17], u[18], u[22], u[23], *later)


_HIST_BUCKETS = 25          # bucket i: connect took < 2**i us (the last: longer)


class ConnCounters:
    """How the connections of one listener or dialer ended."""

    __slots__ = (
        "after_fin",
        "closed",
        "closed_by_peer",
        "half_closed",
        "opened",
        "reset",
        "tcp",
        "timed_out",
    )

    def __init__(self, tcp):
        self.opened = self.closed = self.closed_by_peer = 0
        self.reset = self.timed_out = self.half_closed = 0
        self.tcp = tcp
        # The state a Conn moves to after shutdown(SHUT_WR): same counters.
        self.after_fin = _AfterFin(self)

    def on_shutdown(self, how):
        """Called by Conn.shutdown; returns the Conn's new lifecycle state."""
        if how == socket.SHUT_RD:
            return self
        self.half_closed += 1
        return self.after_fin

    def on_close(self, sock):
        self._count_close(sock, False)

    def _count_close(self, sock, fin_sent):
        self.closed += 1
        if not self.tcp:
            return
        # Never raises: close() must go on to release the fd whatever we learn.
        try:
            raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 4)   # state .. probes
            # CLOSE is rare, so its extra syscall is fine.
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if raw[0] == _CLOSE else 0
        except OSError:
            return
        state = raw[0]
        if state in (_CLOSE_WAIT, _LAST_ACK):
            self.closed_by_peer += 1
        elif state == _CLOSE:
            if err == errno.ETIMEDOUT or (err == 0 and (raw[2] or raw[3])):
                self.timed_out += 1
            elif err or not fin_sent:
                self.reset += 1
            else:
                self.closed_by_peer += 1

    def snapshot(self):
        return {"open": self.opened - self.closed, "closed": self.closed,
                "closed_by_peer": self.closed_by_peer, "reset": self.reset,
                "timed_out": self.timed_out, "half_closed": self.half_closed}


class _AfterFin:
    """A Conn's lifecycle state once it sent its FIN: counts into its parent."""

    __slots__ = ("parent",)

    def __init__(self, parent):
        self.parent = parent

    def on_shutdown(self, how):
        return self

    def on_close(self, sock):
        self.parent._count_close(sock, True)


class _Untracked:
    """The lifecycle state of sockets nobody counts (UDP, hand-made Conns)."""

    __slots__ = ()

    def on_shutdown(self, how):
        return self

    def on_close(self, sock):
        pass


UNTRACKED = _Untracked()
_listeners = weakref.WeakValueDictionary()    # id -> ListenerStats of a live Listener
_backlog_warned = False


class ListenerStats:
    """A Listener's counters; ``conns`` counts the connections it accepted.
    backlog is the one requested of listen() (None: the default)."""

    __slots__ = ("__weakref__", "_sock", "addr", "backlog", "conns", "family", "fast_open",
                 "fast_open_allowed")

    def __init__(self, sock, backlog, fast_open=None):
        tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self.addr = sock.getsockname()
        self.family = sock.family
        self.backlog = backlog
        self.fast_open = fast_open
        # The kernel accepts TCP_FASTOPEN on the socket either way; only the
        # sysctl's server bit (2) makes it answer SYNs carrying data.
        self.fast_open_allowed = bool(fast_open) and bool(_fastopen_sysctl() & 2)
        self.conns = ConnCounters(tcp)
        self._sock = weakref.ref(sock)
        _listeners[id(self)] = self
        if tcp and backlog is not None:
            _warn_clipped(backlog, tcp_info(sock).sacked)

    def accept(self):
        """Counts an accepted connection; returns its lifecycle state."""
        self.conns.opened += 1
        return self.conns

    def on_close(self, sock):
        if sock is self._sock():        # not one of serve()'s per-M dups
            _listeners.pop(id(self), None)

    def snapshot(self):
        """The counters, plus the accept queue as the kernel sees it now
        (TCP listeners): its length, the effective backlog, whether it is
        full (the kernel drops SYNs once length > backlog)."""
        out = {"kind": "listener", "addr": _fmt_addr(self.addr), "backlog": self.backlog,
               "fast_open": self.fast_open, "accepted": self.conns.opened, **self.conns.snapshot()}
        if self.fast_open:
            out["fast_open_allowed"] = self.fast_open_allowed
        sock = self._sock()
        if self.conns.tcp and sock is not None and sock.fileno() >= 0:
            info = tcp_info(sock)
            out.update(accept_queue=info.unacked, effective_backlog=info.sacked,
                       queue_full=info.unacked > info.sacked)
        return out


class DialerStats:
    """Connect attempts of a dialer: successes with a log2 histogram of the
    time to connect, failures by errno name; ``conns`` counts how the
    connections it made ended."""

    __slots__ = ("conns", "failures", "hist", "total_us")

    def __init__(self):
        self.conns = ConnCounters(True)
        self.failures = {}
        self.hist = [0] * _HIST_BUCKETS
        self.total_us = 0

    def connect(self, fn, sock, *args):
        """Runs fn(sock, *args) (the connect), timing and counting it;
        returns the new connection's lifecycle state."""
        t0 = time.monotonic_ns()
        try:
            fn(sock, *args)
        except OSError as e:
            key = errno.errorcode.get(e.errno) or ("timeout" if isinstance(e, TimeoutError)
                                                   else type(e).__name__)
            self.failures[key] = self.failures.get(key, 0) + 1
            raise
        us = (time.monotonic_ns() - t0) // 1000
        self.hist[min(us.bit_length(), _HIST_BUCKETS - 1)] += 1
        self.total_us += us
        if sock.family == socket.AF_UNIX:
            return UNTRACKED
        self.conns.opened += 1
        return self.conns

    def snapshot(self):
        n = sum(self.hist)
        hist = {(f"<{1 << i}us" if i < _HIST_BUCKETS - 1 else f">={1 << (i - 1)}us"): c
                for i, c in enumerate(self.hist) if c}
        return {"kind": "dialer", "connected": n, "failures": dict(self.failures),
                "connect_mean_us": self.total_us // n if n else None, "connect_hist": hist,
                **self.conns.snapshot()}


dialer = DialerStats()


def _warn_clipped(requested, effective):
    global _backlog_warned
    if requested > effective and not _backlog_warned:
        _backlog_warned = True
        warnings.warn(f"gmp.net.listen: backlog {requested} clipped to {effective} by "
                      f"net.core.somaxconn: bursts of new connections beyond it are dropped and "
                      f"retried by clients after 1 s (sysctl -w net.core.somaxconn={requested})",
                      RuntimeWarning, stacklevel=4)


def _fastopen_sysctl():
    from gmp import settings
    try:
        with open(os.path.join(settings.get("GMP_PROC_ROOT"), "proc/sys/net/ipv4/tcp_fastopen")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _fmt_addr(addr):
    if isinstance(addr, tuple):
        host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
        return f"{host}:{addr[1]}"
    return addr.decode("utf-8", "replace") if isinstance(addr, bytes) else addr


def snapshots():
    """Snapshots of every live gmp.net listener, then of the dialer."""
    return [s.snapshot() for s in list(_listeners.values())] + [dialer.snapshot()]


def format_snapshots():
    """Lines for gmp.dump(): one per listener, one for the dialer once it
    has been used."""
    lines = []
    for s in snapshots():
        if s["kind"] == "dialer" and not (s["connected"] or s["failures"]):
            continue
        head = f"listener {s['addr']}" if s["kind"] == "listener" else "dialer"
        body = " ".join(f"{k}={v}" for k, v in s.items() if k not in ("kind", "addr") and v not in (None, {}))
        lines.append(f"{head}: {body}")
    return lines
