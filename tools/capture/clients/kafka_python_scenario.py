"""kafka-python scenario for capture.py: admin, producer, assigned consumer and (GOLDEN_GROUPS=1) a group consumer."""
import os
import sys

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap = sys.argv[1]
topic = "golden-kafka-python"
client_id = "golden-kafka-python"

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
admin.list_topics()
admin.close()

producer = KafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=50)
for i in range(3):
    producer.send(topic, key=b"k%d" % i, value=b"value-%d" % i, headers=[("h", b"%d" % i)])
producer.flush()
producer.close()

# Assigned consumer: ListOffsets (seek_to_beginning) and Fetch without a group.
tp = TopicPartition(topic, 0)
consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, enable_auto_commit=False)
consumer.assign([tp])
consumer.seek_to_beginning(tp)
got = 0
for _ in range(20):
    got += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
    if got >= 3:
        break
consumer.close()
if got < 3:
    raise SystemExit(f"assigned consumer got {got} records")

if os.environ.get("GOLDEN_GROUPS") == "1":
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=client_id, group_id="golden-kafka-python-group",
                             auto_offset_reset="earliest", enable_auto_commit=False, heartbeat_interval_ms=300)
    got = 0
    for _ in range(60):
        got += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
        if got >= 3:
            break
    # Keep polling past a heartbeat interval so a Heartbeat is captured too.
    consumer.poll(timeout_ms=1000)
    consumer.commit()
    consumer.committed(tp)
    consumer.close()
    if got < 3:
        raise SystemExit(f"group consumer got {got} records")
