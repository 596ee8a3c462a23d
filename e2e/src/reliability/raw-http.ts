// HTTP/1.1 by hand, for requests no well-behaved client sends: lengths that lie, bodies sent a
// chunk at a time or a byte a second, bytes that are not UTF-8. Reads one response and tells
// when the server closed the connection.
import net from 'node:net';

export interface RawOutcome {
  status?: number;
  /** The `code` of a JSON error body. */
  code?: string;
  body?: string;
  /** Why no response came: the connection's error, or TIMEOUT. */
  error?: string;
  /** When the server closed the connection, ms after the request began (undefined: still open at the end). */
  closedMs?: number;
  /** Bytes of the body written before the response or the close stopped the writing. */
  sentBytes: number;
}

export interface RawRequest {
  /** The request line and headers, without the blank line that ends them. */
  head: string;
  /** A body sent at once; or `stream` bytes, `chunk` at a time, `delayMs` apart. */
  body?: Buffer | string;
  stream?: { bytes: number; chunk: number; delayMs: number };
  /** Give up (and close) after this long. */
  timeoutMs?: number;
  /** Keep reading until the server closes, rather than stopping at the response's end. */
  untilClose?: boolean;
}

export function rawHttp(connect: () => Promise<net.Socket>, r: RawRequest): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const out: RawOutcome = { sentBytes: 0 };
    let buf = Buffer.alloc(0);
    let socket: net.Socket | undefined;
    let over = false;
    const finish = () => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      parse(buf, out);
      socket?.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => {
      out.error ??= out.status === undefined ? 'TIMEOUT' : undefined;
      finish();
    }, r.timeoutMs ?? 30_000);
    connect().then(
      (s) => {
        socket = s;
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (!r.untilClose && complete(buf)) finish();
        });
        s.on('error', (e: NodeJS.ErrnoException) => {
          out.error ??= e.code ?? e.message;
        });
        s.on('close', () => {
          out.closedMs = Date.now() - t0;
          finish();
        });
        // The head with the first 64 KiB of the body in one write, the rest a chunk at a time
        // with the socket read in between: a server that answers and closes early (a length past
        // the limit, a bad one) would otherwise fail a write with EPIPE, and its answer be lost.
        const body = r.body === undefined ? Buffer.alloc(0) : Buffer.from(r.body);
        const first = body.subarray(0, 64 * 1024);
        s.write(Buffer.concat([Buffer.from(`${r.head}\r\n\r\n`), first]));
        out.sentBytes = first.length;
        if (body.length > first.length)
          void pumpBody(s, body.subarray(first.length), out, () => over || buf.length > 0);
        if (r.stream) void pump(s, r.stream, out, () => over || buf.length > 0);
      },
      (e: NodeJS.ErrnoException) => {
        out.error = e.code ?? e.message;
        finish();
      },
    );
  });
}

async function pump(
  s: net.Socket,
  st: NonNullable<RawRequest['stream']>,
  out: RawOutcome,
  stop: () => boolean,
): Promise<void> {
  const chunk = Buffer.alloc(st.chunk, 0x20);
  await earlyAnswer(stop);
  while (out.sentBytes < st.bytes && !stop() && !s.destroyed) {
    const ok = s.write(chunk);
    out.sentBytes += chunk.length;
    if (!ok) {
      // A server that stopped reading never drains: give up on it after a while.
      const drained = await Promise.race([
        new Promise<boolean>((r) => s.once('drain', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 2000)),
      ]);
      if (!drained) return;
    }
    // Between chunks the loop lets the socket read: a server that answered and closed has its
    // answer taken in before a write fails on the closed connection (EPIPE) and drops it.
    await new Promise((r) => (st.delayMs ? setTimeout(r, st.delayMs) : setImmediate(r)));
  }
}

/**
 * As curl does with Expect: 100-continue, a moment for an early answer before the body: a write
 * to a server that answered and closed fails with EPIPE, and node drops the answer unread with
 * the socket. A second, since a loaded machine's daemon may take hundreds of ms to answer.
 */
async function earlyAnswer(stop: () => boolean): Promise<void> {
  for (let waited = 0; waited < 1000 && !stop(); waited += 20) await new Promise((r) => setTimeout(r, 20));
}

async function pumpBody(s: net.Socket, rest: Buffer, out: RawOutcome, stop: () => boolean): Promise<void> {
  await earlyAnswer(stop);
  for (let at = 0; at < rest.length && !stop() && !s.destroyed; at += 64 * 1024) {
    await new Promise((r) => setImmediate(r));
    const chunk = rest.subarray(at, at + 64 * 1024);
    if (!s.write(chunk)) {
      await new Promise((r) => {
        s.once('drain', r);
        s.once('close', r);
      });
    }
    out.sentBytes += chunk.length;
  }
}

/** A whole response: headers, and the body its content-length gives (none without one). */
function complete(buf: Buffer): boolean {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const len = /\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1];
  return buf.length >= end + 4 + Number(len ?? 0);
}

function parse(buf: Buffer, out: RawOutcome): void {
  const text = buf.toString('utf8');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (!m) return;
  out.status = Number(m[1]);
  const at = text.indexOf('\r\n\r\n');
  out.body = at < 0 ? '' : text.slice(at + 4);
  try {
    const code = (JSON.parse(out.body) as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
  } catch {} // not a JSON body
}

/** A connection to a unix socket. */
export function unixConnect(path: string): () => Promise<net.Socket> {
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => {
        s.removeAllListeners('error');
        s.on('error', () => {}); // the user of the socket looks at its close
        resolve(s);
      });
      s.once('error', reject);
    });
}
