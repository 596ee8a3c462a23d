// The data plane of a load-balancer sandbox: IPVS when the kernel offers it there (as
// libnetwork), else nftables (DESIGN.md). With IPVS, @cnmd/lb programs the fwmark services and
// this file the iptables marks and SNAT that feed them (the rules' text is marks.ts).
import {
  type ApplyHint,
  type ApplyResult,
  type DataPlane,
  IpvsDataPlane,
  isLbError,
  NftablesDataPlane,
  type VirtualService,
} from '@cnmd/lb';
import { SidecarError } from '../errors.js';
import { type Exec, execIn } from '../firewall/exec.js';
import { withNetns } from '../sandbox/netns.js';
import { familyOf, hasChains, type IpFamily, type Jumps, markRules, missingJumps, type Snat } from './marks.js';

export type LbDataplaneMode = 'auto' | 'ipvs' | 'nftables';
export const LB_DATAPLANE_MODES: readonly LbDataplaneMode[] = ['auto', 'ipvs', 'nftables'];

/** Opens the IPVS data plane in a namespace (a path); LB_IPVS_UNAVAILABLE where the kernel has none. */
export function openIpvs(path?: string): Promise<IpvsDataPlane> {
  return IpvsDataPlane.create(path ? { inNamespace: (open) => withNetns(path, open) } : {});
}

/** Whether the kernel offers IPVS (its generic netlink family) in this process's namespace. */
export async function ipvsAvailable(path?: string): Promise<boolean> {
  try {
    await (await openIpvs(path)).close();
    return true;
  } catch (err) {
    if (isLbError(err, 'LB_IPVS_UNAVAILABLE')) return false;
    throw err;
  }
}

/** `ipvs` insists on IPVS: SIDECAR_LB_UNAVAILABLE, before anything is made, where the kernel has none. */
export async function checkLbDataplane(mode: LbDataplaneMode): Promise<void> {
  if (mode === 'ipvs' && !(await ipvsAvailable())) {
    throw new SidecarError('SIDECAR_LB_UNAVAILABLE', 'lbDataplane ipvs: this kernel offers no IPVS');
  }
}

/**
 * The data plane for the LB sandbox `netns` (its /run/netns name) at `path`: `auto` takes IPVS
 * where the kernel offers it, `ipvs` insists (SIDECAR_LB_UNAVAILABLE without it). `snat` is what
 * IPVS's replies need: the network's subnets and the sandbox's addresses on them.
 */
export async function lbDataplane(
  mode: LbDataplaneMode,
  netns: string,
  path: string,
  snat: Snat[],
): Promise<DataPlane> {
  if (mode !== 'nftables') {
    try {
      return new MarkedIpvs(await openIpvs(path), netns, snat);
    } catch (err) {
      if (!isLbError(err, 'LB_IPVS_UNAVAILABLE')) throw err;
      if (mode === 'ipvs') {
        throw new SidecarError('SIDECAR_LB_UNAVAILABLE', `--lb-dataplane ipvs: the kernel offers no IPVS in ${netns}`, {
          cause: err,
        });
      }
    }
  }
  return new NftablesDataPlane({ netns });
}

/**
 * IPVS with its iptables marks and SNAT: each apply() programs the fwmark services, then
 * rewrites cnmd's chains when their text changed (one iptables-restore per family). The first
 * apply after a start rewrites them whole, which reconciles what a killed daemon left.
 */
export class MarkedIpvs implements DataPlane {
  readonly name = 'ipvs' as const;
  readonly #ipvs: DataPlane;
  readonly #exec: Exec;
  readonly #snat: Snat[];
  /** What cnmd's chains hold per family, and the jumps into them still missing; read once. */
  readonly #held = new Map<IpFamily, { text: string; add: Jumps }>();
  /** Each marked service's VIP and ports, as the chains hold them. */
  #keys = new Map<number, string>();

