"""Membership of a running goulettefs cluster, through the gRPC port and the
real goulettectl binary: a 4th member joins with --join, catches up on
what was written before it came, is promoted to voter by itself, takes
over leadership (goulettectl transfer), and another member is removed
(goulettectl member remove); every remaining mount converges and its
cluster/ files show the new membership.  Also goulettectl's exit statuses
and endpoint failover, and a join refused by a follower.

Each test starts its own cluster in a temporary directory and stops every
process it started (by pid), unmounting every mount.
"""
import json
import os
import unittest

import grpc

from goulette import (Cluster, Member, Stubs, TempDir, ctl, sh, tree,
                      wait_until)

S = None


def setUpModule():
    global S
    S = Stubs()


def tearDownModule():
    S.remove()


def member_id(name):
    """The Raft id goulettefs derives from a member name (FNV-1a 64)."""
    h = 14695981039346656037
    for b in name.encode():
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h or 1


class MembersTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3).start()
        self.leader_name = self.c.leader()
        self.extra = []

    def tearDown(self):
        try:
            rcs = [m.stop() for m in self.c.members + self.extra]
            self.assertTrue(all(rc in (0, None) for rc in rcs), rcs)
        finally:
            for m in self.c.members + self.extra:
                m.stop()
            self.tmp.remove()

    def endpoints(self, members=None):
        ms = members if members is not None else self.c.members + self.extra
        return ",".join(m.grpc_address for m in ms if m.proc is not None)

    def status(self, m):
        with grpc.insecure_channel(m.grpc_address) as ch:
            return S.fs_grpc.ClusterServiceStub(ch).Status(
                S.fs.StatusRequest(), timeout=10)

    def register(self, m, broker, port):
        with grpc.insecure_channel(m.grpc_address) as ch:
            r = S.pb_grpc.SentinelServiceStub(ch).RegisterBroker(
                S.pb.RegisterBrokerRequest(
                    broker_id=broker, address="127.0.0.1:%d" % port),
                timeout=30)
        self.assertTrue(r.success, r.error_message)

    def join(self, name, through):
        m = Member(self.tmp.path, name, extra=["--join",
                                               through.grpc_address])
        self.extra.append(m)
        return m.start()

    def role_of(self, observer, name):
        for x in self.status(observer).members:
            if x.id == member_id(name):
                return "learner" if x.learner else "voter"
        return None

    def converged(self, members, timeout=60):
        def same():
            trees = [tree(m.mnt) for m in members]
            return all(t == trees[0] for t in trees[1:]) and trees[0]
        return wait_until(same, timeout, "identical trees")

    def test_a_member_joins_catches_up_leads_and_another_leaves(self):
        leader = self.c.member(self.leader_name)
        # Written before the new member exists: it must catch up.
        for k in range(1, 4):
            self.register(self.c.members[k - 1], "b%d" % k, 9000 + k)
        rc, _, err = ctl("brokers", "--replicas", "3", "orders",
                         endpoints=self.endpoints())
        self.assertEqual(rc, 0, err)

        n4 = self.join("n4", leader)
        wait_until(lambda: self.role_of(leader, "n4") == "voter", 60,
                   "n4 promoted to voter")
        everyone = self.c.members + [n4]
        t = self.converged(everyone)
        self.assertIn("brokers/b3", t)
        self.assertIn("topics/orders", t)

        # Leadership moves to the newcomer.
        rc, out, err = ctl("transfer", "n4", endpoints=self.endpoints())
        self.assertEqual(rc, 0, err)
        self.assertIn("n4 leads", out)
        wait_until(lambda: all(self.status(m).leader_id == member_id("n4")
                               for m in everyone), 30, "everyone follows n4")

        # An original member leaves; the survivors keep working.
        gone = next(m for m in self.c.members if m.name != self.leader_name)
        rc, out, err = ctl("member", "remove", gone.name,
                           endpoints=self.endpoints([n4]))
        self.assertEqual(rc, 0, err)
        self.assertNotIn(gone.name + " ", out)
        self.assertEqual(gone.stop(), 0)
        rest = [m for m in everyone if m is not gone]
        for m in rest:
            def shown(m=m):
                lines = m.read("cluster", "members").split("\n")
                lines = [ln for ln in lines if ln.strip()]
                ids = {ln.split()[1] for ln in lines}
                return (len(lines) == 3 and
                        "%016x" % member_id(gone.name) not in ids and
                        "%016x" % member_id("n4") in ids)
            wait_until(shown, 30, "cluster/members on " + m.name)
        rc, _, err = sh("echo 127.0.0.1:9104 > '%s'" %
                        n4.path("brokers", "b4"))
        self.assertEqual(rc, 0, err)
        t = self.converged(rest)
        self.assertIn("brokers/b4", t)
        for m in rest:
            st = json.loads(m.read("cluster", "status"))
            self.assertEqual(len(st["members"]), 3)

    def test_a_join_through_a_follower_names_the_leader(self):
        follower = next(m for m in self.c.members
                        if m.name != self.leader_name)
        m = Member(self.tmp.path, "n5", extra=["--join",
                                               follower.grpc_address])
        self.extra.append(m)
        m.start(wait=False)
        rc = m.proc.wait(timeout=60)
        self.assertNotEqual(rc, 0)
        self.assertIn("the leader is " + self.leader_name, m.logtext())
        m.proc = None
        # Nothing changed.
        self.assertEqual(len(self.status(follower).members), 3)


