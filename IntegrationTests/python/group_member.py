"""A long-running kafka-python group member for the rebalance tests.

stdin line 1: {"bootstrap", "topic", "group", "session_timeout_ms"?, "heartbeat_interval_ms"?, "client_id"?}
stdout: one JSON line per assignment change {"event": "assigned", "partitions": [...]}
stdin "close": close the consumer (kafka-python sends LeaveGroup) and exit 0. Killing the process instead leaves the
group only through the session timeout.
"""
import json
import sys
import threading

import kafka
from kcommon import reply

req = json.loads(sys.stdin.readline())
closing = threading.Event()


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == "close":
            break
    closing.set()


class Listener(kafka.ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        reply({"event": "revoked", "partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned):
        reply({"event": "assigned", "partitions": sorted(tp.partition for tp in assigned)})


consumer = kafka.KafkaConsumer(
    bootstrap_servers=req["bootstrap"],
    group_id=req["group"],
    client_id=req.get("client_id", "kayak-itest-python-member"),
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    session_timeout_ms=req.get("session_timeout_ms", 6000),
    heartbeat_interval_ms=req.get("heartbeat_interval_ms", 500),
    request_timeout_ms=30000,
)
consumer.subscribe([req["topic"]], listener=Listener())
threading.Thread(target=watch_stdin, daemon=True).start()
while not closing.is_set():
    consumer.poll(timeout_ms=100)
consumer.close()
reply({"event": "closed"})
