// Sends an A query for NAME to SERVER:53 over UDP that is 600 bytes long (a TXT record of
// padding in its additional section), once without EDNS and once with an OPT record (payload
// 1232), and prints for each: the mode, the query's size, the reply's RCODE and ANCOUNT.
// RFC 1035 4.2.1: without EDNS a UDP message is at most 512 bytes. Run inside a sandbox.
import dgram from 'node:dgram';

const [server, name] = process.argv.slice(2);
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

function query(edns, size) {
  const qname = Buffer.concat([
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
  const question = Buffer.concat([qname, Buffer.from([0, 1, 0, 1])]); // A IN
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]); // root OPT, payload 1232
  const header = Buffer.alloc(12);
  header.writeUInt16BE(0x4242, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(edns ? 2 : 1, 10); // ARCOUNT
  const fixed = 12 + question.length + (edns ? opt.length : 0) + 11; // 11: a root TXT's owner, type, class, ttl, rdlength
  // rdata: character-strings of at most 255 octets each, exactly filling the rest
  const strings = [];
  for (let left = size - fixed; left > 0; ) {
    const n = Math.min(255, left - 1);
    strings.push(Buffer.from([n]), Buffer.alloc(n, 'x'));
    left -= n + 1;
  }
  const rdata = Buffer.concat(strings);
  const rr = Buffer.alloc(11);
  rr.writeUInt16BE(16, 1); // root owner, TXT
  rr.writeUInt16BE(1, 3); // IN
  rr.writeUInt16BE(rdata.length, 9);
  return Buffer.concat([header, question, ...(edns ? [opt] : []), rr, rdata]);
}

async function ask(edns) {
  const q = query(edns, 600);
  const sock = dgram.createSocket('udp4');
  const reply = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply')), 3000);
    sock.on('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    sock.send(q, 53, server);
  });
  sock.close();
  return `${edns ? 'edns' : 'no-edns'} ${q.length} ${RCODES[reply[3] & 0xf] ?? reply[3] & 0xf} ${reply.readUInt16BE(6)}`;
}

console.log(await ask(false));
console.log(await ask(true));
