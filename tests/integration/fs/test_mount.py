#!/usr/bin/python3
"""The FUSE front end on a real mount: the tree, file formats, sizes and
mtimes, xattrs, numeric order, every write and its errno as the shell shows
it, partial writes, permissions, and a clean unmount on SIGTERM.  Runs
fs_testd (fs/ over the in-memory test backend); exits non-zero on failure."""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsharness import (Mount, Inotify, sh, is_mounted,  # noqa: E402
                       kill_and_reap, mount_count, mount_options)

EINVAL_MSG = os.strerror(errno.EINVAL)
ENOENT_MSG = os.strerror(errno.ENOENT)
EROFS_MSG = os.strerror(errno.EROFS)
EPERM_MSG = os.strerror(errno.EPERM)
EEXIST_MSG = os.strerror(errno.EEXIST)
ENAMETOOLONG_MSG = os.strerror(errno.ENAMETOOLONG)


class MountCase(unittest.TestCase):
    daemon_args = ()

    def setUp(self):
        self.m = Mount(*self.daemon_args)
        self.m.__enter__()
        self.addCleanup(self.check_sanitizers)
        self.addCleanup(self.m.cleanup)

    def check_sanitizers(self):
        report = self.m.sanitizer_errors()
        self.assertIsNone(report, report)

    def p(self, *parts):
        return self.m.path(*parts)

    def read(self, *parts):
        with open(self.p(*parts)) as f:
            return f.read()

    def ok(self, cmd):
        rc, out, err = sh(cmd, cwd=self.m.mnt)
        self.assertEqual(rc, 0, "%r failed: %s\n%s" % (cmd, err,
                                                       self.m.logtext()))
        return out

    def fails(self, cmd, message):
        """@cmd fails and the shell prints @message (an errno text)."""
        before = self.m.stats()
        ops_before = sorted(os.listdir(self.p("operations")))
        rc, out, err = sh(cmd, cwd=self.m.mnt)
        self.assertNotEqual(rc, 0, "%r succeeded" % cmd)
        self.assertIn(message, err, "%r: %s" % (cmd, err))
        # Nothing changed: no mutation applied, no operation record.
        after = self.m.stats()
        self.assertEqual(before["applied"], after["applied"], cmd)
        self.assertEqual(ops_before, sorted(os.listdir(self.p("operations"))))
        return err

    def applied(self):
        return int(self.m.stats()["applied"])

    def broker(self, name="b1", addr="127.0.0.1:50051"):
        self.ok("echo %s > brokers/%s" % (addr, name))


class TestTree(MountCase):
    def test_root_lists_the_goulette_directories(self):
        self.assertEqual(os.listdir(self.m.mnt),
                         ["topics", "brokers", "operations", "increment",
                          "cluster"])

    def test_modes_and_owners_say_who_may_write(self):
        for d, mode in (("topics", 0o755), ("brokers", 0o755),
                        ("operations", 0o555), ("increment", 0o555),
                        ("cluster", 0o555)):
            st = os.stat(self.p(d))
            self.assertTrue(stat.S_ISDIR(st.st_mode), d)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, d)
            self.assertEqual((st.st_uid, st.st_gid),
                             (os.getuid(), os.getgid()))
        self.broker()
        self.ok("echo 2 > topics/orders")
        for f, mode in (("topics/orders", 0o644), ("brokers/b1", 0o644),
                        ("operations/1", 0o444),
                        ("increment/operation", 0o444),
                        ("cluster/status", 0o444)):
            st = os.stat(self.p(f))
            self.assertTrue(stat.S_ISREG(st.st_mode), f)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, f)

    def test_mount_options(self):
        src, fstype, opts = mount_options(self.m.mnt)
        self.assertEqual(src, "goulettefs")
        self.assertEqual(fstype, "fuse.goulettefs")
        self.assertIn("default_permissions", opts)
        self.assertNotIn("allow_other", opts)

    def test_statfs_answers(self):
        st = os.statvfs(self.m.mnt)
        self.assertEqual(st.f_namemax, 255)


