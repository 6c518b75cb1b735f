"""The rules of gmp doctor: each turns what procfs read into Findings.

A rule is a function of the Context that returns a list of Findings, and is
registered with the roles it concerns (a client has no accept queue; a
server's outgoing ports are not its problem).  Every Finding carries a
stable id ("kernel.somaxconn"), the value seen, a severity, one sentence of
advice with its reason, and the command that would fix it, which gmp prints
and never runs.

Thresholds are the ones RPC operators use: somaxconn 4096 (the kernel's own
default since 5.4), keep-alive that notices a vanished peer before a load
balancer's typical 350 s idle timeout does, a retransmission share above
1 %, an fd table 70 % (warn) or 90 % (error) full.  Counters of /proc/net
count since boot, so without --interval a non-zero drop counter is only
history (info); with it, drops in the interval are happening now (error for
the accept queue, warn for the rest).
"""
import dataclasses

SEVERITIES = ("ok", "info", "warn", "error")

SOMAXCONN_MIN = 4096
KEEPALIVE_TIME_MAX = 300        # s before the first probe
KEEPALIVE_TOTAL_MAX = 600       # s until a dead peer is declared dead
FIN_TIMEOUT_MAX = 30
PORT_SPAN_MIN = 16384
NETDEV_BACKLOG_MIN = 1000
RETRANS_WARN = 0.01
FDS_WARN, FDS_ERROR = 0.70, 0.90
NOFILE_MIN = 4096
FD_GROWTH_WARN = 10
TIME_WAIT_WARN, TIME_WAIT_ERROR = 0.50, 0.90


@dataclasses.dataclass
class Finding:
    id: str
    area: str
    severity: str
    value: object
    advice: str
    fix: str = None
    subject: str = None

    def as_dict(self):
        return dataclasses.asdict(self)


def _unavailable(id_, what):
    return Finding(id_, id_.split(".")[0], "info", None, f"unavailable: {what} could not be read")


RULES = []      # (function, roles)


def rule(*roles):
    def register(fn):
        RULES.append((fn, roles))
        return fn
    return register


def setting(name, *roles):
    """Registers a rule on one integer sysctl (name: "net.core.somaxconn").
    The function judges the value: it returns (severity, advice, fix)."""
    id_ = "kernel." + name.rsplit(".", 1)[1]

    def register(judge):
        def run(ctx):
            v = ctx.proc.sysctl_int(name)
            if v is None:
                return [_unavailable(id_, "/proc/sys/" + name.replace(".", "/"))]
            sev, advice, fix = judge(ctx, v)
            return [Finding(id_, "kernel", sev, v, advice, fix)]
        RULES.append((run, roles))
        return judge
    return register


# --- kernel settings -------------------------------------------------------

@setting("net.core.somaxconn", "server")
def somaxconn(ctx, v):
    if v < SOMAXCONN_MIN:
        return ("warn", (f"somaxconn {v} clips every listen backlog above it (gmp.net.listen's "
                         f"default backlog is somaxconn): bursts of new connections beyond it are "
                         f"dropped and retried by clients after 1 s"),
                f"sysctl -w net.core.somaxconn={SOMAXCONN_MIN}")
    return "ok", f"listen backlogs up to {v} are honoured", None


@setting("net.ipv4.tcp_max_syn_backlog", "server")
def syn_backlog(ctx, v):
    want = ctx.proc.sysctl_int("net.core.somaxconn") or SOMAXCONN_MIN
    if v < want:
        return ("warn", (f"the SYN queue ({v}) is shorter than the accept backlog ({want}): under a "
                         f"connection burst half-open connections are dropped before they can be "
                         f"accepted, unless syncookies answer for them"),
                f"sysctl -w net.ipv4.tcp_max_syn_backlog={want}")
    return "ok", f"the SYN queue is at least as long as the accept backlog ({want})", None


@setting("net.ipv4.tcp_syncookies", "server")
def syncookies(ctx, v):
    if v == 0:
        return ("warn", ("syncookies are off: once the SYN queue is full (a flood or a burst of "
                         "clients) new connections are dropped instead of answered with a cookie"),
                "sysctl -w net.ipv4.tcp_syncookies=1")
    if v == 2:
        return ("info", ("syncookies are sent for every SYN, not only on overflow: TCP options "
                         "such as window scaling are squeezed into the cookie"),
                "sysctl -w net.ipv4.tcp_syncookies=1")
    return "ok", "syncookies answer only when the SYN queue overflows", None


