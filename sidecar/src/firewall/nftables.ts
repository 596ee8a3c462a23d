// The Firewall over nftables: each change is one script, one `nft -f -` transaction; the
// state (state.ts) is updated only once the kernel took it, so a refused change changes
// nothing anywhere. Calls are serialised: a check and its transaction are never interleaved.
import { type FirewallTransactionEvent, transactionChannel } from './diagnostics.js';
import { FirewallError } from './errors.js';
import { type Exec, execIn } from './exec.js';
import {
  addElements,
  BRIDGE_META_PROBE,
  deleteElements,
  dropTables,
  networkElements,
  portElements,
  replaceScript,
  type ScriptOptions,
  script,
  skeleton,
} from './nft-script.js';
import { FirewallState, type PortEntry } from './state.js';
import type { Firewall, FwHostPort, FwNetwork, FwPort } from './types.js';

export interface NftablesOptions {
  /** The network namespace to program (a /run/netns name or a path); the process's own when
   * absent. Tests use it to program a simulated host, never the machine's namespace. */
  netns?: string;
  /** Runs nft and sysctl; by default child processes (in `netns` when given). */
  exec?: Exec;
  /** Whether the kernel has `meta ibrname` for the bridge family; probed at start when absent. */
  bridgeMeta?: boolean;
}

export function defaultOptions(): NftablesOptions {
  return {};
}

export class NftablesFirewall implements Firewall {
  readonly #exec: Exec;
  #opts: ScriptOptions | undefined;
  #state = new FirewallState();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** The skeleton was written by this object (start, reconcile), since the last reset. */
  #started = false;

  constructor(options: NftablesOptions = defaultOptions()) {
    this.#exec = options.exec ?? execIn(options.netns);
    if (options.bridgeMeta !== undefined) this.#opts = { bridgeMeta: options.bridgeMeta };
  }

  start(): Promise<void> {
    return this.#serial(async () => {
      await this.#start();
    });
  }

  addNetwork(n: FwNetwork): Promise<void> {
    return this.#serial(async () => {
      const e = this.#state.planNetwork(n);
      if (!e) return;
      const o = await this.#start();
      await this.#nft('addNetwork', script(addElements(networkElements(e, o))));
      this.#state.commitNetwork(e);
    });
  }

  removeNetwork(name: string): Promise<void> {
    return this.#serial(async () => {
      const e = this.#state.network(name);
      if (!e) return;
      const o = await this.#start();
      const ports = this.#state.portsOf(name);
      await this.#nft('removeNetwork', script(deleteElements([...ports.map(portElements), ...networkElements(e, o)])));
      this.#state.dropNetwork(name);
    });
  }

  publish(p: FwPort): Promise<void> {
    return this.#serial(async () => {
      const e = this.#state.planPublish(p);
      await this.#localnet([e]);
      await this.#start();
      await this.#nft('publish', script(addElements([portElements(e)])));
      this.#state.commitPort(e);
    });
  }

  checkPorts(ports: FwHostPort[]): Promise<void> {
    return this.#serial(async () => this.#state.checkHostPorts(ports));
  }

  unpublish(p: FwPort): Promise<void> {
    return this.#serial(async () => {
      const e = this.#state.findPort(p);
      if (!e) return;
      await this.#start();
      await this.#nft('unpublish', script(deleteElements([portElements(e)])));
      this.#state.dropPort(e);
    });
  }

  reconcile(nets: FwNetwork[], ports: FwPort[]): Promise<void> {
    return this.#serial(async () => {
      const want = FirewallState.of(nets, ports);
      const o = await this.#probe();
      await this.#nft('reconcile', replaceScript(o, want.networks(), want.ports()));
      this.#state = want;
      this.#started = true;
      // After the transaction, unlike publish: the rules converge even if a bridge is missing
      // (its route_localnet then fails, and says so, once the rest is in force).
      await this.#localnet(want.ports());
    });
  }

  reset(): Promise<void> {
    return this.#serial(() => this.#reset());
  }

  close(): Promise<void> {
    return this.#serial(async () => {
      if (this.#closed) return;
      await this.#reset();
      this.#closed = true;
    }, true);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  networks(): FwNetwork[] {
    return this.#state.networks().map((n) => ({ ...n.spec }));
  }

  ports(): FwPort[] {
    return this.#state.ports().map((p) => ({ ...p.spec }));
  }

  async #reset(): Promise<void> {
    await this.#nft('reset', script(dropTables()));
    this.#state.clear();
    this.#started = false;
  }

  async #start(): Promise<ScriptOptions> {
    const o = await this.#probe();
    if (!this.#started) {
      try {
        await this.#nft('start', script(skeleton(o)));
      } catch (err) {
        // Tables left by another version of cnmd, with sets of other types: start afresh
        // (reconcile, which follows a start, puts back what the state knows).
        await this.#nft('start', script([...dropTables(), ...skeleton(o)])).catch(() => Promise.reject(err));
      }
      this.#started = true;
    }
    return o;
  }

  async #probe(): Promise<ScriptOptions> {
    if (!this.#opts) {
      const ok = await this.#exec('nft', ['-c', '-f', '-'], BRIDGE_META_PROBE).then(
        () => true,
        () => false,
      );
      this.#opts = { bridgeMeta: ok };
    }
    return this.#opts;
  }

  /** Docker without its userland proxy sets route_localnet on a bridge with published ports:
   * the kernel otherwise refuses to route a packet from 127.0.0.1 out of it (a "martian"). */
  async #localnet(ports: PortEntry[]): Promise<void> {
    const bridges = new Set(ports.filter((p) => p.family === 4).map((p) => p.spec.bridge));
    const failed: string[] = [];
    let cause: unknown;
    for (const br of bridges) {
      // The slash form keeps a dot in a bridge name from being read as a separator (sysctl(8)).
      await this.#exec('sysctl', ['-q', '-w', `net/ipv4/conf/${br}/route_localnet=1`]).catch((err) => {
        failed.push(`${br}: ${(err as Error).message}`);
        cause ??= err;
      });
    }
    if (failed.length > 0) {
      throw new FirewallError('SIDECAR_SYSCTL', `route_localnet of ${failed.join('; ')}`, { cause });
    }
  }

  async #nft(op: FirewallTransactionEvent['op'], text: string): Promise<void> {
    const t0 = performance.now();
    let error: string | undefined;
    try {
      await this.#exec('nft', ['-f', '-'], text);
    } catch (cause) {
      error = 'SIDECAR_NFT';
      throw new FirewallError('SIDECAR_NFT', `nft refused the transaction: ${(cause as Error).message}`, { cause });
    } finally {
      if (transactionChannel.hasSubscribers) {
        const lines = text.split('\n').length - 1;
        transactionChannel.publish({ op, lines, ms: performance.now() - t0, error } satisfies FirewallTransactionEvent);
      }
    }
  }

  #serial<T>(fn: () => Promise<T>, whenClosed = false): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed && !whenClosed) throw new FirewallError('SIDECAR_FIREWALL_CLOSED', 'the firewall is closed');
      return fn();
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}
