"""Benchmarks of goulettefs through its mount, on real processes: prints
figures and the machine; asserts nothing about speed.

  single member:  writes/s with 1 and 8 writers; `ls -l topics/` and `cat`
                  of every topic file with --topics topics (default 10000)
  3 members:      commits/s with 1 and 64 writers spread over the mounts;
                  time from a write returning on member 1 to the inotify
                  event on member 3 (p50, p99); time from kill -9 of the
                  leader to the next committed write

Run: /usr/bin/python3 bench/mount_bench.py [--topics N] [--quick]
(meson: `meson test -C build --benchmark mount`).
"""
import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from goulette import Cluster, Inotify, Member, TempDir  # noqa: E402


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d cores (%s), %s, kernel %s" % (
        os.cpu_count(), model, platform.machine(), platform.release())


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def writers(paths_per_writer, text="1\n"):
    """Write every path, one thread per list; returns writes per second."""
    errors = []

    def run(paths):
        for p in paths:
            try:
                write(p, text)
            except OSError as e:
                errors.append(e)
    threads = [threading.Thread(target=run, args=(ps,))
               for ps in paths_per_writer]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    n = sum(len(ps) for ps in paths_per_writer) - len(errors)
    if errors:
        print("  (%d writes failed: %s)" % (len(errors), errors[0]))
    return n / elapsed


def brokers(mnt, n=3):
    for i in range(n):
        write(os.path.join(mnt, "brokers", "b%d" % i),
              "127.0.0.1:%d\n" % (50051 + i))


def single(topics, quick):
    tmp = TempDir()
    m = Member(tmp.path, "n1")
    try:
        m.start()
        m.wait_leader()
        brokers(m.mnt)
        per = 100 if quick else 500
        rate = writers([[m.path("topics", "a%d" % i) for i in range(per)]])
        print("single member, 1 writer:   %8.0f writes/s" % rate)
        rate = writers([[m.path("topics", "w%d-%d" % (w, i))
                         for i in range(per // 4)] for w in range(8)])
        print("single member, 8 writers:  %8.0f writes/s" % rate)
        existing = len(os.listdir(m.path("topics")))
        t0 = time.monotonic()
        writers([[m.path("topics", "t%d" % i)
                  for i in range(w, topics - existing, 8)] for w in range(8)])
        print("created %d topics in %.1f s" % (
            len(os.listdir(m.path("topics"))), time.monotonic() - t0))
        for what, cmd in (("ls -l topics/", "ls -l '%s' > /dev/null"),
                          ("cat of every topic file",
                           "cat '%s'/* > /dev/null")):
            t0 = time.monotonic()
            subprocess.run(["bash", "-c", cmd % m.path("topics")], check=True)
            print("%-26s %8.3f s" % (what + ":", time.monotonic() - t0))
    finally:
        m.stop()
        tmp.remove()


def cluster(quick):
    tmp = TempDir()
    c = Cluster(tmp.path, 3).start()
    try:
        c.leader()
        n1, n2, n3 = c.members
        brokers(n1.mnt)
        per = 100 if quick else 300
        rate = writers([[n1.path("topics", "s%d" % i) for i in range(per)]])
        print("3 members, 1 writer:       %8.0f commits/s" % rate)
        rate = writers([[c.members[w % 3].path("topics", "m%d-%d" % (w, i))
                         for i in range(max(2, per // 16))]
                        for w in range(64)])
        print("3 members, 64 writers:     %8.0f commits/s" % rate)

        lat = []
        with Inotify() as ino:
            ino.watch(n3.path("brokers"), "brokers")
            for i in range(50 if quick else 200):
                name = "lat%d" % i
                write(n1.path("brokers", name), "127.0.0.1:1\n")
                t0 = time.monotonic()
                deadline = t0 + 30
                seen = False
                while not seen and time.monotonic() < deadline:
                    for e in ino.read(1.0):
                        if e[1] == "IN_CREATE" and e[2] == name:
                            seen = True
                if seen:
                    lat.append(time.monotonic() - t0)
        lat.sort()
        print("write on n1 -> inotify on n3: p50 %.1f ms, p99 %.1f ms "
              "(%d samples)" % (1000 * statistics.median(lat),
                                1000 * lat[int(0.99 * (len(lat) - 1))],
                                len(lat)))

        leader = c.member(c.leader())
        other = next(m for m in c.members if m is not leader)
        t0 = time.monotonic()
        leader.proc.send_signal(signal.SIGKILL)
        i = 0
        while True:
            try:
                write(other.path("topics", "after%d" % i), "1\n")
                break
            except OSError:
                i += 1
        print("kill -9 of the leader -> next committed write: %.2f s"
              % (time.monotonic() - t0))
    finally:
        c.stop()
        tmp.remove()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=10000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print("machine: " + machine())
    single(a.topics, a.quick)
    cluster(a.quick)


if __name__ == "__main__":
    main()