@setting("net.ipv4.tcp_fastopen", "server", "client")
def fastopen(ctx, v):
    need = {"client": 1, "server": 2, "both": 3}[ctx.role]
    missing = need & ~v
    if missing:
        side = {1: "clients", 2: "servers", 3: "clients and servers"}[missing]
        return ("info", (f"TCP Fast Open is off for {side}: every new connection waits a full round "
                         f"trip before its first request byte (gmp.net.listen(fast_open=N) needs "
                         f"the server bit, 2)"),
                f"sysctl -w net.ipv4.tcp_fastopen={v | need}")
    return "ok", "TCP Fast Open is allowed for this role", None


@setting("net.ipv4.tcp_tw_reuse", "client")
def tw_reuse(ctx, v):
    if v == 0:
        return ("warn", ("outgoing connections cannot reuse ports held in TIME_WAIT: a client that "
                         "opens short-lived connections runs out of local ports (connect fails "
                         "with EADDRNOTAVAIL)"), "sysctl -w net.ipv4.tcp_tw_reuse=1")
    if v == 2:
        return ("info", ("TIME_WAIT ports are reused for loopback connections only: short-lived "
                         "connections to other hosts still hold each port for 60 s"),
                "sysctl -w net.ipv4.tcp_tw_reuse=1")
    return "ok", "outgoing connections may reuse TIME_WAIT ports", None


@setting("net.ipv4.tcp_fin_timeout", "server", "client")
def fin_timeout(ctx, v):
    if v > FIN_TIMEOUT_MAX:
        return ("info", (f"connections the application closed wait up to {v} s in FIN_WAIT2 for "
                         f"the peer's FIN, holding memory and a port; {FIN_TIMEOUT_MAX} s is enough"),
                f"sysctl -w net.ipv4.tcp_fin_timeout={FIN_TIMEOUT_MAX}")
    return "ok", "orphaned FIN_WAIT2 sockets are freed quickly", None


def port_span(ctx):
    """Number of local ports in ip_local_port_range, or None."""
    text = ctx.proc.sysctl("net.ipv4.ip_local_port_range")
    try:
        lo, hi = (int(x) for x in text.split())
    except (AttributeError, ValueError):
        return None
    return hi - lo + 1


@rule("client")
def port_range(ctx):
    span = port_span(ctx)
    if span is None:
        return [_unavailable("kernel.ip_local_port_range", "/proc/sys/net/ipv4/ip_local_port_range")]
    value = " ".join(ctx.proc.sysctl("net.ipv4.ip_local_port_range").split())
    if span < PORT_SPAN_MIN:
        return [Finding("kernel.ip_local_port_range", "kernel", "warn", value,
                        f"only {span} local ports: with 60 s of TIME_WAIT per closed connection a "
                        f"client opens at most {span // 60} new connections a second to one "
                        f"destination", "sysctl -w net.ipv4.ip_local_port_range='10000 65535'")]
    return [Finding("kernel.ip_local_port_range", "kernel", "ok", value, f"{span} local ports")]


@setting("net.ipv4.tcp_slow_start_after_idle", "server", "client")
def slow_start_after_idle(ctx, v):
    if v:
        return ("warn", ("a keep-alive connection idle for one retransmission timeout falls back "
                         "to the initial congestion window, so the first large response after a "
                         "pause takes extra round trips"), "sysctl -w net.ipv4.tcp_slow_start_after_idle=0")
    return "ok", "idle connections keep their congestion window", None


@rule("server", "client")
def keepalive(ctx):
    names = ("net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")
    vals = [ctx.proc.sysctl_int(n) for n in names]
    if None in vals:
        missing = names[vals.index(None)]
        return [_unavailable("kernel.tcp_keepalive", "/proc/sys/" + missing.replace(".", "/"))]
    t, intvl, probes = vals
    total = t + intvl * probes
    value = f"{t}/{intvl}/{probes}"
    if t > KEEPALIVE_TIME_MAX or total > KEEPALIVE_TOTAL_MAX:
        return [Finding("kernel.tcp_keepalive", "kernel", "warn", value,
                        f"a peer that vanished without FIN or RST (crashed host, flow dropped by a "
                        f"NAT or load balancer, typically after 350 s idle) is noticed only after "
                        f"{total} s on keep-alive sockets",
                        "sysctl -w net.ipv4.tcp_keepalive_time=60 net.ipv4.tcp_keepalive_intvl=10 "
                        "net.ipv4.tcp_keepalive_probes=6")]
    return [Finding("kernel.tcp_keepalive", "kernel", "ok", value, f"a dead peer is noticed within {total} s")]


