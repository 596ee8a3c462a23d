import { lower } from '../dns-name.js';
import { checkNetwork, endpointRecord, serviceRecord } from './records.js';
import type { EndpointRecord, EndpointSpec, ServiceRecord, ServiceSpec, TableReader } from './types.js';

/** The changes of one batch, as dependency keys (see depKey). */
export type ChangeListener = (changed: ReadonlySet<string>) => void;

/** One lookup an answer depends on: kind n (names), p (reverse names) or s (services). */
export function depKey(kind: 'n' | 'p' | 's', network: string, lname: string): string {
  return `${kind}\0${network}\0${lname}`;
}

class NetworkIndex {
  readonly endpoints = new Map<string, EndpointRecord>();
  readonly services = new Map<string, ServiceRecord>();
  readonly byName = new Map<string, EndpointRecord[]>();
  readonly byPtr = new Map<string, EndpointRecord[]>();
  readonly svcByName = new Map<string, ServiceRecord[]>();
}

function add<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function remove<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key)?.filter((v) => v !== value);
  if (list?.length) map.set(key, list);
  else map.delete(key);
}

export interface NameTableTx {
  upsertEndpoint(spec: EndpointSpec): void;
  removeEndpoint(network: string, id: string): void;
  upsertService(spec: ServiceSpec): void;
  removeService(network: string, name: string): void;
  removeNetwork(network: string): void;
}

type Op = (changed: Set<string>) => void;

/**
 * Who answers to which name, per network. A batch of changes is validated in full, then applied
 * in one synchronous step, so no query (each is handled in its own turn of the event loop) ever
 * sees half of it; listeners hear of the batch's changes before control returns to the caller.
 */
export class NameTable implements TableReader {
  readonly #networks = new Map<string, NetworkIndex>();
  readonly #listeners = new Set<ChangeListener>();
  #version = 0;

  /** Bumped by every batch that changed something. */
  get version(): number {
    return this.#version;
  }

  upsertEndpoint(spec: EndpointSpec): void {
    this.batch((tx) => tx.upsertEndpoint(spec));
  }

  removeEndpoint(network: string, id: string): void {
    this.batch((tx) => tx.removeEndpoint(network, id));
  }

  upsertService(spec: ServiceSpec): void {
    this.batch((tx) => tx.upsertService(spec));
  }

  removeService(network: string, name: string): void {
    this.batch((tx) => tx.removeService(network, name));
  }

  /** Everything on a network goes, as when the network is deleted. */
  removeNetwork(network: string): void {
    this.batch((tx) => tx.removeNetwork(network));
  }

  /** Several changes at once: all of them or, if one is invalid (it throws), none. */
  batch(fn: (tx: NameTableTx) => void): void {
    const ops: Op[] = [];
    fn({
      upsertEndpoint: (spec) => {
        const rec = endpointRecord(spec);
        ops.push((c) => this.#putEndpoint(rec, c));
      },
      removeEndpoint: (network, id) => {
        ops.push((c) => this.#dropEndpoint(network, id, c));
      },
      upsertService: (spec) => {
        const rec = serviceRecord(spec);
        ops.push((c) => this.#putService(rec, c));
      },
      removeService: (network, name) => {
        checkNetwork(network);
        ops.push((c) => this.#dropService(network, lower(String(name)), c));
      },
      removeNetwork: (network) => {
        checkNetwork(network);
        ops.push((c) => this.#dropNetwork(network, c));
      },
    });
    const changed = new Set<string>();
    for (const op of ops) op(changed);
    if (changed.size === 0) return;
    this.#version++;
    for (const l of this.#listeners) l(changed);
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  endpointsByName(network: string, lname: string): readonly EndpointRecord[] | undefined {
    return this.#networks.get(network)?.byName.get(lname);
  }

  endpointsByAddress(network: string, lptr: string): readonly EndpointRecord[] | undefined {
    return this.#networks.get(network)?.byPtr.get(lptr);
  }

  services(network: string, lname: string): readonly ServiceRecord[] | undefined {
    return this.#networks.get(network)?.svcByName.get(lname);
  }

  /** Endpoints and services of a network (for the admin API and tests). */
  list(network: string): { endpoints: EndpointRecord[]; services: ServiceRecord[] } {
    const n = this.#networks.get(network);
    return { endpoints: [...(n?.endpoints.values() ?? [])], services: [...(n?.services.values() ?? [])] };
  }

  #index(network: string): NetworkIndex {
    let n = this.#networks.get(network);
    if (!n) this.#networks.set(network, (n = new NetworkIndex()));
    return n;
  }

  #putEndpoint(rec: EndpointRecord, changed: Set<string>): void {
    this.#dropEndpoint(rec.network, rec.id, changed);
    const n = this.#index(rec.network);
    n.endpoints.set(rec.id, rec);
    for (const k of rec.keys) {
      add(n.byName, k, rec);
      changed.add(depKey('n', rec.network, k));
    }
    for (const k of rec.ptrKeys) {
      add(n.byPtr, k, rec);
      changed.add(depKey('p', rec.network, k));
    }
  }

  #dropEndpoint(network: string, id: string, changed: Set<string>): void {
    const n = this.#networks.get(network);
    const rec = n?.endpoints.get(id);
    if (!n || !rec) return;
    n.endpoints.delete(id);
    for (const k of rec.keys) {
      remove(n.byName, k, rec);
      changed.add(depKey('n', network, k));
    }
    for (const k of rec.ptrKeys) {
      remove(n.byPtr, k, rec);
      changed.add(depKey('p', network, k));
    }
    this.#prune(network, n);
  }

  #putService(rec: ServiceRecord, changed: Set<string>): void {
    this.#dropService(rec.network, lower(rec.name), changed);
    const n = this.#index(rec.network);
    n.services.set(lower(rec.name), rec);
    for (const k of rec.keys) {
      add(n.svcByName, k, rec);
      changed.add(depKey('s', rec.network, k));
    }
  }

  #dropService(network: string, lname: string, changed: Set<string>): void {
    const n = this.#networks.get(network);
    const rec = n?.services.get(lname);
    if (!n || !rec) return;
    n.services.delete(lname);
    for (const k of rec.keys) {
      remove(n.svcByName, k, rec);
      changed.add(depKey('s', network, k));
    }
    this.#prune(network, n);
  }

  #dropNetwork(network: string, changed: Set<string>): void {
    const n = this.#networks.get(network);
    if (!n) return;
    for (const id of [...n.endpoints.keys()]) this.#dropEndpoint(network, id, changed);
    for (const name of [...n.services.keys()]) this.#dropService(network, name, changed);
  }

  #prune(network: string, n: NetworkIndex): void {
    if (n.endpoints.size === 0 && n.services.size === 0) this.#networks.delete(network);
  }
}
