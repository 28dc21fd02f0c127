"""Broker failover end to end (issue 8), on a 3-member cluster with fake
brokers that are real gRPC servers (fakebroker.py) renewing themselves with
gRPC KeepAlive, each through a different member:

- a broker that stops goes suspicious, then down; its topics are re-placed
  and the new replicas are told their roles (SetTopicRole); when it comes
  back it is healthy again and told to drop the topics it lost
  (RemoveTopic);
- kill -9 of the goulettefs leader while a broker dies marks no live
  broker down, and the new leader finishes the dead broker's failover;
- a producer calling GetTopicLeader before every message, as Goulette's
  producer does, gets a working leader again after its leader broker dies;
- a client's unreachable_brokers report is a hint: it may move that topic
  (at most once per --report-interval), never marks a broker that still
  renews down, and so cannot take the ring down; a report of a broker that
  the leader has not heard from either sets it down at once.

Timelines are docs/liveness.md's.  Waits are for conditions, with generous
deadlines: nothing here asserts how fast something happened.
"""
import json
import os
import sys
import threading
import time
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakebroker import FakeBroker, LEADER, FOLLOWER, KeepAliveLoop, stubs  # noqa: E402,E501
from goulette import Cluster, TempDir, wait_until  # noqa: E402

SUSPECT, DOWN = 3, 6  # seconds: --broker-suspect-after, --broker-down-after
FAST = ["--broker-suspect-after", "%ds" % SUSPECT,
        "--broker-down-after", "%ds" % DOWN]
PERIOD = 0.3  # KeepAlive period of the fake brokers


def status(m, b):
    return json.loads(m.read("brokers", b))["status"]


def replicas(m, topic):
    rec = json.loads(m.read("topics", topic))
    return [(x["broker_id"], x["address"]) for x in rec["brokers"]]


def operations(m):
    out = []
    for name in os.listdir(m.path("operations")):
        op = json.loads(m.read("operations", name))
        op["params"] = json.loads(op["params"])
        out.append(op)
    return sorted(out, key=lambda o: o["id"])


class BrokerCluster(unittest.TestCase):
    """A 3-member cluster and five fake brokers b1..b5, registered, each
    renewing through member (i % 3) and falling over to the others."""
    EXTRA = FAST + ["--report-interval", "60s"]
    N_BROKERS = 5

    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3, extra=self.EXTRA).start()
        self.s = stubs()
        self.channels = [grpc.insecure_channel(m.grpc_address)
                         for m in self.c.members]
        self.fakes = {}
        self.loops = {}
        try:
            self.c.leader()
            for i in range(1, self.N_BROKERS + 1):
                b = "b%d" % i
                fb = FakeBroker(b, stubs_=self.s)
                self.fakes[b] = fb
                r = self.sentinel(0).RegisterBroker(
                    self.s.pb.RegisterBrokerRequest(broker_id=b,
                                                    address=fb.address),
                    timeout=30)
                self.assertTrue(r.success, r.error_message)
                self.renew(b, i % 3)
        except BaseException:
            self.cleanup()
            raise

    def tearDown(self):
        self.cleanup()

    def cleanup(self):
        for ka in self.loops.values():
            ka.stop()
        for fb in self.fakes.values():
            fb.close()
        for ch in self.channels:
            ch.close()
        try:
            self.c.stop()
        finally:
            self.tmp.remove()

    # ---- helpers ----

    def sentinel(self, i):
        return self.s.pb_grpc.SentinelServiceStub(self.channels[i])

    def renew(self, b, first=0):
        """Start renewing broker @b through member @first, then the others
        if that one fails."""
        order = [(first + k) % 3 for k in range(3)]
        self.loops[b] = KeepAliveLoop([self.sentinel(i) for i in order], b,
                                      self.fakes[b].address, PERIOD).start()

    def stop_renewing(self, b):
        self.loops.pop(b).stop()

    def leader_of(self, i, topic, count=3, unreachable=(), timeout=30):
        return self.sentinel(i).GetTopicLeader(
            self.s.pb.GetTopicLeaderRequest(
                topic=topic, replica_count=count,
                unreachable_brokers=list(unreachable)),
            timeout=timeout).leader

    def member(self):
        """A running member, to read the mount of."""
        return next(m for m in self.c.members if m.proc is not None)

    def roles_delivered(self, topic, m=None):
        """True when every replica of @topic, as stored, holds the role the
        assignment gives it: the leader LEADER, the others FOLLOWER, with
        the same followers list and leader address."""
        reps = replicas(m or self.member(), topic)
        leader_addr = reps[0][1]
        followers = [a for _, a in reps[1:]]
        for k, (b, _) in enumerate(reps):
            want = (LEADER if k == 0 else FOLLOWER, followers, leader_addr)
            if self.fakes[b].roles.get(topic) != want:
                return False
        return True