@setting("net.core.netdev_max_backlog", "server")
def netdev_backlog(ctx, v):
    if v < NETDEV_BACKLOG_MIN:
        return ("warn", (f"each CPU's input queue holds {v} packets: a burst beyond it is dropped "
                         f"before TCP sees it and costs a retransmission"),
                "sysctl -w net.core.netdev_max_backlog=16384")
    return "ok", "the input queue absorbs ordinary bursts", None


# --- counters --------------------------------------------------------------

def _delta(ctx, name):
    """(count, rate per s or None): since boot without --interval, in the
    interval with it.  None when the counter is missing."""
    last = ctx.last.counters
    if last is None or name not in last:
        return None
    if ctx.first is None:
        return last[name], None
    first = ctx.first.counters
    if first is None or name not in first:
        return None
    d = last[name] - first[name]
    return d, d / ctx.interval


def _when(ctx):
    return f"in the last {ctx.interval:g} s" if ctx.first is not None else "since boot"


def _counter_finding(ctx, id_, count, bad_now, advice, fix=None, value=None):
    """Severity of a drop counter: ok at 0, info as history, bad_now when it
    moved during --interval.  value defaults to the count."""
    if not count:
        sev = "ok"
    else:
        sev = bad_now if ctx.first is not None else "info"
    return Finding(id_, "counters", sev, count if value is None else value,
                   advice if count else f"none {_when(ctx)}", fix)


@rule("server")
def listen_overflows(ctx):
    over, drops = _delta(ctx, "TcpExt.ListenOverflows"), _delta(ctx, "TcpExt.ListenDrops")
    if over is None or drops is None:
        return [_unavailable("counters.listen_overflows", "/proc/net/netstat (TcpExt)")]
    n = over[0]
    rate = f" ({over[1]:.1f}/s)" if over[1] is not None else ""
    return [_counter_finding(
        ctx, "counters.listen_overflows", n, "error",
        f"accept queues overflowed {n} times{rate} {_when(ctx)} ({drops[0]} SYNs dropped): those "
        f"clients retry after 1 s; accept faster or raise the listen backlog and somaxconn",
        f"sysctl -w net.core.somaxconn={SOMAXCONN_MIN}")]


@rule("server", "client")
def fastopen_fail(ctx):
    keys = {"client": ("Active",), "server": ("Passive",), "both": ("Active", "Passive")}[ctx.role]
    got = {k: (_delta(ctx, f"TcpExt.TCPFastOpen{k}"), _delta(ctx, f"TcpExt.TCPFastOpen{k}Fail")) for k in keys}
    if any(a is None or f is None for a, f in got.values()):
        return [_unavailable("counters.fastopen", "/proc/net/netstat (TCPFastOpen*)")]
    fails = sum(f[0] for _, f in got.values())
    value = ", ".join(f"{k.lower()} {a[0]} (failed {f[0]})" for k, (a, f) in got.items())
    return [_counter_finding(ctx, "counters.fastopen", fails, "warn",
                             f"{fails} TCP Fast Open attempts failed {_when(ctx)}: a middlebox drops "
                             f"SYNs with data, or the cookie is refused, and each falls back to a "
                             f"full handshake after a timeout", value=value)]


@rule("server", "client")
def retransmits(ctx):
    retrans, out, rto = (_delta(ctx, n) for n in ("Tcp.RetransSegs", "Tcp.OutSegs", "TcpExt.TCPTimeouts"))
    if retrans is None or out is None or rto is None:
        return [_unavailable("counters.retransmits", "/proc/net/snmp (Tcp) and /proc/net/netstat")]
    share = retrans[0] / out[0] if out[0] else 0.0
    value = f"{share:.2%} ({retrans[0]} of {out[0]} segments, {rto[0]} timeouts)"
    if share > RETRANS_WARN:
        return [Finding("counters.retransmits", "counters", "warn", value,
                        f"{share:.1%} of segments were retransmitted {_when(ctx)}: packet loss on "
                        f"the path adds at least one retransmission timeout (200 ms or more) to "
                        f"each request it hits")]
    return [Finding("counters.retransmits", "counters", "ok", value, f"little retransmission {_when(ctx)}")]


@rule("server", "client")
def syn_retrans(ctx):
    d = _delta(ctx, "TcpExt.TCPSynRetrans")
    if d is None:
        return [_unavailable("counters.syn_retrans", "/proc/net/netstat (TCPSynRetrans)")]
    return [_counter_finding(
        ctx, "counters.syn_retrans", d[0], "warn",
        f"{d[0]} SYNs were retransmitted {_when(ctx)}: each adds 1 s (then 3 s, 7 s) to a "
        f"connect; a server's full accept or SYN queue, or packet loss, drops them")]


