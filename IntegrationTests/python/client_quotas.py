"""DescribeClientQuotas / AlterClientQuotas (KIP-546) v0 through kafka-python's KafkaAdminClient connection.

kafka-python 2.0.2 (Debian's python3-kafka) predates KIP-546, and no other client on the test machine (sarama 1.22,
kafkajs, librdkafka 2.16) has these admin calls, so the two request schemas are declared here with kafka-python's
protocol types and sent over its own connection (bootstrap, ApiVersions, framing, correlation).

stdin: {"bootstrap", "op", ...} with op one of
  alter     {"entries": [{"entity": [[type, name|null]], "ops": [[key, value, remove]]}], "validate_only"?}
            -> {"entries": [{"entity": [[type, name]], "error_code", "error_message"}]}
  describe  {"components": [[entity_type, match_type, match|null]], "strict"?}
            -> {"error_code", "error_message", "entries": [{"entity": [[type, name]], "values": {key: value}}] | null}
"""
import struct

import kafka
from kafka.protocol.abstract import AbstractType
from kafka.protocol.api import Request, Response
from kafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Schema, String
from kcommon import read_request, reply


class Float64(AbstractType):
    """Kafka's float64 (an IEEE 754 double, big-endian): not in kafka-python 2.0.2."""
    _struct = struct.Struct('>d')

    @classmethod
    def encode(cls, value):
        return cls._struct.pack(value)

    @classmethod
    def decode(cls, data):
        return cls._struct.unpack(data.read(8))[0]


class DescribeClientQuotasResponse_v0(Response):
    API_KEY = 48
    API_VERSION = 0
    SCHEMA = Schema(
        ('throttle_time_ms', Int32),
        ('error_code', Int16),
        ('error_message', String('utf-8')),
        ('entries', Array(
            ('entity', Array(('entity_type', String('utf-8')), ('entity_name', String('utf-8')))),
            ('values', Array(('key', String('utf-8')), ('value', Float64))))))


class DescribeClientQuotasRequest_v0(Request):
    API_KEY = 48
    API_VERSION = 0
    RESPONSE_TYPE = DescribeClientQuotasResponse_v0
    SCHEMA = Schema(
        ('components', Array(('entity_type', String('utf-8')), ('match_type', Int8), ('match', String('utf-8')))),
        ('strict', Boolean))


class AlterClientQuotasResponse_v0(Response):
    API_KEY = 49
    API_VERSION = 0
    SCHEMA = Schema(
        ('throttle_time_ms', Int32),
        ('entries', Array(
            ('error_code', Int16),
            ('error_message', String('utf-8')),
            ('entity', Array(('entity_type', String('utf-8')), ('entity_name', String('utf-8')))))))


class AlterClientQuotasRequest_v0(Request):
    API_KEY = 49
    API_VERSION = 0
    RESPONSE_TYPE = AlterClientQuotasResponse_v0
    SCHEMA = Schema(
        ('entries', Array(
            ('entity', Array(('entity_type', String('utf-8')), ('entity_name', String('utf-8')))),
            ('ops', Array(('key', String('utf-8')), ('value', Float64), ('remove', Boolean))))),
        ('validate_only', Boolean))


req = read_request()
admin = kafka.KafkaAdminClient(bootstrap_servers=req["bootstrap"], request_timeout_ms=30000)


def send(request):
    future = admin._send_request_to_node(admin._client.least_loaded_node(), request)
    admin._wait_for_futures([future])
    return future.value


try:
    if req["op"] == "alter":
        entries = [([tuple(e) for e in entry["entity"]], [(k, float(v), bool(r)) for k, v, r in entry["ops"]])
                   for entry in req["entries"]]
        resp = send(AlterClientQuotasRequest_v0(entries=entries, validate_only=bool(req.get("validate_only"))))
        reply({"entries": [{"error_code": code, "error_message": message, "entity": [list(e) for e in entity]}
                           for code, message, entity in resp.entries]})
    elif req["op"] == "describe":
        components = [tuple(c) for c in req.get("components", [])]
        resp = send(DescribeClientQuotasRequest_v0(components=components, strict=bool(req.get("strict"))))
        entries = None if resp.entries is None else [
            {"entity": [list(e) for e in entity], "values": {k: v for k, v in values}} for entity, values in resp.entries]
        reply({"error_code": resp.error_code, "error_message": resp.error_message, "entries": entries})
    else:
        raise ValueError("unknown op " + req["op"])
finally:
    admin.close()
