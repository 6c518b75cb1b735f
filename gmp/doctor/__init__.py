"""gmp doctor: the host's TCP stack and a process, checked against the
advice RPC services need.

    gmp doctor [--role server|client|both] [--pid PID|self] [--interval S]
               [--json] [--root DIR]

Everything comes from /proc, read without root and without running a
program: kernel settings (/proc/sys/net), the TCP counters (/proc/net/netstat
and snmp), every TCP socket (/proc/net/tcp, tcp6) and, for a process, its fd
table (/proc/PID/fd) and RLIMIT_NOFILE (/proc/PID/limits).  ``--root`` (or
``GMP_PROC_ROOT``) reads another tree instead of /, as ``GMP_SYSFS_ROOT`` does
for gmp.topology, so tests run on fabricated trees.  The rules live in
gmp/doctor/rules.py, the readers in gmp/doctor/procfs.py.

``--interval S`` samples the counters and the fd table twice, S seconds
apart: drop counters then count what happens now instead of since boot, and
fd growth between the samples is a leak warning.

``gmp.doctor.check()`` runs the same checks inside a gmp process and adds its
gmp.net listeners (gmp.tcpstats): the backlog each asked for against the one
the kernel applied, and their accept queues.

Decisions
    * Fixes are printed, never run: changing a sysctl is the operator's call.
    * The exit status is 1 when any finding is an error, so the command can
      gate a deploy or serve as a health check; warnings exit 0.
    * Missing files are findings ("unavailable", severity info), never a
      crash: containers hide parts of /proc.
    * Without --pid there are no process checks and the socket checks cover
      the whole host; with one, CLOSE_WAIT and listeners are those of the
      process's sockets (matched by inode), while TIME_WAIT sockets, which
      belong to no process any more, stay host-wide.
    * /proc/net/tcp shows a listener's accept-queue length but not its
      backlog, so a foreign listener's queue is compared with somaxconn (the
      largest backlog it can have); a gmp listener's with its own backlog.
"""
import dataclasses
import json
import os
import sys
import textwrap
import time

from gmp import settings
from gmp.doctor.procfs import Proc
from gmp.doctor.rules import RULES, SEVERITIES, Finding

__all__ = ["ROLES", "Finding", "Report", "check"]

ROLES = ("server", "client", "both")
SCHEMA_VERSION = 1


@dataclasses.dataclass
class Sample:
    counters: dict
    fds: tuple          # (counts by kind, socket inodes) or None


@dataclasses.dataclass
class Context:
    proc: Proc
    role: str
    pid: object         # "self", a pid, or None
    pid_number: int
    interval: float
    first: Sample       # None without --interval
    last: Sample
    sockets: list
    inodes: set         # socket inodes of the process, None: the whole host
    listeners: list     # gmp.tcpstats listener snapshots


@dataclasses.dataclass
class Report:
    role: str
    root: str
    pid: object
    interval: float
    findings: list

    @property
    def exit_status(self):
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def as_dict(self):
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            counts[f.severity] += 1
        return {"schema": SCHEMA_VERSION, "role": self.role, "root": self.root, "pid": self.pid,
                "interval": self.interval, "exit_status": self.exit_status, "summary": counts,
                "findings": [f.as_dict() for f in self.findings]}

    def format(self):
        """The human report: one table per area."""
        where = f", pid {self.pid}" if self.pid is not None else ""
        every = f", counters over {self.interval:g} s" if self.interval else ", counters since boot"
        lines = [f"gmp doctor: role {self.role}, root {self.root}{where}{every}"]
        width = max((len(f.id) + (len(f.subject) + 3 if f.subject else 0) for f in self.findings), default=10)
        area = None
        for f in self.findings:
            if f.area != area:
                area = f.area
                lines.append(f"\n{area}")
            name = f"{f.id} [{f.subject}]" if f.subject else f.id
            value = "-" if f.value is None else _fmt_value(f.value)
            lines.append(f"  {f.severity.upper() if f.severity != 'ok' else 'ok':5}  {name:{width}}  {value}")
            if f.severity != "ok":
                lines.extend(textwrap.wrap(f.advice, 100, initial_indent=" " * 9, subsequent_indent=" " * 9))
                if f.fix:
                    lines.append(f"{'':9}fix: {f.fix}")
        s = self.as_dict()["summary"]
        lines.append("\n" + ", ".join(f"{n} {k}" for k, n in s.items()) + f"; exit status {self.exit_status}")
        return "\n".join(lines) + "\n"


def _fmt_value(v):
    if isinstance(v, dict):
        return " ".join(f"{k}={n}" for k, n in v.items()) or "none"
    return str(v)


def _sample(proc, pid):
    return Sample(proc.counters(), proc.fds(pid) if pid is not None else None)


def check(role="both", pid="self", interval=None, root=None, listeners=None):
    """Runs every rule for role and returns a Report.

    pid: "self" (this process), a pid, or None for host checks only.
    interval: seconds between two samples of the counters and fds (None:
    one sample, counters since boot).  root: the tree holding proc/ (default
    $GMP_PROC_ROOT or /).  listeners: gmp.tcpstats listener snapshots; by
    default this process's own when pid is "self" and root is /."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))
                                 or not interval > 0):
        raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
    if pid is not None and pid != "self" and (isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0):
        raise ValueError(f"pid must be a positive int, 'self' or None, not {pid!r}")
    root = root or settings.get("GMP_PROC_ROOT")
    proc = Proc(root)
    if listeners is None:
        listeners = _own_listeners() if pid == "self" and root == "/" else []
    first = None
    if interval:
        first = _sample(proc, pid)
        time.sleep(interval)
    last = _sample(proc, pid)
    ctx = Context(proc, role, pid, os.getpid() if pid == "self" else pid, interval, first, last,
                  proc.tcp_sockets(), last.fds[1] if last.fds is not None else None,
                  [s for s in listeners if s.get("kind") == "listener"])
    findings = []
    for fn, roles in RULES:
        if role == "both" or role in roles:
            findings.extend(fn(ctx))
    return Report(role, root, pid, interval, findings)


def _own_listeners():
    from gmp import tcpstats
    return tcpstats.snapshots()


def _main(args):
    pid = args.pid
    if pid not in (None, "self"):
        try:
            pid = int(pid)
        except ValueError:
            print(f"gmp doctor: --pid wants a process id or 'self', not {pid!r}", file=sys.stderr)
            return 2
    try:
        report = check(args.role, pid, args.interval, args.root, listeners=[])
    except ValueError as e:
        print(f"gmp doctor: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.format())
    return report.exit_status


def add_parser(sub):
    p = sub.add_parser("doctor", help="check the host's TCP settings and a process against RPC advice",
                       description="Read /proc and report findings with advice and the command that "
                                   "would fix each (never run).  Exit status 1 when a finding is an error.")
    p.add_argument("--role", choices=ROLES, default="both", help="what the checked service is (default both)")
    p.add_argument("--pid", help="also check this process ('self': the doctor itself)")
    p.add_argument("--interval", type=float, metavar="S",
                   help="sample counters and fds twice, S seconds apart (rates, fd growth)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (docs/doctor.md)")
    p.add_argument("--root", help="read DIR/proc instead of /proc (default $GMP_PROC_ROOT or /)")
    p.set_defaults(func=_main)
