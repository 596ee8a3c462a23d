// The IPVS data plane's own cost, natively (this host's kernel has no IPVS): the real
// IpvsDataPlane, Ipvs and GenlSocket (encoding, framing, datagrams of up to 256 requests, one ACK
// each) over a stand-in for the `netlink` package's raw socket that answers every datagram at
// once as the kernel would when all goes well. What it leaves out is the kernel's own work and
// the syscalls, which the VM half (ipvs.bench.ts) has, under emulation. The full sync is the
// median of `samples`, each a new data plane on a new stand-in (an empty kernel, as it were).
import { EventEmitter } from 'node:events';
import { IpvsDataPlane } from '../src/dataplanes/ipvs.js';
import { GenlSocket } from '../src/ipvs/genl-socket.js';
import { NLM_F_ACK, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR } from '../src/ipvs/netlink.js';
import type { VirtualService } from '../src/types.js';
import { changeOne, ms, pct, SAMPLES, services } from './services.js';

const FAMILY = 0x20;

/** Acknowledges each request that asks for it, ends each dump empty, resolves the IPVS family. */
class FakeRaw extends EventEmitter {
  address = () => ({ port: 4242 });
  ref(): void {}
  unref(): void {}
  close(): void {}
  send(msgs: Buffer[], _opts: object, cb: (err?: Error) => void): void {
    const out: Buffer[] = [];
    for (const m of msgs) {
      const type = m.readUInt16LE(4);
      const flags = m.readUInt16LE(6);
      const seq = m.readUInt32LE(8);
      if (type === 0x10) {
        // CTRL_CMD_NEWFAMILY with CTRL_ATTR_FAMILY_ID, then the ACK
        const p = Buffer.from([1, 2, 0, 0, 6, 0, 1, 0, FAMILY, 0, 0, 0]);
        out.push(nlmsg(FAMILY, seq, p));
      }
      if ((flags & NLM_F_DUMP) === NLM_F_DUMP) out.push(nlmsg(NLMSG_DONE, seq, Buffer.alloc(4)));
      else if (flags & NLM_F_ACK)
        out.push(nlmsg(NLMSG_ERROR, seq, Buffer.concat([Buffer.alloc(4), m.subarray(0, 16)])));
    }
    cb();
    setImmediate(() => this.emit('message', Buffer.concat(out)));
  }
}

function nlmsg(type: number, seq: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(16 + payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt32LE(seq, 8);
  payload.copy(b, 16);
  return b;
}

export interface IpvsNativeResult {
  ipvs_native_full_sync_ms: number;
  ipvs_native_full_sync_samples_ms: number[];
  ipvs_native_one_change_p50_ms: number;
  ipvs_native_one_change_p99_ms: number;
  /** The same changes without an ApplyHint: every service compared. */
  ipvs_native_one_change_unhinted_p50_ms: number;
}

export async function benchIpvsNative(n: number, changes = 100, samples = SAMPLES): Promise<IpvsNativeResult> {
  const open = () => new (GenlSocket as unknown as new (raw: FakeRaw) => GenlSocket)(new FakeRaw());
  const full: number[] = [];
  for (let s = 1; s < samples; s++) {
    await using dp = await IpvsDataPlane.create({ inNamespace: open as never });
    const t0 = performance.now();
    await dp.apply(services(n));
    full.push(ms(t0));
  }
  // the last sample's data plane goes on to the changes
  await using dp = await IpvsDataPlane.create({ inNamespace: open as never });
  const desired: VirtualService[] = services(n);
  let t0 = performance.now();
  await dp.apply(desired);
  full.push(ms(t0));
  const hinted: number[] = [];
  const unhinted: number[] = [];
  for (let k = 0; k < 2 * changes; k++) {
    const vs = changeOne(desired, k, n);
    t0 = performance.now();
    await dp.apply(desired, k % 2 ? undefined : { changed: [vs], removed: [] });
    (k % 2 ? unhinted : hinted).push(ms(t0));
  }
  return {
    ipvs_native_full_sync_ms: pct(full, 50),
    ipvs_native_full_sync_samples_ms: full,
    ipvs_native_one_change_p50_ms: pct(hinted, 50),
    ipvs_native_one_change_p99_ms: pct(hinted, 99),
    ipvs_native_one_change_unhinted_p50_ms: pct(unhinted, 50),
  };
}
