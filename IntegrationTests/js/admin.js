'use strict';
// Admin operations with kafkajs.
// stdin: {bootstrap, op, ...}: create_topics {topics: [{name, partitions, configs}]} -> {created: bool}
//   delete_topics {topics: [names]} -> {}; list_topics -> {topics: [names]};
//   describe_configs {topic} -> {configs: {name: value}}; alter_configs {topic, configs} -> {}
const { ConfigResourceTypes } = require('kafkajs');
const { readRequest, reply, client, main } = require('./common');

main(async () => {
  const req = readRequest();
  const admin = client(req.bootstrap).admin();
  await admin.connect();
  try {
    switch (req.op) {
      case 'create_topics': {
        const created = await admin.createTopics({
          waitForLeaders: true,
          topics: req.topics.map((t) => ({
            topic: t.name, numPartitions: t.partitions, replicationFactor: 1,
            configEntries: Object.entries(t.configs || {}).map(([name, value]) => ({ name, value })),
          })),
        });
        reply({ created });
        break;
      }
      case 'delete_topics':
        await admin.deleteTopics({ topics: req.topics });
        reply({});
        break;
      case 'list_topics':
        reply({ topics: (await admin.listTopics()).sort() });
        break;
      case 'describe_configs': {
        const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: req.topic }] });
        const configs = {};
        for (const r of res.resources) {
          if (r.errorCode !== 0) throw new Error(`describe_configs error ${r.errorCode} ${r.errorMessage}`);
          for (const e of r.configEntries) configs[e.configName] = e.configValue;
        }
        reply({ configs });
        break;
      }
      case 'alter_configs':
        await admin.alterConfigs({
          validateOnly: false,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: req.topic, configEntries: Object.entries(req.configs).map(([name, value]) => ({ name, value })) }],
        });
        reply({});
        break;
      default:
        throw new Error(`unknown op ${req.op}`);
    }
  } finally {
    await admin.disconnect();
  }
});
