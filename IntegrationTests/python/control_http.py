"""Drives the Host's HTTP control endpoint (kayak.control.listener) with urllib, as a test in any language would:
GET /v1/cluster, stop and start a broker, inject NOT_LEADER_OR_FOLLOWER that a kafka-python producer then sees,
DELETE /v1/faults. Request on stdin: {"control": "http://127.0.0.1:PORT", "bootstrap": "...", "topic": "..."}."""
import json
import urllib.error
import urllib.request

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from kcommon import read_request, reply


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def main():
    req = read_request()
    control, bootstrap, topic = req["control"], req["bootstrap"], req["topic"]
    out = {}
    out["cluster_before"] = call("GET", control + "/v1/cluster")[1]
    out["stop"] = call("POST", control + "/v1/brokers/2/stop")
    out["cluster_stopped"] = call("GET", control + "/v1/cluster")[1]
    out["start"] = call("POST", control + "/v1/brokers/2/start")
    out["bad_error"] = call("POST", control + "/v1/faults", {"api": "PRODUCE", "error": "NO_SUCH_ERROR"})
    out["bad_broker"] = call("POST", control + "/v1/brokers/7/kill")

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, retries=0, acks=1, request_timeout_ms=30000)
    producer.send(topic, b"warm-up").get(timeout=60)  # metadata known, connection to the leader open
    # Every broker's next Produce for the topic: only the partition's leader receives one.
    out["inject"] = call("POST", control + "/v1/faults",
                         {"api": "PRODUCE", "error": "NOT_LEADER_OR_FOLLOWER", "count": 1, "topic": topic})
    try:
        producer.send(topic, b"refused").get(timeout=60)
        out["refused"] = None
    except KafkaError as e:
        out["refused"] = {"type": type(e).__name__, "errno": getattr(e, "errno", None), "retriable": e.retriable}
    out["accepted_offset"] = producer.send(topic, b"accepted").get(timeout=60).offset
    producer.close()
    out["cleared"] = call("DELETE", control + "/v1/faults")
    out["cluster_after"] = call("GET", control + "/v1/cluster")[1]
    reply(out)


if __name__ == "__main__":
    main()
