// The IPVS codec against what ipvsadm 1.31 sent and received on Linux 6.1 (fixtures/ipvsadm.json,
// captured by fixtures/capture-ipvsadm.sh under strace in the IPVS VM): byte for byte, with the
// sequence number and port id (nlmsghdr bytes 8..15) masked.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeDest,
  decodeFamilyId,
  decodeInfo,
  decodeService,
  describeRequest,
  frame,
  type GenlRequest,
  getFamilyRequest,
  ipvsRequests,
} from '../src/ipvs/codec.js';
import { decodeNlMessages } from '../src/ipvs/netlink.js';

interface Capture {
  command: string;
  rc: number;
  messages: { dir: 'send' | 'recv'; hex: string }[];
}
const captures: Capture[] = JSON.parse(readFileSync(new URL('./fixtures/ipvsadm.json', import.meta.url), 'utf8'));
const IPVS_FAMILY = 0x20; // the id the VM's controller gave IPVS (in every capture)
const GENL_ID_CTRL = 0x10;

const masked = (b: Buffer): string => {
  const c = Buffer.from(b);
  c.fill(0, 8, 16); // nlmsg_seq, nlmsg_pid
  return c.toString('hex');
};
const capture = (command: string): Capture => {
  const c = captures.find((x) => x.command === command);
  if (!c) throw new Error(`no capture of ${command}`);
  return c;
};
/** What ipvsadm sent to the IPVS family (not the controller), in order. */
const ipvsSends = (command: string): string[] =>
  capture(command)
    .messages.filter((m) => m.dir === 'send')
    .map((m) => Buffer.from(m.hex, 'hex'))
    .filter((b) => b.readUInt16LE(4) === IPVS_FAMILY)
    .map(masked);
/** Every message ipvsadm received after its send of IPVS command `cmd`, up to the next send. */
const repliesTo = (command: string, cmd: number, nth = 0): Buffer[] => {
  const ms = capture(command).messages;
  const sends = ms.flatMap((m, i) =>
    m.dir === 'send' &&
    Buffer.from(m.hex, 'hex').readUInt16LE(4) !== GENL_ID_CTRL &&
    Buffer.from(m.hex, 'hex')[16] === cmd
      ? [i]
      : [],
  );
  const at = sends[nth]!;
  const out: Buffer[] = [];
  for (let i = at + 1; i < ms.length && ms[i]!.dir === 'recv'; i++)
    out.push(
      ...decodeNlMessages(Buffer.from(ms[i]!.hex, 'hex')).map((m) => Buffer.concat([Buffer.alloc(0), m.payload])),
    );
  return out;
};
const enc = (r: GenlRequest): string => masked(frame(r, 0, 0));

const q = ipvsRequests(IPVS_FAMILY);
const svc256 = { family: 4 as const, fwmark: 256 };
const svc257 = { family: 6 as const, fwmark: 257 };

