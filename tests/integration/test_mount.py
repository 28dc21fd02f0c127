"""goulettefs on one member, end to end through a real FUSE mount: the file
formats, every write and its errors as the shell reports them, revisions as
extended attributes, numeric order of operations, inotify events for every
kind of change, and durability across kill -9.

Each test class starts its own member in a temporary directory and always
stops it (by pid) and unmounts.
"""
import errno
import json
import os
import signal
import subprocess
import threading
import time
import unittest

from goulette import GOULETTEFS, Inotify, Member, TempDir, sh, wait_until

GOULETTECTL = os.path.abspath(os.environ.get(
    "GOULETTECTL", os.path.join(os.path.dirname(GOULETTEFS), "goulettectl")))


def ring(brokers, *topics):
    out = subprocess.run([GOULETTECTL, "ring", "--brokers", ",".join(brokers),
                          *topics], capture_output=True, text=True,
                         check=True).stdout
    return {line.split(":")[0]: line.split(":")[1].split()
            for line in out.strip().split("\n")}


class MemberTest(unittest.TestCase):
    """A fresh single-member cluster per test."""

    def setUp(self):
        self.tmp = TempDir()
        self.m = Member(self.tmp.path, "n1")
        self.m.start()
        self.assertEqual(self.m.wait_leader(), "n1")

    def tearDown(self):
        try:
            rc = self.m.stop()
            self.assertEqual(rc, 0, self.m.logtext())
        finally:
            self.tmp.remove()

    def p(self, *parts):
        return self.m.path(*parts)

    def write(self, rel, text):
        """echo TEXT > MNT/REL; returns (status, stderr)."""
        rc, _, err = sh("echo '%s' > '%s'" % (text, self.p(rel)))
        return rc, err

    def ok(self, rel, text):
        rc, err = self.write(rel, text)
        self.assertEqual(rc, 0, "echo %s > %s: %s" % (text, rel, err))

    def record(self, rel):
        return json.loads(self.m.read(rel))

    def counter(self):
        """The operation counter; its file exists from the first operation
        on, as the etcd key did."""
        try:
            return int(self.m.read("increment", "operation"))
        except FileNotFoundError:
            return 0

    def brokers(self, n):
        ids = ["b%d" % i for i in range(1, n + 1)]
        for i, b in enumerate(ids):
            self.ok("brokers/" + b, "127.0.0.1:%d" % (50051 + i))
        return ids


