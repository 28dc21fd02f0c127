"""Shared helpers of the fs integration tests: a real mount served by
fs_testd (started by the test, always unmounted), its control socket, shell
commands as a user types them, and inotify through ctypes."""

import ctypes
import ctypes.util
import errno
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

FS_TESTD = os.environ.get("FS_TESTD")
if not FS_TESTD:
    here = os.path.dirname(os.path.abspath(__file__))
    FS_TESTD = os.path.join(here, "..", "..", "..", "build-fs", "tests",
                            "integration", "fs", "fs_testd")


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1] == path:
                return True
    return False


def mount_count(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return sum(1 for line in f if line.split()[1:2] == [path])


def fuse_connection(path):
    """The FUSE connection number of the mount at @path, from mountinfo
    (never touching the mount, which may hang), or None."""
    path = os.path.abspath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4] == path and " - fuse" in line:
                found = int(fields[2].split(":")[1])
    return found


def abort_fuse(path):
    """Abort the FUSE connection of the mount at @path: a server killed with
    SIGKILL while one of its threads waited on its own mount cannot finish
    dying otherwise."""
    conn = fuse_connection(path)
    if conn is None:
        return
    if not os.path.isdir("/sys/fs/fuse/connections/%d" % conn):
        subprocess.run(["mount", "-t", "fusectl", "none",
                        "/sys/fs/fuse/connections"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with open("/sys/fs/fuse/connections/%d/abort" % conn, "w") as f:
            f.write("1")
    except OSError:
        pass


def kill_and_reap(proc, mnt, timeout=5):
    """SIGKILL @proc (a FUSE server we started) and reap it.  A server
    killed while one of its own threads had a file open on its mount
    cannot finish exiting (FUSE flush is a forced request only it could
    answer): abort the mount's connection then."""
    proc.kill()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        abort_fuse(mnt)
        return proc.wait(timeout=60)


def mount_options(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[1] == path:
                return fields[0], fields[2], fields[3].split(",")
    return None


class Mount:
    """fs_testd on a fresh temporary directory.  Use as a context manager:
    on exit the daemon is stopped with SIGTERM (or killed) and the mount
    removed whatever happened."""

    def __init__(self, *extra_args):
        self.tmp = tempfile.mkdtemp(prefix="goulettefs-fs-")
        os.chmod(self.tmp, 0o755)  # other users reach the mount
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        self.ctl_path = os.path.join(self.tmp, "control.sock")
        self.log_path = os.path.join(self.tmp, "fs_testd.log")
        self.extra = list(extra_args)
        self.final_log = ""
        self.proc = None
        self.sock = None
        self.rfile = None

    def start(self):
        if not os.path.exists("/dev/fuse"):
            raise RuntimeError("/dev/fuse is missing")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [FS_TESTD, "--mount", self.mnt, "--control", self.ctl_path] +
            self.extra, stdout=self.log, stderr=subprocess.STDOUT)
        # The daemon mounts, then listens on the control socket: a
        # connection means it is ready (a stale socket file refuses).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("fs_testd exited %d: %s" %
                                   (self.proc.returncode, self.logtext()))
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.ctl_path)
            except OSError:
                sock.close()
                time.sleep(0.02)
                continue
            self.sock = sock
            break
        else:
            raise RuntimeError("fs_testd did not start: " + self.logtext())
        if not is_mounted(self.mnt):
            raise RuntimeError("fs_testd did not mount: " + self.logtext())
        self.rfile = self.sock.makefile("r")
        return self

    def logtext(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def control(self, line):
        """Send one command; return the reply line."""
        self.sock.sendall((line + "\n").encode())
        reply = self.rfile.readline()
        if not reply:
            raise RuntimeError("control socket closed")
        return reply.strip()

    def stats(self):
        reply = self.control("stats")
        assert reply.startswith("ok "), reply
        return dict(kv.split("=") for kv in reply[3:].split())

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the daemon and wait; return its exit status."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_and_reap(self.proc, self.mnt)
            raise

    def cleanup(self):
        try:
            self.stop()
        except Exception:
            pass
        finally:
            if self.proc is not None and self.proc.poll() is None:
                kill_and_reap(self.proc, self.mnt)  # only the pid we started
            if is_mounted(self.mnt):
                subprocess.call(["fusermount3", "-u", "-z", self.mnt],
                                stderr=subprocess.DEVNULL)
            if hasattr(self, "log"):
                self.log.close()
            self.final_log = self.logtext()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def sanitizer_errors(self):
        """AddressSanitizer/UBSan reports of the daemon (built with
        -Db_sanitize), available after cleanup()."""
        text = getattr(self, "final_log", "")
        if "Sanitizer" in text or "runtime error:" in text:
            return text
        return None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False


def sh(cmd, user=None, cwd=None):
    """Run @cmd with bash; return (returncode, stdout, stderr)."""
    argv = ["bash", "-c", cmd]
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                "--clear-groups"] + argv
    p = subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------- inotify

IN_ACCESS = 0x001
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_CLOSE_NOWRITE = 0x010
IN_OPEN = 0x020
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

CHANGE_MASK = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE

NAMES = {IN_CREATE: "IN_CREATE", IN_DELETE: "IN_DELETE",
         IN_MODIFY: "IN_MODIFY", IN_CLOSE_WRITE: "IN_CLOSE_WRITE",
         IN_DELETE_SELF: "IN_DELETE_SELF", IN_ATTRIB: "IN_ATTRIB",
         IN_IGNORED: "IN_IGNORED", IN_OPEN: "IN_OPEN"}

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Inotify:
    """A watcher: events come back as (dir label, event name, file name)."""

    def __init__(self):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.labels = {}
        self.buf = b""

    def watch(self, path, label=None, mask=CHANGE_MASK):
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        self.labels[wd] = label if label is not None else path
        return wd

    def _parse(self):
        out = []
        while len(self.buf) >= 16:
            wd, mask, cookie, ln = struct.unpack("iIII", self.buf[:16])
            if len(self.buf) < 16 + ln:
                break
            name = self.buf[16:16 + ln].rstrip(b"\0").decode()
            self.buf = self.buf[16 + ln:]
            kind = mask & ~IN_ISDIR
            out.append((self.labels.get(wd, wd), NAMES.get(kind, hex(kind)),
                        name))
        return out

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return []
        try:
            self.buf += os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        return self._parse()

    def collect(self, count, timeout=30, settle=0.5):
        """Events until @count arrived (then @settle seconds more, to catch
        extras) or @timeout passed."""
        events = []
        deadline = time.monotonic() + timeout
        while len(events) < count and time.monotonic() < deadline:
            events += self.read(max(0.0, deadline - time.monotonic()))
        end = time.monotonic() + settle
        while time.monotonic() < end:
            events += self.read(max(0.0, end - time.monotonic()))
        return events

    def close(self):
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def errno_text(code):
    return os.strerror(code)


__all__ = ["Mount", "sh", "Inotify", "is_mounted", "mount_options",
           "errno", "errno_text", "fuse_connection", "abort_fuse",
           "kill_and_reap"]