# --- sockets ---------------------------------------------------------------

def _own(ctx, socks):
    """The sockets of the process under check (all of them without one)."""
    if ctx.inodes is None:
        return socks
    return [s for s in socks if s.inode in ctx.inodes]


@rule("server", "client")
def states(ctx):
    if ctx.sockets is None:
        return [_unavailable("sockets.states", "/proc/net/tcp and tcp6")]
    counts = {}
    for s in _own(ctx, ctx.sockets):
        counts[s.state] = counts.get(s.state, 0) + 1
    whose = "this process's" if ctx.inodes is not None else "the host's"
    return [Finding("sockets.states", "sockets", "ok", dict(sorted(counts.items())),
                    f"{whose} TCP sockets by state")]


@rule("client")
def time_wait(ctx):
    span = port_span(ctx)
    if ctx.sockets is None or span is None:
        return [_unavailable("sockets.time_wait", "/proc/net/tcp or ip_local_port_range")]
    per_dest = {}
    for s in ctx.sockets:           # TIME_WAIT sockets have no owner: host-wide
        if s.state == "TIME_WAIT":
            per_dest[s.remote] = per_dest.get(s.remote, 0) + 1
    if not per_dest:
        return [Finding("sockets.time_wait", "sockets", "ok", 0, "no TIME_WAIT sockets")]
    dest, n = max(per_dest.items(), key=lambda kv: kv[1])
    share = n / span
    sev = "error" if share >= TIME_WAIT_ERROR else "warn" if share >= TIME_WAIT_WARN else "ok"
    where = f"{dest[0]}:{dest[1]}"
    if sev == "ok":
        return [Finding("sockets.time_wait", "sockets", "ok", n,
                        f"at most {n} TIME_WAIT sockets to one destination ({where}) of {span} ports")]
    return [Finding("sockets.time_wait", "sockets", sev, n,
                    f"{n} TIME_WAIT sockets to {where} hold {share:.0%} of the {span} local ports: "
                    f"new connections to it fail with EADDRNOTAVAIL once they run out; reuse "
                    f"connections (a pool, keep-alive) or let TIME_WAIT ports be reused",
                    "sysctl -w net.ipv4.tcp_tw_reuse=1", where)]


@rule("server", "client")
def close_wait(ctx):
    if ctx.sockets is None:
        return [_unavailable("sockets.close_wait", "/proc/net/tcp and tcp6")]
    n = sum(1 for s in _own(ctx, ctx.sockets) if s.state == "CLOSE_WAIT")
    if n:
        return [Finding("sockets.close_wait", "sockets", "warn", n,
                        f"{n} connections in CLOSE_WAIT: their peer closed and the application "
                        f"has not, which leaks an fd and buffers each; close the connection when "
                        f"recv returns b''")]
    return [Finding("sockets.close_wait", "sockets", "ok", 0, "no connection is waiting for the application to close it")]


@rule("server")
def listen_queue(ctx):
    if ctx.sockets is None:
        return [_unavailable("sockets.listen_queue", "/proc/net/tcp and tcp6")]
    somax = ctx.proc.sysctl_int("net.core.somaxconn")
    known = {s["addr"]: s["effective_backlog"] for s in ctx.listeners if "effective_backlog" in s}
    out, quiet = [], 0
    for s in _own(ctx, ctx.sockets):
        if s.state != "LISTEN":
            continue
        host = f"[{s.local[0]}]" if ":" in s.local[0] else s.local[0]
        where = f"{host}:{s.local[1]}"
        backlog = known.get(where)
        limit = backlog if backlog is not None else somax
        if limit is not None and s.rx_queue > limit:
            out.append(Finding("sockets.listen_queue", "sockets", "error", f"{s.rx_queue}/{limit}",
                               f"the accept queue of {where} is full ({s.rx_queue} waiting, backlog "
                               f"{limit}): new SYNs are dropped and clients retry after 1 s; the "
                               f"application is not accepting fast enough", subject=where))
        elif s.rx_queue:
            out.append(Finding("sockets.listen_queue", "sockets", "info",
                               f"{s.rx_queue}/{limit if limit is not None else '?'}",
                               f"{s.rx_queue} connections wait to be accepted on {where}", subject=where))
        else:
            quiet += 1
    if quiet or not out:
        out.append(Finding("sockets.listen_queue", "sockets", "ok", quiet,
                           f"{quiet} listeners with an empty accept queue"))
    return out


# --- gmp's own listeners (gmp.doctor.check in the process) ------------------

