'use strict';
// Consume every partition of a topic from the beginning up to the high watermarks read at the start (kafkajs; it
// only consumes through a consumer group, so each run uses a fresh group id).
// stdin: {bootstrap, topic, timeout_ms}
// stdout: {records: [{topic, partition, offset, key, value, headers: [[k, v]], timestamp}]}
const { readRequest, reply, client, text, main } = require('./common');

main(async () => {
  const req = readRequest();
  const kafka = client(req.bootstrap, req.client_config);
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(req.topic);
  await admin.disconnect();
  const ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  const next = new Map(offsets.map((o) => [o.partition, BigInt(o.low)]));
  const done = () => [...ends].every(([p, high]) => next.get(p) >= high);

  const records = [];
  if (!done()) {
    const consumer = kafka.consumer({ groupId: `kayak-itest-${process.pid}-${Date.now()}`, sessionTimeout: 10000, rebalanceTimeout: 10000 });
    await consumer.connect();
    await consumer.subscribe({ topic: req.topic, fromBeginning: true });
    let finish;
    const finished = new Promise((resolve) => { finish = resolve; });
    // A crashed consumer (e.g. no group coordinator) will not deliver: fail now instead of at the timeout.
    consumer.on(consumer.events.CRASH, (e) => finish(e.payload.error || new Error('consumer crashed')));
    const timer = setTimeout(() => finish(new Error(`timeout after ${records.length} records`)), req.timeout_ms || 60000);
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const offset = BigInt(message.offset);
        if (offset >= ends.get(partition)) return;
        const headers = [];
        for (const [k, v] of Object.entries(message.headers || {})) {
          for (const one of Array.isArray(v) ? v : [v]) headers.push([k, text(one)]);
        }
        records.push({
          topic, partition, offset: Number(offset), key: text(message.key), value: text(message.value),
          headers, timestamp: Number(message.timestamp),
        });
        next.set(partition, offset + 1n);
        if (done()) finish(null);
      },
    });
    const err = await finished;
    clearTimeout(timer);
    await consumer.disconnect();
    if (err) throw err;
  }
  reply({ records });
});
