"""Round trip with confluent-kafka-python (Debian's python3-confluent-kafka, on Debian's librdkafka 2.0.2).

stdin: {"bootstrap", "topic", "partitions": N, "count": N, "group"}
Produces count records (key k<i>, value v<i>, header "n" = i, partition i % partitions) with an idempotent
producer, then consumes them back in the group from the beginning and commits synchronously.
stdout: {"version", "libversion", "produced": [{"partition", "offset"}], "consumed": [{"partition", "offset",
"key", "value", "headers": [[k, v]]}]}
"""
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def text(b):
    return None if b is None else b.decode("utf-8")


def main():
    req = json.loads(sys.stdin.read())
    topic, count, partitions = req["topic"], req["count"], req["partitions"]
    produced, errors = [None] * count, []

    def delivered(i):
        def callback(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                produced[i] = {"partition": msg.partition(), "offset": msg.offset()}
        return callback

    producer = Producer({"bootstrap.servers": req["bootstrap"], "enable.idempotence": True, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % partitions, headers=[("n", str(i))],
                         on_delivery=delivered(i))
    if producer.flush(30) != 0 or errors:
        raise SystemExit(f"produce failed: {errors}")

    consumer = Consumer({"bootstrap.servers": req["bootstrap"], "group.id": req["group"],
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    consumed, deadline = [], time.time() + 60
    while len(consumed) < count and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        consumed.append({"partition": msg.partition(), "offset": msg.offset(), "key": text(msg.key()),
                         "value": text(msg.value()),
                         "headers": [[k, text(v)] for k, v in (msg.headers() or [])]})
    consumer.commit(asynchronous=False)
    consumer.close()
    print(json.dumps({"version": confluent_kafka.version()[0], "libversion": confluent_kafka.libversion()[0],
                      "produced": produced, "consumed": consumed}))


main()
