"""The leader tells brokers their roles (issue 8, docs/liveness.md "Telling
brokers"): a 3-member cluster with gRPC ports and four fake brokers
(fakebroker.py: real grpcio servers that record every call), registered
with their real addresses and kept alive by KeepAlive threads.

- A new topic: SetTopicRole LEADER to its leader replica first, then
  FOLLOWER to each follower, with the followers' addresses and the
  leader's address; a second GetTopicLeader sends nothing more.
- A broker failing its first calls is retried until it acknowledges.
- A re-placement (unreachable_brokers = [leader]): the new leader, the
  replacement and the dropped broker (RemoveTopic) are told.
- kill -9 of the goulettefs leader while a broker refuses SetTopicRole:
  the new leader delivers it once the broker accepts again, and does not
  re-send topics that were settled before the failover.

Every process started is stopped by pid, every mount unmounted, every fake
broker and KeepAlive thread stopped, the temporary directory removed.
"""
import os
import sys
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from goulette import Cluster, TempDir, wait_until  # noqa: E402
import fakebroker  # noqa: E402
from fakebroker import FOLLOWER, LEADER, FakeBroker  # noqa: E402

DEADLINE = 60  # seconds, for conditions on a loaded 2-core machine
S = None


def setUpModule():
    global S
    S = fakebroker.stubs()


def role_calls(calls, topic, ok=None):
    out = [c for c in calls
           if c.method == "SetTopicRole" and c.req["topic"] == topic]
    if ok is not None:
        out = [c for c in out if (c.outcome == "ok") == ok]
    return out


