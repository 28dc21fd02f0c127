"""The gRPC port of a 3-member goulettefs cluster, driven by Python's grpcio
(a client that is not ours) with stubs generated at test time from
rpc/*.proto: Goulette's SentinelService with its error split and exact
strings, placement equal to the store's ring (`goulettectl ring`),
replacement of unreachable brokers including the leader, GetBrokers,
Status, health with and without quorum, unknown methods, malformed and
oversized bodies, an expired deadline, and inotify events on every mount
for changes made through gRPC.

Each test class starts its own cluster in a temporary directory and stops
every process it started (by pid), unmounting every mount.
"""
import os
import socket
import struct
import time
import unittest

import grpc

from goulette import (Cluster, Inotify, Stubs, TempDir, ctl, wait_until)

S = None  # the generated stubs, set up once


def setUpModule():
    global S
    S = Stubs()


def tearDownModule():
    S.remove()


class GrpcCluster(unittest.TestCase):
    """A running 3-member cluster and one channel per member."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        # Reports of unreachable brokers may move a topic at once here
        # (test_reports.py tests the limit).
        cls.c = Cluster(cls.tmp.path, 3,
                        extra=["--report-interval", "1ms"]).start()
        cls.leader_name = cls.c.leader()
        cls.channels = {}
        for m in cls.c.members:
            cls.channels[m.name] = grpc.insecure_channel(m.grpc_address)

    @classmethod
    def tearDownClass(cls):
        for ch in cls.channels.values():
            ch.close()
        try:
            rcs = [m.stop() for m in cls.c.members]
            # Every member closed its gRPC port, Raft and mount cleanly.
            assert all(rc in (0, None) for rc in rcs), rcs
        finally:
            cls.c.stop()
            cls.tmp.remove()

    def sentinel(self, i):
        m = self.c.members[i]
        return S.pb_grpc.SentinelServiceStub(self.channels[m.name])

    def cluster(self, i):
        m = self.c.members[i]
        return S.fs_grpc.ClusterServiceStub(self.channels[m.name])

    def health(self, i):
        m = self.c.members[i]
        return S.health_grpc.HealthStub(self.channels[m.name])

    def register(self, i, broker, port, topics=()):
        return self.sentinel(i).RegisterBroker(S.pb.RegisterBrokerRequest(
            broker_id=broker, address="127.0.0.1:%d" % port,
            topics=list(topics)), timeout=30)

    def leader_of(self, i, topic, count=3, unreachable=()):
        return self.sentinel(i).GetTopicLeader(S.pb.GetTopicLeaderRequest(
            topic=topic, replica_count=count,
            unreachable_brokers=list(unreachable)), timeout=30).leader

    def brokers(self, i, topic, count=0):
        return self.cluster(i).GetBrokers(S.fs.GetBrokersRequest(
            topic=topic, replica_count=count), timeout=30)

    def expect_code(self, code, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception


class SentinelTests(GrpcCluster):
    """Brokers and topics through SentinelService, across members."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Four brokers registered through member 1.
        for k in range(1, 5):
            r = cls.sentinel(cls, 0).RegisterBroker(
                S.pb.RegisterBrokerRequest(
                    broker_id="b%d" % k, address="127.0.0.1:%d" % (9000 + k)),
                timeout=30)
            assert r.success, r.error_message

    def test_a_registration_is_visible_at_once_on_the_member_that_took_it(self):
        r = self.register(0, "vis1", 9101)
        self.assertTrue(r.success)
        self.assertEqual(r.error_message, "")
        # Committed before acknowledged: already on this member's mount.
        self.assertIn('"address":"127.0.0.1:9101"',
                      self.c.members[0].read("brokers", "vis1"))
        for m in self.c.members[1:]:
            wait_until(lambda: os.path.exists(m.path("brokers", "vis1")),
                       30, "vis1 on " + m.name)

    def test_registering_on_one_member_and_querying_another(self):
        r = self.register(1, "x1", 9201)
        self.assertTrue(r.success, r.error_message)
        # Any member answers after ReadIndex: it sees the registration.
        self.assertEqual(self.sentinel(2).UnregisterBroker(
            S.pb.UnregisterBrokerRequest(broker_id="x1"),
            timeout=30).success, True)

    def test_goulette_error_strings(self):
        r = self.register(0, "dup", 9301)
        self.assertTrue(r.success)
        r = self.register(2, "dup", 9302)
        self.assertFalse(r.success)
        self.assertEqual(r.error_message, "Broker已存在")
        r = self.sentinel(1).UnregisterBroker(
            S.pb.UnregisterBrokerRequest(broker_id="nobody"), timeout=30)
        self.assertFalse(r.success)
        self.assertEqual(r.error_message, "Broker不存在")
        # An impossible name cannot exist either.
        r = self.sentinel(1).UnregisterBroker(
            S.pb.UnregisterBrokerRequest(broker_id=""), timeout=30)
        self.assertEqual((r.success, r.error_message), (False, "Broker不存在"))
        # KeepAlive: a new broker, then a renewal answered without a write.
        for _ in range(2):
            r = self.sentinel(2).KeepAlive(S.pb.KeepAliveRequest(
                broker_id="ka1", address="127.0.0.1:9401"), timeout=30)
            self.assertTrue(r.success)
            self.assertEqual(r.error_message, "心跳续约成功")
        r = self.sentinel(2).KeepAlive(S.pb.KeepAliveRequest(
            broker_id="ka1", address="no port"), timeout=30)
        self.assertFalse(r.success)
        self.assertTrue(r.error_message.startswith("心跳处理失败: "),
                        r.error_message)
        # A topic name holding NUL is refused, not truncated.
        e = self.expect_code(grpc.StatusCode.UNKNOWN, self.leader_of, 0,
                             "a\0b")
        self.assertNotIn("a\0b", e.details())

    def test_keepalive_moves_a_broker_and_its_topics(self):
        self.assertTrue(self.register(0, "mv", 9501).success)
        r = self.sentinel(1).KeepAlive(S.pb.KeepAliveRequest(
            broker_id="mv", address="127.0.0.1:9502"), timeout=30)
        self.assertTrue(r.success, r.error_message)
        self.assertIn('"address":"127.0.0.1:9502"',
                      self.c.members[1].read("brokers", "mv"))

    def test_placement_is_the_rings(self):
        # Only b1..b4 exist when these topics are placed? Other tests add
        # brokers; compare with the ring of the brokers registered now.
        names = sorted(os.listdir(self.c.members[0].path("brokers")))
        for i, topic in enumerate(["orders", "payments", "t1", "t2", "t3",
                                   "logs-%d" % os.getpid()]):
            rc, out, err = ctl("ring", "--brokers", ",".join(names), topic)
            self.assertEqual(rc, 0, err)
            order = out.split(":", 1)[1].split()
            b = self.brokers(i % 3, topic, count=3)
            got = [x.broker_id for x in b.brokers]
            if set(got) <= set(names):
                self.assertEqual(got, order[:3], topic)
                leader = self.leader_of((i + 1) % 3, topic)
                self.assertEqual(leader.broker_id, order[0])

    def test_get_topic_leader_places_once_and_answers_from_any_member(self):
        topic = "gtl-%d" % os.getpid()
        first = self.leader_of(0, topic)
        self.assertTrue(first.broker_id)
        self.assertTrue(first.address.startswith("127.0.0.1:"))
        # Goulette's quirk: a healthy leader's status goes out as 0.
        self.assertEqual(first.status, 0)
        self.assertGreater(first.last_heartbeat.seconds, 1700000000)
        self.assertEqual(list(first.topics), [])
        for i in range(3):
            again = self.leader_of(i, topic, count=2)
            self.assertEqual(again.broker_id, first.broker_id)
        b = self.brokers(2, topic)
        self.assertEqual(b.version, 1)  # placed once, never again
        self.assertEqual(b.replica_count, 3)
        self.assertEqual(len(b.brokers), 3)
        self.assertEqual(b.brokers[0].broker_id, first.broker_id)
        for x in b.brokers:
            self.assertEqual(x.status, S.pb.BROKER_STATUS_HEALTHY)
        # The record on every mount names the same leader.
        for m in self.c.members:
            wait_until(lambda: os.path.exists(m.path("topics", topic)), 30)
            self.assertIn('"broker_id":"%s"' % first.broker_id,
                          m.read("topics", topic).split("},")[0])

    def test_concurrent_first_requests_place_a_topic_once(self):
        topic = "race-%d" % os.getpid()
        futs = [self.sentinel(k % 3).GetTopicLeader.future(
            S.pb.GetTopicLeaderRequest(topic=topic, replica_count=3),
            timeout=30) for k in range(30)]
        leaders = {f.result().leader.broker_id for f in futs}
        self.assertEqual(len(leaders), 1)
        self.assertEqual(self.brokers(0, topic).version, 1)

    def test_unreachable_leader_is_replaced(self):
        topic = "unr-%d" % os.getpid()
        before = self.brokers(0, topic, count=3)
        old = [x.broker_id for x in before.brokers]
        new_leader = self.leader_of(1, topic, unreachable=[old[0]])
        self.assertNotEqual(new_leader.broker_id, old[0])
        after = self.brokers(2, topic)
        ids = [x.broker_id for x in after.brokers]
        self.assertNotIn(old[0], ids)
        self.assertEqual(len(ids), 3)
        self.assertEqual(ids[0], new_leader.broker_id)
        # Survivors keep their order; the leader is the first survivor.
        self.assertEqual(ids[:2], old[1:])
        self.assertEqual(after.version, before.version + 1)
        # A report is a hint: the broker is down only if the leader has not
        # heard from it for suspect_after/2 either.  A keepalive brings it
        # back in any case.
        r = self.sentinel(0).KeepAlive(S.pb.KeepAliveRequest(
            broker_id=old[0], address=dict(
                (x.broker_id, x.address) for x in before.brokers)[old[0]]),
            timeout=30)
        self.assertTrue(r.success)

    def test_unreachable_with_nobody_to_replace_is_refused(self):
        topic = "few-%d" % os.getpid()
        names = sorted(os.listdir(self.c.members[0].path("brokers")))
        e = self.expect_code(grpc.StatusCode.UNKNOWN, self.leader_of, 0,
                             topic, count=len(names), unreachable=names[:1])
        self.assertEqual(e.details(), "topic %s 可用broker不足" % topic)

    def test_get_brokers_of_an_unknown_topic_is_not_found(self):
        self.expect_code(grpc.StatusCode.NOT_FOUND, self.brokers, 1,
                         "never-placed")

    def test_status_names_the_leader_and_every_member(self):
        for i in range(3):
            st = self.cluster(i).Status(S.fs.StatusRequest(), timeout=30)
            self.assertEqual(st.member_name, self.c.members[i].name)
            self.assertEqual(st.leader_name, self.leader_name)
            self.assertTrue(st.serving)
            self.assertEqual(sorted(m.name for m in st.members),
                             ["n1", "n2", "n3"])
            self.assertGreaterEqual(st.applied_index, 1)

    def test_health_is_serving_with_a_leader(self):
        H = S.health.HealthCheckResponse
        for i in range(3):
            r = self.health(i).Check(S.health.HealthCheckRequest(),
                                     timeout=30)
            self.assertEqual(r.status, H.SERVING)
            r = self.health(i).Check(S.health.HealthCheckRequest(
                service="goulette.SentinelService"), timeout=30)
            self.assertEqual(r.status, H.SERVING)
        self.expect_code(grpc.StatusCode.NOT_FOUND, self.health(0).Check,
                         S.health.HealthCheckRequest(service="nope"),
                         timeout=30)

    def test_changes_made_through_grpc_raise_inotify_on_every_mount(self):
        ino = Inotify()
        try:
            for m in self.c.members:
                ino.watch(m.path("brokers"), m.name)
            self.assertTrue(self.register(1, "ino1", 9601).success)
            want = {(m.name, "IN_CREATE", "ino1") for m in self.c.members}
            events = []
            deadline = time.monotonic() + 30
            while not want <= set(events) and time.monotonic() < deadline:
                events += ino.read(1.0)
            self.assertLessEqual(want, set(events), events)
        finally:
            ino.close()