describe('IPVS requests, byte for byte with ipvsadm', () => {
  it('every capture ran without error', () => {
    expect(captures.map((c) => [c.command, c.rc]).filter(([, rc]) => rc !== 0)).toEqual([]);
  });

  it.each<[string, GenlRequest[]]>([
    ['ipvsadm -A -f 256 -s rr', [q.getInfo(), q.newService({ ...svc256, scheduler: 'rr' })]],
    [
      'ipvsadm -a -f 256 -r 10.9.2.11 -m -w 1',
      [q.getInfo(), q.newDest(svc256, { address: '10.9.2.11', port: 0, weight: 1 })],
    ],
    [
      'ipvsadm -a -f 256 -r 10.9.2.12 -m -w 3',
      [q.getInfo(), q.newDest(svc256, { address: '10.9.2.12', port: 0, weight: 3 })],
    ],
    [
      'ipvsadm -e -f 256 -r 10.9.2.11 -m -w 0',
      [q.getInfo(), q.setDest(svc256, { address: '10.9.2.11', port: 0, weight: 0 })],
    ],
    ['ipvsadm -E -f 256 -s wrr', [q.getInfo(), q.setService({ ...svc256, scheduler: 'wrr' })]],
    ['ipvsadm -A -f 257 -6 -s rr', [q.getInfo(), q.newService({ ...svc257, scheduler: 'rr' })]],
    [
      'ipvsadm -a -f 257 -6 -r [fd00::11]:0 -m -w 1',
      [q.getInfo(), q.newDest(svc257, { address: 'fd00::11', port: 0, weight: 1 })],
    ],
    ['ipvsadm -Ln', [q.getInfo(), q.getServices(), q.getDests(svc256), q.getDests(svc257)]],
    // without -m, ipvsadm names the destination with its defaults: gatewaying (3), weight 1
    [
      'ipvsadm -d -f 256 -r 10.9.2.11',
      [q.getInfo(), q.delDest(svc256, { address: '10.9.2.11', port: 0, weight: 1, forward: 3 })],
    ],
    ['ipvsadm -D -f 256', [q.getInfo(), q.delService(svc256)]],
    ['ipvsadm -C', [q.getInfo(), q.flush()]],
  ])('%s', (command, requests) => {
    expect(requests.map(enc)).toEqual(ipvsSends(command));
  });

  it('names a request for an error message', () => {
    expect(describeRequest(q.newDest(svc256, { address: '10.9.2.11', port: 0, weight: 1 }))).toBe(
      'IPVS_CMD_NEW_DEST fwmark 256 10.9.2.11',
    );
    expect(describeRequest(q.delDest({ family: 6, fwmark: 257 }, { address: 'fd00::11', port: 0, weight: 1 }))).toBe(
      'IPVS_CMD_DEL_DEST fwmark 257 fd00::11',
    );
    expect(describeRequest(q.delService(svc256))).toBe('IPVS_CMD_DEL_SERVICE fwmark 256');
  });

  it('CTRL_CMD_GETFAMILY "IPVS" as libnl sends it', () => {
    const sent = capture('ipvsadm -C').messages.find((m) => m.dir === 'send')!;
    expect(enc(getFamilyRequest())).toBe(masked(Buffer.from(sent.hex, 'hex')));
  });
});

describe('IPVS replies, decoded from what the kernel sent ipvsadm', () => {
  it('the controller names the IPVS family id', () => {
    const [reply] = decodeNlMessages(Buffer.from(capture('ipvsadm -C').messages[1]!.hex, 'hex'));
    expect(decodeFamilyId(reply!.payload)).toBe(IPVS_FAMILY);
  });

  it('GET_INFO: version and connection table size', () => {
    expect(decodeInfo(repliesTo('ipvsadm -Ln', 15)[0]!)).toEqual({ version: '1.2.1', connTabSize: 4096 });
  });

  it('a GET_SERVICE dump: both fwmark services', () => {
    const services = repliesTo('ipvsadm -Ln', 4).map(decodeService);
    expect(services).toEqual([
      // flags 2: IP_VS_SVC_F_HASHED, which the kernel sets on every service it holds
      { family: 4, fwmark: 256, scheduler: 'wrr', flags: 2, timeout: 0 },
      { family: 6, fwmark: 257, scheduler: 'rr', flags: 2, timeout: 0 },
      undefined, // NLMSG_DONE's payload: not a service
    ]);
  });

  it.each([
    [0, 4 as const, ['10.9.2.12', 3], ['10.9.2.11', 0]],
    [1, 6 as const, ['fd00::11', 1]],
  ])('a GET_DEST dump (#%i): addresses, weights, NAT', (nth, family, ...want) => {
    const dests = repliesTo('ipvsadm -Ln', 8, nth)
      .map((p) => decodeDest(p, family))
      .filter((d) => d !== undefined);
    expect(dests.map((d) => [d.address, d.weight])).toEqual(want);
    for (const d of dests) expect(d).toMatchObject({ family, port: 0, forward: 0, activeConns: 0, inactiveConns: 0 });
  });
});
