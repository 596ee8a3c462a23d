// The engine's event stream (GET /events): one JSON object per line, for as long as the
// connection lasts. It ends when the engine stops or the connection breaks; the source then
// reconnects and reconciles.
import type { Readable } from 'node:stream';
import { SidecarError } from '../errors.js';

/** The engine's filters: `{ type: ['container'], event: ['start'], label: ['k'] }`. */
export type EventFilters = Record<string, string[]>;

export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  timeNano?: number;
}

export class EventStream implements AsyncIterable<DockerEvent> {
  readonly #body: Readable;
  readonly #release: () => void;

  constructor(body: Readable, release: () => void) {
    this.#body = body;
    this.#release = release;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DockerEvent> {
    let buf = '';
    try {
      for await (const chunk of this.#body) {
        buf += (chunk as Buffer).toString('utf8');
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          if (line === '') continue;
          const ev = parseEvent(line);
          if (ev) yield ev;
        }
      }
    } catch (err) {
      if (err instanceof SidecarError) throw err;
      throw new SidecarError('SIDECAR_DOCKER_UNAVAILABLE', `the event stream broke: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      this.close();
    }
  }

  /** Ends the stream (and its connection). */
  close(): void {
    this.#body.destroy();
    this.#release();
  }
}

/** One line of the stream; undefined for one that is not an event with an actor. */
export function parseEvent(line: string): DockerEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (cause) {
    throw new SidecarError('SIDECAR_DOCKER_API', `unreadable event: ${line.slice(0, 200)}`, { cause });
  }
  const e = v as Partial<DockerEvent>;
  if (typeof e.Type !== 'string' || typeof e.Action !== 'string' || typeof e.Actor?.ID !== 'string') return undefined;
  return e as DockerEvent;
}