class FailoverTests(BrokerCluster):

    def test_a_stopped_broker_goes_down_and_its_topics_move_and_are_told(self):
        topics = ["t%d" % i for i in range(8)]
        for k, t in enumerate(topics):
            self.leader_of(k % 3, t)
        for t in topics:
            wait_until(lambda: self.roles_delivered(t), 60,
                       "roles of %s delivered" % t)
        m = self.c.members[2]
        victim = replicas(m, topics[0])[0][0]
        holding = [t for t in topics
                   if victim in [b for b, _ in replicas(m, t)]]
        alive = [b for b in self.fakes if b != victim]

        self.stop_renewing(victim)
        self.fakes[victim].stop()
        wait_until(lambda: status(m, victim) == 1, 60, "suspicious")
        wait_until(lambda: status(m, victim) == 2, 60, "down")
        for b in alive:
            self.assertEqual(status(m, b), 0, "%s was judged" % b)
        for t in holding:
            ids = [b for b, _ in replicas(m, t)]
            self.assertNotIn(victim, ids, t)
            self.assertEqual(len(ids), 3, t)
            # The new replica set, leader first, is told its roles.
            wait_until(lambda: self.roles_delivered(t, m), 60,
                       "roles of re-placed %s delivered" % t)
        ops = [o for o in operations(m)
               if o["function"] == "handleUnreachableBrokers"]
        moved = {o["params"]["topic"] for o in ops}
        self.assertTrue(set(holding) <= moved, (holding, moved))

        # It comes back: healthy again, and told to drop what it lost.
        self.fakes[victim].start()
        self.renew(victim, 1)
        wait_until(lambda: status(m, victim) == 0, 60, "healthy again")
        fb = self.fakes[victim]
        fb.wait_for(lambda calls: all(t not in fb.roles for t in holding),
                    60, "RemoveTopic of %s" % holding)
        removed = {c.req["topic"] for c in fb.calls("RemoveTopic", ok=True)}
        self.assertEqual(removed, set(holding))

    def test_a_leader_kill_while_a_broker_dies_marks_no_live_broker_down(self):
        topics = ["k%d" % k for k in range(4)]
        for k, t in enumerate(topics):
            self.leader_of(k % 3, t)
        for t in topics:
            wait_until(lambda: self.roles_delivered(t), 60,
                       "roles of %s delivered" % t)
        victim = replicas(self.member(), topics[0])[0][0]
        holding = [t for t in topics
                   if victim in [b for b, _ in replicas(self.member(), t)]]
        alive = [b for b in self.fakes if b != victim]
        # A broker dies, and so does the goulettefs leader.
        self.stop_renewing(victim)
        self.fakes[victim].stop()
        leader = self.c.member(self.c.leader())
        leader.kill()
        new = self.c.leader(other_than=leader.name)
        survivors = [m for m in self.c.members if m is not leader]
        # Twice the down threshold under the new leader: every live broker
        # renews (through the members still up) and none is judged.
        deadline = time.monotonic() + 2 * DOWN
        while time.monotonic() < deadline:
            for m in survivors:
                for b in alive:
                    self.assertEqual(status(m, b), 0,
                                     "%s judged on %s after the failover" %
                                     (b, m.name))
            time.sleep(0.5)
        # The dead one is down, its topics moved, and the new leader told
        # their new replicas.
        m = survivors[0]
        wait_until(lambda: status(m, victim) == 2, 60, "victim down")
        for t in holding:
            self.assertNotIn(victim, [b for b, _ in replicas(m, t)], t)
            wait_until(lambda: self.roles_delivered(t, m), 60,
                       "roles of %s delivered by the new leader" % t)
        # And it places and tells as the old one did.
        i = self.c.members.index(self.c.member(new))
        self.leader_of(i, "after-failover")
        wait_until(lambda: self.roles_delivered("after-failover", m),
                   60, "roles delivered by the new leader")

    def test_a_producer_gets_a_working_leader_again(self):
        """Goulette's producer (§5.1): GetTopicLeader before every message,
        then the message to that leader, which only accepts it if it was
        told it leads the topic.  Here the "message" is GetBrokerTopicRole
        to the leader, which answers LEADER only in that case."""
        topic = "produce"
        self.leader_of(0, topic)
        wait_until(lambda: self.roles_delivered(topic), 60, "roles")
        log = []  # (monotonic, ok, leader id)
        stop = threading.Event()
        pb = self.s.pb

        def producer():
            k = 0
            while not stop.is_set():
                k += 1
                ok, who = False, None
                try:
                    ldr = self.leader_of(k % 3, topic, timeout=5)
                    who = ldr.broker_id
                    with grpc.insecure_channel(ldr.address) as ch:
                        r = self.s.pb_grpc.BrokerServiceStub(ch) \
                            .GetBrokerTopicRole(
                                pb.GetBrokerTopicRoleRequest(
                                    broker_id=who, topic=topic),
                                timeout=2)
                    ok = r.success and r.role == LEADER
                except grpc.RpcError:
                    pass
                log.append((time.monotonic(), ok, who))
                stop.wait(0.05)

        th = threading.Thread(target=producer, daemon=True)
        th.start()
        try:
            wait_until(lambda: sum(1 for _, ok, _ in log if ok) >= 5, 60,
                       "messages through the first leader")
            victim = replicas(self.member(), topic)[0][0]
            self.stop_renewing(victim)
            self.fakes[victim].stop()
            died = time.monotonic()
            # Documented worst case: down_after + a check period + commits
            # + one SetTopicRole round; the deadline is far beyond it.
            wait_until(lambda: any(ok and who != victim and t > died
                                   for t, ok, who in log),
                       4 * DOWN + 60, "a working leader again")
            back = min(t for t, ok, who in log
                       if ok and who != victim and t > died)
            n = len(log)
            wait_until(lambda: len(log) >= n + 5, 60, "more messages")
        finally:
            stop.set()
            th.join(30)
        # Once recovered, every message goes through.
        self.assertTrue(all(ok for _, ok, _ in log[n:]), log[n:])
        print("producer: leader %s died; a working leader again after "
              "%.1f s (--broker-down-after %ds)" % (victim, back - died,
                                                    DOWN))

    def test_a_report_on_a_young_assignment_is_refused(self):
        # The topic was placed just now: a report of its leader, which
        # renews, may not move it before --report-interval (60 s here).
        for attempt in range(3):
            topic = "young%d" % attempt
            before = self.leader_of(0, topic)
            placed = time.monotonic()
            try:
                self.leader_of(1, topic, unreachable=[before.broker_id])
                moved = True
            except grpc.RpcError as e:
                moved = False
                self.assertEqual(e.code(), grpc.StatusCode.UNKNOWN)
                self.assertIn("at most once per --report-interval",
                              e.details())
            if time.monotonic() - placed < 30:
                break
        self.assertFalse(moved, "a report moved a topic placed just before")
        m = self.member()
        self.assertEqual(replicas(m, topic)[0][0], before.broker_id)
        self.assertEqual(status(m, before.broker_id), 0)