@rule("server")
def gmp_backlog(ctx):
    out = []
    somax = ctx.proc.sysctl_int("net.core.somaxconn")
    fastopen = ctx.proc.sysctl_int("net.ipv4.tcp_fastopen")
    for s in ctx.listeners:
        req, eff = s.get("backlog"), s.get("effective_backlog")
        if req is not None and eff is not None and req > eff:
            out.append(Finding("gmp.listen_backlog", "gmp", "warn", f"{req} -> {eff}",
                               f"somaxconn {somax if somax is not None else eff} clips your listen "
                               f"backlog of {req}: bursts of new connections are dropped and "
                               f"retried after 1 s", f"sysctl -w net.core.somaxconn={req}", s["addr"]))
        if s.get("fast_open") and fastopen is not None and not fastopen & 2:
            out.append(Finding("gmp.fast_open", "gmp", "warn", fastopen,
                               f"listen(fast_open={s['fast_open']}) has no effect: net.ipv4.tcp_fastopen "
                               f"lacks the server bit (2), so clients fall back to a full handshake",
                               f"sysctl -w net.ipv4.tcp_fastopen={fastopen | 2}", s["addr"]))
    if ctx.listeners and not out:
        out.append(Finding("gmp.listen_backlog", "gmp", "ok", len(ctx.listeners),
                           "every gmp listener got the backlog and options it asked for"))
    return out


# --- the process -------------------------------------------------------------

def _nofile_fix(ctx, hard, want):
    target = hard if hard is not None else want
    return f"prlimit --pid {ctx.pid_number} --nofile={target}:{target}  (or LimitNOFILE= / ulimit -n {target})"


@rule("server", "client")
def fds(ctx):
    if ctx.pid is None:
        return []
    lim = ctx.proc.nofile(ctx.pid)
    if ctx.last.fds is None or lim is None:
        return [_unavailable("process.fds", f"/proc/{ctx.pid}/fd or /proc/{ctx.pid}/limits")]
    counts = ctx.last.fds[0]
    n = sum(counts.values())
    soft, hard = lim
    kinds = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    if soft is None:
        return [Finding("process.fds", "process", "ok", f"{n}/unlimited ({kinds})", "no fd limit")]
    share = n / soft
    value = f"{n}/{soft} ({kinds})"
    if share >= FDS_WARN:
        sev = "error" if share >= FDS_ERROR else "warn"
        return [Finding("process.fds", "process", sev, value,
                        f"{share:.0%} of RLIMIT_NOFILE is in use: at the limit accept() and "
                        f"connect() fail with EMFILE", _nofile_fix(ctx, hard, soft * 4))]
    return [Finding("process.fds", "process", "ok", value, f"{share:.0%} of RLIMIT_NOFILE in use")]


@rule("server")
def nofile_limit(ctx):
    if ctx.pid is None:
        return []
    lim = ctx.proc.nofile(ctx.pid)
    if lim is None:
        return [_unavailable("process.nofile_limit", f"/proc/{ctx.pid}/limits")]
    soft, hard = lim
    if soft is not None and soft < NOFILE_MIN:
        return [Finding("process.nofile_limit", "process", "warn", soft,
                        f"the soft fd limit is {soft}: a server holding about that many "
                        f"connections gets EMFILE from accept and new clients wait",
                        _nofile_fix(ctx, hard, 65536))]
    return [Finding("process.nofile_limit", "process", "ok", "unlimited" if soft is None else soft,
                    "enough fds for many connections")]


@rule("server", "client")
def fd_growth(ctx):
    if ctx.pid is None or ctx.first is None:
        return []
    if ctx.first.fds is None or ctx.last.fds is None:
        return [_unavailable("process.fd_growth", f"/proc/{ctx.pid}/fd")]
    before, after = ctx.first.fds[0], ctx.last.fds[0]
    grew = {k: after[k] - before[k] for k in after if after[k] > before[k]}
    total = sum(after.values()) - sum(before.values())
    value = f"{total:+d}" + (" (" + ", ".join(f"{k} +{v}" for k, v in grew.items()) + ")" if grew else "")
    if total >= FD_GROWTH_WARN:
        return [Finding("process.fd_growth", "process", "warn", value,
                        f"{total} more fds after {ctx.interval:g} s: if this goes on it is a leak "
                        f"(connections or files opened and never closed) heading for EMFILE")]
    if total > 0:
        return [Finding("process.fd_growth", "process", "info", value,
                        f"{total} more fds after {ctx.interval:g} s; sample longer to tell a leak from load")]
    return [Finding("process.fd_growth", "process", "ok", value, f"no fd growth in {ctx.interval:g} s")]
