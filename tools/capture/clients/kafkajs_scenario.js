'use strict';
// kafkajs scenario for capture.py: admin, producer and (GOLDEN_GROUPS=1) a group consumer. NODE_PATH finds kafkajs.
const { Kafka, logLevel } = require('kafkajs');

const bootstrap = process.argv[2];
const topic = 'golden-kafkajs';
const kafka = new Kafka({ clientId: 'golden-kafkajs', brokers: [bootstrap], logLevel: logLevel.ERROR, retry: { retries: 3 } });

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.fetchTopicMetadata({ topics: [topic] });

  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [
    { key: 'k0', value: 'value-0', headers: { h: '0' } },
    { key: 'k1', value: 'value-1' },
    { key: 'k2', value: 'value-2' },
  ] });
  await producer.disconnect();

  await admin.fetchTopicOffsets(topic);

  if (process.env.GOLDEN_GROUPS === '1') {
    const consumer = kafka.consumer({ groupId: 'golden-kafkajs-group', maxWaitTimeInMs: 200, heartbeatInterval: 300 });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let got = 0;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`group consumer got ${got} records`)), 60000);
      consumer.run({
        eachMessage: async () => {
          got++;
          if (got >= 3) { clearTimeout(timer); resolve(); }
        },
      }).catch(reject);
    });
    // Stay in the group past a heartbeat interval so a Heartbeat is captured too.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await consumer.disconnect();
    await admin.fetchOffsets({ groupId: 'golden-kafkajs-group', topics: [topic] });
  }
  await admin.disconnect();
}

main().then(() => process.exit(0), (err) => { process.stderr.write(`${err && err.stack ? err.stack : err}\n`); process.exit(1); });