class TestFormats(MountCase):
    def test_records_are_newline_terminated_json(self):
        self.broker("b1", "10.0.0.1:50051")
        self.broker("b2", "10.0.0.2:50051")
        self.ok("echo 2 > topics/orders")
        b1 = self.read("brokers", "b1")
        self.assertTrue(b1.endswith("\n"))
        self.assertEqual(json.loads(b1), {"broker_id": "b1",
                                          "address": "10.0.0.1:50051",
                                          "status": 0})
        t = self.read("topics", "orders")
        self.assertTrue(t.endswith("\n"))
        rec = json.loads(t)
        self.assertEqual(list(rec), ["topic", "brokers", "version",
                                     "timestamp", "replica_count"])
        self.assertEqual(rec["topic"], "orders")
        self.assertEqual(rec["replica_count"], 2)
        self.assertEqual(len(rec["brokers"]), 2)
        op = json.loads(self.read("operations", "3"))
        self.assertEqual(op["id"], 3)
        self.assertEqual(op["function"], "generateTopicReplicas")
        self.assertEqual(json.loads(op["params"])["topic"], "orders")
        self.assertEqual(self.read("increment", "operation"), "3\n")
        status = json.loads(self.read("cluster", "status"))
        self.assertIn("term", status)

    def test_stat_size_matches_what_cat_reads(self):
        self.broker()
        for i in range(5):
            self.ok("echo %d > topics/t%d" % (i + 1, i))
        self.ok("echo 4 > topics/t0")  # modify: the size changes
        for d in os.listdir(self.m.mnt):
            for f in os.listdir(self.p(d)):
                size = os.stat(self.p(d, f)).st_size
                rc, out, _ = sh("cat %s/%s | wc -c" % (d, f), cwd=self.m.mnt)
                self.assertEqual(int(out), size, "%s/%s" % (d, f))

    def test_mtimes_follow_the_records(self):
        self.broker()
        self.ok("echo 1 > topics/a")
        m1 = os.stat(self.p("topics", "a")).st_mtime_ns
        self.assertLess(abs(m1 / 1e9 - time.time()), 300)
        time.sleep(0.05)
        self.ok("echo 2 > topics/a")
        m2 = os.stat(self.p("topics", "a")).st_mtime_ns
        self.assertGreater(m2, m1)
        # A directory's mtime moves when a name is created or removed in
        # it, as on a local file system; here it is fresh right after.
        d1 = os.stat(self.p("topics")).st_mtime_ns
        self.assertGreaterEqual(d1, m1)
        self.ok("echo 1 > topics/b")
        d2 = os.stat(self.p("topics")).st_mtime_ns
        self.assertGreaterEqual(d2, os.stat(self.p("topics", "b")).st_mtime_ns)
        self.assertGreater(d2, d1)
        with Inotify() as w:
            w.watch(self.p("topics"), "topics")
            self.assertEqual(self.m.control("remove topics/a"), "ok")
            # Once the echo notifier replayed the removal:
            self.assertEqual(w.collect(1, settle=0),
                             [("topics", "IN_DELETE", "a")])
        self.assertGreater(os.stat(self.p("topics")).st_mtime_ns, d2)

    def test_operations_list_in_numeric_order(self):
        self.broker()
        for i in range(11):
            self.ok("echo 1 > topics/t%d" % i)
        names = os.listdir(self.p("operations"))  # readdir order
        self.assertEqual(names, [str(i) for i in range(1, 13)])
        out = self.ok("ls -U operations")
        self.assertEqual(out.split(), [str(i) for i in range(1, 13)])
        out = self.ok("ls -v operations")
        self.assertEqual(out.split(), [str(i) for i in range(1, 13)])


