// A Firewall that only keeps state: the same checks and error codes as the nftables one
// (state.ts), no kernel. For the unit tests of the controller and the API.
import { FirewallError } from './errors.js';
import { FirewallState } from './state.js';
import type { Firewall, FwHostPort, FwNetwork, FwPort } from './types.js';

export class MemoryFirewall implements Firewall {
  #state = new FirewallState();
  #closed = false;
  /** How many times each method changed something: lets a test see that a refusal did not. */
  readonly changes = { networks: 0, ports: 0, reconciles: 0 };

  async start(): Promise<void> {
    this.#open();
  }

  async addNetwork(n: FwNetwork): Promise<void> {
    this.#open();
    const e = this.#state.planNetwork(n);
    if (!e) return;
    this.#state.commitNetwork(e);
    this.changes.networks++;
  }

  async removeNetwork(name: string): Promise<void> {
    this.#open();
    if (!this.#state.network(name)) return;
    this.#state.dropNetwork(name);
    this.changes.networks++;
  }

  async publish(p: FwPort): Promise<void> {
    this.#open();
    this.#state.commitPort(this.#state.planPublish(p));
    this.changes.ports++;
  }

  async checkPorts(ports: FwHostPort[]): Promise<void> {
    this.#open();
    this.#state.checkHostPorts(ports);
  }

  async unpublish(p: FwPort): Promise<void> {
    this.#open();
    const e = this.#state.findPort(p);
    if (!e) return;
    this.#state.dropPort(e);
    this.changes.ports++;
  }

  async reconcile(nets: FwNetwork[], ports: FwPort[]): Promise<void> {
    this.#open();
    this.#state = FirewallState.of(nets, ports);
    this.changes.reconciles++;
  }

  async reset(): Promise<void> {
    this.#open();
    this.#state.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#state.clear();
    this.#closed = true;
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

  #open(): void {
    if (this.#closed) throw new FirewallError('SIDECAR_FIREWALL_CLOSED', 'the firewall is closed');
  }
}
