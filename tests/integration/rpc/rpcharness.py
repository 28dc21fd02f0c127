"""Shared set-up for the rpc integration tests: generate Python stubs from
our .proto files with grpc_tools.protoc into a temporary directory, and run
rpc_test_server on a free 127.0.0.1 port (killed by pid in stop())."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PROTO_DIR = os.environ.get("RPC_PROTO_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "rpc")
TEST_PROTO_DIR = os.environ.get("RPC_TEST_PROTO_DIR") or os.path.dirname(
    os.path.abspath(__file__))
SERVER = os.environ.get("RPC_TEST_SERVER", "")


def generate_stubs():
    """Compile the protos with grpc_tools and put the result on sys.path."""
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="rpc-stubs-")
    protos = [("goulette.proto", PROTO_DIR), ("goulettefs.proto", PROTO_DIR),
              ("health.proto", PROTO_DIR), ("rpc_test.proto", TEST_PROTO_DIR)]
    for name, d in protos:
        rc = protoc.main(["protoc", "-I" + PROTO_DIR, "-I" + TEST_PROTO_DIR,
                          "--python_out=" + out, "--grpc_python_out=" + out,
                          os.path.join(d, name)])
        if rc != 0:
            raise RuntimeError("protoc failed on " + name)
    sys.path.insert(0, out)
    return out


class Server:
    """rpc_test_server on a port it picks itself (it prints it)."""

    def __init__(self, env=None):
        self.proc = None
        self.port = None
        self.env = dict(os.environ, **(env or {}))

    def start(self):
        if not SERVER:
            raise RuntimeError("RPC_TEST_SERVER is not set")
        self.proc = subprocess.Popen([SERVER, "0"], stdout=subprocess.PIPE,
                                     stderr=None, env=self.env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.kill()
            raise RuntimeError("server did not start: %r" % line)
        self.port = int(line.split()[1])
        return self

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=20):
        """SIGTERM, then wait: returns the exit status (0 means the server
        closed every handle and uv_loop_close succeeded)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def kill(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = -9
        else:
            rc = self.proc.returncode
        self.proc.stdout.close()
        self.proc = None
        return rc


def wait_until(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def cleanup(path):
    shutil.rmtree(path, ignore_errors=True)
