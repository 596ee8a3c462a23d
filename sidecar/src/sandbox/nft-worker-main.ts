// The nft worker's own process (see nft-worker.ts, beside it): one request at a time from its parent,
// run inside the namespace asked for, answered with an error text or nothing.
import { native } from './native.js';
import { withNetns } from './netns.js';

process.on('message', (m: { id: number; netns: string; script: string }) => {
  let error: string | undefined;
  try {
    withNetns(m.netns, () => native().nftRun(m.script));
  } catch (err) {
    error = (err as Error).message;
  }
  process.send?.({ id: m.id, ...(error === undefined ? {} : { error }) });
});
// The parent went away: so does the worker.
process.on('disconnect', () => process.exit(0));