class ProtocolTests(GrpcCluster):
    """What any gRPC server must do, on a member."""

    def call_raw(self, i, method, body, timeout=30):
        ch = self.channels[self.c.members[i].name]
        f = ch.unary_unary(method, request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
        return f(body, timeout=timeout)

    def test_unknown_methods_and_services_are_unimplemented(self):
        self.expect_code(grpc.StatusCode.UNIMPLEMENTED, self.call_raw, 0,
                         "/goulette.SentinelService/Nope", b"")
        self.expect_code(grpc.StatusCode.UNIMPLEMENTED, self.call_raw, 1,
                         "/nope.Svc/Call", b"")

    def test_a_malformed_body_is_internal(self):
        e = self.expect_code(grpc.StatusCode.INTERNAL, self.call_raw, 0,
                             "/goulette.SentinelService/GetTopicLeader",
                             b"\x0a\xff\xff")
        self.assertIn("unmarshalling", e.details())

    def test_an_oversized_message_is_resource_exhausted(self):
        big = S.pb.RegisterBrokerRequest(broker_id="big",
                                         address="127.0.0.1:1",
                                         topics=["x" * 1000] * 5000)
        self.expect_code(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         self.sentinel(2).RegisterBroker, big, timeout=30)
        self.assertFalse(os.path.exists(self.c.members[2].path("brokers",
                                                               "big")))

    def test_an_expired_deadline_is_deadline_exceeded(self):
        self.expect_code(grpc.StatusCode.DEADLINE_EXCEEDED,
                         self.sentinel(1).GetTopicLeader,
                         S.pb.GetTopicLeaderRequest(topic="late",
                                                    replica_count=3),
                         timeout=0.000001)
        # The member keeps serving.
        r = self.health(1).Check(S.health.HealthCheckRequest(), timeout=30)
        self.assertEqual(r.status, S.health.HealthCheckResponse.SERVING)

    def test_without_brokers_a_topic_has_no_leader(self):
        e = self.expect_code(grpc.StatusCode.UNKNOWN, self.sentinel(0)
                             .GetTopicLeader, S.pb.GetTopicLeaderRequest(
                                 topic="lonely", replica_count=3),
                             timeout=30)
        self.assertEqual(e.details(), "topic lonely 没有可用的broker")
        self.expect_code(grpc.StatusCode.FAILED_PRECONDITION, self.brokers, 2,
                         "lonely", count=3)


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_HEADERS = 0x4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7fffffff) + payload


