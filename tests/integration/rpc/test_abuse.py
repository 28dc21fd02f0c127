"""Raw HTTP/2 abuse against rpc_test_server: a garbage preface, bad frames,
floods of RST_STREAM / PING / SETTINGS, a huge header block, and many idle
connections.  Each abusive connection must end with GOAWAY or a close, the
server's memory must stay bounded, and a grpcio client must be served
throughout."""
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcharness  # noqa: E402

STUBS = rpcharness.generate_stubs()
import grpc  # noqa: E402
import rpc_test_pb2 as T  # noqa: E402
import rpc_test_pb2_grpc as TG  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = \
    0, 1, 3, 4, 6, 7, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ENHANCE_YOUR_CALM, PROTOCOL_ERROR = 0xb, 0x1
SERVER = None


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7fffffff) + payload


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    def s(b):
        assert len(b) < 127
        return bytes([len(b)]) + b
    return b"\x00" + s(name) + s(value)


def request_block(path=b"/goulettefs.test.Test/Echo"):
    # :method POST (static 3), :scheme http (static 6), then literals.
    return (b"\x83\x86" + hpack_literal(b":path", path) +
            hpack_literal(b":authority", b"x") +
            hpack_literal(b"content-type", b"application/grpc") +
            hpack_literal(b"te", b"trailers"))


class Conn:
    def __init__(self, handshake=True):
        self.sock = socket.create_connection(("127.0.0.1", SERVER.port), 10)
        self.buf = b""
        if handshake:
            self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def read_frames(self, timeout=10.0):
        """Read until the server closes (or @timeout); return the frames."""
        self.sock.settimeout(timeout)
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                d = self.sock.recv(65536)
                if not d:
                    break
                self.buf += d
        except (socket.timeout, ConnectionResetError):
            pass
        frames = []
        b = self.buf
        while len(b) >= 9:
            n = int.from_bytes(b[0:3], "big")
            if len(b) < 9 + n:
                break
            frames.append((b[3], b[4], int.from_bytes(b[5:9], "big") &
                           0x7fffffff, b[9:9 + n]))
            b = b[9 + n:]
        return frames

    def close(self):
        self.sock.close()


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY and len(p) >= 8:
            return int.from_bytes(p[4:8], "big")
    return None


def setUpModule():
    global SERVER
    SERVER = rpcharness.Server(
        env={"RPC_TEST_RECEIVE_TIMEOUT_MS": "500"}).start()


SERVER_RC = None


def tearDownModule():
    # The server must have survived every test and must still shut down
    # cleanly (every handle closed, uv_loop_close() == 0: exit status 0).
    global SERVER_RC
    if SERVER is not None:
        SERVER_RC = SERVER.stop()
    rpcharness.cleanup(STUBS)


