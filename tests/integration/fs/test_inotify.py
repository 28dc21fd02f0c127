#!/usr/bin/python3
"""inotify on the mount: every committed change raises the events a local
change raises (IN_CREATE / IN_DELETE in the directory, IN_MODIFY and
IN_CLOSE_WRITE on the file), in commit order, none lost, none for a change
that did not commit, whether the change came through the mount, from
"remote" (the control socket, standing for gRPC and other members) or from
a status change inside the node; and a watcher that reads after an event
sees the new content.  Runs fs_testd; exits non-zero on failure."""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsharness import Mount, sh, Inotify, is_mounted  # noqa: E402

CREATED = ["IN_CREATE", "IN_MODIFY", "IN_CLOSE_WRITE"]
MODIFIED = ["IN_MODIFY", "IN_CLOSE_WRITE"]


def per_file(events, label):
    """{name: [event, ...]} for the events of one watched directory.
    Consecutive repeats are merged: the shell's O_TRUNC raises IN_MODIFY at
    open(2) and the write raises another, which inotify itself merges when
    no other event comes between (as on any local file system)."""
    out = {}
    for lbl, ev, name in events:
        if lbl == label:
            evs = out.setdefault(name, [])
            if not evs or evs[-1] != ev:
                evs.append(ev)
    return out


class InotifyCase(unittest.TestCase):
    def setUp(self):
        self.m = Mount()
        self.m.__enter__()
        self.addCleanup(self.check_sanitizers)
        self.addCleanup(self.m.cleanup)
        self.w = Inotify()
        self.addCleanup(self.w.close)
        for d in ("topics", "brokers", "operations", "increment", "cluster"):
            self.w.watch(self.m.path(d), d)
        self.ok("echo h1:1 > brokers/b1")
        self.ok("echo h2:1 > brokers/b2")
        # Drain the setup's events, echoes included, before each test.
        ev = self.w.collect(2 * 3 + 2 * (3 + 2))
        self.assertEqual(per_file(ev, "brokers"),
                         {"b1": CREATED, "b2": CREATED})
        self.assert_side_effects(ev, [1, 2])

    def check_sanitizers(self):
        report = self.m.sanitizer_errors()
        self.assertIsNone(report, report)

    def ok(self, cmd):
        rc, out, err = sh(cmd, cwd=self.m.mnt)
        self.assertEqual(rc, 0, "%r: %s\n%s" % (cmd, err, self.m.logtext()))
        return out

    def ctl(self, line, expect="ok"):
        reply = self.m.control(line)
        self.assertTrue(reply.startswith(expect), "%s -> %s" % (line, reply))

    def next_op(self):
        with open(self.m.path("increment", "operation")) as f:
            return int(f.read()) + 1

    def assert_side_effects(self, events, op_ids):
        """operations/<id> created and increment/operation modified, once
        per applied mutation, in commit order."""
        ops = [(ev, name) for lbl, ev, name in events if lbl == "operations"]
        expect = []
        for i in op_ids:
            expect += [(ev, str(i)) for ev in CREATED]
        self.assertEqual(ops, expect)
        inc = [(ev, name) for lbl, ev, name in events if lbl == "increment"]
        self.assertEqual(inc, [(ev, "operation") for ev in MODIFIED] *
                         len(op_ids))


