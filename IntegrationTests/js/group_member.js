'use strict';
// A long-running kafkajs group member for the rebalance tests.
// stdin line 1: {bootstrap, topic, group, session_timeout_ms?, heartbeat_interval_ms?}
// stdout: one JSON line per assignment {event: "assigned", partitions: [...]} (kafkajs' GROUP_JOIN event).
// stdin "close": consumer.disconnect() (kafkajs sends LeaveGroup) and exit 0. A killed process leaves only through
// the session timeout.
const readline = require('readline');
const { reply, client, main } = require('./common');

main(async () => {
  const rl = readline.createInterface({ input: process.stdin });
  const lines = rl[Symbol.asyncIterator]();
  const first = await lines.next();
  const req = JSON.parse(first.value);
  const consumer = client(req.bootstrap).consumer({
    groupId: req.group,
    sessionTimeout: req.session_timeout_ms || 6000,
    heartbeatInterval: req.heartbeat_interval_ms || 500,
    rebalanceTimeout: 10000,
    // kafkajs heartbeats between fetches: a fetch may not wait longer than the session timeout on an empty topic.
    maxWaitTimeInMs: 200,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const partitions = (e.payload.memberAssignment[req.topic] || []).slice().sort((a, b) => a - b);
    reply({ event: 'assigned', partitions, generation: e.payload.generationId });
  });
  let crashed = null;
  consumer.on(consumer.events.CRASH, (e) => { crashed = e.payload.error; });
  await consumer.connect();
  await consumer.subscribe({ topic: req.topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachMessage: async () => {} });
  for (;;) {
    const next = await lines.next();
    if (next.done || next.value.trim() === 'close') break;
  }
  await consumer.disconnect();
  if (crashed) throw crashed;
  reply({ event: 'closed' });
});
