// For sibling packages (the batch transport, benchmarks) and tests only: not the public surface.
export { AnswerCache } from './answer-cache.js';
export { type Candidate, candidates, compose, type PluginContext, type SandboxContext } from './chain.js';
export * from './dns-name.js';
export type { ServerContext } from './handlers/context.js';
export { CHAIN, TABLE_PART } from './handlers/index.js';
export { assemble, OUR_UDP_SIZE, type Prepared, prepare } from './prepared.js';
export { DROP, FORMERR, NOTIMP, type RawQuery, readQuery } from './raw-query.js';
export { emptyReply, relayReply } from './respond.js';
export { type Rr, rrText, TYPE } from './rr.js';
export { depKey } from './table/name-table.js';
export type { EndpointRecord, ServiceRecord, TableReader } from './table/types.js';
export { type Exchange, matches, socketExchange } from './upstream/exchange.js';
export { buildQuery, Forwarder } from './upstream/forwarder.js';
export { parseUpstream as parseUpstreamMessage, type UpstreamMessage } from './upstream/raw-message.js';
export { parseUpstream, type Upstream } from './upstream/upstream-address.js';
export { View } from './view.js';
export * from './wire.js';
