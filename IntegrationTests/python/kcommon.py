"""Shared helpers for the kafka-python driver scripts: JSON request on stdin, one JSON line on stdout."""
import json
import logging
import sys
import time

logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def read_request():
    return json.loads(sys.stdin.read())


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def client_config(req):
    """Extra client keyword arguments, passed as given: security_protocol, ssl_cafile, ssl_certfile... for SSL."""
    return req.get("client_config") or {}


def text(b):
    return None if b is None else b.decode("utf-8")


def utf8(s):
    return None if s is None else s.encode("utf-8")


def wait_for_partitions(consumer, topic, deadline):
    """partitions_for_topic is None until metadata for the topic arrived."""
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        if time.monotonic() > deadline:
            raise TimeoutError("no metadata for topic %s" % topic)
        consumer.topics()  # forces a metadata refresh
        time.sleep(0.1)
