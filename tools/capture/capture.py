#!/usr/bin/env python3
"""Records the Kafka frames real clients exchange with a Kayak broker, for Protocol's golden-frame tests.

For each client (kcat, kafka-python, kafkajs) this starts a fresh broker on a free loopback port, puts a
recording TCP proxy in front of it and runs the client's scenario against the proxy. The broker advertises
the proxy's address (advertised.listeners), so Metadata and FindCoordinator answers send the client back
through the proxy and no response has to be rewritten. Every request frame is paired with its response by
correlation id (per connection: Kafka answers in order, and acks=0 Produce has no response at all).

Frames are written whole, 4-byte size prefix included, as
    <out>/<client>/<NN>_<ApiKey>_v<version>.request.bin / .response.bin
plus <out>/<client>/index.json. Only the first few exchanges of each (api, version) are kept so the
committed data stays small; pass --keep to change that.

Usage (from the repo root): /usr/bin/python3 tools/capture/capture.py [--clients kcat,kafka-python,kafkajs]
See tools/capture/README.md.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))

# Kafka's ApiKeys names (clients/src/main/resources/common/message/*.json), enough for what clients send.
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit",
    29: "DescribeAcls", 32: "DescribeConfigs", 33: "AlterConfigs", 35: "DescribeLogDirs",
    36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 60: "DescribeCluster", 68: "ConsumerGroupHeartbeat", 75: "DescribeTopicPartitions",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Collects exchanges from all proxied connections in request-arrival order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.exchanges = []  # dicts: seq, conn, api, version, corr, request, response

    def add_request(self, conn_id, frame):
        api, version, corr = struct.unpack(">hhi", frame[4:12])
        ex = {"conn": conn_id, "api": api, "version": version, "corr": corr, "request": frame, "response": None}
        with self.lock:
            ex["seq"] = len(self.exchanges)
            self.exchanges.append(ex)
        return ex


def frames(buf):
    """Splits complete size-prefixed frames off the front of buf; returns (frames, rest)."""
    out = []
    while len(buf) >= 4:
        size = struct.unpack(">i", buf[:4])[0]
        if len(buf) < 4 + size:
            break
        out.append(bytes(buf[:4 + size]))
        buf = buf[4 + size:]
    return out, buf


class Proxy:
    def __init__(self, listen_sock, upstream_port, recorder):
        self.sock = listen_sock
        self.upstream = upstream_port
        self.rec = recorder
        self.conn_ids = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.conn_ids += 1
            server = socket.create_connection(("127.0.0.1", self.upstream))
            pending = {}  # corr -> exchange, per connection
            lock = threading.Lock()
            threading.Thread(target=self._pump, args=(client, server, self.conn_ids, pending, lock, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.conn_ids, pending, lock, False), daemon=True).start()

    def _pump(self, src, dst, conn_id, pending, lock, is_request):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                complete, buf = frames(buf)
                # Record before forwarding so a response can never overtake its request's bookkeeping.
                for f in complete:
                    if is_request:
                        ex = self.rec.add_request(conn_id, f)
                        with lock:
                            pending[ex["corr"]] = ex
                    else:
                        corr = struct.unpack(">i", f[4:8])[0]
                        with lock:
                            ex = pending.pop(corr, None)
                        if ex is None:
                            print(f"capture: response with unknown correlation id {corr} on connection {conn_id}", file=sys.stderr)
                        else:
                            ex["response"] = f
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


def start_broker(broker_port, proxy_port, data_dir, args):
    dll = args.broker or os.path.join(REPO, "Broker", "bin", args.configuration, "net10.0", "Kayak.Broker.dll")
    cmd = ["dotnet", dll,
           "--override", f"listeners=PLAINTEXT://127.0.0.1:{broker_port}",
           "--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}",
           "--override", f"log.dirs={data_dir}",
           # Small internal topics keep all-topics Metadata responses small; no rebalance delay keeps runs short.
           "--override", "offsets.topic.num.partitions=1",
           "--override", "transaction.state.log.num.partitions=1",
           "--override", "group.initial.rebalance.delay.ms=0"]
    log = open(os.path.join(data_dir, "..", "broker.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"capture: broker exited with {proc.returncode}, see {log.name}")
        try:
            socket.create_connection(("127.0.0.1", broker_port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("capture: broker did not start listening within 30 s")


def run(cmd, env=None, stdin=None, timeout=120):
    print("capture: $ " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, input=stdin, env=env, timeout=timeout, capture_output=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))
        raise SystemExit(f"capture: {cmd[0]} failed with {r.returncode}")
    return r.stdout


def scenario_kcat(bootstrap, args):
    topic = "golden-kcat"
    run(["kcat", "-b", bootstrap, "-L", "-X", "client.id=golden-kcat"])
    run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", ":", "-X", "client.id=golden-kcat"],
        stdin=b"k1:hello\nk2:kayak\nk3:golden\n")
    run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", "3", "-e", "-X", "client.id=golden-kcat"])
    if args.groups:
        # No -o: the balanced consumer then starts from the committed offset (OffsetFetch), reset to earliest.
        run(["kcat", "-b", bootstrap, "-G", "golden-kcat-group", topic, "-c", "3",
             "-X", "client.id=golden-kcat", "-X", "auto.offset.reset=earliest"])


def scenario_kafka_python(bootstrap, args):
    env = dict(os.environ, GOLDEN_GROUPS="1" if args.groups else "0")
    run([args.python, os.path.join(HERE, "clients", "kafka_python_scenario.py"), bootstrap], env=env)


def scenario_kafkajs(bootstrap, args):
    env = dict(os.environ, NODE_PATH=os.path.join(REPO, "IntegrationTests", "js", "node_modules"),
               GOLDEN_GROUPS="1" if args.groups else "0")
    run(["node", os.path.join(HERE, "clients", "kafkajs_scenario.js"), bootstrap], env=env)


SCENARIOS = {"kcat": scenario_kcat, "kafka-python": scenario_kafka_python, "kafkajs": scenario_kafkajs}


def client_version(name, args):
    try:
        if name == "kcat":
            out = run(["kcat", "-V"]).decode()
            return " ".join(line.strip() for line in out.splitlines() if "version" in line.lower())
        if name == "kafka-python":
            return "kafka-python " + run([args.python, "-c", "import kafka; print(kafka.__version__)"]).decode().strip()
        if name == "kafkajs":
            path = os.path.join(REPO, "IntegrationTests", "js", "node_modules", "kafkajs", "package.json")
            return "kafkajs " + json.load(open(path))["version"]
    except (OSError, SystemExit, KeyError):
        pass
    return "unknown"


def select(exchanges, keep):
    """First `keep` answered exchanges of each (api, version); later ones are repeats (polls, heartbeats, refreshes)."""
    seen = {}
    kept = []
    for ex in sorted(exchanges, key=lambda e: e["seq"]):
        # A request still unanswered when the client hung up (a long-poll Fetch cut short by exit) is not an
        # exchange; only acks=0 Produce legitimately has no response.
        if ex["response"] is None and ex["api"] != 0:
            continue
        k = (ex["api"], ex["version"])
        if seen.get(k, 0) < keep:
            seen[k] = seen.get(k, 0) + 1
            kept.append(ex)
    return kept


def capture(name, args, out_root):
    work = tempfile.mkdtemp(prefix=f"kayak-capture-{name}-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    proxy_sock = socket.socket()
    proxy_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    proxy_sock.bind(("127.0.0.1", 0))
    proxy_sock.listen(64)
    proxy_port = proxy_sock.getsockname()[1]
    broker_port = free_port()
    broker = start_broker(broker_port, proxy_port, data_dir, args)
    rec = Recorder()
    proxy = Proxy(proxy_sock, broker_port, rec)
    try:
        SCENARIOS[name](f"127.0.0.1:{proxy_port}", args)
        time.sleep(0.5)  # let in-flight responses land
    finally:
        proxy.close()
        broker.terminate()
        try:
            broker.wait(15)
        except subprocess.TimeoutExpired:
            broker.kill()
    with rec.lock:
        exchanges = list(rec.exchanges)
    kept = select(exchanges, args.keep)

    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    index = {"client": client_version(name, args), "captured": time.strftime("%Y-%m-%d"), "exchanges": []}
    width = max(2, len(str(len(kept))))
    for n, ex in enumerate(kept):
        api_name = API_NAMES.get(ex["api"], f"Api{ex['api']}")
        stem = f"{n:0{width}d}_{api_name}_v{ex['version']}"
        with open(os.path.join(out, stem + ".request.bin"), "wb") as f:
            f.write(ex["request"])
        entry = {"name": stem, "apiKey": ex["api"], "api": api_name, "version": ex["version"],
                 "correlationId": ex["corr"], "connection": ex["conn"], "requestBytes": len(ex["request"]),
                 "responseBytes": None}
        if ex["response"] is not None:
            with open(os.path.join(out, stem + ".response.bin"), "wb") as f:
                f.write(ex["response"])
            entry["responseBytes"] = len(ex["response"])
        index["exchanges"].append(entry)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(len(e["request"]) + len(e["response"] or b"") for e in kept)
    print(f"capture: {name}: {len(exchanges)} exchanges seen, {len(kept)} kept, {total} bytes -> {out}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="kcat,kafka-python,kafkajs")
    p.add_argument("--out", default=os.path.join(REPO, "Protocol", "Tests", "TestData", "frames"))
    p.add_argument("--keep", type=int, default=2, help="exchanges kept per (api, version) and client")
    p.add_argument("--no-groups", dest="groups", action="store_false", help="skip consumer-group scenarios")
    p.add_argument("--no-build", dest="build", action="store_false")
    p.add_argument("--configuration", default="Debug")
    p.add_argument("--broker", help="Kayak.Broker.dll to run instead of this checkout's build (implies --no-build)")
    p.add_argument("--python", default="/usr/bin/python3", help="interpreter with kafka-python installed")
    args = p.parse_args()
    if args.build and not args.broker:
        run(["dotnet", "build", os.path.join(REPO, "Broker", "Broker.csproj"), "-c", args.configuration, "-v", "q", "-nologo"], timeout=600)
    for name in args.clients.split(","):
        capture(name.strip(), args, args.out)


if __name__ == "__main__":
    main()