def literal(name, value):
    """HPACK literal without indexing, new name, no Huffman."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request_block(path):
    return (b"\x83\x86" + literal(b":path", path) +
            literal(b":authority", b"x") +
            literal(b"content-type", b"application/grpc") +
            literal(b"te", b"trailers"))


def abuse(port, data, preface=True):
    """Send @data on a raw connection; return every frame type received
    until the member closed it (or 10 s passed)."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    buf = b""
    try:
        sock.sendall((PREFACE + frame(SETTINGS, 0, 0) if preface else b"") +
                     data)
        sock.settimeout(10)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            d = sock.recv(65536)
            if not d:
                break
            buf += d
    except (OSError, socket.timeout):
        pass
    finally:
        sock.close()
    types = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[0:3], "big")
        types.append(buf[3])
        buf = buf[9 + n:]
    return types


class AbuseTests(GrpcCluster):
    """Malformed HTTP/2 at one member: the connection ends, the member (and
    the cluster) keeps serving everyone else."""

    def assertServes(self):
        for i in range(3):
            r = self.health(i).Check(S.health.HealthCheckRequest(),
                                     timeout=30)
            self.assertEqual(r.status, S.health.HealthCheckResponse.SERVING)
        self.assertEqual(self.register(0, "alive%d" % time.monotonic_ns(),
                                       9900).success, True)
        self.assertIsNone(self.c.members[0].proc.poll())

    def test_a_garbage_preface_is_closed(self):
        types = abuse(self.c.members[0].grpc_port,
                      b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 64,
                      preface=False)
        self.assertNotIn(HEADERS, types)
        self.assertServes()

    def test_bad_frames_get_goaway(self):
        for bad in (frame(DATA, 0, 0, b"hello"), frame(PING, 0, 0, b"123")):
            self.assertIn(GOAWAY, abuse(self.c.members[0].grpc_port, bad))
        self.assertServes()

    def test_a_stream_reset_storm_gets_goaway(self):
        path = b"/goulette.SentinelService/GetTopicLeader"
        storm = b"".join(
            frame(HEADERS, END_HEADERS, 2 * i + 1, request_block(path)) +
            frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8))
            for i in range(3000))
        self.assertIn(GOAWAY, abuse(self.c.members[0].grpc_port, storm))
        self.assertServes()


