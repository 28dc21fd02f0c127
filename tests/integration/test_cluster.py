"""A goulettefs cluster of 3 real processes on loopback, each with its own
mount: replication of every write to every mount (content and revisions),
inotify on every member for changes made through another, failover after
kill -9 of the leader with nothing acknowledged lost and convergence of all
trees, loss and return of quorum, and a leader paused past its election
timeout.

Each test starts its own cluster in a temporary directory and always stops
every process it started (by pid) and unmounts.
"""
import errno
import json
import os
import signal
import threading
import time
import unittest

from goulette import (Cluster, Inotify, TempDir, sh, tree, wait_until)


def xattrs(path):
    return {name: os.getxattr(path, name) for name in os.listxattr(path)
            if name.startswith("user.goulette.") and
            name != "user.goulette.revision"}


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3).start()
        self.leader_name = self.c.leader()

    def tearDown(self):
        try:
            self.c.stop()
        finally:
            self.tmp.remove()

    def echo(self, member, rel, text):
        return sh("echo '%s' > '%s'" % (text, member.path(rel)))

    def ok(self, member, rel, text):
        rc, _, err = self.echo(member, rel, text)
        self.assertEqual(rc, 0, "%s: echo %s > %s: %s" %
                         (member.name, text, rel, err))

    def converged(self, members, timeout=60):
        """Wait until every member in @members shows the same tree."""
        def same():
            trees = [tree(m.mnt) for m in members]
            return all(t == trees[0] for t in trees[1:]) and trees[0]
        return wait_until(same, timeout, "identical trees")


class ReplicationTests(ClusterTest):
    def test_every_member_names_the_same_leader(self):
        for m in self.c.members:
            st = json.loads(m.read("cluster", "status"))
            self.assertEqual(st["leader"], self.leader_name)
            self.assertEqual(sorted(x["name"] for x in st["members"]),
                             ["n1", "n2", "n3"])
            self.assertEqual(st["member"], m.name)
        states = sorted(m.read("cluster", "state").strip()
                        for m in self.c.members)
        self.assertEqual(states, ["follower", "follower", "leader"])

    def test_a_write_on_one_member_is_identical_on_the_others(self):
        n1, n2, n3 = self.c.members
        self.ok(n1, "brokers/b1", "127.0.0.1:50051")
        self.ok(n2, "brokers/b2", "127.0.0.1:50052")
        self.ok(n3, "topics/orders", "2")
        self.converged(self.c.members)
        for rel in ("topics/orders", "brokers/b1", "operations/3"):
            with self.subTest(rel=rel):
                attrs = [xattrs(m.path(rel)) for m in self.c.members]
                self.assertEqual(attrs[0], attrs[1])
                self.assertEqual(attrs[0], attrs[2])
                self.assertIn("user.goulette.mod_revision", attrs[0])

    def test_a_write_returns_only_when_the_writing_member_shows_it(self):
        # Reads on a member see every write made through it.
        for i, m in enumerate(self.c.members):
            self.ok(m, "brokers/b%d" % i, "127.0.0.1:%d" % (50051 + i))
            rec = json.loads(m.read("brokers", "b%d" % i))
            self.assertEqual(rec["address"], "127.0.0.1:%d" % (50051 + i))

    def test_inotify_on_member_3_sees_changes_made_on_member_1(self):
        n1, _, n3 = self.c.members
        self.ok(n1, "brokers/b1", "127.0.0.1:50051")
        self.converged(self.c.members)
        with Inotify() as ino:
            ino.watch(n3.path("topics"), "topics")
            ino.watch(n3.path("operations"), "operations")
            self.ok(n1, "topics/t", "1")
            self.ok(n1, "topics/t", '{"replica_count":1}')  # no-op
            os.unlink(n1.path("topics/t"))
            events = ino.collect(9, timeout=60)
        topic = [e for e in events if e[0] == "topics"]
        self.assertEqual(topic, [("topics", "IN_CREATE", "t"),
                                 ("topics", "IN_MODIFY", "t"),
                                 ("topics", "IN_CLOSE_WRITE", "t"),
                                 ("topics", "IN_DELETE", "t")])
        ops = [e for e in events if e[0] == "operations"]
        self.assertEqual([e[2] for e in ops if e[1] == "IN_CREATE"],
                         ["2", "3"])
        # Content was there when the event came.
        self.assertEqual(json.loads(n3.read("operations", "3"))["function"],
                         "removeTopic")


