export { ClusterLab, type ClusterLabOptions, UNDERLAY } from './cluster-lab.js';
export { type CliResult, TestHost } from './daemon-harness.js';
export { type DnsAnswer, DnsPoller } from './dns-poller.js';
export { test } from './fixtures.js';
export { NatsCluster, type NatsClusterOptions } from './nats-cluster.js';
export { Netns, run } from './netns.js';
export { NsServer } from './servers.js';
