"""Shared helpers of the integration tests that run real goulettefs members:
start one (or several) with a real mount on a temporary directory, wait
until it leads or follows, stop it by pid, and always unmount.

Shell commands and inotify come from fs/fsharness.py.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "fs"))

from fsharness import (Inotify, abort_fuse, fuse_connection,  # noqa: E402,F401
                       is_mounted, sh)

GOULETTEFS = os.path.abspath(
    os.environ.get("GOULETTEFS", os.path.join(HERE, "..", "..", "build",
                                              "tools", "goulettefs")))


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_used_ports = set()


def free_port():
    """A free port on 127.0.0.1 BELOW the kernel's ephemeral range.  A port
    from bind(0) is an ephemeral one: until the member binds it, any
    outgoing connection (another member dialling its peers) may take it as
    its source port, and the member then fails with EADDRINUSE."""
    import random
    top = min(_ephemeral_low(), 65536) - 1
    for _ in range(1000):
        port = random.randint(10000, max(10001, top))
        if port in _used_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_until(pred, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def unmount(path):
    if fuse_connection(path) is not None:
        subprocess.run(["fusermount3", "-u", "-z", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Member:
    """One goulettefs process with its data dir and mount point in @tmp."""

    def __init__(self, tmp, name, peer_port=None, grpc_port=None,
                 cluster=None, extra=()):
        self.tmp = tmp
        self.name = name
        self.peer_port = peer_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.data = os.path.join(tmp, name + ".data")
        self.mnt = os.path.join(tmp, name + ".mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.cluster = cluster
        self.extra = list(extra)
        self.proc = None
        self.logs = []

    def argv(self):
        a = [GOULETTEFS, "--name", self.name, "--data-dir", self.data,
             "--mount", self.mnt,
             "--peer-listen", "127.0.0.1:%d" % self.peer_port,
             "--grpc-listen", "127.0.0.1:%d" % self.grpc_port]
        if self.cluster:
            a += ["--initial-cluster", self.cluster]
        return a + self.extra

    def start(self, wait=True):
        path = os.path.join(self.tmp, "%s.%d.log" % (self.name,
                                                     len(self.logs)))
        self.logs.append(path)
        log = open(path, "w")
        self.proc = subprocess.Popen(self.argv(), stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        if wait:
            self.wait_mounted()
        return self

    def wait_mounted(self, timeout=30):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("goulettefs %s exited %d:\n%s" %
                                     (self.name, self.proc.returncode,
                                      self.logtext()))
            return is_mounted(self.mnt)
        wait_until(ready, timeout, "the mount of " + self.name)

    def wait_leader(self, timeout=30):
        def known():
            try:
                with open(self.path("cluster", "leader")) as f:
                    return f.read().strip()
            except OSError:
                return ""
        return wait_until(known, timeout, "a leader on " + self.name)

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def read(self, *parts):
        with open(self.path(*parts)) as f:
            return f.read()

    def logtext(self):
        out = []
        for p in self.logs:
            with open(p) as f:
                out.append(f.read())
        return "".join(out)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop with @sig; returns the exit status.  Unmounts a mount the
        process left behind (after SIGKILL)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=5 if sig == signal.SIGKILL
                                else timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            abort_fuse(self.mnt)
            rc = self.proc.wait(timeout=30)
        self.proc = None
        unmount(self.mnt)
        return rc

    def kill_only(self):
        """SIGKILL, leaving the mount and any stuck thread as a crash
        would: the next start must cope.  Returns the old process."""
        old = self.proc
        old.kill()
        self.proc = None
        return old

    def kill(self):
        return self.stop(signal.SIGKILL)


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="goulettefs-it-")

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Cluster:
    """@n members founding one cluster, each with its own mount.  With
    @proxied, member n1's peer traffic goes through a Proxy (self.proxy)
    that the test can cut."""

    def __init__(self, tmp, n=3, extra=(), proxied=False):
        ports = [free_port() for _ in range(n)]
        names = ["n%d" % (i + 1) for i in range(n)]
        self.proxy = Proxy(ports[0]) if proxied else None
        advertised = list(ports)
        if self.proxy is not None:
            advertised[0] = self.proxy.port
        spec = ",".join("%s=127.0.0.1:%d" % (nm, p)
                        for nm, p in zip(names, advertised))
        self.members = [Member(tmp, nm, peer_port=p, cluster=spec,
                               extra=extra)
                        for nm, p in zip(names, ports)]

    def start(self):
        """Start every member; if one fails to come up, stop those started
        (a failing setUp gets no tearDown) and re-raise."""
        try:
            for m in self.members:
                m.start(wait=False)
            for m in self.members:
                m.wait_mounted()
        except BaseException:
            self.stop()
            raise
        return self

    def running(self):
        return [m for m in self.members if m.proc is not None]

    def leader(self, timeout=60, other_than=None):
        """The name every running member agrees leads (and that is not
        @other_than)."""
        def agreed():
            seen = set()
            for m in self.running():
                try:
                    seen.add(m.read("cluster", "leader").strip())
                except OSError:
                    return None
            if len(seen) == 1 and "" not in seen and other_than not in seen:
                return seen.pop()
            return None
        return wait_until(agreed, timeout, "an agreed leader")

    def member(self, name):
        return next(m for m in self.members if m.name == name)

    def stop(self):
        for m in self.members:
            m.stop()
        if self.proxy is not None:
            self.proxy.close()


def tree(mnt):
    """{relative path: content} of topics/, brokers/, operations/ and
    increment/ under @mnt."""
    out = {}
    for d in ("topics", "brokers", "operations", "increment"):
        for name in os.listdir(os.path.join(mnt, d)):
            with open(os.path.join(mnt, d, name)) as f:
                out[d + "/" + name] = f.read()
    return out


# ---- gRPC (issue 7): stubs generated at test time, members' gRPC ports ----

GOULETTECTL = os.path.abspath(
    os.environ.get("GOULETTECTL", os.path.join(HERE, "..", "..", "build",
                                               "tools", "goulettectl")))

Member.grpc_address = property(lambda self: "127.0.0.1:%d" % self.grpc_port)


class Stubs:
    """Python modules generated from rpc/*.proto with grpc_tools."""

    def __init__(self):
        sys.path.insert(0, os.path.join(HERE, "rpc"))
        import rpcharness
        self.dir = rpcharness.generate_stubs()
        import goulette_pb2
        import goulette_pb2_grpc
        import goulettefs_pb2
        import goulettefs_pb2_grpc
        import health_pb2
        import health_pb2_grpc
        self.pb = goulette_pb2
        self.pb_grpc = goulette_pb2_grpc
        self.fs = goulettefs_pb2
        self.fs_grpc = goulettefs_pb2_grpc
        self.health = health_pb2
        self.health_grpc = health_pb2_grpc

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def ctl(*args, endpoints=None, timeout=60):
    """Run goulettectl; returns (exit status, stdout, stderr)."""
    argv = [GOULETTECTL]
    if endpoints:
        argv += ["--endpoints", endpoints]
    p = subprocess.run(argv + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class Proxy:
    """A TCP relay on 127.0.0.1 in front of a member's peer port, which a
    test can cut (a network partition of the traffic to that member) and
    restore."""

    def __init__(self, target_port):
        import threading
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.open = True
        self.conns = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        import threading
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if not self.open:
                    c.close()
                    continue
                try:
                    u = socket.create_connection(("127.0.0.1", self.target))
                except OSError:
                    c.close()
                    continue
                self.conns += [c, u]
            threading.Thread(target=self._pump, args=(c, u),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c),
                             daemon=True).start()

    def cut(self):
        with self.lock:
            self.open = False
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []

    def restore(self):
        with self.lock:
            self.open = True

    def close(self):
        self.stopping = True
        self.cut()
        self.sock.close()
