"""Consumer-group admin with kafka-python's KafkaAdminClient.

stdin: {"bootstrap", "op", ...} with op one of
  list          {} -> {"groups": [{"group", "protocol_type"}]}
  describe      {"group", "include_authorized_operations"?} -> {"group", "error_code", "state", "protocol_type", "protocol",
                              "members": [{"member_id", "client_id", "partitions": [[topic, p], ...]}],
                              "authorized_operations" (DescribeGroups v3+, KIP-430; null when not asked)}
  offsets       {"group"} -> {"offsets": [{"topic", "partition", "offset", "metadata"}]}
  delete        {"groups": [names]} -> {"errors": {group: null | error class name}}
  offset_delete {"group", "topic", "partitions": [p]} -> {"error_code", "partitions": {p: error_code}}
                (kafka-python 2.0 has no OffsetDelete call: the request is built from its protocol types and sent to
                 the group's coordinator with its client.)
"""
import kafka
import kafka.errors
from kafka.protocol.api import Request, Response
from kafka.protocol.types import Array, Int16, Int32, Schema, String
from kcommon import read_request, reply


class OffsetDeleteResponse_v0(Response):
    API_KEY = 47
    API_VERSION = 0
    SCHEMA = Schema(
        ("error_code", Int16),
        ("throttle_time_ms", Int32),
        ("topics", Array(
            ("name", String("utf-8")),
            ("partitions", Array(
                ("partition_index", Int32),
                ("error_code", Int16))))))


class OffsetDeleteRequest_v0(Request):
    API_KEY = 47
    API_VERSION = 0
    RESPONSE_TYPE = OffsetDeleteResponse_v0
    SCHEMA = Schema(
        ("group_id", String("utf-8")),
        ("topics", Array(
            ("name", String("utf-8")),
            # One-field arrays are plain arrays of the field's type in kafka-python's schema types.
            ("partitions", Array(Int32)))))


def error_name(err):
    return None if err is kafka.errors.NoError or err is None else err.__name__


req = read_request()
op = req["op"]
admin = kafka.KafkaAdminClient(bootstrap_servers=req["bootstrap"], request_timeout_ms=30000)
try:
    if op == "list":
        reply({"groups": [{"group": g[0], "protocol_type": g[1]} for g in admin.list_consumer_groups()]})
    elif op == "describe":
        g = admin.describe_consumer_groups([req["group"]],
                                           include_authorized_operations=bool(req.get("include_authorized_operations")))[0]
        members = []
        for m in g.members:
            partitions = []
            assignment = m.member_assignment
            if assignment is not None and not isinstance(assignment, bytes):
                for topic, parts in assignment.assignment:
                    partitions.extend([topic, p] for p in parts)
            members.append({"member_id": m.member_id, "client_id": m.client_id, "partitions": partitions})
        reply({"group": g.group, "error_code": g.error_code, "state": g.state, "protocol_type": g.protocol_type,
               "protocol": g.protocol, "members": members, "authorized_operations": g.authorized_operations})
    elif op == "offsets":
        offsets = admin.list_consumer_group_offsets(req["group"])
        reply({"offsets": [{"topic": tp.topic, "partition": tp.partition, "offset": om.offset, "metadata": om.metadata}
                           for tp, om in sorted(offsets.items())]})
    elif op == "delete":
        reply({"errors": {g: error_name(e) for g, e in admin.delete_consumer_groups(req["groups"])}})
    elif op == "offset_delete":
        node = admin._find_coordinator_ids([req["group"]])[req["group"]]
        future = admin._send_request_to_node(node, OffsetDeleteRequest_v0(
            group_id=req["group"], topics=[(req["topic"], list(req["partitions"]))]))
        admin._wait_for_futures([future])
        resp = future.value
        reply({"error_code": resp.error_code,
               "partitions": {str(p[0]): p[1] for t in resp.topics for p in t[1]}})
    else:
        raise ValueError("unknown op " + op)
finally:
    admin.close()
