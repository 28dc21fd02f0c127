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

from fsharness import Inotify, is_mounted, sh  # noqa: E402,F401

GOULETTEFS = os.path.abspath(
    os.environ.get("GOULETTEFS", os.path.join(HERE, "..", "..", "build",
                                              "tools", "goulettefs")))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def unmount(path):
    if is_mounted(path):
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
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=30)
        self.proc = None
        unmount(self.mnt)
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="goulettefs-it-")

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)
