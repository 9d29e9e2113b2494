"""Consume from a topic as a group member and commit (kafka-python), for the commit/resume tests.

stdin: {"bootstrap", "topic", "group", "mode": "sync"|"async"|"auto"|"none", "consume": n, "commit_after": m,
        "timeout_ms"?}
Consumes n records. sync/async commit once, right after the m-th record (commit() / commit_async() of the
positions then); the records after it are consumed but not committed. auto: enable_auto_commit, so the offsets of
everything consumed are committed (at the latest by close()). none: no commit.
stdout: {"records": [{"partition", "offset"}], "committed": {partition: offset} as the client committed them}
"""
import sys
import threading
import time

import kafka
from kcommon import read_request, reply

req = read_request()
mode = req["mode"]
deadline = time.monotonic() + req.get("timeout_ms", 30000) / 1000.0
consumer = kafka.KafkaConsumer(
    bootstrap_servers=req["bootstrap"],
    group_id=req["group"],
    enable_auto_commit=(mode == "auto"),
    auto_commit_interval_ms=100,
    auto_offset_reset="earliest",
    session_timeout_ms=6000,
    heartbeat_interval_ms=500,
    max_poll_records=1,
    request_timeout_ms=30000,
)
consumer.subscribe([req["topic"]])
records = []
committed = {}
async_done = threading.Event()
async_error = []


def on_commit(offsets, response):
    if isinstance(response, Exception):
        async_error.append(repr(response))
    async_done.set()


while len(records) < req["consume"]:
    if time.monotonic() > deadline:
        sys.stderr.write("timeout after %d records\n" % len(records))
        sys.exit(2)
    for tp, messages in consumer.poll(timeout_ms=100, max_records=1).items():
        for m in messages:
            records.append({"partition": m.partition, "offset": m.offset})
            if len(records) == req.get("commit_after", -1) and mode in ("sync", "async"):
                positions = {p: consumer.position(p) for p in consumer.assignment()}
                if mode == "sync":
                    consumer.commit()
                else:
                    consumer.commit_async(callback=on_commit)
                    # The callback runs from poll(): keep the consumer polling elsewhere would consume more, so
                    # drive it with the coordinator's own poll until the response arrived.
                    while not async_done.is_set():
                        if time.monotonic() > deadline:
                            sys.stderr.write("async commit did not complete\n")
                            sys.exit(2)
                        consumer._coordinator.poll()
                        consumer._client.poll(timeout_ms=50)
                    if async_error:
                        sys.stderr.write("async commit failed: %s\n" % async_error)
                        sys.exit(3)
                committed = {str(p.partition): o for p, o in positions.items()}
if mode == "auto":
    positions = {p: consumer.position(p) for p in consumer.assignment()}
    committed = {str(p.partition): o for p, o in positions.items()}
consumer.close()
reply({"records": records, "committed": committed})