class QuorumTests(GrpcCluster):
    """Runs last in its own cluster: it stops members."""

    def test_a_keepalive_never_waits_even_without_quorum(self):
        # A follower answers a renewal that changes nothing at once, even
        # when no write can commit: KeepAlive never waits on Raft.  (Named
        # to run before the health test of this class's shared cluster;
        # both keep the same member.)
        keep = next(i for i, m in enumerate(self.c.members)
                    if m.name != self.leader_name)
        r = self.register(keep, "kb", 7101)
        self.assertTrue(r.success, r.error_message)
        for i, m in enumerate(self.c.members):
            if i != keep:
                m.stop()
        # Waiting on Raft here would end in a failed renewal (no quorum).
        r = self.sentinel(keep).KeepAlive(S.pb.KeepAliveRequest(
            broker_id="kb", address="127.0.0.1:7101"), timeout=30)
        self.assertTrue(r.success, r.error_message)

    def test_health_is_not_serving_without_quorum(self):
        H = S.health.HealthCheckResponse
        keep = next(i for i, m in enumerate(self.c.members)
                    if m.name != self.leader_name)
        for i, m in enumerate(self.c.members):
            if i != keep:
                m.stop()

        def not_serving():
            try:
                r = self.health(keep).Check(S.health.HealthCheckRequest(),
                                            timeout=5)
            except grpc.RpcError:
                return False
            return r.status == H.NOT_SERVING
        wait_until(not_serving, 60, "NOT_SERVING without quorum")
        # A read needs a leader: GetTopicLeader fails, in Goulette's way.
        self.expect_code(grpc.StatusCode.UNKNOWN,
                         self.sentinel(keep).GetTopicLeader,
                         S.pb.GetTopicLeaderRequest(topic="q",
                                                    replica_count=3),
                         timeout=30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
