'use strict';
// Shared helpers for the kafkajs driver scripts: JSON request on stdin, one JSON line on stdout, logs on stderr.
const { Kafka, logLevel } = require('kafkajs');

function readRequest() {
  return JSON.parse(require('fs').readFileSync(0, 'utf8'));
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// config: extra kafkajs client options from the request's client_config (ssl, sasl: { mechanism, username, password }).
// OAUTHBEARER: sasl: { mechanism: 'oauthbearer', token } becomes kafkajs' oauthBearerProvider returning that token.
function client(bootstrap, config) {
  config = { ...(config || {}) };
  if (config.sasl && config.sasl.mechanism === 'oauthbearer' && typeof config.sasl.token === 'string') {
    const token = config.sasl.token;
    config.sasl = { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) };
  }
  return new Kafka({
    ...config,
    clientId: 'kayak-itest-kafkajs',
    brokers: bootstrap.split(','), // a cluster's bootstrap list (issue 14) or one broker
    connectionTimeout: 10000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 100 },
    logLevel: logLevel.WARN,
    // kafkajs' default logger writes to stdout, which carries our JSON reply: send it to stderr.
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(`[kafkajs ${label} ${namespace}] ${JSON.stringify(log)}\n`);
    },
  });
}

function text(buf) {
  return buf === null || buf === undefined ? null : buf.toString('utf8');
}

function main(fn) {
  fn().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
      process.exit(1);
    });
}

module.exports = { readRequest, reply, client, text, main };
