// After a start (and after kill -9 at any moment), make the kernel, IPAM and DNS match the
// records: finish nothing half-made (undo it: the client never heard it succeed), rebuild what
// is missing for sandboxes that still exist, remove what belongs to sandboxes that are gone,
// and delete cnmd-owned links and addresses that no record knows.

import { describeError } from '../errors.js';
import { ignoreMissing } from '../kernel/ignore-missing.js';
import type { NetworkController } from '../network/controller.js';
import { shareNames } from '../network/modes.js';
import { sandboxKey } from '../sandbox/path.js';

/** Host links cnmd makes: bridges `cnmd-<id>` and veth host ends `vcn<random>`. */
const OURS = /^(cnmd-[0-9a-f]{10}|vcn[0-9a-f]{10})$/;

export interface ReconcileReport {
  networksUndone: number;
  endpointsRebuilt: number;
  endpointsRemoved: number;
  /** Endpoints (and networks, services) that could not be brought back: logged, marked failed. */
  endpointsFailed: number;
  linksDeleted: number;
  addressesReleased: number;
}

/**
 * Each network, endpoint and service is reconciled on its own: one that fails is logged with
 * its code and marked failed (`cnmd ps` shows it; a detach or the next start deals with it),
 * and the rest come up. A daemon that refused to start would leave every container without DNS.
 */
export async function reconcile(c: NetworkController, log: (line: string) => void): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    networksUndone: 0,
    endpointsRebuilt: 0,
    endpointsRemoved: 0,
    endpointsFailed: 0,
    linksDeleted: 0,
    addressesReleased: 0,
  };
  const attempt = async (id: string, what: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      c.failed.set(id, { code: typeof code === 'string' ? code : 'ERROR', message: (err as Error).message });
      log(`reconcile: ${what}: ${describeError(err)}`);
      return false;
    }
  };
  await c.networks.load();
  await c.endpoints.load();
  await c.services.records.load();

  for (const net of c.networks.all()) {
    if (net.state === 'creating') {
      await c.destroyNetwork(net);
      report.networksUndone++;
    } else {
      await attempt(net.id, `network ${net.spec.name}`, () => c.buildNetwork(net));
    }
  }

  for (const ep of c.endpoints.all()) {
    const what = `endpoint ${ep.name ?? ep.id.slice(0, 12)} on ${c.networks.get(ep.network)?.spec.name ?? ep.network} (${ep.sandbox})`;
    const ok = await attempt(ep.id, what, async () => {
      const alive = sandboxKey(ep.sandbox, { host: ep.mode === 'host' }) === ep.sandboxKey;
      if (ep.mode) {
        if (!alive) await c.destroyEndpoint(ep);
        return;
      }
      const net = c.networks.get(ep.network);
      if (!net || !alive || ep.state === 'attaching') {
        await c.destroyEndpoint(ep);
        report.endpointsRemoved++;
        return;
      }
      const broken = c.failed.get(net.id);
      if (broken) throw Object.assign(new Error(`its network failed: ${broken.message}`), { code: broken.code });
      // The sandbox lives on. Its DNS sockets died with the old daemon; its links may be intact.
      const driver = c.driverOf(net);
      if (!(await driver.present(net, ep))) {
        await driver.leave(net, ep); // what is left of it (a veth's host end)
        await c.buildEndpoint(net, ep);
        report.endpointsRebuilt++;
      } else {
        for (const p of ep.publish) await c.firewall.publish(net, ep, p);
        if (!ep.lb)
          await c.dns.join(
            ep,
            net,
            c.networks
              .all()
              .filter((n) => c.endpoints.all().some((e) => e.sandboxKey === ep.sandboxKey && e.network === n.id)),
          );
      }
    });
    if (!ok) report.endpointsFailed++;
  }

  // Addresses no endpoint holds (a crash between allocation and record) go back to the pool.
  for (const net of c.networks.all()) {
    const held = new Set(
      c.endpoints
        .all()
        .filter((e) => e.network === net.id)
        .flatMap((e) => [e.ip, e.ip6]),
    );
    // Service VIPs are held by their services.
    for (const s of c.services.records.all()) if (s.network === net.id) for (const v of [s.vip, s.vip6]) held.add(v);
    for (const pool of [net.pool4, net.pool6]) {
      if (!pool || !c.ipam.pool(pool)) continue;
      for (const a of c.ipam.addresses(pool)) {
        if (!held.has(a.address)) {
          await c.ipam.releaseAddress(pool, a.address);
          report.addressesReleased++;
        }
      }
    }
  }
  // Pools no network holds (a crash inside createNetwork before its record).
  const pools = new Set(c.networks.all().flatMap((n) => [n.pool4, n.pool6]));
  for (const p of c.ipam.pools()) {
    if (pools.has(p.id)) continue;
    for (const a of c.ipam.addresses(p.id)) await c.ipam.releaseAddress(p.id, a.address);
    await c.ipam.releasePool(p.id);
  }

  // Links that look like ours but that no record knows.
  const host = await c.host();
  const known = new Set([...c.networks.all().map((n) => n.device), ...c.endpoints.all().map((e) => e.hostIf)]);
  for (const l of await host.links()) {
    if (OURS.test(l.name) && !known.has(l.name)) {
      await ignoreMissing(host.deleteLink(l.name));
      report.linksDeleted++;
    }
  }
  // Services answer again, and their load balancers hold exactly their tasks.
  for (const svc of c.services.records.all()) {
    await attempt(svc.id, `service ${svc.spec.name}`, () => c.services.refresh(svc));
  }
  // Containers sharing another's namespace answer by name again (after their owner's join).
  for (const ep of c.endpoints.all()) if (ep.mode === 'container') await shareNames(c, ep);
  const fw = c.networks.all().filter((n) => c.driverOf(n).capability.firewall);
  await c.firewall.reconcile(fw, [...c.endpoints.all().filter((e) => !e.mode), ...c.services.publishTargets()]);
  return report;
}
