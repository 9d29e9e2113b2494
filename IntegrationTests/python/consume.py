"""Consume every partition of a topic from the beginning up to the high watermarks read at the start (kafka-python).

stdin: {"bootstrap", "topic", "timeout_ms", "client_config": {kafka-python keyword arguments, e.g. SSL ones}}
stdout: {"records": [{"topic", "partition", "offset", "key", "value", "headers": [[k, v]], "timestamp"}]}
"""
import sys
import time

import kafka
from kcommon import client_config, read_request, reply, text, wait_for_partitions

req = read_request()
topic = req["topic"]
deadline = time.monotonic() + req.get("timeout_ms", 60000) / 1000.0
consumer = kafka.KafkaConsumer(
    bootstrap_servers=req["bootstrap"],
    group_id=None,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    request_timeout_ms=30000,
    **client_config(req),
)
tps = [kafka.TopicPartition(topic, p) for p in wait_for_partitions(consumer, topic, deadline)]
consumer.assign(tps)
consumer.seek_to_beginning(*tps)
ends = consumer.end_offsets(tps)
records = []
while any(consumer.position(tp) < ends[tp] for tp in tps):
    if time.monotonic() > deadline:
        sys.stderr.write("timeout: positions %s, ends %s, %d records\n"
                         % ({tp.partition: consumer.position(tp) for tp in tps},
                            {tp.partition: e for tp, e in ends.items()}, len(records)))
        sys.exit(2)
    for tp, messages in consumer.poll(timeout_ms=200).items():
        for m in messages:
            if m.offset >= ends[tp]:
                continue
            records.append({
                "topic": m.topic, "partition": m.partition, "offset": m.offset,
                "key": text(m.key), "value": text(m.value),
                "headers": [[k, text(v)] for k, v in (m.headers or [])],
                "timestamp": m.timestamp,
            })
consumer.close()
reply({"records": records})
