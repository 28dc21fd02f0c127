#!/usr/bin/python3
"""Benchmark of the FUSE front end over the in-memory test backend (so the
figures are the front end's cost, not Raft's or LevelDB's): writes per
second through the mount with one writer and with 8, `ls -l topics/` with
10,000 topics, and `cat` of every topic file.  Prints figures; asserts
nothing about time.  Usage: bench_mount.py [writes-per-writer] [topics]"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsharness import Mount, Inotify, IN_CLOSE_WRITE  # noqa: E402


def write_topics(m, prefix, n, errors):
    for i in range(n):
        try:
            fd = os.open(m.path("topics", "%s%d" % (prefix, i)),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, b"1\n")
            finally:
                os.close(fd)
        except OSError as e:
            errors.append(e)
            return


def writers(m, count, per_writer, tag):
    errors = []
    threads = [threading.Thread(target=write_topics,
                                args=(m, "%s%d-" % (tag, w), per_writer,
                                      errors))
               for w in range(count)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    if errors:
        raise errors[0]
    return count * per_writer / dt


def timed(cmd, cwd):
    t0 = time.monotonic()
    subprocess.run(["bash", "-c", cmd], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def main():
    sys.stdout.reconfigure(line_buffering=True)
    per_writer = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    ntopics = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    with Mount() as m:
        assert m.control("write brokers/b1 127.0.0.1:50051") == "ok"
        w1 = writers(m, 1, per_writer, "one")
        w8 = writers(m, 8, per_writer, "eight")
        print("writes/s through the mount, 1 writer:  %8.0f" % w1)
        print("writes/s through the mount, 8 writers: %8.0f" % w8)
    with Mount() as m:
        assert m.control("write brokers/b1 127.0.0.1:50051") == "ok"
        w = Inotify()
        w.watch(m.path("topics"), "topics", IN_CLOSE_WRITE)
        t0 = time.monotonic()
        assert m.control("burst %d t-" % ntopics) == "ok"
        t1 = time.monotonic()
        # The echo notifier replays 3 files per topic (topic, operation,
        # counter) in commit order; a sentinel committed after the burst
        # is replayed last.  (Counting events would not do: inotify merges
        # identical consecutive ones.)
        assert m.control("write topics/zz-sentinel 1") == "ok"
        done = False
        while not done:
            done = ("topics", "IN_CLOSE_WRITE", "zz-sentinel") in w.read(60)
        t2 = time.monotonic()
        w.close()
        ntopics += 1
        print("%d remote creates committed:         %8.3f s"
              % (ntopics, t1 - t0))
        print("echo notifier replay (%d files):     %8.3f s (%.0f files/s)"
              % (3 * ntopics, t2 - t0, 3 * ntopics / (t2 - t0)))
        n = len(os.listdir(m.path("topics")))
        assert n == ntopics, n
        ls1 = timed("ls -l topics/", m.mnt)
        ls2 = timed("ls -l topics/", m.mnt)
        cat = timed("cat topics/* | wc -c", m.mnt)
        print("ls -l topics/ (%d topics), first:        %8.3f s"
              % (ntopics, ls1))
        print("ls -l topics/ (%d topics), again:        %8.3f s"
              % (ntopics, ls2))
        print("cat of every topic file:                %8.3f s" % cat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
