'use strict';
// kafkajs against an in-process Kayak cluster across leader changes (issue 14), driven by ClusterScriptClientTests.
// stdin: {bootstrap, topic, count, sync_dir}. Steps, each synchronised with the test through files in sync_dir:
//   1. admin-creates the topic (3 partitions, replication factor 3) and reads its metadata;
//   2. an idempotent producer sends count/2 numbered records to partition 0 with acks=-1 (each send awaited), writes
//      "produced-half" and waits for "go-produce" (the test kills partition 0's leader meanwhile), then sends the rest;
//   3. a consumer group reads the topic from the beginning; after half the records of partition 0 it writes
//      "consumed-half" and waits for "go-consume" (the test kills the new leader), then reads on to the end.
// stdout: {partitions: [{partition, leader, replicas, isr}], acked: [values], consumed: [values]}
const fs = require('fs');
const path = require('path');
const { readRequest, reply, client, main } = require('./common');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signalAndWait(dir, done, go, timeoutMs = 60000) {
  fs.writeFileSync(path.join(dir, done), '');
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(path.join(dir, go))) {
    if (Date.now() > deadline) throw new Error(`the test did not write ${go}`);
    await sleep(50);
  }
}

main(async () => {
  const req = readRequest();
  const { topic, count } = req;
  const kafka = client(req.bootstrap, { retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });

  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true });
  let partitions = [];
  const describeDeadline = Date.now() + 30000;
  for (;;) {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    partitions = md.topics[0].partitions.map((p) => ({
      partition: p.partitionId, leader: p.leader, replicas: [...p.replicas].sort(), isr: [...p.isr].sort(),
    })).sort((a, b) => a.partition - b.partition);
    if ((partitions.length === 3 && partitions.every((p) => p.isr.length === 3)) || Date.now() > describeDeadline) break;
    await sleep(100);
  }
  // Look the group up now, while all three brokers run: the first FindCoordinator creates __consumer_offsets, which
  // (as in Kafka) needs offsets.topic.replication.factor (3) live brokers, so it could not be created after a kill.
  const groupId = `kayak-failover-${process.pid}-${Date.now()}`;
  await admin.fetchOffsets({ groupId, topics: [topic] });
  await admin.disconnect();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } });
  await producer.connect();
  const acked = [];
  for (let i = 0; i < count; i++) {
    if (i === Math.floor(count / 2)) await signalAndWait(req.sync_dir, 'produced-half', 'go-produce');
    const value = `v-${String(i).padStart(5, '0')}`;
    await producer.send({ topic, acks: -1, timeout: 10000, messages: [{ value, partition: 0 }] });
    acked.push(value);
  }
  await producer.disconnect();

  const consumed = [];
  // Small fetches, so the records after the pause are fetched after the leader change.
  const consumer = kafka.consumer({
    groupId, sessionTimeout: 10000, rebalanceTimeout: 10000,
    maxBytesPerPartition: 1024, maxBytes: 1024, maxWaitTimeInMs: 200,
    retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  consumer.on(consumer.events.CRASH, (e) => { if (!e.payload.restart) finish(e.payload.error || new Error('consumer crashed')); });
  const timer = setTimeout(() => finish(new Error(`timeout after ${consumed.length} records`)), 90000);
  let signalled = false;
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (partition !== 0) return;
      consumed.push(message.value.toString('utf8'));
      if (!signalled && consumed.length >= Math.floor(count / 2)) {
        signalled = true;
        await signalAndWait(req.sync_dir, 'consumed-half', 'go-consume');
      }
      if (consumed.length >= count) finish(null);
    },
  });
  const error = await finished;
  clearTimeout(timer);
  await consumer.disconnect().catch(() => {});
  if (error) throw error;
  reply({ partitions, acked, consumed });
});
