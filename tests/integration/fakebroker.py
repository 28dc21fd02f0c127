"""A fake Goulette broker for the integration tests: a real gRPC server
(Debian's grpcio, run with /usr/bin/python3) serving goulette.BrokerService
SetTopicRole, RemoveTopic and GetBrokerTopicRole on 127.0.0.1, with stubs
generated at test time from rpc/goulette.proto.  It answers as Goulette's
broker does (goulette-sentinel.md §4.4), records every call it receives, and
can be told to fail.

    fb = FakeBroker("b1")            # started, on a free port
    fb.address                       # "127.0.0.1:<port>"
    fb.calls("SetTopicRole")         # [Call(t, method, req, outcome,
                                     #       answered)]
    fb.wait_for(lambda calls: ..., timeout=30, what="...")
    fb.fail_next(2)                  # next 2 calls: UNAVAILABLE
    fb.refuse("SetTopicRole")        # every SetTopicRole: UNAVAILABLE ...
    fb.refuse("SetTopicRole", False) # ... until cleared
    fb.reply_failure("SetTopicRole", "busy")  # OK, success=false
    fb.stop(); fb.start()            # down, then up again on the same port
    fb.close()                       # for good

    ka = keepalive_loop(stubs, "b1", fb.address, period=0.5)  # a thread
    ka.stop()

Calls are recorded (thread-safely) whether answered with success or not;
`Call.outcome` says how: "ok", "success=false: <msg>", or the gRPC status
name of a failure ("UNAVAILABLE").  `Call.req` is a dict of the request's
fields (repeated fields as lists, enums as their numbers).
"""
import atexit
import collections
import os
import sys
import threading
import time
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from goulette import Stubs, free_port  # noqa: E402

LEADER = 1    # goulette.TopicRole
FOLLOWER = 2

# t: when the call arrived; answered: when its answer was decided
# (after any set_delay), both time.monotonic().
Call = collections.namedtuple("Call", "t method req outcome answered")

_stubs = None
_stubs_lock = threading.Lock()


def stubs():
    """The generated goulette stubs (a goulette.Stubs), made once per
    process and removed at exit."""
    global _stubs
    with _stubs_lock:
        if _stubs is None:
            _stubs = Stubs()
            atexit.register(_stubs.remove)
        return _stubs


def _fields(msg):
    out = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.label == f.LABEL_REPEATED:
            v = list(v)
        out[f.name] = v
    return out


def _servicer(fb):
    """The BrokerService methods, bound to @fb; the others (Goulette's
    RequestFragmentReplication) are the generated UNIMPLEMENTED ones."""
    base = fb.s.pb_grpc.BrokerServiceServicer

    class Servicer(base):
        def SetTopicRole(self, request, context):
            return fb._serve("SetTopicRole", request, context)

        def RemoveTopic(self, request, context):
            return fb._serve("RemoveTopic", request, context)

        def GetBrokerTopicRole(self, request, context):
            return fb._serve("GetBrokerTopicRole", request, context)

    return Servicer()


