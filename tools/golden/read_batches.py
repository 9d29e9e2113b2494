#!/usr/bin/python3
"""Decode a file of concatenated record batches with kafka-python's reader and print JSON.

Used by Protocol/Tests/Records/KafkaPythonInteropTests to check that batches Kayak encodes are
read back correctly by a real client. Output: a list of batches, each
{"magic", "baseOffset", "codec", "records": [{"offset","timestamp","key","value","headers"}]}
with bytes as hex (null for None).
"""
import json
import sys

from kafka.record.memory_records import MemoryRecords

CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


def hexo(b):
    return None if b is None else bytes(b).hex()


def main(path):
    with open(path, "rb") as f:
        data = f.read()
    records = MemoryRecords(data)
    out = []
    while records.has_next():
        batch = records.next_batch()
        if batch is None:
            break
        magic = batch.magic if hasattr(batch, "magic") else batch._magic
        entry = {"magic": magic, "codec": CODEC_NAMES.get(batch.compression_type, "?"),
                 "baseOffset": batch.base_offset if magic == 2 else batch._offset, "records": []}
        if magic == 2:
            # kafka-python 2.0.2 has no accessors for these; HEADER_STRUCT fields 9..11.
            h = batch._header_data
            entry["producerId"], entry["producerEpoch"], entry["baseSequence"] = h[9], h[10], h[11]
            entry["transactional"] = bool(batch.is_transactional)
            entry["control"] = bool(batch.is_control_batch)
            entry["timestampType"] = batch.timestamp_type
        # kafka-python requires CRC validation before iterating.
        entry["crcValid"] = bool(batch.validate_crc())
        for r in batch:
            entry["records"].append({"offset": r.offset, "timestamp": -1 if r.timestamp is None else r.timestamp, "key": hexo(r.key),
                                     "value": hexo(r.value),
                                     "headers": [[k, hexo(v)] for k, v in (r.headers or [])]})
        out.append(entry)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