  constructor(ipvs: DataPlane, netns: string, snat: Snat[], exec: Exec = execIn(netns)) {
    this.#ipvs = ipvs;
    this.#snat = snat;
    this.#exec = exec;
  }

  async apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult> {
    const r = await this.#ipvs.apply(desired, hint);
    // A change of backends only (the common one) leaves the marks alone without a look at the rest.
    if (!hint || !this.#marksKept(hint)) await this.#marks(desired);
    return r;
  }

  read(): Promise<VirtualService[]> {
    return this.#ipvs.read();
  }

  async reset(): Promise<void> {
    await this.#ipvs.reset();
    await this.#marks([]);
  }

  close(): Promise<void> {
    return this.#ipvs.close();
  }

  async #marks(desired: readonly VirtualService[]): Promise<void> {
    this.#keys.clear(); // until written: a failure leaves the next change to look at everything
    for (const family of [4, 6] as const) {
      const used = desired.filter((s) => familyOf(s.vip) === family);
      const want = markRules(family, used, used.length > 0 ? this.#snat : [], none);
      const tool = family === 4 ? 'iptables' : 'ip6tables';
      const held = this.#held.get(family) ?? (await this.#look(tool));
      if (held.text !== want) {
        // the jumps a first write adds stay missing until a write succeeds
        await this.#restore(tool, markRules(family, used, used.length > 0 ? this.#snat : [], held.add));
        this.#held.set(family, { text: want, add: none });
      } else {
        this.#held.set(family, held);
      }
    }
    this.#keys = new Map(desired.map((s) => [s.mark, keyOf(s)]));
  }

  /** The first look since the start: cnmd's chains a killed daemon left, and the jumps missing. */
  async #look(tool: string): Promise<{ text: string; add: Jumps }> {
    const saved = await this.#exec(`${tool}-save`, []);
    // chains that are there are rewritten whole (no text is ''); none there and none wanted: nothing to do
    return {
      text: hasChains(saved) ? '' : markRules(tool === 'iptables' ? 4 : 6, [], [], none),
      add: missingJumps(saved),
    };
  }

  /** Whether the services a hint names keep their marks' VIP and ports (none went). */
  #marksKept(hint: ApplyHint): boolean {
    if (this.#held.size < 2 || hint.removed.length > 0) return false;
    return hint.changed.every((s) => this.#keys.get(s.mark) === keyOf(s));
  }

  async #restore(tool: string, text: string): Promise<void> {
    try {
      await this.#exec(`${tool}-restore`, ['--noflush'], text);
    } catch (cause) {
      throw new SidecarError('SIDECAR_LB_MARKS', `${tool}-restore refused the marks: ${(cause as Error).message}`, {
        cause,
      });
    }
  }
}

const keyOf = (s: VirtualService): string => `${s.vip} ${s.ports.map((p) => `${p.proto}/${p.port}`).join(',')}`;

const none = { prerouting: false, output: false, postrouting: false };

/**
 * Holds back a data plane's applies while the daemon reconciles after a start: services come
 * back one at a time, and applying each partial state would delete the others from the kernel
 * for a moment (a data plane makes the kernel hold exactly what it is given). Once released,
 * the caller applies the whole state once (LoadBalancer.sync()), which the data plane sends as a
 * difference from what the kernel kept.
 */
export class HeldDataPlane implements DataPlane {
  readonly #dp: DataPlane;
  #held = true;

  constructor(dp: DataPlane) {
    this.#dp = dp;
  }

  get name(): DataPlane['name'] {
    return this.#dp.name;
  }

  release(): void {
    this.#held = false;
  }

  async apply(desired: readonly VirtualService[], hint?: ApplyHint): Promise<ApplyResult> {
    if (this.#held) return { added: 0, changed: 0, removed: 0 };
    return this.#dp.apply(desired, hint);
  }

  read(): Promise<VirtualService[]> {
    return this.#dp.read();
  }

  reset(): Promise<void> {
    return this.#dp.reset();
  }

  close(): Promise<void> {
    return this.#dp.close();
  }
}