class FailoverTests(ClusterTest):
    def test_kill_9_of_the_leader_during_writes_loses_nothing(self):
        leader = self.c.member(self.leader_name)
        for i, m in enumerate(self.c.members):
            self.ok(m, "brokers/b%d" % i, "127.0.0.1:%d" % (50051 + i))
        acked = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(m, prefix):
            i = 0
            while not stop.is_set():
                name = "%s%d" % (prefix, i)
                rc, _, _ = sh("echo 1 > '%s'" % m.path("topics", name))
                if rc == 0:
                    with lock:
                        acked.append(name)
                i += 1

        threads = [threading.Thread(target=writer, args=(m, m.name + "-"))
                   for m in self.c.members]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(acked) >= 30, 120, "30 acknowledged writes")
            leader.kill()
            survivors = [m for m in self.c.members if m is not leader]
            new = self.c.leader(timeout=60, other_than=leader.name)
            self.assertIn(new, [m.name for m in survivors])
            before = len(acked)
            wait_until(lambda: len(acked) > before + 5, 120,
                       "writes after the failover")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        leader.start()
        self.c.leader(timeout=60)
        trees = self.converged(self.c.members, timeout=120)
        topics = {k[len("topics/"):] for k in trees if k.startswith("topics/")}
        missing = [n for n in acked if n not in topics]
        self.assertEqual(missing, [], "acknowledged but lost")
        # Nothing committed twice: one operation per record change, ids
        # dense.
        ops = sorted(int(k.split("/")[1]) for k in trees
                     if k.startswith("operations/"))
        self.assertEqual(ops, list(range(1, len(ops) + 1)))
        self.assertEqual(int(trees["increment/operation"]), len(ops))
        self.assertEqual(len(ops), 3 + len(topics))
        del survivors

    def test_without_quorum_writes_fail_in_bounded_time_and_reads_work(self):
        n = self.c.members
        self.ok(n[0], "brokers/b1", "127.0.0.1:50051")
        self.converged(n)
        others = [m for m in n if m.name != self.leader_name]
        survivor = self.c.member(self.leader_name)
        for m in others:
            m.kill()
        t0 = time.monotonic()
        rc, _, err = self.echo(survivor, "brokers/b2", "127.0.0.1:50052")
        elapsed = time.monotonic() - t0
        self.assertNotEqual(rc, 0, "a write without quorum succeeded")
        self.assertLess(elapsed, 60, "the write hung")
        self.assertTrue(err.strip(), "the shell reported no error")
        # Reads keep working on the member that is left.
        self.assertEqual(json.loads(survivor.read("brokers", "b1"))
                         ["address"], "127.0.0.1:50051")
        for m in others:
            m.start()
        # Writes resume by themselves once quorum is back.
        wait_until(lambda: self.echo(survivor, "brokers/b3",
                                     "127.0.0.1:50053")[0] == 0,
                   120, "writes to resume")
        self.converged(n, timeout=120)

    def test_a_paused_leader_steps_down_and_serves_no_stale_commit(self):
        old = self.c.member(self.leader_name)
        self.ok(old, "brokers/b1", "127.0.0.1:50051")
        self.converged(self.c.members)
        old.proc.send_signal(signal.SIGSTOP)
        try:
            others = [m for m in self.c.members if m is not old]

            def new_leader():
                names = {m.read("cluster", "leader").strip() for m in others}
                return len(names) == 1 and names != {old.name} and \
                    names != {""}
            wait_until(new_leader, 60, "a new leader among the others")
            self.ok(others[0], "brokers/b1", "127.0.0.1:60000")
        finally:
            old.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: old.read("cluster", "state").strip() ==
                   "follower", 60, "the old leader to step down")
        # After it rejoined, it shows the value committed in its absence.
        wait_until(lambda: json.loads(old.read("brokers", "b1"))["address"]
                   == "127.0.0.1:60000", 60, "the new value on the old leader")
        # A write through it goes to the new leader and is seen everywhere.
        self.ok(old, "brokers/b2", "127.0.0.1:50052")
        self.converged(self.c.members)