class TestXattrs(MountCase):
    def test_getfattr_shows_revisions(self):
        self.broker()
        self.ok("echo 1 > topics/a")
        out = self.ok("getfattr -d topics/a")
        self.assertIn('user.goulette.create_revision="', out)
        self.assertIn('user.goulette.mod_revision="', out)
        self.assertIn('user.goulette.version="1"', out)
        self.ok("echo 2 > topics/a")
        self.assertEqual(os.getxattr(self.p("topics", "a"),
                                     "user.goulette.version"), b"2")
        create = int(os.getxattr(self.p("topics", "a"),
                                 "user.goulette.create_revision"))
        mod = int(os.getxattr(self.p("topics", "a"),
                              "user.goulette.mod_revision"))
        self.assertGreater(mod, create)
        self.assertEqual(sorted(os.listxattr(self.p("topics", "a"))),
                         ["user.goulette.create_revision",
                          "user.goulette.mod_revision",
                          "user.goulette.version"])

    def test_unknown_xattr_is_enodata_and_set_is_unsupported(self):
        self.broker()
        with self.assertRaises(OSError) as cm:
            os.getxattr(self.p("brokers", "b1"), "user.nope")
        self.assertEqual(cm.exception.errno, errno.ENODATA)
        with self.assertRaises(OSError) as cm:
            os.setxattr(self.p("brokers", "b1"), "user.goulette.version",
                        b"9")
        self.assertEqual(cm.exception.errno, errno.ENOTSUP)
        rc, _, err = sh("setfattr -n user.x -v 1 brokers/b1", cwd=self.m.mnt)
        self.assertNotEqual(rc, 0)