class FakeBroker:
    """One fake broker with id @broker_id, listening on 127.0.0.1:@port
    (a free port by default).  Started at once unless @start is False."""

    def __init__(self, broker_id, port=None, start=True, stubs_=None):
        self.id = broker_id
        self.port = port or free_port()
        self.s = stubs_ or stubs()
        self._cv = threading.Condition()
        self._calls = []
        self._fail_next = 0
        self._fail_code = grpc.StatusCode.UNAVAILABLE
        self._refused = {}        # method -> gRPC status code
        self._failures = {}       # method -> error_message (success=false)
        self._delay = 0.0
        self.roles = {}           # topic -> (role, followers, leader_address)
        self._server = None
        if start:
            self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    # ---- lifecycle ----

    def start(self):
        """Serve on self.port (again after stop()); keeps the recorded calls
        and the topics it was given."""
        if self._server is not None:
            return self
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                             options=[("grpc.so_reuseport", 0)])
        self.s.pb_grpc.add_BrokerServiceServicer_to_server(_servicer(self),
                                                           server)
        deadline = time.monotonic() + 30
        while True:
            try:
                bound = server.add_insecure_port(self.address)
            except RuntimeError:
                bound = 0
            if bound == self.port:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("fake broker %s cannot bind %s" %
                                   (self.id, self.address))
            # The old server's socket may linger a moment after stop().
            time.sleep(0.2)
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                 options=[("grpc.so_reuseport", 0)])
            self.s.pb_grpc.add_BrokerServiceServicer_to_server(
                _servicer(self), server)
        server.start()
        self._server = server
        return self

    def stop(self):
        """Stop serving (connections are closed; the port is refused)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace=None).wait(10)
        return self

    close = stop

    def running(self):
        return self._server is not None

    # ---- switches ----

    def fail_next(self, n, code=grpc.StatusCode.UNAVAILABLE):
        """Fail the next @n calls (any method) with @code."""
        with self._cv:
            self._fail_next = n
            self._fail_code = code

    def refuse(self, method, on=True, code=grpc.StatusCode.UNAVAILABLE):
        """Fail every call of @method with @code while @on."""
        with self._cv:
            if on:
                self._refused[method] = code
            else:
                self._refused.pop(method, None)

    def reply_failure(self, method, message="busy", on=True):
        """Answer @method with OK and success=false, @message, while @on."""
        with self._cv:
            if on:
                self._failures[method] = message
            else:
                self._failures.pop(method, None)

    def set_delay(self, seconds):
        """Sleep @seconds before answering each call (deadline tests)."""
        self._delay = seconds

    # ---- records ----

    def calls(self, method=None, ok=None):
        """The calls received so far, oldest first: of @method only if
        given; only the answered-with-success ones if @ok is True, only the
        others if False."""
        with self._cv:
            out = list(self._calls)
        if method is not None:
            out = [c for c in out if c.method == method]
        if ok is not None:
            out = [c for c in out if (c.outcome == "ok") == ok]
        return out

    def wait_for(self, pred, timeout=30, what="a condition"):
        """Wait until @pred(list of every call so far) is truthy; returns its
        value.  AssertionError with the calls on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                v = pred(list(self._calls))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "broker %s: timed out waiting for %s; calls: %r" %
                        (self.id, what, self._calls))
                self._cv.wait(min(left, 0.5))

    def clear(self):
        with self._cv:
            self._calls = []

    # ---- the service ----

    def _serve(self, method, request, context):
        arrived = time.monotonic()
        if self._delay:
            time.sleep(self._delay)
        req = _fields(request)
        pb = self.s.pb
        with self._cv:
            code = None
            if self._fail_next > 0:
                self._fail_next -= 1
                code = self._fail_code
            elif method in self._refused:
                code = self._refused[method]
            failure = self._failures.get(method)
            if code is not None:
                outcome = code.name
            elif failure is not None:
                outcome = "success=false: " + failure
            else:
                resp, outcome = self._answer(method, request)
            self._calls.append(Call(arrived, method, req, outcome,
                                    time.monotonic()))
            self._cv.notify_all()
        if code is not None:
            context.abort(code, "fake broker %s: refused" % self.id)
        if failure is not None:
            cls = getattr(pb, method + "Response")
            if method == "GetBrokerTopicRole":
                return cls(broker_id=self.id, topic=request.topic,
                           success=False, error_message=failure)
            return cls(success=False, error_message=failure)
        return resp

    def _answer(self, method, r):
        """Goulette's broker (§4.4), with self._cv held."""
        pb = self.s.pb
        if method == "SetTopicRole":
            self.roles[r.topic] = (r.role, list(r.followers), r.leader_address)
            return pb.SetTopicRoleResponse(success=True), "ok"
        if method == "RemoveTopic":
            if r.topic not in self.roles:
                msg = "Topic不存在: " + r.topic
                return (pb.RemoveTopicResponse(success=False,
                                               error_message=msg),
                        "success=false: " + msg)
            del self.roles[r.topic]
            return pb.RemoveTopicResponse(success=True), "ok"
        # GetBrokerTopicRole
        if r.broker_id != self.id:
            msg = "Broker ID不匹配: %s != %s" % (r.broker_id, self.id)
        elif r.topic not in self.roles:
            msg = "Topic不存在: " + r.topic
        else:
            return (pb.GetBrokerTopicRoleResponse(
                broker_id=self.id, topic=r.topic,
                role=self.roles[r.topic][0], success=True), "ok")
        return (pb.GetBrokerTopicRoleResponse(
            broker_id=self.id, topic=r.topic, success=False,
            error_message=msg), "success=false: " + msg)


class KeepAliveLoop:
    """A thread sending KeepAlive{broker_id, address} every @period seconds.
    @stub is a SentinelServiceStub, or a list of them: on an error the next
    one is tried (a member that died).  Counts successes and errors."""

    def __init__(self, stub, broker_id, address, period=1.0, timeout=5.0):
        self.stubs = list(stub) if isinstance(stub, (list, tuple)) else [stub]
        self.broker_id = broker_id
        self.address = address
        self.period = period
        self.timeout = timeout
        self.ok = 0
        self.errors = 0
        self.last_error = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        return self

    def _run(self):
        pb = stubs().pb
        i = 0
        while not self._stop.is_set():
            stub = self.stubs[i % len(self.stubs)]
            try:
                r = stub.KeepAlive(pb.KeepAliveRequest(
                    broker_id=self.broker_id, address=self.address),
                    timeout=self.timeout)
                if r.success:
                    self.ok += 1
                else:
                    self.errors += 1
                    self.last_error = r.error_message
                    i += 1
            except grpc.RpcError as e:
                self.errors += 1
                self.last_error = e
                i += 1
            self._stop.wait(self.period)


def keepalive_loop(stub, broker_id, address, period=1.0):
    """A started KeepAliveLoop; call .stop() on it."""
    return KeepAliveLoop(stub, broker_id, address, period).start()
