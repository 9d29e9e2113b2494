"""kafka-python against an in-process Kayak cluster across leader changes (issue 14), driven by ClusterScriptClientTests.

stdin: {"bootstrap", "topic", "count", "sync_dir"}. Steps, each synchronised with the test through files in sync_dir:
  1. admin-creates the topic (3 partitions, replication factor 3) and describes it;
  2. produces count/2 numbered records to partition 0 with acks=all (each send waited for), writes "produced-half"
     and waits for "go-produce" (the test kills partition 0's leader meanwhile), then produces the rest: the producer
     retries through NOT_LEADER_OR_FOLLOWER and the dead broker;
  3. consumes partition 0 from the beginning; after half the records writes "consumed-half" and waits for
     "go-consume" (the test kills the new leader), then reads on to the end.
stdout (last line): {"partitions": [{"partition", "leader", "replicas", "isr"}], "acked": [values], "consumed": [values]}
"""
import os
import time

import kafka
import kafka.errors
from kafka.admin import NewTopic
from kafka.structs import TopicPartition
from kcommon import read_request, reply

req = read_request()
bootstrap, topic, count, sync = req["bootstrap"], req["topic"], req["count"], req["sync_dir"]
servers = bootstrap.split(",")


def signal_and_wait(done, go, timeout=60):
    open(os.path.join(sync, done), "w").close()
    deadline = time.monotonic() + timeout
    while not os.path.exists(os.path.join(sync, go)):
        if time.monotonic() > deadline:
            raise TimeoutError("the test did not write " + go)
        time.sleep(0.05)


admin = kafka.KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=30000)
admin.create_topics([NewTopic(topic, 3, 3)], timeout_ms=30000)
partitions = []
deadline = time.monotonic() + 30
while True:
    described = admin.describe_topics([topic])[0]
    partitions = [{"partition": p["partition"], "leader": p["leader"], "replicas": sorted(p["replicas"]), "isr": sorted(p["isr"])}
                  for p in described["partitions"]]
    if described["error_code"] == 0 and len(partitions) == 3 and all(len(p["isr"]) == 3 for p in partitions):
        break
    if time.monotonic() > deadline:
        break  # the test reports what was seen
    time.sleep(0.1)
admin.close()

producer = kafka.KafkaProducer(bootstrap_servers=servers, acks="all", retries=100, retry_backoff_ms=100,
                               max_in_flight_requests_per_connection=1, request_timeout_ms=10000,
                               metadata_max_age_ms=1000, reconnect_backoff_max_ms=500)
acked = []
for i in range(count):
    if i == count // 2:
        signal_and_wait("produced-half", "go-produce")
    value = "v-%05d" % i
    producer.send(topic, value=value.encode("utf-8"), partition=0).get(timeout=60)
    acked.append(value)
producer.flush()
producer.close()

consumer = kafka.KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, auto_offset_reset="earliest",
                               metadata_max_age_ms=1000, request_timeout_ms=30000, reconnect_backoff_max_ms=500,
                               max_poll_records=max(1, count // 10),
                               # Small fetches, so the records after the pause are fetched after the leader change.
                               max_partition_fetch_bytes=1024, fetch_max_bytes=1024)
tp = TopicPartition(topic, 0)
consumer.assign([tp])
consumer.seek_to_beginning(tp)
consumed = []
signalled = False
deadline = time.monotonic() + 90
while len(consumed) < count and time.monotonic() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        consumed.extend(r.value.decode("utf-8") for r in records)
    if not signalled and len(consumed) >= count // 2:
        signalled = True
        signal_and_wait("consumed-half", "go-consume")
consumer.close()
reply({"partitions": partitions, "acked": acked, "consumed": consumed})
