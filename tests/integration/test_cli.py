"""The goulettefs and goulettectl programs as a user runs them: option
parsing, help and version, exit statuses, the data-directory lock, and an
orderly shutdown on SIGINT and SIGTERM.

Run by meson with GOULETTEFS and GOULETTECTL pointing at the built binaries.
Every process started here is stopped by pid; temp dirs are removed.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from goulette import free_port  # noqa: E402

GOULETTEFS = os.path.abspath(
    os.environ.get("GOULETTEFS", "build/tools/goulettefs"))
GOULETTECTL = os.path.abspath(
    os.environ.get("GOULETTECTL", "build/tools/goulettectl"))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          **kw)


class Daemon:
    """A goulettefs process in a temp dir, stopped by pid on close()."""

    def __init__(self, tmp, *extra, name="n1"):
        self.tmp = tmp
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        argv = [GOULETTEFS, "--name", name,
                "--data-dir", os.path.join(tmp, name + ".data"),
                "--peer-listen", "127.0.0.1:%d" % free_port(),
                "--grpc-listen", "127.0.0.1:%d" % free_port(), *extra]
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=tmp)

    def wait_log(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path) as f:
                if text in f.read():
                    return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="goulette-cli-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, *extra, name="n1"):
        d = Daemon(self.tmp, *extra, name=name)
        self.daemons.append(d)
        return d


class OptionTests(TempDirTest):
    def test_help_prints_usage_and_exits_0(self):
        r = run([GOULETTEFS, "--help"])
        self.assertEqual(r.returncode, 0)
        for opt in ("--name", "--data-dir", "--mount", "--peer-listen",
                    "--grpc-listen", "--initial-cluster", "--join",
                    "--log-level", "--help", "--version"):
            self.assertIn(opt, r.stdout)
        self.assertEqual(r.stderr, "")

    def test_version_prints_name_and_version(self):
        r = run([GOULETTEFS, "--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^goulettefs \d+\.\d+\.\d+\n$")

    def test_bad_options_exit_2_with_one_line_error_and_usage(self):
        cases = [
            (["--bogus"], "unknown option --bogus"),
            (["--name"], "needs a value"),
            (["--log-level", "chatty"], "bad --log-level"),
            (["--peer-listen", "nohost"], "bad address"),
            (["--grpc-listen", "127.0.0.1:99999"], "bad address"),
            (["--initial-cluster", "a=127.0.0.1:1"],
             "does not list this member"),
            (["--join", "h:1", "--initial-cluster", "default=h:2"],
             "exclude each other"),
            (["stray"], "unexpected argument"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = run([GOULETTEFS, *args], cwd=self.tmp)
                self.assertEqual(r.returncode, 2, r.stderr)
                first, rest = r.stderr.split("\n", 1)
                self.assertTrue(first.startswith("goulettefs: "), first)
                self.assertIn(message, first)
                self.assertIn("Usage: goulettefs", rest)
                self.assertEqual(r.stdout, "")
        # A usage error starts nothing: no data directory was created.
        self.assertEqual(os.listdir(self.tmp), [])

    def test_missing_mount_point_fails_with_exit_1(self):
        r = run([GOULETTEFS, "--mount", os.path.join(self.tmp, "absent"),
                 "--data-dir", os.path.join(self.tmp, "d")])
        self.assertEqual(r.returncode, 1)
        self.assertIn("No such file or directory", r.stderr)
        self.assertIn("error", r.stderr)


class LifecycleTests(TempDirTest):
    def test_sigterm_stops_cleanly_with_exit_0(self):
        d = self.daemon()
        self.assertTrue(d.wait_log("started"), d.output())
        os.kill(d.proc.pid, signal.SIGTERM)
        self.assertEqual(d.proc.wait(timeout=30), 0, d.output())
        out = d.output()
        self.assertIn("received SIGTERM", out)
        self.assertIn("shutting down", out)
        self.assertIn("stopped", out)
        # One line per event, each with a level and a subsystem.
        for line in out.strip().split("\n"):
            self.assertRegex(
                line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                r"(debug|info|warn|error) +n1 [\w.]+: ")

    def test_sigint_stops_cleanly_with_exit_0(self):
        d = self.daemon()
        self.assertTrue(d.wait_log("started"), d.output())
        os.kill(d.proc.pid, signal.SIGINT)
        self.assertEqual(d.proc.wait(timeout=30), 0, d.output())
        self.assertIn("received SIGINT", d.output())

    def test_default_data_dir_is_created_beside_the_working_directory(self):
        log = open(os.path.join(self.tmp, "log"), "w")
        p = subprocess.Popen([GOULETTEFS, "--name", "solo",
                              "--peer-listen", "127.0.0.1:%d" % free_port(),
                              "--grpc-listen", "127.0.0.1:%d" % free_port()],
                             cwd=self.tmp, stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            path = os.path.join(self.tmp, "solo.goulette")
            while not os.path.isdir(path) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(os.path.isdir(path))
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o700)
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=30), 0)
            log.close()

    def test_second_member_on_the_same_data_dir_is_refused(self):
        d = self.daemon()
        self.assertTrue(d.wait_log("started"), d.output())
        r = run([GOULETTEFS, "--name", "n1",
                 "--data-dir", os.path.join(self.tmp, "n1.data"),
                 "--peer-listen", "127.0.0.1:%d" % free_port(),
                 "--grpc-listen", "127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 1)
        self.assertIn("in use by another goulettefs (pid %d)" % d.proc.pid,
                      r.stderr)
        self.assertIsNone(d.proc.poll(), "the first member must keep running")


class CtlTests(unittest.TestCase):
    def test_help_lists_commands_and_exits_0(self):
        r = run([GOULETTECTL, "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: goulettectl", r.stdout)

    def test_version(self):
        r = run([GOULETTECTL, "--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^goulettectl \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2(self):
        for argv in ([], ["frobnicate"], ["--bogus"]):
            with self.subTest(argv=argv):
                r = run([GOULETTECTL, *argv])
                self.assertEqual(r.returncode, 2)
                self.assertIn("Usage: goulettectl", r.stderr)
                self.assertTrue(r.stderr.startswith("goulettectl: "))


if __name__ == "__main__":
    unittest.main(verbosity=2)
