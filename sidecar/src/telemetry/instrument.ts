// Spans, durations and log lines around what the daemon does, put around its parts from outside
// so that none of them knows telemetry: an attach, a detach, a service change, a network change
// and a cluster resync are operations (a root span, a log line, a duration, failures by code);
// what they call (IPAM, the driver's links, netlink requests, DNS sockets, the firewall, the load
// balancer) are steps, each a child span when tracing is on. The daemon wraps its parts with
// these before wiring them (daemon.ts); with neither metrics nor traces they are not wrapped.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Ipam } from '@cnmd/ipam';
import {
  type Attributes,
  type Counter,
  type Histogram,
  type Span,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import type { Cluster } from '../cluster/cluster.js';
import { BUCKET_NAMES } from '../cluster/kv.js';
import { describeError } from '../errors.js';
import type { Kernel, NetnsLinks } from '../kernel/types.js';
import type { NetworkController } from '../network/controller.js';
import type { NetworkDriver } from '../network/driver.js';
import type { LogFields, Logger } from './log.js';
import type { Instruments } from './metrics.js';

export interface Observer {
  tracer: Tracer | undefined;
  instruments: Instruments | undefined;
  log: Logger;
}

/** The code of an error as the packages give it (SIDECAR_…, IPAM_…), or ERROR. */
export function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code) ? code : 'ERROR';
}

function failed(span: Span, err: unknown): void {
  const code = codeOf(err);
  span.setAttribute('cnmd.code', code);
  span.setAttribute('error.type', code);
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(err) });
}

/** Span attributes from log fields: `network` → `cnmd.network`; undefined left out. */
function attributes(fields: LogFields): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[`cnmd.${k}`] = v;
  }
  return out;
}