class JoinBySnapshotTest(MembersTest):
    """The log is compacted long before the newcomer arrives (snapshot every
    20 entries).  The scenarios inherited from MembersTest (join, transfer,
    removal) run again under this constant compaction."""

    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3,
                         extra=["--snapshot-threshold", "20"]).start()
        self.leader_name = self.c.leader()
        self.extra = []

    def test_a_joiner_catches_up_by_snapshot_when_the_log_is_compacted(self):
        leader = self.c.member(self.leader_name)
        self.register(leader, "b1", 9001)
        for i in range(60):
            rc, _, err = sh("echo 1 > '%s'" % leader.path("topics", "t%d" % i))
            self.assertEqual(rc, 0, err)
        self.assertIn("took snapshot", leader.logtext())
        n4 = Member(self.tmp.path, "n4",
                    extra=["--join", leader.grpc_address,
                           "--snapshot-threshold", "20"])
        self.extra.append(n4)
        n4.start()
        wait_until(lambda: self.role_of(leader, "n4") == "voter", 60,
                   "n4 promoted to voter")
        t = self.converged(self.c.members + [n4], timeout=120)
        self.assertEqual(len([k for k in t if k.startswith("topics/")]), 60)
        self.assertIn("installed snapshot", n4.logtext())

        # Restarted from its data directory alone (no --join), the joined
        # member comes back with its identity and keeps following.
        self.assertEqual(n4.stop(), 0)
        again = Member(self.tmp.path, "n4", peer_port=n4.peer_port,
                       grpc_port=n4.grpc_port,
                       extra=["--snapshot-threshold", "20"])
        self.extra.append(again)
        again.start()
        rc, _, err = sh("echo 1 > '%s'" % leader.path("topics", "later"))
        self.assertEqual(rc, 0, err)
        self.converged(self.c.members + [again], timeout=120)
        self.assertEqual(self.role_of(leader, "n4"), "voter")


