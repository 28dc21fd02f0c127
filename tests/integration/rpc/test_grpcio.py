"""rpc server against Python grpcio: unary calls, Goulette's messages and
error strings, unknown methods, malformed and oversized bodies, deadlines,
compression, health, concurrency, and a clean shutdown."""
import os
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness  # noqa: E402

STUBS = rpcharness.generate_stubs()
import grpc  # noqa: E402
import goulette_pb2  # noqa: E402
import goulette_pb2_grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import rpc_test_pb2 as T  # noqa: E402
import rpc_test_pb2_grpc as TG  # noqa: E402

SERVER = None


def setUpModule():
    global SERVER
    SERVER = rpcharness.Server().start()


SERVER_RC = None


def tearDownModule():
    # The server must have survived every test and must still shut down
    # cleanly (every handle closed, uv_loop_close() == 0: exit status 0).
    global SERVER_RC
    if SERVER is not None:
        SERVER_RC = SERVER.stop()
    rpcharness.cleanup(STUBS)


class Grpc(unittest.TestCase):
    def setUp(self):
        self.channel = grpc.insecure_channel(SERVER.address)
        self.stub = TG.TestStub(self.channel)

    def tearDown(self):
        self.channel.close()

    def stats(self):
        return self.stub.Stats(T.StatsRequest(), timeout=10)

    def assertCode(self, ctx, code):
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())

    def test_unary_echo_round_trips_bytes_and_text(self):
        payload = os.urandom(1000)
        r = self.stub.Echo(T.EchoRequest(payload=payload, text="héllo"),
                           timeout=10)
        self.assertEqual(r.payload, payload)
        self.assertEqual(r.text, "héllo")

    def test_an_empty_request_message_is_valid(self):
        r = self.stub.Echo(T.EchoRequest(), timeout=10)
        self.assertEqual(r.payload, b"")

    def test_a_message_just_under_the_limit_passes(self):
        payload = b"x" * (4 * 1024 * 1024 - 64)
        r = self.stub.Echo(T.EchoRequest(payload=payload), timeout=30)
        self.assertEqual(len(r.payload), len(payload))

    def test_an_oversized_message_is_resource_exhausted(self):
        payload = b"x" * (5 * 1024 * 1024)
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Echo(T.EchoRequest(payload=payload), timeout=30)
        self.assertCode(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("larger than max", ctx.exception.details())
        # The connection still works.
        self.assertEqual(self.stub.Echo(T.EchoRequest(text="a"),
                                        timeout=10).text, "a")

    def test_an_unknown_method_is_unimplemented(self):
        call = self.channel.unary_unary("/goulettefs.test.Test/Nope")
        with self.assertRaises(grpc.RpcError) as ctx:
            call(b"", timeout=10)
        self.assertCode(ctx, grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(ctx.exception.details(),
                         "unknown method Nope for service goulettefs.test.Test")

    def test_an_unknown_service_is_unimplemented(self):
        call = self.channel.unary_unary("/nope.Missing/Get")
        with self.assertRaises(grpc.RpcError) as ctx:
            call(b"", timeout=10)
        self.assertCode(ctx, grpc.StatusCode.UNIMPLEMENTED)
        self.assertEqual(ctx.exception.details(), "unknown service nope.Missing")

    def test_a_malformed_body_is_internal(self):
        call = self.channel.unary_unary("/goulettefs.test.Test/Echo")
        with self.assertRaises(grpc.RpcError) as ctx:
            call(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)  # truncated field
        self.assertCode(ctx, grpc.StatusCode.INTERNAL)
        self.assertIn("unmarshalling", ctx.exception.details())

    def test_raw_handlers_see_the_exact_bytes(self):
        call = self.channel.unary_unary("/goulettefs.test.Test/Raw")
        body = bytes(range(256)) * 10
        self.assertEqual(call(body, timeout=10), body)

    def test_an_expired_deadline_is_deadline_exceeded_and_cancels(self):
        before = self.stats()
        with self.assertRaises(grpc.RpcError) as ctx:
            # Long enough for the handler to be reached on a loaded machine.
            self.stub.Delay(T.EchoRequest(delay_ms=3000), timeout=1.0)
        self.assertCode(ctx, grpc.StatusCode.DEADLINE_EXCEEDED)
        # The handler was told (cancel callback), and its late reply was
        # dropped without harm.
        ok = rpcharness.wait_until(
            lambda: self.stats().late_dropped > before.late_dropped, 15)
        self.assertTrue(ok, "late reply never dropped")
        self.assertGreater(self.stats().cancelled, before.cancelled)
        self.assertEqual(self.stub.Echo(T.EchoRequest(text="b"),
                                        timeout=10).text, "b")

    def test_a_reply_within_the_deadline_succeeds(self):
        r = self.stub.Delay(T.EchoRequest(text="late", delay_ms=50),
                            timeout=10)
        self.assertEqual(r.text, "late")

    def test_error_statuses_carry_non_ascii_messages(self):
        msg = "寻找替换broker失败: 无法找到足够的健康broker来补充副本，需要 2 个，只找到 1 个 100%"
        for code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.UNAVAILABLE):
            with self.assertRaises(grpc.RpcError) as ctx:
                self.stub.Fail(T.FailRequest(code=code.value[0], message=msg),
                               timeout=10)
            self.assertCode(ctx, code)
            self.assertEqual(ctx.exception.details(), msg)

    def test_goulette_get_topic_leader_messages_decode(self):
        s = goulette_pb2_grpc.SentinelServiceStub(self.channel)
        r = s.GetTopicLeader(goulette_pb2.GetTopicLeaderRequest(
            topic="orders", replica_count=3), timeout=10)
        self.assertEqual(r.leader.broker_id, "b-orders")
        self.assertEqual(r.leader.address, "127.0.0.1:1")
        self.assertEqual(r.leader.status, goulette_pb2.BROKER_STATUS_UNSPECIFIED)
        self.assertEqual(r.leader.last_heartbeat.seconds, 1720000000)
        self.assertEqual(r.error_message, "")
        with self.assertRaises(grpc.RpcError) as ctx:
            s.GetTopicLeader(goulette_pb2.GetTopicLeaderRequest(topic=""),
                             timeout=10)
        self.assertCode(ctx, grpc.StatusCode.UNKNOWN)
        self.assertEqual(ctx.exception.details(), "topic  没有可用的broker")
        k = s.KeepAlive(goulette_pb2.KeepAliveRequest(broker_id="b1",
                                                      address="h:1"),
                        timeout=10)
        self.assertTrue(k.success)
        self.assertEqual(k.error_message, "心跳续约成功")

    def test_health_check_is_serving(self):
        h = health_pb2_grpc.HealthStub(self.channel)
        r = h.Check(health_pb2.HealthCheckRequest(), timeout=10)
        self.assertEqual(r.status, health_pb2.HealthCheckResponse.SERVING)
        r = h.Check(health_pb2.HealthCheckRequest(
            service="goulettefs.test.Sick"), timeout=10)
        self.assertEqual(r.status, health_pb2.HealthCheckResponse.NOT_SERVING)
        with self.assertRaises(grpc.RpcError) as ctx:
            h.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        self.assertCode(ctx, grpc.StatusCode.NOT_FOUND)
        # Watch is not served.
        with self.assertRaises(grpc.RpcError) as ctx:
            next(iter(h.Watch(health_pb2.HealthCheckRequest(), timeout=10)))
        self.assertCode(ctx, grpc.StatusCode.UNIMPLEMENTED)

    def test_compressed_requests_are_unimplemented(self):
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Echo(T.EchoRequest(text="z" * 100), timeout=10,
                           compression=grpc.Compression.Gzip)
        self.assertCode(ctx, grpc.StatusCode.UNIMPLEMENTED)

    def test_oversized_metadata_is_refused_and_the_server_goes_on(self):
        md = [("x-big-%d" % i, "v" * 1000) for i in range(30)]
        with self.assertRaises(grpc.RpcError) as ctx:
            self.stub.Echo(T.EchoRequest(text="m"), metadata=md, timeout=10)
        self.assertIn(ctx.exception.code(),
                      (grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.INTERNAL))
        self.assertEqual(self.stub.Echo(T.EchoRequest(text="c"),
                                        timeout=10).text, "c")

    def test_many_concurrent_calls_on_many_channels_all_succeed(self):
        channels = [grpc.insecure_channel(SERVER.address) for _ in range(4)]
        try:
            futures = []
            for i in range(400):
                stub = TG.TestStub(channels[i % 4])
                if i % 3 == 0:
                    req = T.EchoRequest(text=str(i), delay_ms=20)
                    futures.append((i, stub.Delay.future(req, timeout=60)))
                else:
                    futures.append((i, stub.Echo.future(
                        T.EchoRequest(text=str(i)), timeout=60)))
            for i, f in futures:
                self.assertEqual(f.result().text, str(i))
        finally:
            for c in channels:
                c.close()

    def test_threads_share_one_channel(self):
        errors = []

        def worker(n):
            try:
                for j in range(50):
                    t = "%d-%d" % (n, j)
                    if self.stub.Echo(T.EchoRequest(text=t), timeout=30).text != t:
                        errors.append(t)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])


