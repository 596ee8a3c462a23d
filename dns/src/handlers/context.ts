import type { AnswerCache } from '../answer-cache.js';
import type { PluginContext } from '../chain.js';
import type { Forwarder } from '../upstream/forwarder.js';

/** What the cache and forward handlers are given. */
export interface ServerContext extends PluginContext {
  /** undefined when the cache is off. */
  cache: AnswerCache | undefined;
  forwarder: Forwarder;
  /** Forwarded queries in flight per sandbox before REFUSED (libnetwork: 1024). */
  maxInflight: number;
}