class SnapshotTests(ClusterTest):
    """A small snapshot threshold, so that a few writes compact the log."""

    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3,
                         extra=["--snapshot-threshold", "20"]).start()
        self.leader_name = self.c.leader()

    def follower_and_writer(self):
        leader = self.c.member(self.leader_name)
        follower = next(m for m in self.c.members if m is not leader)
        return follower, leader

    def test_a_member_behind_the_compacted_log_catches_up_by_snapshot(self):
        follower, writer = self.follower_and_writer()
        self.ok(writer, "brokers/b1", "127.0.0.1:50051")
        self.converged(self.c.members)
        self.assertEqual(follower.stop(), 0)
        for i in range(80):
            self.ok(writer, "topics/t%d" % i, "1")
        self.assertIn("took snapshot", writer.logtext())
        follower.start()
        self.converged(self.c.members, timeout=120)
        self.assertIn("installed snapshot", follower.logtext())
        self.assertEqual(len(os.listdir(follower.path("topics"))), 80)
        # It keeps following the log afterwards.
        self.ok(writer, "topics/after", "1")
        self.converged(self.c.members)



class PartitionTests(ClusterTest):
    """Member n1's incoming peer traffic goes through a proxy the test cuts:
    n1 keeps running, with its mount, but falls behind."""

    def setUp(self):
        self.tmp = TempDir()
        self.c = Cluster(self.tmp.path, 3, proxied=True,
                         extra=["--snapshot-threshold", "20"]).start()
        self.leader_name = self.c.leader()
        n1 = self.c.member("n1")
        if self.leader_name == "n1":
            # n1 must be a follower: hand leadership away by restarting it.
            n1.stop()
            self.leader_name = self.c.leader(other_than="n1")
            n1.start()
            self.c.leader()

    def test_a_snapshot_install_raises_events_for_what_it_changed(self):
        n1 = self.c.member("n1")
        writer = self.c.member(self.leader_name)
        self.ok(writer, "brokers/b1", "127.0.0.1:50051")
        self.ok(writer, "topics/gone", "1")
        self.converged(self.c.members)
        with Inotify() as ino:
            ino.watch(n1.path("topics"), "topics")
            self.c.proxy.cut()
            try:
                os.unlink(writer.path("topics/gone"))
                for i in range(60):
                    self.ok(writer, "topics/s%d" % i, "1")
                wait_until(lambda: "took snapshot" in writer.logtext(), 60,
                           "a snapshot on the leader")
            finally:
                self.c.proxy.restore()
            self.converged(self.c.members, timeout=120)
            events = ino.collect(200, timeout=30, settle=1.0)
        self.assertIn("installed snapshot", n1.logtext())
        created = {e[2] for e in events if e[1] == "IN_CREATE"}
        self.assertEqual(created, {"s%d" % i for i in range(60)})
        self.assertIn(("topics", "IN_DELETE", "gone"), events)
        # Content is there for whoever reacts to an event.
        self.assertEqual(json.loads(n1.read("topics", "s59"))["topic"], "s59")


if __name__ == "__main__":
    unittest.main(verbosity=2)