class Abuse(unittest.TestCase):
    def assertServes(self):
        with grpc.insecure_channel(SERVER.address) as ch:
            r = TG.TestStub(ch).Echo(T.EchoRequest(text="alive"), timeout=20)
        self.assertEqual(r.text, "alive")
        self.assertTrue(SERVER.alive())

    def test_a_garbage_preface_is_closed(self):
        c = Conn(handshake=False)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 100)
        frames = c.read_frames()
        c.close()
        # Either a GOAWAY then close, or a plain close: never a response.
        self.assertFalse(any(t == HEADERS for t, _, _, _ in frames))
        self.assertServes()

    def test_data_on_stream_zero_gets_goaway_protocol_error(self):
        c = Conn()
        c.send(frame(DATA, 0, 0, b"hello"))
        frames = c.read_frames()
        c.close()
        self.assertEqual(goaway_code(frames), PROTOCOL_ERROR)
        self.assertServes()

    def test_a_frame_with_a_bad_length_gets_goaway(self):
        c = Conn()
        c.send(frame(PING, 0, 0, b"123"))  # PING must be 8 bytes
        frames = c.read_frames()
        c.close()
        self.assertIsNotNone(goaway_code(frames))
        self.assertServes()

    def test_a_rst_stream_storm_gets_goaway(self):
        c = Conn()
        burst = b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1,
                               request_block()) +
                         frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8))
                         for i in range(3000))
        c.send(burst)
        frames = c.read_frames()
        c.close()
        self.assertEqual(goaway_code(frames), ENHANCE_YOUR_CALM)
        self.assertServes()

    def test_a_ping_flood_gets_goaway(self):
        c = Conn()
        c.send(b"".join(frame(PING, 0, 0, struct.pack(">Q", i))
                        for i in range(5000)))
        frames = c.read_frames()
        c.close()
        self.assertEqual(goaway_code(frames), ENHANCE_YOUR_CALM)
        self.assertServes()

    def test_a_settings_flood_gets_goaway(self):
        c = Conn()
        c.send(b"".join(frame(SETTINGS, 0, 0) for i in range(2000)))
        frames = c.read_frames()
        c.close()
        self.assertEqual(goaway_code(frames), ENHANCE_YOUR_CALM)
        self.assertServes()

    def test_a_huge_header_block_costs_no_memory(self):
        rss0 = SERVER.rss_kib()
        c = Conn()
        block = request_block()
        for i in range(2000):
            block += hpack_literal(b"x-h%d" % i, b"v" * 100)
        # HEADERS then CONTINUATIONs of 16 KiB each.
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        data = frame(HEADERS, 0, 1, chunks[0])
        for i, ch in enumerate(chunks[1:], 1):
            flags = END_HEADERS if i == len(chunks) - 1 else 0
            data += frame(CONTINUATION, flags, 1, ch)
        c.send(data)
        frames = c.read_frames(timeout=3)
        c.close()
        # Refused one way or another: an error response on the stream, a
        # reset, or GOAWAY -- never a successful response.
        self.assertTrue(frames, "no answer at all")
        self.assertLess(SERVER.rss_kib() - rss0, 64 * 1024)
        self.assertServes()

    def test_streams_beyond_the_concurrency_limit_are_refused(self):
        c = Conn()
        # Open 300 streams that never send a body (limit is 256).
        c.send(b"".join(frame(HEADERS, END_HEADERS, 2 * i + 1,
                              request_block()) for i in range(300)))
        frames = c.read_frames(timeout=2)
        c.close()
        refused = [s for t, _, s, p in frames if t == RST_STREAM and
                   int.from_bytes(p[0:4], "big") in (7, 1)]
        gone = goaway_code(frames)
        self.assertTrue(refused or gone is not None,
                        "no stream refused among %d frames" % len(frames))
        self.assertServes()

    def test_a_body_that_never_ends_is_bounded_by_the_message_limit(self):
        rss0 = SERVER.rss_kib()
        c = Conn()
        c.send(frame(HEADERS, END_HEADERS, 1, request_block()))
        # Announce 4 MiB - 1 and send 3 MiB of it, over many streams.
        hdr = b"\x00" + struct.pack(">I", 4 * 1024 * 1024 - 1)
        c.send(frame(DATA, 0, 1, hdr))
        chunk = frame(DATA, 0, 1, b"a" * 16384)
        for _ in range(64):  # 1 MiB: within the initial windows
            if not c.send(chunk):
                break
        c.read_frames(timeout=1)
        c.close()
        self.assertLess(SERVER.rss_kib() - rss0, 64 * 1024)
        self.assertServes()

    def test_a_request_that_never_ends_is_answered_after_the_receive_timeout(self):
        c = Conn()
        c.send(frame(HEADERS, END_HEADERS, 1, request_block()))
        c.send(frame(DATA, 0, 1, b"\x00\x00\x00\x00\x10abc"))  # 3 of 16
        frames = c.read_frames(timeout=5)
        c.close()
        ended = [f for f in frames if f[0] == HEADERS and f[2] == 1 and
                 f[1] & END_STREAM]
        self.assertTrue(ended, "stream 1 was never answered: %r" % frames)
        self.assertServes()

    def test_many_connections_that_say_nothing_do_not_block_others(self):
        socks = []
        try:
            for _ in range(100):
                socks.append(socket.create_connection(
                    ("127.0.0.1", SERVER.port), 10))
            self.assertServes()
        finally:
            for s in socks:
                s.close()
        self.assertServes()


if __name__ == "__main__":
    prog = unittest.main(exit=False, verbosity=2)
    if SERVER_RC != 0:
        print("server exit status %r (0 expected)" % SERVER_RC)
    sys.exit(0 if prog.result.wasSuccessful() and SERVER_RC == 0 else 1)