class TestLocalChanges(InotifyCase):
    def test_echo_to_a_new_topic(self):
        op = self.next_op()
        self.ok("echo 2 > topics/orders")
        ev = self.w.collect(3 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"orders": CREATED})
        self.assert_side_effects(ev, [op])

    def test_modify_an_existing_topic(self):
        self.ok("echo 2 > topics/orders")
        self.w.collect(8)
        op = self.next_op()
        self.ok("echo 1 > topics/orders")
        ev = self.w.collect(2 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"orders": MODIFIED})
        self.assert_side_effects(ev, [op])

    def test_rm(self):
        self.ok("echo 2 > topics/orders")
        self.w.collect(8)
        op = self.next_op()
        self.ok("rm topics/orders")
        ev = self.w.collect(1 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"orders": ["IN_DELETE"]})
        self.assert_side_effects(ev, [op])

    def test_rm_broker_echoes_the_replaced_topics(self):
        self.ok("echo 2 > topics/a")
        self.ok("echo 2 > topics/b")
        self.w.collect(16)
        op = self.next_op()
        self.ok("rm brokers/b2")
        ev = self.w.collect(1 + 2 * 2 + 3 + 2)
        self.assertEqual(per_file(ev, "brokers"), {"b2": ["IN_DELETE"]})
        self.assertEqual(per_file(ev, "topics"),
                         {"a": MODIFIED, "b": MODIFIED})
        self.assert_side_effects(ev, [op])

    def test_unreachable_report_echoes_the_broker_status(self):
        self.ok("echo 2 > topics/t")
        self.w.collect(8)
        op = self.next_op()
        self.ok("""echo '{"unreachable_brokers":["b2"]}' > topics/t""")
        ev = self.w.collect(2 + 2 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"t": MODIFIED})
        self.assertEqual(per_file(ev, "brokers"), {"b2": MODIFIED})
        self.assert_side_effects(ev, [op])
        with open(self.m.path("brokers", "b2")) as f:
            self.assertEqual(json.loads(f.read())["status"], 2)

    def test_rejected_write_raises_nothing_but_the_retraction(self):
        rc, _, err = sh("echo 0 > topics/bad", cwd=self.m.mnt)
        self.assertNotEqual(rc, 0)
        ev = self.w.collect(3, settle=1.0)
        # The open(O_CREAT) raised IN_CREATE before anything committed, as
        # on any file system; the name is then retracted.  No operation.
        got = per_file(ev, "topics")
        self.assertEqual(list(got), ["bad"])
        # IN_CLOSE_WRITE (the shell's last close) and the retraction's
        # IN_DELETE race each other; IN_CREATE comes first.
        self.assertEqual(got["bad"][0], "IN_CREATE")
        self.assertEqual(sorted(got["bad"][1:]),
                         ["IN_CLOSE_WRITE", "IN_DELETE"])
        self.assertEqual([e for e in ev if e[0] != "topics"], [])
        self.assertFalse(os.path.exists(self.m.path("topics", "bad")))

    def test_rejected_modification_raises_nothing_more(self):
        self.ok("echo 2 > topics/t")
        self.w.collect(8)
        with open(self.m.path("topics", "t")) as f:
            before = f.read()
        # Without O_TRUNC: write(2) fails, so the kernel raises no
        # IN_MODIFY; closing a file opened for writing raises
        # IN_CLOSE_WRITE, as on any file system.
        fd = os.open(self.m.path("topics", "t"), os.O_WRONLY)
        with self.assertRaises(OSError):
            os.write(fd, b"0\n")
        os.close(fd)
        ev = self.w.collect(1, settle=1.0)
        self.assertEqual(ev, [("topics", "IN_CLOSE_WRITE", "t")])
        # With O_TRUNC (the shell's >), the VFS itself raises IN_MODIFY for
        # the truncation at open(2), before any value reaches the store.
        # Nothing else: no operation record, no counter.
        rc, _, _ = sh("echo 0 > topics/t", cwd=self.m.mnt)
        self.assertNotEqual(rc, 0)
        ev = self.w.collect(2, settle=1.0)
        self.assertEqual(ev, [("topics", "IN_MODIFY", "t"),
                              ("topics", "IN_CLOSE_WRITE", "t")])
        with open(self.m.path("topics", "t")) as f:
            self.assertEqual(f.read(), before)


