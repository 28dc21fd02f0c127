"""Our client (rpc/client.c, via rpc_test_client) against a server that is
not ours: a Python grpcio fake Goulette broker serving goulette.BrokerService.
Covers a unary call and its response bytes, in-band and status failures with
non-ASCII messages, an expired deadline, connection reuse across concurrent
calls, unknown methods, and nothing listening."""
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness  # noqa: E402

STUBS = rpcharness.generate_stubs()
import grpc  # noqa: E402
import goulette_pb2 as G  # noqa: E402
import goulette_pb2_grpc as GG  # noqa: E402

CLIENT = os.environ.get("RPC_TEST_CLIENT", "")
NOT_FOUND_MSG = "Topic不存在: orders"


class FakeBroker(GG.BrokerServiceServicer):
    def __init__(self):
        self.peers = set()
        self.roles = []
        self.lock = threading.Lock()

    def SetTopicRole(self, request, context):
        with self.lock:
            self.peers.add(context.peer())
            self.roles.append((request.topic, request.role,
                               list(request.followers),
                               request.leader_address))
        return G.SetTopicRoleResponse(success=True)

    def RemoveTopic(self, request, context):
        time.sleep(2.0)  # slower than the deadline the test gives
        return G.RemoveTopicResponse(success=True)

    def GetBrokerTopicRole(self, request, context):
        if request.topic == "orders":
            context.abort(grpc.StatusCode.NOT_FOUND, NOT_FOUND_MSG)
        return G.GetBrokerTopicRoleResponse(
            broker_id=request.broker_id, topic=request.topic, success=False,
            error_message="Broker ID不匹配: " + request.broker_id)


SERVER = None
BROKER = FakeBroker()
PORT = None


def setUpModule():
    global SERVER, PORT
    SERVER = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    GG.add_BrokerServiceServicer_to_server(BROKER, SERVER)
    PORT = SERVER.add_insecure_port("127.0.0.1:0")
    SERVER.start()


def tearDownModule():
    if SERVER is not None:
        SERVER.stop(None)
    rpcharness.cleanup(STUBS)


def run_client(address, method, request, timeout_ms, repeat=1):
    out = subprocess.run([CLIENT, address, method, request.hex(),
                          str(timeout_ms), str(repeat)],
                         capture_output=True, text=True, timeout=60)
    fields = {}
    for line in out.stdout.splitlines():
        k, _, v = line.partition(" ")
        fields[k] = v
    return out.returncode, fields, out.stderr


class Interop(unittest.TestCase):
    def addr(self):
        return "127.0.0.1:%d" % PORT

    def test_set_topic_role_reaches_the_broker_and_its_answer_decodes(self):
        req = G.SetTopicRoleRequest(topic="orders", role=G.TOPIC_ROLE_LEADER,
                                    followers=["h:2", "h:3"],
                                    leader_address="h:1")
        rc, f, err = run_client(self.addr(),
                                "/goulette.BrokerService/SetTopicRole",
                                req.SerializeToString(), 5000)
        self.assertEqual(rc, 0, err)
        self.assertEqual(f["STATUS"], "0", f)
        resp = G.SetTopicRoleResponse.FromString(bytes.fromhex(f["BODY"]))
        self.assertTrue(resp.success)
        self.assertIn(("orders", G.TOPIC_ROLE_LEADER, ["h:2", "h:3"], "h:1"),
                      BROKER.roles)

    def test_concurrent_calls_share_one_connection(self):
        before = len(BROKER.peers)
        req = G.SetTopicRoleRequest(topic="t", role=G.TOPIC_ROLE_FOLLOWER)
        rc, f, err = run_client(self.addr(),
                                "/goulette.BrokerService/SetTopicRole",
                                req.SerializeToString(), 10000, repeat=50)
        self.assertEqual(rc, 0, err)
        self.assertEqual((f["STATUS"], f["SAME"]), ("0", "1"), f)
        self.assertEqual(len(BROKER.peers), before + 1)

    def test_in_band_failures_keep_non_ascii_text(self):
        req = G.GetBrokerTopicRoleRequest(broker_id="b9", topic="t")
        rc, f, err = run_client(self.addr(),
                                "/goulette.BrokerService/GetBrokerTopicRole",
                                req.SerializeToString(), 5000)
        self.assertEqual(rc, 0, err)
        resp = G.GetBrokerTopicRoleResponse.FromString(
            bytes.fromhex(f["BODY"]))
        self.assertFalse(resp.success)
        self.assertEqual(resp.error_message, "Broker ID不匹配: b9")

    def test_status_failures_keep_non_ascii_text(self):
        req = G.GetBrokerTopicRoleRequest(broker_id="b1", topic="orders")
        rc, f, err = run_client(self.addr(),
                                "/goulette.BrokerService/GetBrokerTopicRole",
                                req.SerializeToString(), 5000)
        self.assertEqual(rc, 0, err)
        self.assertEqual(f["STATUS"], "5")  # NOT_FOUND
        self.assertEqual(f["MESSAGE"], NOT_FOUND_MSG)

    def test_a_slow_broker_gives_deadline_exceeded(self):
        req = G.RemoveTopicRequest(topic="orders", reason="Broker b1 无法连接")
        rc, f, err = run_client(self.addr(),
                                "/goulette.BrokerService/RemoveTopic",
                                req.SerializeToString(), 300)
        self.assertEqual(rc, 0, err)
        self.assertEqual(f["STATUS"], "4")  # DEADLINE_EXCEEDED

    def test_an_unknown_method_is_unimplemented(self):
        rc, f, err = run_client(self.addr(), "/goulette.BrokerService/Nope",
                                b"", 5000)
        self.assertEqual(rc, 0, err)
        self.assertEqual(f["STATUS"], "12")

    def test_nothing_listening_is_unavailable(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, f, err = run_client("127.0.0.1:%d" % port,
                                "/goulette.BrokerService/SetTopicRole", b"",
                                5000)
        self.assertEqual(rc, 0, err)
        self.assertEqual(f["STATUS"], "14")

    def test_a_name_is_resolved(self):
        req = G.SetTopicRoleRequest(topic="n")
        rc, f, err = run_client("localhost:%d" % PORT,
                                "/goulette.BrokerService/SetTopicRole",
                                req.SerializeToString(), 5000)
        self.assertEqual(rc, 0, err)
        # localhost may resolve to ::1 first, where nothing listens; either
        # a success or UNAVAILABLE is a correct answer, never a hang.
        self.assertIn(f["STATUS"], ("0", "14"))


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