class CtlTest(unittest.TestCase):
    """goulettectl's commands and exit statuses on a running cluster."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.c = Cluster(cls.tmp.path, 3).start()
        cls.leader_name = cls.c.leader()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.stop()
        finally:
            cls.tmp.remove()

    def eps(self, members):
        return ",".join(m.grpc_address for m in members)

    def test_status_answers_from_the_first_member_that_answers(self):
        dead = "127.0.0.1:1"
        rc, out, err = ctl("status", endpoints=dead + "," +
                           self.c.members[1].grpc_address)
        self.assertEqual(rc, 0, err)
        self.assertIn("member:        n2", out)
        self.assertIn("leader:        " + self.leader_name, out)
        self.assertIn("serving:       yes", out)

    def test_members_lists_every_member_with_its_role(self):
        rc, out, err = ctl("members", endpoints=self.c.members[0].grpc_address)
        self.assertEqual(rc, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(len(lines), 4)
        self.assertEqual(sorted(ln.split()[0] for ln in lines[1:]),
                         ["n1", "n2", "n3"])
        self.assertTrue(all(" voter " in ln for ln in lines[1:]))
        self.assertEqual(sum("(leader)" in ln for ln in lines), 1)

    def test_leader_commands_follow_the_redirect(self):
        followers = [m for m in self.c.members if m.name != self.leader_name]
        leader = self.c.member(self.leader_name)
        # A learner that never starts: added, then removed, both through
        # a follower listed first.
        rc, out, err = ctl("member", "add", "ghost", "127.0.0.1:2",
                           endpoints=self.eps(followers + [leader]))
        self.assertEqual(rc, 0, err)
        self.assertIn(" learner ", out)
        rc, out, err = ctl("member", "remove", "ghost",
                           endpoints=self.eps(followers + [leader]))
        self.assertEqual(rc, 0, err)
        self.assertNotIn(" learner ", out)
        # Only followers: the leader cannot be found there.
        rc, _, err = ctl("member", "remove", "ghost",
                         endpoints=self.eps(followers))
        self.assertEqual(rc, 1)
        self.assertIn("FAILED_PRECONDITION", err)
        self.assertIn("the leader is " + self.leader_name, err)

    def test_failures_exit_1_with_a_message(self):
        rc, _, err = ctl("status", endpoints="127.0.0.1:1")
        self.assertEqual(rc, 1)
        self.assertIn("UNAVAILABLE", err)
        rc, _, err = ctl("member", "promote", "nobody",
                         endpoints=self.eps(self.c.members))
        self.assertEqual(rc, 1)
        self.assertIn("no such member", err)
        rc, _, err = ctl("transfer", "nobody",
                         endpoints=self.eps(self.c.members))
        self.assertEqual(rc, 1)
        self.assertIn("no such voter", err)
        rc, _, err = ctl("brokers", "never-placed",
                         endpoints=self.eps(self.c.members))
        self.assertEqual(rc, 1)
        self.assertIn("NOT_FOUND", err)

    def test_usage_errors_exit_2(self):
        for args in (["status", "extra"], ["member"], ["member", "dance", "x"],
                     ["transfer"], ["brokers"], ["brokers", "--replicas",
                                                 "0", "t"]):
            rc, _, err = ctl(*args)
            self.assertEqual(rc, 2, (args, err))
        rc, _, _ = ctl("--endpoints", "", "status")
        self.assertEqual(rc, 2)
        rc, _, _ = ctl("--endpoints")
        self.assertEqual(rc, 2)

    def test_brokers_prints_the_replica_set_leader_first(self):
        with grpc.insecure_channel(self.c.members[0].grpc_address) as ch:
            stub = S.pb_grpc.SentinelServiceStub(ch)
            for k in range(1, 4):
                stub.RegisterBroker(S.pb.RegisterBrokerRequest(
                    broker_id="c%d" % k, address="127.0.0.1:%d" % (7700 + k)),
                    timeout=30)
        rc, out, err = ctl("brokers", "--replicas", "2", "events",
                           endpoints=self.c.members[2].grpc_address)
        self.assertEqual(rc, 0, err)
        lines = out.strip().split("\n")
        self.assertEqual(lines[0], "topic events version 1 replica_count 2")
        self.assertTrue(lines[1].startswith("leader "))
        self.assertTrue(lines[2].startswith("follower "))
        _, ring, _ = ctl("ring", "--brokers", "c1,c2,c3", "events")
        order = ring.split(":", 1)[1].split()
        self.assertEqual([ln.split()[1] for ln in lines[1:]], order[:2])


if __name__ == "__main__":
    unittest.main(verbosity=2)