class TestWrites(MountCase):
    def test_register_broker_by_address_and_by_json(self):
        n = self.applied()
        self.ok("echo 127.0.0.1:50051 > brokers/b1")
        self.assertEqual(self.applied(), n + 1)
        self.ok("""echo '{"broker_id":"b2","address":"h2:7"}' > brokers/b2""")
        self.assertEqual(json.loads(self.read("brokers", "b2"))["address"],
                         "h2:7")
        self.assertEqual(json.loads(self.read("operations", "2"))["function"],
                         "registerBroker")

    def test_echo_to_a_new_topic_is_one_mutation(self):
        self.broker()
        n = self.applied()
        ops = len(os.listdir(self.p("operations")))
        self.ok("echo 5 > topics/new")
        self.assertEqual(self.applied(), n + 1)
        self.assertEqual(len(os.listdir(self.p("operations"))), ops + 1)
        self.assertEqual(json.loads(self.read("topics", "new"))
                         ["replica_count"], 5)

    def test_write_returns_after_commit_and_operation_is_visible(self):
        self.broker()
        self.ok("echo 3 > topics/orders && cat operations/2 && "
                "test \"$(cat increment/operation)\" = 2")

    def test_touch_creates_a_topic_with_the_default_count(self):
        self.broker()
        n = self.applied()
        self.ok("touch topics/t")
        self.assertEqual(self.applied(), n + 1)
        self.assertEqual(json.loads(self.read("topics", "t"))
                         ["replica_count"], 3)
        self.ok("touch topics/t")  # existing: only times, accepted
        self.assertEqual(self.applied(), n + 1)
        self.ok(": > topics/u")  # the shell's touch: one create as well
        self.assertEqual(self.applied(), n + 2)

    def test_modify_and_remove(self):
        self.broker()
        self.ok("echo 1 > topics/t")
        self.ok("echo 2 > topics/t")
        self.assertEqual(json.loads(self.read("topics", "t"))
                         ["replica_count"], 2)
        self.ok("rm topics/t")
        self.assertFalse(os.path.exists(self.p("topics", "t")))
        self.assertNotIn("t", os.listdir(self.p("topics")))
        self.ok("rm brokers/b1")
        self.assertEqual(os.listdir(self.p("brokers")), [])
        ops = [json.loads(self.read("operations", o))["function"]
               for o in os.listdir(self.p("operations"))]
        self.assertEqual(ops[-2:], ["removeTopic", "unregisterBroker"])

    def test_report_unreachable_brokers(self):
        self.broker("b1", "h1:1")
        self.broker("b2", "h2:1")
        self.ok("echo 2 > topics/t")
        self.ok("""echo '{"unreachable_brokers":["b2"]}' > topics/t""")
        self.assertEqual(json.loads(self.read("brokers", "b2"))["status"], 2)
        rec = json.loads(self.read("topics", "t"))
        self.assertEqual([b["broker_id"] for b in rec["brokers"]], ["b1"])
        last = sorted(os.listdir(self.p("operations")), key=int)[-1]
        self.assertEqual(json.loads(self.read("operations", last))
                         ["function"], "handleUnreachableBrokers")

    def test_a_record_written_back_to_its_file(self):
        self.broker()
        self.ok("echo 2 > topics/t")
        rec = self.read("topics", "t")
        self.ok("cat topics/t > /tmp/rec-$$ && cp /tmp/rec-$$ topics/t && "
                "rm /tmp/rec-$$")
        self.assertEqual(json.loads(self.read("topics", "t"))
                         ["replica_count"], json.loads(rec)["replica_count"])
        self.fails("cat topics/t > topics/u", EINVAL_MSG)

    def test_cp_tee_and_python_writes(self):
        self.broker()
        src = os.path.join(self.m.tmp, "count")
        with open(src, "w") as f:
            f.write("4\n")
        self.ok("cp %s topics/a" % src)
        self.assertEqual(json.loads(self.read("topics", "a"))
                         ["replica_count"], 4)
        self.ok("cp %s topics/a" % src)  # over an existing record
        self.ok("echo 2 | tee topics/b > /dev/null")
        with open(self.p("topics", "c"), "w") as f:
            f.write('{"replica_count": 1}')
        self.assertEqual(json.loads(self.read("topics", "c"))
                         ["replica_count"], 1)

    def test_partial_writes_are_one_value(self):
        self.broker("b1", "h1:1")
        self.broker("b2", "h2:1")
        self.ok("echo 2 > topics/t")
        n = self.applied()
        fd = os.open(self.p("topics", "t"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b'{"unreachable')
            self.assertEqual(self.applied(), n)  # incomplete: waits
            os.write(fd, b'_brokers":["b2"]}')
            self.assertEqual(self.applied(), n + 1)  # complete: committed
            os.write(fd, b"\n")  # trailing newline: nothing more
        finally:
            os.close(fd)
        self.assertEqual(self.applied(), n + 1)
        # Without a newline a text value completes at close.
        self.ok("printf 3 > topics/u")
        self.assertEqual(json.loads(self.read("topics", "u"))
                         ["replica_count"], 3)
        # A value split over two writes.
        fd = os.open(self.p("topics", "v"), os.O_WRONLY | os.O_CREAT)
        try:
            os.write(fd, b"1")
            os.write(fd, b"2\n")
        finally:
            os.close(fd)
        self.assertEqual(json.loads(self.read("topics", "v"))
                         ["replica_count"], 12)

    def test_close_reports_an_incomplete_value_error(self):
        self.broker()
        fd = os.open(self.p("topics", "t"), os.O_WRONLY | os.O_CREAT)
        os.write(fd, b'{"replica_count": 2')  # never completed
        with self.assertRaises(OSError) as cm:
            os.close(fd)
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertFalse(os.path.exists(self.p("topics", "t")))

    def test_write_at_an_offset_edits_the_current_value(self):
        self.ok("echo h:1 > brokers/b1")
        fd = os.open(self.p("brokers", "b1"), os.O_WRONLY)
        try:
            # Replace the whole JSON record in place with the same length.
            old = self.read("brokers", "b1")
            new = old.replace('"h:1"', '"h:2"')
            self.assertEqual(len(old), len(new))
            os.pwrite(fd, new.encode(), 0)
        finally:
            os.close(fd)
        self.assertEqual(json.loads(self.read("brokers", "b1"))["address"],
                         "h:2")

    @unittest.skipUnless(shutil.which("vim"), "vim is not installed")
    def test_vim_with_backupcopy_rewrites_in_place(self):
        self.broker()
        self.ok("echo 2 > topics/t")
        n = self.applied()
        env = "HOME=%s " % self.m.tmp
        self.ok(env + "vim -n -es -u NONE "
                "-c 'set backupcopy=yes nobackup nowritebackup' "
                "-c '%d' -c 'call setline(1, \"5\")' -c 'wq' topics/t")
        self.assertEqual(self.applied(), n + 1)
        self.assertEqual(json.loads(self.read("topics", "t"))
                         ["replica_count"], 5)
        self.assertEqual(os.listdir(self.p("topics")), ["t"])

    def test_sed_in_place_fails_and_leaves_nothing(self):
        self.broker()
        self.ok("echo 2 > topics/t")
        n = self.applied()
        # sed writes a temporary file in topics/ and renames it: the copy
        # of the record under another name is refused, the rename too.
        rc, _, err = sh("sed -i s/2/3/ topics/t", cwd=self.m.mnt)
        self.assertNotEqual(rc, 0)
        self.assertEqual(self.applied(), n)
        self.assertEqual(os.listdir(self.p("topics")), ["t"])

    def test_eight_concurrent_writers(self):
        self.broker()
        errors = []

        def writer(i):
            rc, _, err = sh("for j in 1 2 3; do echo $j > topics/w%d-$j; "
                            "done" % i, cwd=self.m.mnt)
            if rc != 0:
                errors.append(err)

        threads = [threading.Thread(target=writer, args=(i,))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(os.listdir(self.p("topics"))), 24)

    def test_remote_changes_are_visible(self):
        self.broker()
        self.assertEqual(self.m.control("write topics/r 2"), "ok")
        self.assertEqual(json.loads(self.read("topics", "r"))
                         ["replica_count"], 2)
        self.assertEqual(self.m.control("remove topics/r"), "ok")
        self.assertFalse(os.path.exists(self.p("topics", "r")))


class TestErrors(MountCase):
    def setUp(self):
        super().setUp()
        self.broker()
        self.ok("echo 1 > topics/orders")

    def test_invalid_values_fail_the_write(self):
        self.fails("echo 0 > topics/x", EINVAL_MSG)
        self.fails("echo abc > topics/x", EINVAL_MSG)
        self.fails("echo '{bad' > topics/x", EINVAL_MSG)
        self.fails("echo '{\"replica_count\":0}' > topics/x", EINVAL_MSG)
        self.fails("echo 0 > topics/orders", EINVAL_MSG)
        self.fails("echo nohost > brokers/b2", EINVAL_MSG)
        self.fails("echo h:99999 > brokers/b2", EINVAL_MSG)
        self.fails("echo '{\"broker_id\":\"zz\",\"address\":\"h:1\"}' "
                   "> brokers/b2", EINVAL_MSG)
        # None of them left a name behind.
        self.assertEqual(os.listdir(self.p("topics")), ["orders"])
        self.assertEqual(os.listdir(self.p("brokers")), ["b1"])
        self.assertFalse(os.path.exists(self.p("topics", "x")))

    def test_unknown_broker_and_topic_are_enoent(self):
        self.fails("echo '{\"unreachable_brokers\":[\"nope\"]}' "
                   "> topics/orders", ENOENT_MSG)
        self.fails("echo '{\"unreachable_brokers\":[\"b1\"]}' "
                   "> topics/missing", ENOENT_MSG)
        self.fails("rm topics/missing", ENOENT_MSG)

    def test_touch_of_a_broker_without_address_fails_at_close(self):
        err = self.fails("touch brokers/b9", EINVAL_MSG)
        self.assertIn("close", err)
        self.assertFalse(os.path.exists(self.p("brokers", "b9")))

    def test_bad_names(self):
        self.fails("echo 1 > 'topics/a b'", EINVAL_MSG)
        self.fails("echo 1 > topics/.hidden", EINVAL_MSG)
        self.fails("echo 1 > topics/" + "n" * 200, ENAMETOOLONG_MSG)
        self.fails("echo 1 > topics/" + "n" * 300, ENAMETOOLONG_MSG)
        self.fails("echo 1 > topics/a/b", ENOENT_MSG)
        self.fails("echo 1 > topics/orders/b", os.strerror(errno.ENOTDIR))

    def test_read_only_places_are_erofs(self):
        self.fails("echo 1 > operations/1", EROFS_MSG)
        self.fails("echo 1 > operations/99", EROFS_MSG)
        self.fails("echo 1 > increment/operation", EROFS_MSG)
        self.fails("echo 1 > cluster/status", EROFS_MSG)
        self.fails("rm operations/1", EROFS_MSG)
        self.fails("touch newdir", EROFS_MSG)
        self.fails("mkdir operations/d", EROFS_MSG)
        self.fails("rmdir topics", EROFS_MSG)

    def test_unsupported_operations_are_eperm(self):
        self.fails("mkdir topics/d", EPERM_MSG)
        self.fails("mv topics/orders topics/o2", EPERM_MSG)
        self.fails("ln topics/orders topics/o2", EPERM_MSG)
        self.fails("ln -s orders topics/o2", EPERM_MSG)
        self.fails("mknod topics/p p", EPERM_MSG)
        self.fails("chmod 600 topics/orders", EPERM_MSG)
        self.fails("chown 1 topics/orders", EPERM_MSG)
        self.fails("truncate -s 0 topics/orders", EPERM_MSG)

    def test_existing_name_with_o_excl_is_eexist(self):
        with self.assertRaises(FileExistsError):
            os.open(self.p("topics", "orders"),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def test_other_users_read_but_cannot_write(self):
        # Without allow_other, other users cannot even enter the mount.
        rc, _, err = sh("cat %s" % self.p("topics", "orders"), user=65534)
        self.assertNotEqual(rc, 0)


class TestAllowOther(MountCase):
    daemon_args = ("--allow-other",)

    def test_others_read_and_get_eacces_on_writes(self):
        self.assertIn("allow_other", mount_options(self.m.mnt)[2])
        self.broker()
        self.ok("echo 1 > topics/orders")
        rc, out, err = sh("cat %s" % self.p("topics", "orders"), user=65534)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["topic"], "orders")
        n = self.applied()
        for cmd in ("echo 2 > %s" % self.p("topics", "orders"),
                    "echo 2 > %s" % self.p("topics", "x"),
                    "rm -f %s" % self.p("topics", "orders")):
            rc, _, err = sh(cmd, user=65534)
            self.assertNotEqual(rc, 0, cmd)
            self.assertIn(os.strerror(errno.EACCES), err)
        self.assertEqual(self.applied(), n)


class TestShutdown(unittest.TestCase):
    def test_sigterm_unmounts_cleanly(self):
        with Mount() as m:
            sh("echo h:1 > brokers/b1", cwd=m.mnt)
            self.assertTrue(is_mounted(m.mnt))
            self.assertEqual(m.stop(signal.SIGTERM), 0, m.logtext())
            self.assertFalse(is_mounted(m.mnt))

    def test_sigterm_with_a_write_in_flight(self):
        with Mount("--delay", "700") as m:
            w = subprocess.Popen(["bash", "-c", "echo h:1 > brokers/b1"],
                                 cwd=m.mnt, stderr=subprocess.PIPE)
            time.sleep(0.2)
            self.assertEqual(m.stop(signal.SIGTERM), 0, m.logtext())
            self.assertEqual(w.wait(timeout=30), 0)
            self.assertFalse(is_mounted(m.mnt))

    def test_sigterm_while_the_mount_is_busy(self):
        with Mount() as m:
            f = open(m.path("cluster", "status"))
            try:
                self.assertEqual(m.stop(signal.SIGTERM), 0, m.logtext())
                self.assertFalse(is_mounted(m.mnt))
            finally:
                try:
                    f.close()
                except OSError:
                    pass

    def test_restart_after_kill_9_detaches_the_dead_mount(self):
        with Mount() as m:
            self.assertEqual(m.control("write brokers/b1 h:1"), "ok")
            m.sock.close()
            m.sock = None
            kill_and_reap(m.proc, m.mnt)  # the pid this test started
            with self.assertRaises(OSError) as cm:
                os.stat(m.path("topics"))
            self.assertEqual(cm.exception.errno, errno.ENOTCONN)
            m.log.close()
            m.start()  # same mount point
            self.assertEqual(mount_count(m.mnt), 1)
            self.assertTrue(os.path.isdir(m.path("topics")))
            self.assertIn("detached a dead mount", m.logtext())
            self.assertEqual(m.stop(), 0, m.logtext())
            self.assertEqual(mount_count(m.mnt), 0)

    def test_external_unmount_stops_the_daemon(self):
        with Mount() as m:
            subprocess.check_call(["fusermount3", "-u", m.mnt])
            self.assertEqual(m.proc.wait(timeout=30), 0, m.logtext())


if __name__ == "__main__":
    unittest.main(verbosity=2)