class TestRemoteChanges(InotifyCase):
    def test_remote_create_modify_delete(self):
        op = self.next_op()
        self.ctl("write topics/r 2")
        ev = self.w.collect(3 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"r": CREATED})
        self.assert_side_effects(ev, [op])
        self.ctl("write topics/r 1")
        ev = self.w.collect(2 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"r": MODIFIED})
        self.assert_side_effects(ev, [op + 1])
        self.ctl("remove topics/r")
        ev = self.w.collect(1 + 3 + 2)
        self.assertEqual(per_file(ev, "topics"), {"r": ["IN_DELETE"]})
        self.assert_side_effects(ev, [op + 2])
        self.assertFalse(os.path.exists(self.m.path("topics", "r")))

    def test_remote_change_of_a_cached_file(self):
        self.ok("echo 2 > topics/r")
        with open(self.m.path("topics", "r")) as f:
            f.read()  # the kernel now caches the dentry
        self.w.collect(8)
        self.ctl("remove topics/r")
        self.ctl("create topics/r")
        ev = self.w.collect(1 + 3 + 6 + 4)
        self.assertEqual(per_file(ev, "topics"),
                         {"r": ["IN_DELETE"] + CREATED})
        with open(self.m.path("topics", "r")) as f:
            self.assertEqual(json.loads(f.read())["replica_count"], 3)

    def test_status_change_inside_the_node(self):
        self.ctl("status")
        ev = self.w.collect(2)
        self.assertEqual(ev, [("cluster", "IN_MODIFY", "status"),
                              ("cluster", "IN_CLOSE_WRITE", "status")])

    def test_rejected_remote_change_raises_nothing(self):
        self.ctl("write topics/x 0", expect="err")
        self.ctl("remove topics/nope", expect="err")
        self.assertEqual(self.w.collect(1, timeout=1.0), [])

    def test_watch_on_the_file_itself(self):
        self.ok("echo 2 > topics/f")
        self.w.collect(8)
        w2 = Inotify()
        try:
            w2.watch(self.m.path("topics", "f"), "f")
            self.ctl("write topics/f 1")
            ev = w2.collect(2)
            self.assertEqual(ev, [("f", "IN_MODIFY", ""),
                                  ("f", "IN_CLOSE_WRITE", "")])
        finally:
            w2.close()

    def test_reader_after_the_event_sees_the_new_content(self):
        """For every IN_CLOSE_WRITE, read the file at once: the content is
        the committed record (never a stale size or old bytes)."""
        seen = []
        for i in range(20):
            self.ctl("write topics/c %d" % (i % 9 + 1))
            deadline = time.monotonic() + 30
            got = False
            while not got and time.monotonic() < deadline:
                for lbl, ev, name in self.w.read(1.0):
                    if (lbl, ev, name) == ("topics", "IN_CLOSE_WRITE", "c"):
                        with open(self.m.path("topics", "c")) as f:
                            data = f.read()
                        st = os.stat(self.m.path("topics", "c"))
                        self.assertEqual(st.st_size, len(data))
                        seen.append(json.loads(data)["replica_count"])
                        got = True
                    if (lbl, ev, name) == ("operations", "IN_CLOSE_WRITE",
                                           str(self.next_op() - 1)):
                        pass
            self.assertTrue(got, "no IN_CLOSE_WRITE for write %d" % i)
        self.assertEqual(seen, [i % 9 + 1 for i in range(20)])

    def test_operation_records_readable_after_their_event(self):
        first = self.next_op()
        self.ctl("burst 30 rd-")
        ids = []
        deadline = time.monotonic() + 60
        while len(ids) < 30 and time.monotonic() < deadline:
            for lbl, ev, name in self.w.read(1.0):
                if lbl == "operations" and ev == "IN_CLOSE_WRITE":
                    with open(self.m.path("operations", name)) as f:
                        rec = json.loads(f.read())
                    self.assertEqual(rec["id"], int(name))
                    ids.append(int(name))
        self.assertEqual(ids, list(range(first, first + 30)))

    def test_burst_in_commit_order_none_lost(self):
        n = 200
        first = self.next_op()
        self.ctl("burst %d b-" % n)
        ev = self.w.collect(n * (3 + 3 + 2), timeout=120, settle=1.0)
        topics = [(e, name) for lbl, e, name in ev if lbl == "topics"]
        expect = []
        for i in range(n):
            expect += [(e, "b-%d" % i) for e in CREATED]
        self.assertEqual(topics, expect)
        self.assert_side_effects(ev, list(range(first, first + n)))
        # Across directories too: each topic's IN_CREATE precedes its own
        # operation's IN_CREATE, which precedes the next topic's.
        order = [(lbl, name) for lbl, e, name in ev if e == "IN_CREATE"]
        expect = []
        for i in range(n):
            expect += [("topics", "b-%d" % i),
                       ("operations", str(first + i))]
        self.assertEqual(order, expect)

    def test_inotifywait_sees_a_remote_create(self):
        p = subprocess.Popen(["inotifywait", "-q", "-e", "create",
                              "--format", "%e %f", self.m.path("topics")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            time.sleep(0.5)  # inotifywait prints nothing when ready
            self.ctl("create topics/iw")
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(out.strip(), "CREATE iw", err)


class TestShutdownWithEchoes(unittest.TestCase):
    def test_sigterm_with_a_queue_of_echoes(self):
        with Mount() as m:
            self.assertEqual(m.control("write brokers/b1 h:1"), "ok")
            m.sock.sendall(b"burst 500 q-\n")  # no wait for the reply
            time.sleep(0.05)
            self.assertEqual(m.stop(), 0, m.logtext())
            self.assertFalse(is_mounted(m.mnt))


if __name__ == "__main__":
    unittest.main(verbosity=2)
