"""Admin operations with kafka-python's KafkaAdminClient.

stdin: {"bootstrap", "op", ...} with op one of
  create_topics  {"topics": [{"name", "partitions", "replication_factor"?, "configs"?: {k: v}}]}
                 -> {"errors": {name: null | error class name}}
  delete_topics  {"topics": [names]} -> {"errors": {name: null | error class name}}
  list_topics    {} -> {"topics": [names]}
  describe_topics {"topics": [names]} -> {"topics": [{"name", "error_code", "partitions"}]}
  describe_configs {"topic"} -> {"configs": {name: value}}
  alter_configs  {"topic", "configs": {k: v}} -> {"error_code"}
"""
import kafka
import kafka.errors
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kcommon import read_request, reply

req = read_request()
op = req["op"]
admin = kafka.KafkaAdminClient(bootstrap_servers=req["bootstrap"], request_timeout_ms=30000)


def error_name(code):
    return None if code == 0 else type(kafka.errors.for_code(code)()).__name__


try:
    if op == "create_topics":
        topics = [NewTopic(t["name"], t["partitions"], t.get("replication_factor", 1),
                           topic_configs=t.get("configs") or {}) for t in req["topics"]]
        try:
            resp = admin.create_topics(topics, timeout_ms=30000)
            errors = {t[0]: error_name(t[1]) for t in resp.topic_errors}
        except kafka.errors.KafkaError as e:
            # kafka-python 2.0 raises on the first topic error instead of returning it per topic.
            errors = {t["name"]: type(e).__name__ for t in req["topics"]}
        reply({"errors": errors})
    elif op == "delete_topics":
        try:
            resp = admin.delete_topics(req["topics"], timeout_ms=30000)
            errors = {t[0]: error_name(t[1]) for t in resp.topic_error_codes}
        except kafka.errors.KafkaError as e:
            errors = {t: type(e).__name__ for t in req["topics"]}
        reply({"errors": errors})
    elif op == "list_topics":
        reply({"topics": sorted(admin.list_topics())})
    elif op == "describe_topics":
        out = []
        for t in admin.describe_topics(req["topics"]):
            out.append({"name": t["topic"], "error_code": t["error_code"], "partitions": len(t["partitions"])})
        reply({"topics": out})
    elif op == "describe_configs":
        resp = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, req["topic"])])
        configs = {}
        for r in resp:
            for res in r.resources:
                # (error_code, error_message, resource_type, resource_name, config_entries)
                if res[0] != 0:
                    raise kafka.errors.for_code(res[0])(res[1])
                for entry in res[4]:
                    configs[entry[0]] = entry[1]
        reply({"configs": configs})
    elif op == "alter_configs":
        resp = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, req["topic"], configs=req["configs"])])
        codes = [res[0] for res in resp.resources]
        reply({"error_code": max(codes) if codes else 0})
    else:
        raise ValueError("unknown op " + op)
finally:
    admin.close()