class ServerSideDeadline(unittest.TestCase):
    """grpcio cancels on its own timer; nghttp sends grpc-timeout but waits,
    so the answer it gets proves the server enforces the deadline."""

    def test_the_server_answers_deadline_exceeded_by_itself(self):
        body = T.EchoRequest(text="x", delay_ms=3000).SerializeToString()
        framed = b"\x00" + len(body).to_bytes(4, "big") + body
        with tempfile.NamedTemporaryFile() as f:
            f.write(framed)
            f.flush()
            out = subprocess.run(
                ["nghttp", "-v", "-H", ":method: POST",
                 "-H", "content-type: application/grpc",
                 "-H", "te: trailers", "-H", "grpc-timeout: 200m",
                 "-d", f.name,
                 "http://%s/goulettefs.test.Test/Delay" % SERVER.address],
                capture_output=True, timeout=30, text=True)
        self.assertIn("grpc-status: 4", out.stdout, out.stdout + out.stderr)

    def test_a_bad_grpc_timeout_is_internal(self):
        out = subprocess.run(
            ["nghttp", "-v", "-H", ":method: POST",
             "-H", "content-type: application/grpc", "-H", "te: trailers",
             "-H", "grpc-timeout: soon",
             "http://%s/goulettefs.test.Test/Echo" % SERVER.address],
            capture_output=True, timeout=30, text=True)
        self.assertIn("grpc-status: 13", out.stdout, out.stdout + out.stderr)

    def test_a_non_grpc_content_type_is_refused(self):
        out = subprocess.run(
            ["nghttp", "-v", "-H", ":method: POST",
             "-H", "content-type: application/json", "-H", "te: trailers",
             "http://%s/goulettefs.test.Test/Echo" % SERVER.address],
            capture_output=True, timeout=30, text=True)
        self.assertIn(":status: 415", out.stdout, out.stdout + out.stderr)


class Shutdown(unittest.TestCase):
    def test_sigterm_with_calls_in_flight_closes_every_handle(self):
        srv = rpcharness.Server().start()
        ch = grpc.insecure_channel(srv.address)
        try:
            stub = TG.TestStub(ch)
            fut = stub.Delay.future(T.EchoRequest(delay_ms=60000), timeout=60)
            self.assertTrue(rpcharness.wait_until(
                lambda: stub.Stats(T.StatsRequest(), timeout=5).pending == 1))
            rc = srv.stop()
            self.assertEqual(rc, 0, "uv_loop_close failed or server crashed")
            with self.assertRaises(grpc.RpcError):
                fut.result()
        finally:
            ch.close()
            srv.kill()


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    if SERVER_RC != 0:
        print("server exit status %r (0 expected)" % SERVER_RC)
    sys.exit(0 if prog.result.wasSuccessful() and SERVER_RC == 0 else 1)
