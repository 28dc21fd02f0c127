"""Broker liveness on real members, driven through the mount: a broker that
stops renewing becomes suspicious, then down, with its topics re-placed and
every step committed as operations; a broker that renews again becomes
healthy; a leader change gives every broker a full grace period.

Renewals here are keepalive writes of the broker's address
(`echo host:port > brokers/b1`), which the leader counts as heartbeats, as
it counts gRPC KeepAlive.  Short thresholds come from
--broker-suspect-after and --broker-down-after.
"""
import json
import os
import threading
import time
import unittest

from goulette import Cluster, Inotify, Member, TempDir, sh, wait_until

# Short enough for a test, long enough that a renewal round (a few committed
# writes) never takes a live broker past them on a loaded machine.
FAST = ["--broker-suspect-after", "3s", "--broker-down-after", "6s"]


def write(path, text):
    rc, _, err = sh("echo '%s' > '%s'" % (text, path))
    if rc != 0:
        raise AssertionError("echo %s > %s: %s" % (text, path, err))


class Renewer:
    """Keeps brokers alive by renewing them every @period seconds through
    whichever mount is up."""

    def __init__(self, members, brokers, period=0.3):
        self.members = members
        self.brokers = brokers
        self.period = period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            for m in self.members:
                if m.proc is None:
                    continue
                for b, addr in self.brokers.items():
                    sh("echo '%s' > '%s'" % (addr, m.path("brokers", b)))
                break
            self.stop.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)
        return False


def status(m, b):
    return json.loads(m.read("brokers", b))["status"]


class SingleMemberTests(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.m = Member(self.tmp.path, "n1", extra=FAST)
        self.m.start()
        self.m.wait_leader()

    def tearDown(self):
        try:
            self.assertEqual(self.m.stop(), 0)
        finally:
            self.tmp.remove()

    def test_a_silent_broker_goes_suspicious_then_down_and_is_replaced(self):
        m = self.m
        alive = {"b2": "127.0.0.1:50052", "b3": "127.0.0.1:50053",
                 "b4": "127.0.0.1:50054"}
        write(m.path("brokers", "b1"), "127.0.0.1:50051")
        for b, a in alive.items():
            write(m.path("brokers", b), a)
        with Renewer([m], alive):
            # A topic on b1 and two of the others.
            for i in range(20):
                write(m.path("topics", "t%d" % i), "2")
            holding = [t for t in os.listdir(m.path("topics"))
                       if "b1" in m.read("topics", t)]
            self.assertTrue(holding, "no topic landed on b1")
            with Inotify() as ino:
                ino.watch(m.path("brokers"), "brokers")
                wait_until(lambda: status(m, "b1") == 1, 60, "suspicious")
                self.assertTrue(all(status(m, b) == 0 for b in alive))
                wait_until(lambda: status(m, "b1") == 2, 60, "down")
                events = ino.collect(2, timeout=5, settle=0.3)
            self.assertIn(("brokers", "IN_MODIFY", "b1"), events)
            self.assertTrue(all(status(m, b) == 0 for b in alive),
                            "a renewing broker was judged")
            # Every topic that held b1 was re-placed on live brokers.
            for t in holding:
                rec = json.loads(m.read("topics", t))
                ids = [b["broker_id"] for b in rec["brokers"]]
                self.assertNotIn("b1", ids, t)
                self.assertEqual(len(ids), 2, t)
            ops = [json.loads(m.read("operations", o))["function"]
                   for o in os.listdir(m.path("operations"))]
            self.assertIn("setBrokerStatus", ops)
            self.assertIn("handleUnreachableBrokers", ops)
            # It comes back: one renewal makes it healthy again.
            write(m.path("brokers", "b1"), "127.0.0.1:50051")
            wait_until(lambda: status(m, "b1") == 0, 30, "healthy again")
            self.assertIn("liveness", m.logtext())


class LeaderChangeTests(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3, extra=FAST).start()

    def tearDown(self):
        try:
            self.c.stop()
        finally:
            self.tmp.remove()

    def test_a_leader_kill_marks_no_live_broker_down(self):
        leader = self.c.member(self.c.leader())
        brokers = {"b%d" % i: "127.0.0.1:%d" % (50050 + i) for i in range(4)}
        for b, a in brokers.items():
            write(leader.path("brokers", b), a)
        survivors = [m for m in self.c.members if m is not leader]
        with Renewer(survivors, brokers):
            time.sleep(1.0)
            leader.kill()
            self.c.leader(other_than=leader.name)
            # Longer than the down threshold after the failover.
            time.sleep(7.0)
            for m in survivors:
                for b in brokers:
                    self.assertEqual(status(m, b), 0,
                                     "%s marked on %s" % (b, m.name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
