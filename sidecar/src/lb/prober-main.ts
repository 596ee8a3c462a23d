// The prober's worker thread (prober.ts): enters the namespace for good, then runs
// @cnmd/lb's default probe for each request.
import { parentPort, workerData } from 'node:worker_threads';
import { defaultProbe, type HealthCheck } from '@cnmd/lb';
import { native } from '../sandbox/native.js';
import { openNetns } from '../sandbox/netns.js';

const ns = openNetns((workerData as { netns: string }).netns);
native().setns(ns.fd);
ns.close();

parentPort?.on('message', (m: { id: number; address: string; check: HealthCheck }) => {
  void defaultProbe(m.address, m.check)
    .catch(() => false)
    .then((ok) => parentPort?.postMessage({ id: m.id, ok }));
});