/** A step of an operation: a child span when tracing, nothing more. */
export function step<T>(o: Observer, name: string, fields: LogFields, fn: () => Promise<T>): Promise<T> {
  if (!o.tracer) return fn();
  return o.tracer.startActiveSpan(name, { attributes: attributes(fields) }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

interface OpSpec<T> {
  span: string;
  /** What it is, for the log line: `attach web1 to front`. */
  what: string;
  fields: LogFields;
  /** Fields known once it is done (the endpoint's id). */
  after?: (r: T) => LogFields;
  duration?: Histogram | undefined;
  failures?: Counter | undefined;
  metric?: Attributes;
  /** Logged at debug (an LB sandbox's own endpoint, an undo), not info. */
  quiet?: boolean;
}

/** An operation: a root span, its duration and failures by code, one log line. */
export function op<T>(o: Observer, s: OpSpec<T>, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const run = async (span?: Span): Promise<T> => {
    try {
      const r = await fn();
      const ms = performance.now() - t0;
      s.duration?.record(ms / 1000, s.metric);
      const extra = s.after?.(r) ?? {};
      span?.setAttributes(attributes(extra));
      o.log.log(s.quiet ? 'debug' : 'info', `${s.what}: done in ${ms.toFixed(1)} ms`, {
        ...s.fields,
        ...extra,
        durationMs: Number(ms.toFixed(1)),
      });
      return r;
    } catch (err) {
      const code = codeOf(err);
      s.failures?.add(1, { ...s.metric, code });
      if (span) failed(span, err);
      o.log.error(`${s.what}: ${describeError(err)}`, { ...s.fields, code });
      throw err;
    } finally {
      span?.end();
    }
  };
  return o.tracer ? o.tracer.startActiveSpan(s.span, { attributes: attributes(s.fields) }, run) : run();
}

/**
 * A view of `target` whose named async methods run as steps (`prefix.method`); everything else
 * is the target's own, bound to it (its #private fields answer to it alone, not to a proxy).
 */
export function traced<T extends object>(
  o: Observer,
  target: T,
  prefix: string,
  methods: readonly string[],
  fields: (method: string, args: unknown[]) => LogFields = () => ({}),
): T {
  if (!o.tracer) return target;
  return new Proxy(target, {
    get(t, key) {
      const v = Reflect.get(t, key, t);
      if (typeof v !== 'function') return v;
      if (typeof key === 'string' && methods.includes(key)) {
        return (...args: unknown[]) => step(o, `${prefix}.${key}`, fields(key, args), () => v.apply(t, args));
      }
      return v.bind(t);
    },
  });
}

const netName = (net: unknown) => (net as { spec?: { name?: string } } | undefined)?.spec?.name;

/** A network driver, each request to it a step (`driver.join`: the veth and its end in the sandbox). */
function tracedDriver(o: Observer, d: NetworkDriver): NetworkDriver {
  return traced(o, d, 'driver', ['buildNetwork', 'deleteNetwork', 'join', 'leave', 'peer', 'syncPeers'], (_, args) => ({
    driver: d.name,
    network: netName(args[0]),
  }));
}

/** The kernel: each change over netlink in a namespace is a step (`netlink.addAddress`). */
export function tracedKernel(o: Observer, kernel: Kernel): Kernel {
  if (!o.tracer) return kernel;
  const changes = [
    'addBridge',
    'addVeth',
    'addMacvlan',
    'addVxlan',
    'setLink',
    'setHairpin',
    'deleteLink',
    'addAddress',
    'deleteAddress',
    'addRoute',
    'setArpNotify',
  ];
  return new Proxy(kernel, {
    get(t, key) {
      const v = Reflect.get(t, key, t);
      if (key !== 'open' || typeof v !== 'function') return typeof v === 'function' ? v.bind(t) : v;
      return async (netns?: string): Promise<NetnsLinks> =>
        traced(o, await v.call(t, netns), 'netlink', changes, () => ({ netns: netns ?? 'host' }));
    },
  });
}

/** IPAM's requests, each a step (`ipam.requestAddress`), patched in place: the cluster shares it. */
export function traceIpam(o: Observer, ipam: Ipam): void {
  if (!o.tracer) return;
  for (const m of [
    'requestPool',
    'releasePool',
    'requestAddress',
    'releaseAddress',
    'requestId',
    'releaseId',
  ] as const) {
    const orig = ipam[m].bind(ipam) as (...a: unknown[]) => Promise<unknown>;
    (ipam as unknown as Record<string, unknown>)[m] = (...args: unknown[]) =>
      step(o, `ipam.${m}`, typeof args[0] === 'string' ? { pool: args[0] } : {}, () => orig(...args));
  }
}

/**
 * The controller's operations, patched in place (the API, the Docker source, reconcile and the
 * cluster all call these): attach and detach with their durations and failures, services,
 * networks. An endpoint undone by a failed attach is a step of it, not a detach of its own.
 */
export function instrumentController(o: Observer, c: NetworkController): void {
  const within = new AsyncLocalStorage<'attach'>();
  const i = o.instruments;
  if (o.tracer) {
    const driverOf = c.driverOf.bind(c);
    const drivers = new WeakMap<NetworkDriver, NetworkDriver>();
    c.driverOf = (net) => {
      const d = driverOf(net);
      let w = drivers.get(d);
      if (!w) drivers.set(d, (w = tracedDriver(o, d)));
      return w;
    };
  }
  const attachNow = c.attachNow.bind(c);
  c.attachNow = (spec, opts = {}) =>
    within.run('attach', () =>
      op(
        o,
        {
          span: 'cnmd.attach',
          what: `attach ${spec.name ?? spec.sandbox} to ${spec.network}`,
          fields: { network: spec.network, sandbox: spec.sandbox, name: spec.name, lb: opts.lb || undefined },
          after: (ep) => ({ endpoint: ep.id.slice(0, 12), address: ep.ip || undefined }),
          duration: opts.lb ? undefined : i?.attachDuration,
          failures: opts.lb ? undefined : i?.attachFailures,
          quiet: opts.lb === true,
        },
        () => attachNow(spec, opts),
      ),
    );
  const destroyEndpoint = c.destroyEndpoint.bind(c);
  c.destroyEndpoint = (ep) => {
    const undo = within.getStore() === 'attach';
    const network = c.networks.get(ep.network)?.spec.name ?? ep.network;
    const mine = !undo && !ep.lb;
    return op(
      o,
      {
        span: 'cnmd.detach',
        what: `${undo ? 'undo' : 'detach'} ${ep.name ?? ep.sandbox} from ${network}`,
        fields: { network, endpoint: ep.id.slice(0, 12), sandbox: ep.sandbox, name: ep.name },
        duration: mine ? i?.detachDuration : undefined,
        failures: mine ? i?.detachFailures : undefined,
        quiet: !mine,
      },
      () => destroyEndpoint(ep),
    );
  };
  const createService = c.createService.bind(c);
  c.createService = (spec) =>
    op(
      o,
      {
        span: 'cnmd.service.create',
        what: `service create ${spec.name} on ${spec.network}`,
        fields: { service: spec.name, network: spec.network },
        after: (s) => ({ vip: s.vip }),
        duration: i?.serviceChangeDuration,
        failures: i?.serviceChangeFailures,
        metric: { op: 'create' },
      },
      () => createService(spec),
    );
  const removeService = c.removeService.bind(c);
  c.removeService = (name, network) =>
    op(
      o,
      {
        span: 'cnmd.service.remove',
        what: `service rm ${name}${network ? ` on ${network}` : ''}`,
        fields: { service: name, network },
        duration: i?.serviceChangeDuration,
        failures: i?.serviceChangeFailures,
        metric: { op: 'remove' },
      },
      () => removeService(name, network),
    );
  const createNetwork = c.createNetwork.bind(c);
  c.createNetwork = (spec, opts) =>
    op(
      o,
      {
        span: 'cnmd.network.create',
        what: `network create ${spec.name}`,
        fields: { network: spec.name, driver: spec.driver },
        after: (n) => ({ subnet: n.subnet }),
      },
      () => createNetwork(spec, opts),
    );
  const removeNetwork = c.removeNetwork.bind(c);
  c.removeNetwork = (name) =>
    op(o, { span: 'cnmd.network.remove', what: `network rm ${name}`, fields: { network: name } }, () =>
      removeNetwork(name),
    );
}

/** What the cluster tells that the rest cannot see: how late its watch hears this host's own beat. */
export interface ClusterWatch {
  /** Seconds from this host's heartbeat being put to its coming back through the watch; undefined before one. */
  lag: number | undefined;
}

/**
 * The cluster's resync as an operation (joined: a resync asked for while one runs is the same
 * one), with a step per bucket it watches again (from the watch's start to the end of its
 * snapshot, with the changes it found); its requests to NATS as steps; and the watch's lag, read
 * from this host's own heartbeats as they come back (their `at` is this host's clock).
 */
export function instrumentCluster(o: Observer, cluster: Cluster): ClusterWatch {
  const watch: ClusterWatch = { lag: undefined };
  const resync = cluster.resync.bind(cluster);
  let running: Promise<void> | undefined;
  cluster.resync = () => {
    if (running) return resync();
    running = op(
      o,
      {
        span: 'cnmd.cluster.resync',
        what: 'cluster resync',
        fields: { host: cluster.hostId },
        duration: o.instruments?.resyncDuration,
        quiet: true, // the cluster says it is in step itself
      },
      resync,
    ).finally(() => {
      running = undefined;
    });
    return running;
  };
  if (o.tracer) {
    const tracer = o.tracer;
    const views = [
      [cluster.networks, BUCKET_NAMES.networks],
      [cluster.hosts, BUCKET_NAMES.hosts],
      [cluster.claims, BUCKET_NAMES.ipam],
      [cluster.services, BUCKET_NAMES.services],
      [cluster.endpoints, BUCKET_NAMES.endpoints],
    ] as const;
    for (const [view, bucket] of views) {
      let open: { span: Span; changes: number } | undefined;
      const begin = view.beginSnapshot.bind(view);
      const end = view.endSnapshot.bind(view);
      view.beginSnapshot = () => {
        open?.span.end();
        // Started within the resync: its child (the context follows the resync's awaits).
        open = {
          span: tracer.startSpan('cluster.watch', { attributes: { 'cnmd.bucket': bucket } }),
          changes: view.changes,
        };
        begin();
      };
      view.endSnapshot = () => {
        end();
        open?.span.setAttribute('cnmd.changes', view.changes - open.changes);
        open?.span.end();
        open = undefined;
      };
    }
  }
  const apply = cluster.hosts.apply.bind(cluster.hosts);
  cluster.hosts.apply = (change) => {
    if (change.key === cluster.hostId && change.value) {
      try {
        const at = (JSON.parse(change.value) as { at?: unknown }).at;
        if (typeof at === 'number') watch.lag = Math.max(0, Date.now() - at) / 1000;
      } catch {} // the view refuses it and says why
    }
    apply(change);
  };
  for (const m of [
    'createNetwork',
    'removeNetwork',
    'createService',
    'removeService',
    'requestAddress',
    'releaseAddress',
    'requestMark',
    'releaseMark',
  ] as const) {
    if (!o.tracer) break;
    const orig = cluster[m].bind(cluster) as (...a: unknown[]) => Promise<unknown>;
    (cluster as unknown as Record<string, unknown>)[m] = (...args: unknown[]) =>
      step(o, `cluster.${m}`, { network: netName(args[0]) }, () => orig(...args));
  }
  return watch;
}
