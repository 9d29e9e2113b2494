"""Produce records to explicit partitions with kafka-python.

stdin: {"bootstrap", "topic", "acks": "all"|"1"|"0", "compression": null|"gzip"|"snappy"|"lz4"|"zstd",
        "records": [{"key", "value", "partition", "headers": [[k, v], ...]}],
        "client_config": {kafka-python keyword arguments, e.g. security_protocol="SSL", ssl_cafile}}
stdout: {"acks": [{"partition", "offset"}, ...]} in record order. With "tolerate_errors": true a refused record's
        entry is {"error": exception class name} instead of failing the script.
"""
import kafka
import kafka.errors
from kcommon import client_config, read_request, reply, utf8

req = read_request()
acks = req.get("acks") or "all"
producer = kafka.KafkaProducer(
    bootstrap_servers=req["bootstrap"],
    acks="all" if acks in ("all", "-1") else int(acks),
    compression_type=req.get("compression"),
    # One request in flight keeps per-partition order even across retries.
    max_in_flight_requests_per_connection=1,
    retries=3,
    request_timeout_ms=30000,
    **client_config(req),
    linger_ms=5,
)
futures = []
for r in req["records"]:
    headers = [(h[0], utf8(h[1])) for h in r.get("headers") or []]
    futures.append(producer.send(req["topic"], key=utf8(r.get("key")), value=utf8(r.get("value")),
                                 partition=r.get("partition"), headers=headers))
producer.flush(timeout=60)
out = []
for f in futures:
    try:
        md = f.get(timeout=60)
    except kafka.errors.KafkaError as e:
        if not req.get("tolerate_errors"):
            raise
        out.append({"error": type(e).__name__})
        continue
    out.append({"partition": md.partition, "offset": md.offset})
producer.close(timeout=10)
reply({"acks": out})
