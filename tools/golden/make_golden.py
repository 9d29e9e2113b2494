#!/usr/bin/python3
"""Generate golden record batches with kafka-python's own builders (Debian python3-kafka).

Writes Protocol/Tests/TestData/<name>.bin (the exact bytes kafka-python produces) and
Protocol/Tests/TestData/golden.json describing what each file must decode to. The expected
records come from the inputs below, not from any decoder, so the C# tests check our decoder
against the real client's encoder.

Requires: python3-kafka, python3-snappy, python3-lz4, python3-zstandard, python3-xxhash
(kafka-python needs xxhash to write the magic v0 LZ4 header checksum).
Run from anywhere: /usr/bin/python3 tools/golden/make_golden.py
"""
import json
import os
import struct
import sys

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Protocol", "Tests", "TestData")

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BASE_TS = 1700000000000


def sample_records(n):
    recs = []
    for i in range(n):
        key = None if i % 4 == 1 else ("key-%d" % i).encode()
        value = None if i % 7 == 5 else (("value-%d-" % i) * (1 + i % 5)).encode()
        headers = []
        if i % 3 == 0:
            headers = [("trace", ("t%d" % i).encode()), ("empty", b""), ("nullh", None)]
        recs.append({"timestamp": BASE_TS + i * 13 - (7 if i == 3 else 0), "key": key, "value": value, "headers": headers})
    return recs


def hexo(b):
    return None if b is None else bytes(b).hex()


def v2_case(codec, n, base_offset=0, producer=(-1, -1, -1), transactional=False):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=CODECS[codec], is_transactional=transactional,
                                  producer_id=producer[0], producer_epoch=producer[1], base_sequence=producer[2],
                                  batch_size=1 << 20)
    recs = sample_records(n)
    for i, r in enumerate(recs):
        b.append(i, timestamp=r["timestamp"], key=r["key"], value=r["value"], headers=r["headers"])
    data = bytearray(b.build())
    struct.pack_into(">q", data, 0, base_offset)  # base offset is outside the CRC
    expected = {
        "magic": 2, "codec": codec, "baseOffset": base_offset,
        "producerId": producer[0], "producerEpoch": producer[1], "baseSequence": producer[2],
        "transactional": transactional,
        "records": [{"offset": base_offset + i, "timestamp": r["timestamp"], "key": hexo(r["key"]),
                     "value": hexo(r["value"]),
                     "headers": [[k, hexo(v)] for k, v in r["headers"]]} for i, r in enumerate(recs)],
    }
    return bytes(data), expected


def legacy_case(magic, codec, n):
    b = LegacyRecordBatchBuilder(magic=magic, compression_type=CODECS[codec], batch_size=1 << 20)
    recs = sample_records(n)
    for i, r in enumerate(recs):
        b.append(i, timestamp=r["timestamp"] if magic == 1 else None, key=r["key"], value=r["value"])
    data = bytes(b.build())
    expected = {
        "magic": magic, "codec": codec,
        "records": [{"offset": i, "timestamp": r["timestamp"] if magic == 1 else -1, "key": hexo(r["key"]),
                     "value": hexo(r["value"]), "headers": []} for i, r in enumerate(recs)],
    }
    return data, expected


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    cases = {}
    for codec in CODECS:
        cases["v2_%s" % codec] = v2_case(codec, 12, base_offset=0)
    cases["v2_none_idempotent"] = v2_case("none", 5, base_offset=1000, producer=(123456789, 3, 42))
    cases["v2_zstd_transactional"] = v2_case("zstd", 30, base_offset=77, producer=(99, 0, 0), transactional=True)
    for magic in (0, 1):
        for codec in ("none", "gzip", "snappy", "lz4"):
            cases["v%d_%s" % (magic, codec)] = legacy_case(magic, codec, 6)
    for name, (data, expected) in sorted(cases.items()):
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)
        manifest[name] = expected
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d golden files to %s" % (len(cases), OUT), file=sys.stderr)


if __name__ == "__main__":
    main()
