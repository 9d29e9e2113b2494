'use strict';
// Produce records to explicit partitions with kafkajs.
// stdin: {bootstrap, topic, acks: "all"|"1"|"0", compression: null|"gzip", records: [{key, value, partition, headers: [[k, v]]}]}
// stdout: {acks: [{partition, offset}]} in record order.
const { CompressionTypes } = require('kafkajs');
const { readRequest, reply, client, main } = require('./common');

main(async () => {
  const req = readRequest();
  const producer = client(req.bootstrap, req.client_config).producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    const codecs = { gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD };
    const compression = req.compression ? codecs[req.compression] : CompressionTypes.None;
    const messages = req.records.map((r) => {
      const headers = {};
      for (const [k, v] of r.headers || []) headers[k] = v;
      return { key: r.key, value: r.value, partition: r.partition, headers };
    });
    const acks = req.acks === '0' ? 0 : req.acks === '1' ? 1 : -1;
    // One send: kafkajs batches per partition in message order and reports each partition's base offset.
    const metadata = await producer.send({ topic: req.topic, acks, compression, messages });
    const base = new Map(metadata.map((m) => {
      if (m.errorCode !== 0) throw new Error(`partition ${m.partition} error ${m.errorCode}`);
      return [m.partition, BigInt(m.baseOffset)];
    }));
    const seen = new Map();
    const out = req.records.map((r) => {
      const n = seen.get(r.partition) || 0n;
      seen.set(r.partition, n + 1n);
      return { partition: r.partition, offset: Number(base.get(r.partition) + n) };
    });
    reply({ acks: out });
  } finally {
    await producer.disconnect();
  }
});
