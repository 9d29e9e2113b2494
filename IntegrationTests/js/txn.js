'use strict';
// Transactional produce with kafkajs: one transaction per step, committed or aborted.
// stdin: {bootstrap, topic, transactionalId, steps: [{values: [string], partition, commit: bool}]}
// stdout: {steps: n}
const { readRequest, reply, client, main } = require('./common');

main(async () => {
  const req = readRequest();
  const producer = client(req.bootstrap).producer({
    transactionalId: req.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  try {
    for (const step of req.steps) {
      const txn = await producer.transaction();
      try {
        await txn.send({
          topic: req.topic,
          acks: -1,
          messages: step.values.map((v) => ({ key: 'k', value: v, partition: step.partition })),
        });
      } catch (e) {
        await txn.abort();
        throw e;
      }
      if (step.commit) await txn.commit(); else await txn.abort();
    }
    reply({ steps: req.steps.length });
  } finally {
    await producer.disconnect();
  }
});
