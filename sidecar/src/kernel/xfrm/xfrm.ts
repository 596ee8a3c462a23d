// IPsec states and policies of one namespace over NETLINK_XFRM (messages.ts), as `ip xfrm`
// would make them, for the encrypted overlay: ESP in transport mode between two hosts' underlay
// addresses, for the UDP packets to one network's VXLAN port.
import { randomBytes, randomInt } from 'node:crypto';
import { SidecarError } from '../../errors.js';
import { errnoName, NetlinkRefusal, RtnlSocket } from '../rtnl/socket.js';
import * as X from './messages.js';

export type { Policy, Sa } from './messages.js';

const NETLINK_XFRM = 6; // include/uapi/linux/netlink.h
const NLM_F_DUMP = 0x300;
const NLM_F_CREATE = 0x400;

export class Xfrm {
  readonly #socket: RtnlSocket;
  readonly #where: string;

  private constructor(socket: RtnlSocket, where: string) {
    this.#socket = socket;
    this.#where = where;
  }

  /** The XFRM socket of this namespace (or `netns`); SIDECAR_ESP_UNAVAILABLE where the kernel has none. */
  static open(netns?: string): Xfrm {
    try {
      return new Xfrm(RtnlSocket.open(netns, NETLINK_XFRM), netns ?? 'this namespace');
    } catch (cause) {
      throw new SidecarError('SIDECAR_ESP_UNAVAILABLE', `no IPsec (NETLINK_XFRM) in ${netns ?? 'this namespace'}`, {
        cause,
      });
    }
  }

  async #req(type: number, flags: number, body: Buffer, what: string): Promise<Buffer[]> {
    try {
      return await this.#socket.request(type, flags, body);
    } catch (cause) {
      const errno = cause instanceof NetlinkRefusal ? cause.errno : undefined;
      // No ESP (EPROTONOSUPPORT) or no such algorithm (ENOSYS, ENOENT) in this kernel
      const code = errno === 2 || errno === 38 || errno === 93 ? 'SIDECAR_ESP_UNAVAILABLE' : 'SIDECAR_NETLINK';
      throw new SidecarError(
        code,
        `${what} in ${this.#where}: ${errno ? errnoName(errno) : (cause as Error).message}`,
        {
          cause,
          ...(errno ? { errno } : {}),
        },
      );
    }
  }

  /** Whether ESP with AES-GCM works here: a state on loopback is added and removed again. */
  async probe(): Promise<void> {
    const sa: X.Sa = { src: '127.0.0.1', dst: '127.0.0.1', spi: 0x100 + randomInt(0xfff0_0000), reqid: 0 };
    await this.putSa({ ...sa, key: randomBytes(20) });
    await this.deleteSa(sa);
  }

  /** Adds a state, or replaces the one of the same destination and SPI (UPDSA alone would
   * only replace: ESRCH when there is none). */
  async putSa(sa: X.Sa): Promise<void> {
    const what = `state ${sa.src}→${sa.dst} spi ${hex(sa.spi)}`;
    try {
      await this.#req(X.XFRM_MSG_NEWSA, NLM_F_CREATE, X.saInfo(sa), what);
    } catch (err) {
      if ((err as { errno?: number }).errno !== 17) throw err; // EEXIST
      await this.#req(X.XFRM_MSG_UPDSA, 0, X.saInfo(sa), what);
    }
  }

  async deleteSa(sa: Pick<X.Sa, 'src' | 'dst' | 'spi'>): Promise<void> {
    await this.#req(X.XFRM_MSG_DELSA, 0, X.saId(sa), `delete state ${sa.src}→${sa.dst} spi ${hex(sa.spi)}`).catch(gone);
  }

  async sas(): Promise<X.Sa[]> {
    return (await this.#req(X.XFRM_MSG_GETSA, NLM_F_DUMP, Buffer.alloc(24), 'list states')).map(X.parseSa);
  }

  /** Adds a policy, or replaces the one of the same selector and direction. */
  async putPolicy(p: X.Policy): Promise<void> {
    await this.#req(X.XFRM_MSG_UPDPOLICY, NLM_F_CREATE, X.policyInfo(p), `policy ${p.dir} ${p.src}→${p.dst}`);
  }

  async deletePolicy(p: Pick<X.Policy, 'src' | 'dst' | 'dport' | 'dir'>): Promise<void> {
    await this.#req(X.XFRM_MSG_DELPOLICY, 0, X.policyId(p), `delete policy ${p.dir} ${p.src}→${p.dst}`).catch(gone);
  }

  async policies(): Promise<X.Policy[]> {
    const bodies = await this.#req(X.XFRM_MSG_GETPOLICY, NLM_F_DUMP, Buffer.alloc(64), 'list policies');
    return bodies.map(X.parsePolicy).filter((p): p is X.Policy => p !== undefined);
  }

  close(): void {
    this.#socket.close();
  }
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Deleting what is not there (ENOENT, ESRCH) is done already. */
function gone(err: unknown): void {
  const errno = (err as { errno?: number }).errno;
  if (errno !== 2 && errno !== 3) throw err;
}
