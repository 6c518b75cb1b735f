"""Readers of the /proc files gmp doctor checks, under a root directory.

Every reader returns None when its file is missing or unreadable (a
container may hide /proc/sys/net, a process may have exited or belong to
another user), so a rule reports "unavailable" instead of crashing.  Nothing
here writes, runs a program or needs root.
"""
import collections
import os
import socket
import struct

from gmp.tcpstats import TCP_STATES

# One line of /proc/net/tcp{,6}.  For a LISTEN socket rx_queue is the accept
# queue's length; the backlog is not in the file (ss gets it over netlink).
Sock = collections.namedtuple("Sock", "local remote state tx_queue rx_queue inode")

FD_KINDS = ("socket", "file", "pipe", "epoll", "eventfd", "other")


class Proc:
    """/proc under ``root`` (default "/"): ``Proc("/tmp/fake")`` reads
    /tmp/fake/proc/sys/net/core/somaxconn and so on."""

    def __init__(self, root="/"):
        self.root = root

    def path(self, rel):
        return os.path.join(self.root, "proc", rel)

    def read(self, rel):
        try:
            with open(self.path(rel)) as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    def sysctl(self, name):
        """The value of a sysctl ("net.core.somaxconn") as a string."""
        text = self.read("sys/" + name.replace(".", "/"))
        return None if text is None else text.strip()

    def sysctl_int(self, name):
        text = self.sysctl(name)
        try:
            return int(text)
        except (TypeError, ValueError):
            return None

    def counters(self):
        """{"TcpExt.ListenOverflows": n, "Tcp.RetransSegs": n, ...} from
        net/netstat and net/snmp (pairs of a header and a value line)."""
        out = {}
        found = False
        for rel in ("net/netstat", "net/snmp"):
            text = self.read(rel)
            if text is None:
                continue
            found = True
            lines = text.splitlines()
            for head, vals in zip(lines[::2], lines[1::2]):
                names, values = head.split(), vals.split()
                if not names or names[0] != values[0]:
                    continue
                prefix = names[0].rstrip(":")
                for name, value in zip(names[1:], values[1:]):
                    try:
                        out[f"{prefix}.{name}"] = int(value)
                    except ValueError:
                        pass
        return out if found else None

    def tcp_sockets(self):
        """Every TCP socket of net/tcp and net/tcp6 as Sock, or None when
        neither file is readable."""
        socks = None
        for rel, family in (("net/tcp", socket.AF_INET), ("net/tcp6", socket.AF_INET6)):
            text = self.read(rel)
            if text is None:
                continue
            socks = socks or []
            for line in text.splitlines()[1:]:
                f = line.split()
                if len(f) < 10:
                    continue
                try:
                    tx, rx = (int(x, 16) for x in f[4].split(":"))
                    socks.append(Sock(_addr(f[1], family), _addr(f[2], family),
                                      TCP_STATES.get(int(f[3], 16), f[3]), tx, rx, int(f[9])))
                except ValueError:
                    continue
        return socks

    def fds(self, pid):
        """(counts by kind, set of socket inodes) of a process's open fds,
        or None if its fd directory cannot be listed."""
        d = self.path(f"{pid}/fd")
        try:
            names = os.listdir(d)
        except OSError:
            return None
        counts = dict.fromkeys(FD_KINDS, 0)
        inodes = set()
        for name in names:
            try:
                target = os.readlink(os.path.join(d, name))
            except OSError:
                continue        # closed while we looked
            kind = fd_kind(target)
            counts[kind] += 1
            if kind == "socket":
                inodes.add(int(target[8:-1]))
        return counts, inodes

    def nofile(self, pid):
        """(soft, hard) RLIMIT_NOFILE of a process (None: unlimited), from
        its limits file, or None if unreadable."""
        text = self.read(f"{pid}/limits")
        if text is None:
            return None
        for line in text.splitlines():
            if line.startswith("Max open files"):
                parts = line[len("Max open files"):].split()
                try:
                    return tuple(None if p == "unlimited" else int(p) for p in parts[:2])
                except ValueError:
                    return None
        return None


def fd_kind(target):
    """The kind of an fd from its /proc/PID/fd link target."""
    if target.startswith("socket:["):
        return "socket"
    if target.startswith("pipe:["):
        return "pipe"
    if target == "anon_inode:[eventpoll]":
        return "epoll"
    if target == "anon_inode:[eventfd]":
        return "eventfd"
    if target.startswith("/"):
        return "file"
    return "other"


def _addr(text, family):
    """"0100007F:1F90" -> ("127.0.0.1", 8080).  The kernel prints each
    32-bit word of the address in host byte order."""
    hexaddr, hexport = text.split(":")
    raw = b"".join(struct.pack("=I", int(hexaddr[i:i + 8], 16)) for i in range(0, len(hexaddr), 8))
    return socket.inet_ntop(family, raw), int(hexport, 16)
