// The daemon's log: one line per event, each with a level, as text (`cnmd: warn: …`) or as JSON
// lines (`--log-format json`) whose fields are the spans' (network, endpoint, sandbox, code).
// The parts of the daemon log free-text lines through `line()`; the level comes from the line: an
// error code in it makes it an error, a few words say a warning (they are the parts' own words,
// listed here), the rest is info. The last warnings and errors are kept for the status page.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What a line may carry beside its message; undefined fields are left out. */
export interface LogFields {
  network?: string | undefined;
  endpoint?: string | undefined;
  sandbox?: string | undefined;
  service?: string | undefined;
  code?: string | undefined;
  [key: string]: unknown;
}

export interface LogEntry extends LogFields {
  time: string;
  level: LogLevel;
  msg: string;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Where a line goes, its newline included (stderr by default). */
  write?: (text: string) => void;
  /** How many warnings and errors recent() keeps. */
  keep?: number;
  now?: () => Date;
}

/** An error code as the packages spell them: SIDECAR_LINK_EXISTS, IPAM_POOL_EXHAUSTED, LB_NFT… */
const CODE = /\b((?:SIDECAR|IPAM|DNS|LB|API|NETUTIL)_[A-Z0-9_]+)\b/;
/** The parts' words for something that went wrong but is handled (docker, cluster, lb). */
const WARNING = /\b(cannot|lost|ignored|left alone|retrying|is gone|ended|stays held|held twice|failed|refused)\b/;

/** The level of a free-text line of the daemon, and the error code it names. */
export function levelOf(text: string): { level: LogLevel; code?: string } {
  const code = CODE.exec(text)?.[1];
  if (code) return { level: 'error', code };
  return { level: WARNING.test(text) ? 'warn' : 'info' };
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  readonly #o: Required<Omit<LoggerOptions, 'keep'>> & { keep: number };
  readonly #recent: LogEntry[] = [];

  constructor(o: LoggerOptions) {
    this.#o = {
      write: (t) => process.stderr.write(t),
      now: () => new Date(),
      keep: 50,
      ...o,
    };
  }

  get level(): LogLevel {
    return this.#o.level;
  }

  /** A free-text line of a part of the daemon (what they are given as `log`), its level guessed. */
  line = (text: string): void => {
    const { level, code } = levelOf(text);
    this.log(level, text, code ? { code } : {});
  };

  debug(msg: string, fields: LogFields = {}): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields: LogFields = {}): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields: LogFields = {}): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields: LogFields = {}): void {
    this.log('error', msg, fields);
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    const keep = RANK[level] >= RANK.warn;
    if (RANK[level] < RANK[this.#o.level] && !keep) return;
    const entry: LogEntry = { time: this.#o.now().toISOString(), level, msg };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in entry)) entry[k] = v;
    if (keep) {
      this.#recent.push(entry);
      if (this.#recent.length > this.#o.keep) this.#recent.shift();
    }
    if (RANK[level] < RANK[this.#o.level]) return;
    this.#o.write(this.#o.format === 'json' ? `${JSON.stringify(entry)}\n` : `cnmd: ${level}: ${msg}\n`);
  }

  /** The last warnings and errors, oldest first (kept whatever --log-level says). */
  recent(): LogEntry[] {
    return [...this.#recent];
  }
}
