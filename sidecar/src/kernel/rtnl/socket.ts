// One rtnetlink socket (NETLINK_ROUTE), over the `netlink` package's transport, which numbers
// requests, waits for the ACK and joins multipart dumps. A netlink socket acts on the
// namespace it was created in, so a sandbox's socket is created inside it (withNetns) and
// then used from the original namespace like any other.
import { constants } from 'node:os';
import { createNetlink, type NetlinkSocket, Protocol } from 'netlink';
import { SidecarError } from '../../errors.js';
import { withNetns } from '../../sandbox/netns.js';

// include/uapi/linux/netlink.h
const NLMSG_ERROR = 2;

/** A kernel refusal: the negated errno of struct nlmsgerr. */
export class NetlinkRefusal extends Error {
  readonly errno: number;
  constructor(errno: number) {
    super(`netlink: ${errnoName(errno)}`);
    this.errno = errno;
  }
}

const names = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
export const errnoName = (n: number): string => names.get(n) ?? `errno ${n}`;

export class RtnlSocket {
  readonly #socket: NetlinkSocket;

  private constructor(socket: NetlinkSocket) {
    this.#socket = socket;
  }

  /** A socket of this namespace (or `netns`); NETLINK_ROUTE unless another protocol is named. */
  static open(netns?: string, protocol: number = Protocol.ROUTE): RtnlSocket {
    const make = () => createNetlink(protocol);
    try {
      return new RtnlSocket(netns === undefined ? make() : withNetns(netns, make));
    } catch (cause) {
      if (cause instanceof SidecarError) throw cause;
      throw new SidecarError('SIDECAR_NETLINK', `cannot open an rtnetlink socket in ${netns ?? 'this namespace'}`, {
        cause,
      });
    }
  }

  /**
   * Sends one request (REQUEST|ACK added) and returns the bodies of the replies: none for an
   * acknowledged change, one per object for a dump. Rejects with NetlinkRefusal.
   */
  async request(type: number, flags: number, body: Buffer): Promise<Buffer[]> {
    const [msgs] = await this.#socket.request(type, body, { flags, checkError: false });
    const out: Buffer[] = [];
    for (const m of msgs) {
      if (m.type === NLMSG_ERROR) {
        const errno = -m.data.readInt32LE(0);
        if (errno !== 0) throw new NetlinkRefusal(errno);
      } else {
        out.push(m.data);
      }
    }
    return out;
  }

  close(): void {
    this.#socket.close();
  }
}
