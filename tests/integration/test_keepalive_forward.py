"""KeepAlive renewals that reach a follower are forwarded to the leader in
memory (a PeerNotice over the peer transport), not as Raft entries
(issue 8; docs/liveness.md, "Heartbeats").

A 3-member cluster with short liveness thresholds; a broker registered
through gRPC and then renewed through one FOLLOWER only, for longer than
down_after: it stays healthy on every member, and the Raft log does not grow
with the renewals.  When the renewals stop, it goes suspicious then down.

Each test class starts its own cluster in a temporary directory and stops
every process it started (by pid), unmounting every mount.
"""
import json
import threading
import time
import unittest

import grpc

from goulette import Cluster, Stubs, TempDir, wait_until

S = None  # the generated stubs, set up once

# Generous against a loaded machine: a follower flushes its renewals every
# min(suspect_after / 8, 250 ms).
SUSPECT_S = 3
DOWN_S = 6
FAST = ["--broker-suspect-after", "%ds" % SUSPECT_S,
        "--broker-down-after", "%ds" % DOWN_S]


def setUpModule():
    global S
    S = Stubs()


def tearDownModule():
    S.remove()


def status(m, b):
    return json.loads(m.read("brokers", b))["status"]


class Renewer:
    """Sends KeepAlive for one broker to one member every @period seconds,
    counting the successful answers."""

    def __init__(self, stub, broker, address, period=0.2):
        self.stub = stub
        self.req = S.pb.KeepAliveRequest(broker_id=broker, address=address)
        self.period = period
        self.ok = 0
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            try:
                r = self.stub.KeepAlive(self.req, timeout=10)
                if r.success:
                    self.ok += 1
                else:
                    self.errors.append(r.error_message)
            except grpc.RpcError as e:
                self.errors.append(str(e.code()))
            self.stop.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=60)
        return False


class KeepAliveForwardTests(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3, extra=FAST).start()
        self.channels = {m.name: grpc.insecure_channel(m.grpc_address)
                         for m in self.c.members}

    def tearDown(self):
        for ch in self.channels.values():
            ch.close()
        try:
            rcs = [m.stop() for m in self.c.members]
            self.assertTrue(all(rc in (0, None) for rc in rcs), rcs)
        finally:
            self.c.stop()
            self.tmp.remove()

    def sentinel(self, m):
        return S.pb_grpc.SentinelServiceStub(self.channels[m.name])

    def status_of(self, m):
        return S.fs_grpc.ClusterServiceStub(self.channels[m.name]).Status(
            S.fs.StatusRequest(), timeout=30)

    def test_renewals_through_a_follower_keep_a_broker_healthy_off_the_log(
            self):
        leader = self.c.member(self.c.leader())
        follower = next(m for m in self.c.members if m is not leader)
        addr = "127.0.0.1:9301"
        r = self.sentinel(leader).RegisterBroker(S.pb.RegisterBrokerRequest(
            broker_id="b1", address=addr), timeout=30)
        self.assertTrue(r.success, r.error_message)
        # The follower has applied the registration: its KeepAlive takes
        # the fast path from the first renewal on.
        wait_until(lambda: self.status_of(follower).applied_index >=
                   self.status_of(leader).commit_index, 30,
                   "the follower caught up")
        before = self.status_of(leader)
        with Renewer(self.sentinel(follower), "b1", addr) as ren:
            # Longer than down_after: without renewals reaching the leader
            # the broker would be suspicious after SUSPECT_S, down after
            # DOWN_S.
            deadline = time.monotonic() + DOWN_S + 3
            while time.monotonic() < deadline:
                for m in self.c.members:
                    self.assertEqual(status(m, "b1"), 0,
                                     "b1 judged on %s after %d renewals"
                                     % (m.name, ren.ok))
                time.sleep(0.5)
        after = self.status_of(leader)
        self.assertEqual(ren.errors, [])
        self.assertGreaterEqual(ren.ok, 20)
        self.assertEqual(after.leader_id, before.leader_id,
                         "the leader changed during the test")
        # A new term would add its own entry; allow for it.
        grown = after.commit_index - before.commit_index
        self.assertLessEqual(grown, 2 + (after.term - before.term),
                             "%d renewals made %d Raft entries"
                             % (ren.ok, grown))
        for m in self.c.members:
            self.assertEqual(status(m, "b1"), 0, m.name)

        # The renewals stop: suspicious, then down, committed everywhere.
        wait_until(lambda: all(status(m, "b1") == 1 for m in self.c.members)
                   or all(status(m, "b1") == 2 for m in self.c.members),
                   60, "b1 suspicious")
        wait_until(lambda: all(status(m, "b1") == 2 for m in self.c.members),
                   60, "b1 down")

    def test_a_keepalive_that_changes_something_still_commits(self):
        leader = self.c.member(self.c.leader())
        follower = next(m for m in self.c.members if m is not leader)
        r = self.sentinel(leader).RegisterBroker(S.pb.RegisterBrokerRequest(
            broker_id="b2", address="127.0.0.1:9302"), timeout=30)
        self.assertTrue(r.success, r.error_message)
        before = self.status_of(leader).commit_index
        # A new address is a state change: through Raft, on every mount.
        r = self.sentinel(follower).KeepAlive(S.pb.KeepAliveRequest(
            broker_id="b2", address="127.0.0.1:9312"), timeout=30)
        self.assertTrue(r.success, r.error_message)
        for m in self.c.members:
            wait_until(lambda: json.loads(m.read("brokers", "b2"))["address"]
                       == "127.0.0.1:9312", 30, "new address on " + m.name)
        self.assertGreater(self.status_of(leader).commit_index, before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
