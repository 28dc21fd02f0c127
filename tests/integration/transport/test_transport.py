#!/usr/bin/python3
"""Integration test of the Raft peer transport with real processes.

Three raft-uv-peer processes (tests/integration/transport/peer.c) on
127.0.0.1 exchange heartbeats.  The test kills one with SIGKILL, restarts
it on the same port, lets a process from another cluster and a raw socket
with garbage knock on the members, and checks that the members reconnect,
refuse the intruders, keep serving each other, and close cleanly
(uv_loop_close() == 0) on SIGTERM.  Waits are bounded only to catch hangs.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from goulette import free_port  # noqa: E402

PEER = os.environ.get("RAFT_UV_PEER")
CLUSTER = "0xC0FFEE"
DEADLINE = 30.0


def free_ports(n):
    """Ports below the ephemeral range (see goulette.free_port): the peers
    dial each other, and their source ports must not take these."""
    return [free_port() for _ in range(n)]


class Proc:
    """One raft-uv-peer process and the lines it printed."""

    def __init__(self, tmp, name, args):
        self.name = name
        self.lines = []
        self.lock = threading.Lock()
        self.stderr_path = os.path.join(tmp, name + ".stderr")
        self.stderr = open(self.stderr_path, "w")
        self.p = subprocess.Popen([PEER] + args, stdout=subprocess.PIPE,
                                  stderr=self.stderr, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.split())

    def mark(self):
        with self.lock:
            return len(self.lines)

    def seen(self, pred, since=0):
        with self.lock:
            return any(pred(l) for l in self.lines[since:])

    def recv_from(self, peer, boot=None, since=0):
        return self.seen(lambda l: l[0] == "recv" and l[1] == str(peer) and
                         (boot is None or l[2] == str(boot)), since)

    def kill(self):
        self.p.kill()
        self.p.wait()

    def terminate(self):
        """SIGTERM; returns (exit status, the 'closed' value printed)."""
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=DEADLINE)
        self.reader.join(timeout=DEADLINE)
        closed = [l for l in self.lines if l and l[0] == "closed"]
        return rc, closed[-1][1] if closed else None

    def close(self):
        if self.p.poll() is None:
            self.kill()
        self.reader.join(timeout=DEADLINE)
        self.p.stdout.close()
        self.stderr.close()

    def log(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()


def wait_for(what, pred, procs):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    logs = "\n".join("--- %s stderr ---\n%s" % (p.name, p.log()[-3000:])
                     for p in procs)
    raise AssertionError("timed out waiting for %s\n%s" % (what, logs))


@unittest.skipIf(not PEER, "RAFT_UV_PEER not set (run through meson test)")
class TransportProcesses(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.close()
        self.tmp.cleanup()

    def start(self, name, pid, port, ports, boot=1, cluster=CLUSTER):
        args = ["--id", str(pid), "--cluster", cluster, "--boot", str(boot),
                "--listen", "127.0.0.1:%d" % port]
        for i, pt in enumerate(ports, 1):
            args += ["--peer", "%d=127.0.0.1:%d" % (i, pt)]
        proc = Proc(self.tmp.name, name, args)
        self.procs.append(proc)
        wait_for(name + " ready", lambda: proc.seen(lambda l: l[0] == "ready"),
                 self.procs)
        return proc

    def test_kill_restart_intruders_and_clean_close(self):
        ports = free_ports(4)
        members = ports[:3]
        p1 = self.start("m1", 1, members[0], members)
        p2 = self.start("m2", 2, members[1], members)
        p3 = self.start("m3", 3, members[2], members)
        every = [(p1, 2), (p1, 3), (p2, 1), (p2, 3), (p3, 1), (p3, 2)]
        wait_for("full mesh", lambda: all(p.recv_from(f) for p, f in every),
                 self.procs)

        # kill -9 of member 2: the others notice and keep talking.
        p2.kill()
        m1, m3 = p1.mark(), p3.mark()
        wait_for("unreachable 2", lambda: p1.seen(
            lambda l: l == ["unreachable", "2"], m1) and p3.seen(
            lambda l: l == ["unreachable", "2"], m3), self.procs)
        m1, m3 = p1.mark(), p3.mark()
        wait_for("1 and 3 still talk", lambda: p1.recv_from(3, since=m1) and
                 p3.recv_from(1, since=m3), self.procs)

        # Member 2 restarts on the same port with the same identity.
        p2b = self.start("m2b", 2, members[1], members, boot=2)
        wait_for("reconnection to the restarted member",
                 lambda: p1.recv_from(2, boot=2) and p3.recv_from(2, boot=2)
                 and p2b.recv_from(1) and p2b.recv_from(3), self.procs)

        # A process of another cluster, claiming to be member 3 from a new
        # port, and raw garbage: refused, and nobody is confused.
        intruder = self.start("intruder", 3, ports[3], members,
                              cluster="0xBAD")
        with socket.create_connection(("127.0.0.1", members[0])) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(DEADLINE)
            self.assertEqual(s.recv(100), b"")  # closed, no answer
        wait_for("the intruder refused", lambda: intruder.seen(
            lambda l: l == ["unreachable", "1"]), self.procs)
        self.assertFalse(intruder.recv_from(1) or intruder.recv_from(2))
        m1, m2 = p1.mark(), p2b.mark()
        wait_for("members still served", lambda: p1.recv_from(3, since=m1)
                 and p1.recv_from(2, since=m1) and p2b.recv_from(1, since=m2),
                 self.procs)
        self.assertIn("another cluster", p1.log())

        # Clean close everywhere: uv_loop_close() == 0.
        for p in (intruder, p1, p2b, p3):
            rc, closed = p.terminate()
            self.assertEqual((rc, closed), (0, "0"), p.name + "\n" + p.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