class Roles(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.fbs = {}
        cls.loops = []
        cls.channels = []
        cls.c = None
        try:
            cls.c = Cluster(cls.tmp.path, 3).start()
            cls.c.leader()
            cls.channels = [grpc.insecure_channel(m.grpc_address)
                            for m in cls.c.members]
            cls.stubs = [S.pb_grpc.SentinelServiceStub(ch)
                         for ch in cls.channels]
            cls.cstubs = [S.fs_grpc.ClusterServiceStub(ch)
                          for ch in cls.channels]
            for k in range(1, 5):
                fb = FakeBroker("b%d" % k)
                cls.fbs[fb.id] = fb
                r = cls.stubs[0].RegisterBroker(S.pb.RegisterBrokerRequest(
                    broker_id=fb.id, address=fb.address), timeout=30)
                assert r.success, r.error_message
                # Each broker renews at every member in turn, so that the
                # failure of one member never lets a broker go down.
                order = cls.stubs[k % 3:] + cls.stubs[:k % 3]
                cls.loops.append(fakebroker.keepalive_loop(
                    order, fb.id, fb.address, period=1.0))
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def cleanup(cls):
        for ka in cls.loops:
            ka.stop()
        for ch in cls.channels:
            ch.close()
        for fb in cls.fbs.values():
            fb.close()
        try:
            if cls.c is not None:
                cls.c.stop()
        finally:
            if os.environ.get("ROLES_KEEP_TMP"):
                print("kept", cls.tmp.path, file=sys.stderr)
            else:
                cls.tmp.remove()

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    # ---- helpers ----

    def running(self):
        return [i for i, m in enumerate(self.c.members) if m.proc is not None]

    def leader_of(self, topic, count=3, unreachable=(), via=None):
        i = self.running()[0] if via is None else via
        return self.stubs[i].GetTopicLeader(S.pb.GetTopicLeaderRequest(
            topic=topic, replica_count=count,
            unreachable_brokers=list(unreachable)), timeout=30).leader

    def replicas(self, topic):
        """[(id, address)] of @topic's assignment, leader first."""
        i = self.running()[0]
        r = self.cstubs[i].GetBrokers(S.fs.GetBrokersRequest(topic=topic),
                                      timeout=30)
        return [(b.broker_id, b.address) for b in r.brokers]

    def wait_delivered(self, topic, reps, what=None):
        """Wait until every replica in @reps acknowledged its role for
        @topic as the assignment @reps says; returns {id: the ok call}."""
        followers = [a for _, a in reps[1:]]
        leader_address = reps[0][1]
        got = {}
        for k, (bid, _) in enumerate(reps):
            role = LEADER if k == 0 else FOLLOWER

            def acked(calls, role=role):
                for c in role_calls(calls, topic, ok=True):
                    if (c.req["role"] == role and
                            c.req["followers"] == followers and
                            c.req["leader_address"] == leader_address):
                        return c
                return None
            got[bid] = self.fbs[bid].wait_for(
                acked, DEADLINE, what or "%s's role in %s" % (bid, topic))
        return got

    # ---- tests ----

    def test_a_new_topic_is_told_leader_first_then_followers_once(self):
        # Brokers that take 0.3 s to answer: a follower told before the
        # leader's answer would be seen arriving before it.
        for fb in self.fbs.values():
            fb.set_delay(0.3)
        try:
            leader = self.leader_of("orders")
            reps = self.replicas("orders")
            self.assertEqual(len(reps), 3)
            self.assertEqual(reps[0][0], leader.broker_id)
            got = self.wait_delivered("orders", reps)
        finally:
            for fb in self.fbs.values():
                fb.set_delay(0)
        lead_ack = got[reps[0][0]]
        for bid, _ in reps[1:]:
            # A follower is told only once the leader acknowledged.
            first = role_calls(self.fbs[bid].calls(), "orders")[0]
            self.assertGreaterEqual(first.t, lead_ack.answered)
            self.assertEqual(first.req["role"], FOLLOWER)
        outsider = [b for b in self.fbs if b not in dict(reps)]
        self.assertEqual(len(outsider), 1)
        self.assertEqual(role_calls(self.fbs[outsider[0]].calls(), "orders"),
                         [])
        # Once per change: GetTopicLeader again, on every member, sends
        # nothing.  A later topic being delivered shows the leader had the
        # time to send anything the repeated requests could have caused.
        before = {b: len(role_calls(fb.calls(), "orders"))
                  for b, fb in self.fbs.items()}
        for i in range(3):
            self.assertEqual(self.leader_of("orders", via=i).broker_id,
                             leader.broker_id)
        self.leader_of("marker")
        self.wait_delivered("marker", self.replicas("marker"))
        after = {b: len(role_calls(fb.calls(), "orders"))
                 for b, fb in self.fbs.items()}
        self.assertEqual(before, after)

    def test_b_a_failing_broker_is_retried_until_it_acknowledges(self):
        for fb in self.fbs.values():
            fb.fail_next(2)
        try:
            self.leader_of("retried")
            reps = self.replicas("retried")
            got = self.wait_delivered("retried", reps)
        finally:
            for fb in self.fbs.values():
                fb.fail_next(0)
        lead = role_calls(self.fbs[reps[0][0]].calls(), "retried")
        # Two refusals, then the acknowledged one; the followers after it.
        self.assertGreaterEqual(len(lead), 3)
        self.assertEqual([c.outcome for c in lead[:2]],
                         ["UNAVAILABLE", "UNAVAILABLE"])
        self.assertEqual(lead[-1].outcome, "ok")
        for bid, _ in reps[1:]:
            first = role_calls(self.fbs[bid].calls(), "retried")[0]
            self.assertGreaterEqual(first.t, got[reps[0][0]].answered)

    def test_c_a_replaced_leader_is_removed_and_the_new_replicas_told(self):
        self.leader_of("moving")
        old = self.replicas("moving")
        self.wait_delivered("moving", old)
        dropped = old[0][0]

        def report():
            # A topic moves on reports at most once per --report-interval
            # (10 s by default), its creation included: ask until it does.
            try:
                return self.leader_of("moving", unreachable=[dropped])
            except grpc.RpcError as e:
                if "re-placed less than" not in (e.details() or ""):
                    raise
                time.sleep(0.5)
                return None
        new_leader = wait_until(report, DEADLINE, "a re-placement")
        new = self.replicas("moving")
        self.assertNotIn(dropped, dict(new), "the reported leader stayed")
        self.assertEqual(new[0][0], new_leader.broker_id)
        self.assertEqual(new[0][0], old[1][0])
        # The new assignment, leader first, to everyone in it ...
        self.wait_delivered("moving", new)
        added = [b for b, _ in new if b not in dict(old)]
        self.assertEqual(len(added), 1)
        # ... and RemoveTopic to the dropped broker, which had the topic.
        rm = self.fbs[dropped].wait_for(
            lambda calls: [c for c in calls if c.method == "RemoveTopic" and
                           c.req["topic"] == "moving" and c.outcome == "ok"],
            DEADLINE, "RemoveTopic moving on " + dropped)
        self.assertTrue(rm[0].req["reason"])
        self.assertNotIn("moving", self.fbs[dropped].roles)

    def test_z_a_new_leader_resumes_what_was_not_delivered(self):
        # Everything so far is settled; now every broker refuses roles.
        for fb in self.fbs.values():
            fb.refuse("SetTopicRole")
        try:
            self.leader_of("failover")
            reps = self.replicas("failover")
            lead_fb = self.fbs[reps[0][0]]
            lead_fb.wait_for(
                lambda calls: len(role_calls(calls, "failover")) >= 2,
                DEADLINE, "refused attempts on the leader replica")
            old = self.c.member(self.c.leader())
            old.kill()
            killed_at = time.monotonic()
            self.c.leader(other_than=old.name)
            # The new leader resumes: it tries the refusing broker again.
            lead_fb.wait_for(
                lambda calls: [c for c in role_calls(calls, "failover")
                               if c.t > killed_at],
                DEADLINE, "an attempt by the new leader")
        finally:
            for fb in self.fbs.values():
                fb.refuse("SetTopicRole", False)
        self.wait_delivered("failover", reps)
        # Settled topics were not sent again: the new leader resumed only
        # "failover" (and at the same pass as anything else it resumed).
        for fb in self.fbs.values():
            late = [c for c in fb.calls()
                    if c.t > killed_at and c.req.get("topic") != "failover"]
            self.assertEqual(late, [], "re-sent after failover on " + fb.id)


if __name__ == "__main__":
    unittest.main(verbosity=2)