class FormatTests(MemberTest):
    def test_tree_has_the_goulette_directories(self):
        self.assertEqual(sorted(os.listdir(self.m.mnt)),
                         ["brokers", "cluster", "increment", "operations",
                          "topics"])
        self.assertEqual(os.listdir(self.p("increment")), [])
        self.ok("brokers/b1", "127.0.0.1:50051")
        self.assertEqual(os.listdir(self.p("increment")), ["operation"])
        self.assertEqual(self.m.read("increment", "operation"), "1\n")

    def test_broker_record_has_goulettes_fields_in_order(self):
        self.ok("brokers/b1", "127.0.0.1:50051")
        text = self.m.read("brokers", "b1")
        self.assertTrue(text.endswith("\n"))
        rec = json.loads(text)
        self.assertEqual(list(rec)[:3], ["broker_id", "address", "status"])
        self.assertEqual(rec["broker_id"], "b1")
        self.assertEqual(rec["address"], "127.0.0.1:50051")
        self.assertEqual(rec["status"], 0)

    def test_topic_record_is_placed_as_goulettes_ring_places_it(self):
        ids = self.brokers(4)
        t0 = int(time.time())
        self.ok("topics/orders", "3")
        text = self.m.read("topics", "orders")
        self.assertTrue(text.endswith("\n"))
        rec = json.loads(text)
        self.assertEqual(list(rec), ["topic", "brokers", "version",
                                     "timestamp", "replica_count"])
        self.assertEqual(rec["topic"], "orders")
        self.assertEqual(rec["replica_count"], 3)
        self.assertEqual([b["broker_id"] for b in rec["brokers"]],
                         ring(ids, "orders")["orders"][:3])
        for b in rec["brokers"]:
            self.assertEqual(list(b), ["broker_id", "address", "status"])
        self.assertLessEqual(abs(rec["timestamp"] - t0), 5)
        self.assertEqual(rec["version"] // 10**9, rec["timestamp"])

    def test_operation_records_encode_params_as_a_json_string(self):
        self.brokers(3)
        self.ok("topics/t", "2")
        n = self.counter()
        op = self.record("operations/%d" % n)
        self.assertEqual(list(op), ["id", "function", "params", "timestamp"])
        self.assertEqual(op["id"], n)
        self.assertEqual(op["function"], "generateTopicReplicas")
        self.assertIsInstance(op["params"], str)
        params = json.loads(op["params"])
        self.assertEqual(list(params), sorted(params))  # Go map key order
        self.assertEqual(params["topic"], "t")
        self.assertEqual(params["replica_count"], 2)
        first = self.record("operations/1")
        self.assertEqual(first["function"], "registerBroker")

    def test_stat_size_matches_content_and_mtime_follows_the_record(self):
        self.brokers(2)
        self.ok("topics/t", "1")
        for rel in ("topics/t", "brokers/b1", "operations/1",
                    "increment/operation", "cluster/status",
                    "cluster/members"):
            with self.subTest(rel=rel):
                st = os.stat(self.p(rel))
                self.assertEqual(st.st_size, len(self.m.read(rel).encode()))
        rec = self.record("topics/t")
        self.assertEqual(int(os.stat(self.p("topics/t")).st_mtime),
                         rec["timestamp"])

    def test_operations_list_in_numeric_order_past_9_and_99(self):
        # 3 registrations, then topics until the log passes 100 entries.
        self.brokers(3)
        for i in range(100):
            self.ok("topics/t%d" % i, "1")
        names = os.listdir(self.p("operations"))
        self.assertEqual(names, [str(i) for i in range(1, 104)])
        # ls sorts names itself: directory order (-U) and version order
        # (-v) are numeric.
        for flag in ("-U", "-v"):
            rc, out, _ = sh("ls %s '%s'" % (flag, self.p("operations")))
            self.assertEqual(out.split(), [str(i) for i in range(1, 104)])
        self.assertEqual(self.counter(), 103)

    def test_revisions_are_extended_attributes(self):
        self.brokers(3)
        self.ok("topics/t", "1")
        rc, out, err = sh("getfattr -d '%s'" % self.p("topics/t"))
        self.assertEqual(rc, 0, err)
        for name in ("create_revision", "mod_revision", "version",
                     "revision"):
            self.assertIn("user.goulette." + name + "=", out)

        def attr(name):
            return int(os.getxattr(self.p("topics/t"),
                                   "user.goulette." + name))
        created, mod, version = (attr("create_revision"),
                                 attr("mod_revision"), attr("version"))
        self.assertEqual(created, mod)
        self.assertEqual(version, 1)
        self.ok("topics/t", "2")  # resize: a modification
        self.assertEqual(attr("create_revision"), created)
        self.assertGreater(attr("mod_revision"), mod)
        self.assertEqual(attr("version"), 2)

    def test_directory_mtimes_follow_the_changes_in_them(self):
        before = os.stat(self.p("topics")).st_mtime
        self.assertGreater(before, time.time() - 3600)  # not 1970
        time.sleep(0.05)
        self.brokers(1)
        self.ok("topics/t", "1")
        self.assertGreater(os.stat(self.p("topics")).st_mtime, before)
        self.assertGreater(os.stat(self.p("operations")).st_mtime, before)

    def test_cluster_files_show_this_member_leading(self):
        self.assertEqual(self.m.read("cluster", "member"), "n1\n")
        self.assertEqual(self.m.read("cluster", "state"), "leader\n")
        st = json.loads(self.m.read("cluster", "status"))
        self.assertEqual(st["leader"], "n1")
        self.assertGreaterEqual(st["term"], 1)
        self.assertGreaterEqual(st["applied_index"], 1)
        self.assertEqual([m["name"] for m in st["members"]], ["n1"])
        self.assertEqual(self.m.read("cluster", "members").split()[0], "n1")


class WriteTests(MemberTest):
    def test_register_update_and_unregister_a_broker(self):
        self.ok("brokers/b1", "127.0.0.1:50051")
        self.ok("brokers/b1", "127.0.0.1:60000")
        self.assertEqual(self.record("brokers/b1")["address"],
                         "127.0.0.1:60000")
        os.unlink(self.p("brokers/b1"))
        self.assertEqual(os.listdir(self.p("brokers")), [])
        self.assertEqual(self.record("operations/%d" % self.counter())
                         ["function"], "unregisterBroker")

    def test_broker_json_record_registers_and_sets_status(self):
        self.ok("brokers/b1",
                '{"broker_id":"b1","address":"127.0.0.1:50051"}')
        self.ok("brokers/b1", '{"status":1}')
        self.assertEqual(self.record("brokers/b1")["status"], 1)

    def test_touch_creates_a_topic_with_three_replicas(self):
        self.brokers(3)
        rc, _, err = sh("touch '%s'" % self.p("topics/t"))
        self.assertEqual(rc, 0, err)
        rec = self.record("topics/t")
        self.assertEqual(rec["replica_count"], 3)
        self.assertEqual(len(rec["brokers"]), 3)

    def test_resize_and_remove_a_topic(self):
        self.brokers(4)
        self.ok("topics/t", "3")
        leader = self.record("topics/t")["brokers"][0]["broker_id"]
        self.ok("topics/t", "1")
        rec = self.record("topics/t")
        self.assertEqual(rec["replica_count"], 1)
        self.assertEqual([b["broker_id"] for b in rec["brokers"]], [leader])
        os.unlink(self.p("topics/t"))
        self.assertFalse(os.path.exists(self.p("topics/t")))
        self.assertEqual(self.record("operations/%d" % self.counter())
                         ["function"], "removeTopic")

    def test_reporting_the_leader_unreachable_elects_a_new_one(self):
        self.brokers(4)
        self.ok("topics/t", "2")
        before = [b["broker_id"] for b in self.record("topics/t")["brokers"]]
        self.ok("topics/t", '{"unreachable_brokers":["%s"]}' % before[0])
        after = [b["broker_id"] for b in self.record("topics/t")["brokers"]]
        self.assertEqual(len(after), 2)
        self.assertNotIn(before[0], after)
        self.assertEqual(after[0], before[1])  # first healthy survivor
        op = self.record("operations/%d" % self.counter())
        self.assertIn(op["function"], ("handleUnreachableBrokers",
                                       "setBrokerStatus"))

    def test_cp_and_tee_write_whole_values(self):
        self.brokers(3)
        src = os.path.join(self.tmp.path, "value")
        with open(src, "w") as f:
            f.write("2\n")
        rc, _, err = sh("cp '%s' '%s'" % (src, self.p("topics/a")))
        self.assertEqual(rc, 0, err)
        rc, _, err = sh("echo 1 | tee '%s' >/dev/null" % self.p("topics/b"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.record("topics/a")["replica_count"], 2)
        self.assertEqual(self.record("topics/b")["replica_count"], 1)
        # A record copied back (as cat prints it) is a no-op resize.
        rc, _, err = sh("cat '%s' > '%s/rec' && cp '%s/rec' '%s'" % (
            self.p("topics/a"), self.tmp.path, self.tmp.path,
            self.p("topics/a")))
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.record("topics/a")["replica_count"], 2)


class ErrorTests(MemberTest):
    """Each bad write fails the system call with a precise errno, which the
    shell reports, and changes nothing."""

    def assert_fails(self, cmd, code):
        before = (self.counter(), sorted(os.listdir(self.p("topics"))),
                  sorted(os.listdir(self.p("brokers"))))
        rc, out, err = sh(cmd)
        self.assertNotEqual(rc, 0, "%s succeeded" % cmd)
        self.assertIn(os.strerror(code), err, cmd)
        after = (self.counter(), sorted(os.listdir(self.p("topics"))),
                 sorted(os.listdir(self.p("brokers"))))
        self.assertEqual(before, after, "%s changed something" % cmd)

    def test_bad_values_are_einval(self):
        self.brokers(3)
        self.ok("topics/t", "1")
        p = self.p
        for cmd in ("echo nonsense > '%s'" % p("topics/x"),
                    "echo 0 > '%s'" % p("topics/x"),
                    "echo 2000 > '%s'" % p("topics/x"),
                    "echo -1 > '%s'" % p("topics/t"),
                    "echo '{\"bogus\":1}' > '%s'" % p("topics/t"),
                    "echo '{\"unreachable_brokers\":[]}' > '%s'" %
                    p("topics/t"),
                    "echo nohost > '%s'" % p("brokers/b9"),
                    "echo ':80' > '%s'" % p("brokers/b9"),
                    "echo 'h:0' > '%s'" % p("brokers/b9"),
                    "echo 'h:70000' > '%s'" % p("brokers/b9"),
                    "echo '{\"broker_id\":\"other\",\"address\":\"h:1\"}' "
                    "> '%s'" % p("brokers/b9"),
                    "touch '%s'" % p("brokers/b9")):
            with self.subTest(cmd=cmd):
                self.assert_fails(cmd, errno.EINVAL)

    def test_an_incomplete_value_fails_at_close(self):
        # A JSON prefix may be continued by a later write, so write(2)
        # accepts it; close(2) reports it (shells' echo does not check
        # close, so this is tested directly).
        self.brokers(3)
        self.ok("topics/t", "1")
        before = self.counter()
        fd = os.open(self.p("topics/t"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b'{"replica_count":\n')
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(self.counter(), before)
        self.assertEqual(self.record("topics/t")["replica_count"], 1)

    def test_a_value_written_in_pieces_is_one_mutation(self):
        self.brokers(3)
        before = self.counter()
        fd = os.open(self.p("topics/t"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b'{"replica_')
        os.write(fd, b'count": 2}\n')
        os.close(fd)
        self.assertEqual(self.record("topics/t")["replica_count"], 2)
        self.assertEqual(self.counter(), before + 1)

    def test_a_topic_with_no_brokers_cannot_be_placed(self):
        self.assert_fails("echo 3 > '%s'" % self.p("topics/t"),
                          errno.ENOSPC)

    def test_unknown_names_are_enoent(self):
        self.assert_fails("rm '%s'" % self.p("topics/none"), errno.ENOENT)
        self.assert_fails("rm '%s'" % self.p("brokers/none"), errno.ENOENT)
        self.assert_fails("cat '%s'" % self.p("operations/999"),
                          errno.ENOENT)

    def test_dot_names_are_refused(self):
        # Editors' swap and backup files must fail at create.
        self.brokers(1)
        self.assert_fails("echo 1 > '%s'" % self.p("topics/.orders.swp"),
                          errno.EINVAL)
        self.assert_fails("echo h:1 > '%s'" % self.p("brokers/.b9"),
                          errno.EINVAL)

    def test_names_over_255_bytes_are_enametoolong(self):
        self.brokers(1)
        self.assert_fails("echo 1 > '%s'" % self.p("topics/" + "x" * 256),
                          errno.ENAMETOOLONG)

    def test_read_only_parts_refuse_writes(self):
        self.brokers(1)
        self.assert_fails("echo 1 > '%s'" % self.p("operations/1"),
                          errno.EROFS)
        self.assert_fails("echo 1 > '%s'" % self.p("operations/77"),
                          errno.EROFS)
        self.assert_fails("echo 9 > '%s'" % self.p("increment/operation"),
                          errno.EROFS)
        self.assert_fails("rm '%s'" % self.p("operations/1"), errno.EROFS)
        self.assert_fails("echo x > '%s'" % self.p("cluster/leader"),
                          errno.EROFS)

    def test_directories_cannot_be_made(self):
        for d in ("topics/d", "brokers/d", "newdir", "operations/d"):
            with self.subTest(d=d):
                rc, _, err = sh("mkdir '%s'" % self.p(d))
                self.assertNotEqual(rc, 0)
                self.assertTrue(os.strerror(errno.EPERM) in err or
                                os.strerror(errno.EROFS) in err or
                                os.strerror(errno.EACCES) in err, err)

    def test_a_second_registration_of_a_new_name_is_eexist(self):
        # O_CREAT|O_EXCL on an existing record is refused by the kernel
        # path; a plain redirect onto it is an update, not an error.
        self.ok("brokers/b1", "127.0.0.1:50051")
        rc, _, err = sh("set -o noclobber; echo h:2 > '%s'" %
                        self.p("brokers/b1"))
        self.assertNotEqual(rc, 0)
        self.assertEqual(self.record("brokers/b1")["address"],
                         "127.0.0.1:50051")


class InotifyTests(MemberTest):
    def watch_all(self, ino):
        for d in ("topics", "brokers", "operations", "increment"):
            ino.watch(self.p(d), d)

    def test_every_kind_of_change_raises_its_events(self):
        self.brokers(3)
        with Inotify() as ino:
            self.watch_all(ino)
            n = self.counter()
            self.ok("topics/t", "2")          # create
            self.ok("topics/t", "1")          # modify
            os.unlink(self.p("topics/t"))     # delete
            events = ino.collect(30)
        got = [e for e in events if e[0] in ("topics", "operations")]
        topic = [e for e in got if e[0] == "topics"]
        self.assertEqual(topic[0], ("topics", "IN_CREATE", "t"))
        self.assertIn(("topics", "IN_MODIFY", "t"), topic)
        self.assertIn(("topics", "IN_CLOSE_WRITE", "t"), topic)
        self.assertEqual(topic[-1], ("topics", "IN_DELETE", "t"))
        # Operations up to n were echoed for earlier writes, possibly after
        # the watch began: only the ones these changes made are checked.
        created = [e[2] for e in got
                   if e[0] == "operations" and e[1] == "IN_CREATE" and
                   int(e[2]) > n]
        self.assertEqual(created, [str(n + 1), str(n + 2), str(n + 3)])
        self.assertIn(("increment", "IN_MODIFY", "operation"), events)

    def test_a_watcher_reading_after_the_event_sees_the_new_content(self):
        self.brokers(3)
        with Inotify() as ino:
            ino.watch(self.p("operations"), "operations")
            self.ok("topics/t", "1")
            events = ino.collect(1, settle=0.2)
            created = [e[2] for e in events if e[1] == "IN_CREATE"]
            self.assertTrue(created)
            op = self.record("operations/" + created[-1])
            self.assertEqual(op["function"], "generateTopicReplicas")

    def test_a_rejected_write_raises_nothing_in_other_directories(self):
        self.brokers(1)
        n = self.counter()
        with Inotify() as ino:
            ino.watch(self.p("operations"), "operations")
            self.write("topics/t", "0")
            events = ino.collect(1, timeout=2)
        # The registration's own operation may be echoed after its write
        # returned; nothing after it may appear.
        self.assertEqual([e for e in events if int(e[2]) > n], [])
        self.assertEqual(self.counter(), n)


class PermissionTests(unittest.TestCase):
    NOBODY = 65534

    def setUp(self):
        self.tmp = TempDir()
        os.chmod(self.tmp.path, 0o755)  # let another user reach the mount

    def tearDown(self):
        self.tmp.remove()

    def test_other_users_read_but_cannot_write_with_allow_other(self):
        m = Member(self.tmp.path, "n1", extra=["--allow-other"])
        try:
            m.start()
            m.wait_leader()
            self.assertEqual(sh("echo 127.0.0.1:1 > '%s'" %
                                m.path("brokers/b1"))[0], 0)
            self.assertEqual(sh("echo 1 > '%s'" % m.path("topics/t"))[0], 0)
            st = os.stat(m.path("topics/t"))
            self.assertEqual((st.st_uid, st.st_mode & 0o777),
                             (os.getuid(), 0o644))
            self.assertEqual(os.stat(m.path("topics")).st_mode & 0o777,
                             0o755)
            self.assertEqual(os.stat(m.path("operations")).st_mode & 0o777,
                             0o555)
            rc, out, err = sh("cat '%s'" % m.path("topics/t"),
                              user=self.NOBODY)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["topic"], "t")
            for cmd in ("echo 2 > '%s'" % m.path("topics/t"),
                        "echo 1 > '%s'" % m.path("topics/new"),
                        "rm -f '%s'" % m.path("brokers/b1")):
                with self.subTest(cmd=cmd):
                    rc, _, err = sh(cmd, user=self.NOBODY)
                    self.assertNotEqual(rc, 0)
                    self.assertIn(os.strerror(errno.EACCES), err)
            self.assertEqual(json.loads(m.read("topics", "t"))
                             ["replica_count"], 1)
            self.assertTrue(os.path.exists(m.path("brokers/b1")))
        finally:
            m.stop()

    def test_without_allow_other_other_users_cannot_enter(self):
        m = Member(self.tmp.path, "n1")
        try:
            m.start()
            rc, _, err = sh("ls '%s'" % m.path("topics"), user=self.NOBODY)
            self.assertNotEqual(rc, 0)
            self.assertIn(os.strerror(errno.EACCES), err)
        finally:
            m.stop()


class DurabilityTests(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.remove()

    def test_kill_9_during_writes_loses_nothing_acknowledged(self):
        m = Member(self.tmp.path, "n1")
        try:
            m.start()
            m.wait_leader()
            for i in range(3):
                rc, _, err = sh("echo 127.0.0.1:%d > '%s'" %
                                (50051 + i, m.path("brokers", "b%d" % i)))
                self.assertEqual(rc, 0, err)
            acked = []
            stop = threading.Event()

            def writer():
                i = 0
                while not stop.is_set():
                    name = "t%d" % i
                    rc, _, _ = sh("echo 1 > '%s'" % m.path("topics", name))
                    if rc == 0:
                        acked.append(name)
                    i += 1
            t = threading.Thread(target=writer)
            t.start()
            wait_until(lambda: len(acked) >= 30, 60, "30 acknowledged writes")
            m.kill()
            stop.set()
            t.join(timeout=60)
            m.start()
            m.wait_leader()
            present = set(os.listdir(m.path("topics")))
            missing = [n for n in acked if n not in present]
            self.assertEqual(missing, [], "acknowledged but lost")
            # The log and the records agree: one operation per change.
            ops = int(m.read("increment", "operation"))
            self.assertEqual(ops, 3 + len(present))
            self.assertEqual(len(os.listdir(m.path("operations"))), ops)
        finally:
            m.stop()

    def test_a_member_restarts_after_kill_9_with_no_outside_cleanup(self):
        # As an operator would: kill -9 during writes, then just start it
        # again.  The new process clears the dead mount (and a predecessor
        # stuck on it) by itself.
        m = Member(self.tmp.path, "n1")
        old = None
        try:
            m.start()
            m.wait_leader()
            rc, _, err = sh("echo 127.0.0.1:1 > '%s'" % m.path("brokers/b1"))
            self.assertEqual(rc, 0, err)
            stop = threading.Event()
            acked = []

            def writer():
                i = 0
                while not stop.is_set():
                    if sh("echo 1 > '%s'" % m.path("topics", "t%d" % i))[0] \
                            == 0:
                        acked.append("t%d" % i)
                    i += 1
            t = threading.Thread(target=writer)
            t.start()
            wait_until(lambda: len(acked) >= 20, 60, "20 writes")
            old = m.kill_only()
            stop.set()
            t.join(timeout=120)
            m.start()
            m.wait_leader()
            self.assertEqual(old.wait(timeout=60), -signal.SIGKILL)
            self.assertIn("detached a stale goulettefs mount", m.logtext())
            present = set(os.listdir(m.path("topics")))
            self.assertEqual([n for n in acked if n not in present], [])
        finally:
            if old is not None and old.poll() is None:
                old.kill()
            m.stop()

    def test_sigterm_unmounts_cleanly(self):
        m = Member(self.tmp.path, "n1")
        m.start()
        self.assertEqual(m.stop(), 0, m.logtext())
        with open("/proc/mounts") as f:
            self.assertNotIn(m.mnt, f.read())

    def run_to_exit(self, m):
        """Start @m, expecting it to refuse; returns the exit status."""
        m.start(wait=False)
        try:
            return m.proc.wait(timeout=60)
        finally:
            m.stop(signal.SIGKILL)

    def populated(self):
        m = Member(self.tmp.path, "n1")
        try:
            m.start()
            m.wait_leader()
            rc, _, err = sh("echo 127.0.0.1:1 > '%s'" % m.path("brokers/b1"))
            self.assertEqual(rc, 0, err)
        finally:
            self.assertEqual(m.stop(), 0)
        return m

    def test_a_database_that_lost_its_state_refuses_to_start(self):
        # LevelDB drops a damaged write-ahead-log tail as a torn write; the
        # member must notice that its state is gone instead of starting a
        # new, empty cluster.
        m = self.populated()
        db = os.path.join(m.data, "db")
        for name in os.listdir(db):
            if name.endswith(".log") or name.endswith(".ldb"):
                with open(os.path.join(db, name), "r+b") as f:
                    f.write(b"\xff" * 64)
        self.assertEqual(self.run_to_exit(m), 1)
        self.assertIn("lost its Raft state", m.logtext())

    def test_a_corrupt_table_refuses_to_start(self):
        m = self.populated()
        m.start()  # LevelDB turns the log into a table on reopen
        m.wait_leader()
        self.assertEqual(m.stop(), 0)
        db = os.path.join(m.data, "db")
        tables = [n for n in os.listdir(db) if n.endswith(".ldb")]
        self.assertTrue(tables, os.listdir(db))
        for name in tables:
            path = os.path.join(db, name)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.seek(size // 4)
                f.write(b"\x5a" * 32)
        self.assertEqual(self.run_to_exit(m), 1)
        self.assertRegex(m.logtext(), r"(?i)corrupt|checksum")

    def test_an_external_unmount_stops_the_member(self):
        m = Member(self.tmp.path, "n1")
        m.start()
        subprocess.run(["fusermount3", "-u", m.mnt], check=True)
        rc = m.proc.wait(timeout=60)
        m.proc = None
        self.assertEqual(rc, 1)
        self.assertIn("stopped by itself", m.logtext())


if __name__ == "__main__":
    unittest.main(verbosity=2)