class ReportTests(BrokerCluster):
    """Reports with a short interval and long liveness thresholds, so that
    a report's effect is told apart from the detector's."""
    REPORT_AFTER = 10  # --broker-suspect-after / 2
    EXTRA = ["--broker-suspect-after", "%ds" % (2 * REPORT_AFTER),
             "--broker-down-after", "%ds" % (4 * REPORT_AFTER),
             "--report-interval", "2s"]

    def report_until_taken(self, topic, brokers, i=0, timeout=60):
        """Report @brokers for @topic until the report is taken (reports on
        a young assignment are refused); returns the new leader."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.leader_of(i, topic, unreachable=brokers)
            except grpc.RpcError as e:
                if ("--report-interval" not in e.details() or
                        time.monotonic() > deadline):
                    raise
            time.sleep(0.5)

    def test_a_report_moves_that_topic_only_and_marks_nobody_down(self):
        topics = ["r%d" % i for i in range(6)]
        for t in topics:
            self.leader_of(0, t)
        m = self.c.members[1]
        victim = replicas(m, topics[0])[0][0]
        others = {t: replicas(m, t) for t in topics[1:]}
        new = self.report_until_taken(topics[0], [victim], i=1)
        self.assertNotEqual(new.broker_id, victim)
        ids = [b for b, _ in replicas(m, topics[0])]
        self.assertNotIn(victim, ids)
        self.assertEqual(len(ids), 3)
        # It renews: still healthy, and its other topics stay where they
        # were.
        self.assertEqual(status(m, victim), 0)
        for t, reps in others.items():
            self.assertEqual(replicas(m, t), reps, t)
        wait_until(lambda: self.roles_delivered(topics[0], m), 60,
                   "roles of the moved topic")

    def test_one_client_cannot_take_the_ring_down(self):
        topics = ["ring%d" % i for i in range(5)]
        for t in topics:
            self.leader_of(0, t)
        m = self.c.members[2]
        start = time.monotonic()
        refused = taken = 0
        # Report every broker, on every topic, over and over for a while.
        while time.monotonic() - start < 8:
            for t in topics:
                for b in self.fakes:
                    try:
                        self.leader_of(taken % 3, t, unreachable=[b])
                        taken += 1
                    except grpc.RpcError as e:
                        self.assertIn("--report-interval", e.details())
                        refused += 1
        elapsed = time.monotonic() - start
        for b in self.fakes:
            self.assertEqual(status(m, b), 0, "%s was taken down" % b)
        moves = {}
        for o in operations(m):
            if o["function"] == "handleUnreachableBrokers":
                t = o["params"]["topic"]
                moves[t] = moves.get(t, 0) + 1
        for t in topics:
            self.assertEqual(len(replicas(m, t)), 3, t)
            # At most one move per interval (2 s), plus the first.
            self.assertLessEqual(moves.get(t, 0), elapsed / 2 + 2, t)
        self.assertGreater(refused, 0)

    def test_a_report_of_a_silent_broker_sets_it_down_at_once(self):
        topic = "silent"
        self.leader_of(0, topic)
        m = self.c.members[0]
        victim = replicas(m, topic)[0][0]
        self.stop_renewing(victim)
        silent_since = time.monotonic()
        # Silent for longer than report_after (suspect_after / 2) and well
        # before suspect_after: a report now is corroborated.
        time.sleep(self.REPORT_AFTER + 1)
        self.report_until_taken(topic, [victim], i=2)
        wait_until(lambda: status(m, victim) == 2, 60, "down")
        # Down straight from healthy: the report did it, not the detector,
        # which passes through suspicious first (after 20 s of silence).
        marks = [o["params"]["status"] for o in operations(m)
                 if o["function"] == "setBrokerStatus" and
                 o["params"]["broker_id"] == victim]
        self.assertEqual(marks, [2], "status changes of %s: %s, %.1f s "
                         "after it fell silent" %
                         (victim, marks, time.monotonic() - silent_since))
        for b in self.fakes:
            if b != victim:
                self.assertEqual(status(m, b), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
