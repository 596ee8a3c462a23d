// The IPVS commands cnmd uses, over one generic netlink socket: the family resolved once through
// the controller, then each call one request (many may be in flight together).
import { LbError, LbNetlinkError } from '../errors.js';
import {
  decodeDest,
  decodeFamilyId,
  decodeInfo,
  decodeService,
  describeRequest,
  type GenlRequest,
  getFamilyRequest,
  type IpvsDest,
  type IpvsDestStatus,
  type IpvsService,
  ipvsRequests,
} from './codec.js';
import { GenlSocket } from './genl-socket.js';

type ServiceKey = Pick<IpvsService, 'family' | 'fwmark'>;

export class Ipvs {
  readonly #sock: GenlSocket;
  readonly #req: ReturnType<typeof ipvsRequests>;
  /** The requests, for sendAll(). */
  readonly requests: ReturnType<typeof ipvsRequests>;

  private constructor(sock: GenlSocket, family: number) {
    this.#sock = sock;
    this.#req = ipvsRequests(family);
    this.requests = this.#req;
  }

  /**
   * Resolves the IPVS family on `sock` (which this object then owns). LB_IPVS_UNAVAILABLE when
   * the controller does not know it (ENOENT: no ip_vs in this kernel, or not loaded).
   */
  static async open(sock: GenlSocket = GenlSocket.open()): Promise<Ipvs> {
    const r = getFamilyRequest();
    try {
      const [reply] = await sock.request(r, 'CTRL_CMD_GETFAMILY IPVS');
      const id = reply && decodeFamilyId(reply);
      if (!id) throw new LbNetlinkError('CTRL_CMD_GETFAMILY IPVS: no family id in the reply', 0);
      return new Ipvs(sock, id);
    } catch (err) {
      sock.close();
      if (err instanceof LbNetlinkError && err.errno === 2)
        throw new LbError('LB_IPVS_UNAVAILABLE', 'this kernel has no IPVS (generic netlink family "IPVS" unknown)', {
          cause: err,
        });
      throw err;
    }
  }

  #send(r: GenlRequest, what: string): Promise<Buffer[]> {
    return this.#sock.request(r, what);
  }

  async info(): Promise<{ version: string; connTabSize: number }> {
    const [reply] = await this.#send(this.#req.getInfo(), 'IPVS_CMD_GET_INFO');
    const info = reply && decodeInfo(reply);
    if (!info) throw new LbNetlinkError('IPVS_CMD_GET_INFO: no version in the reply', 0);
    return info;
  }

  /** Every fwmark service (services keyed by address and port are skipped). */
  async services(): Promise<IpvsService[]> {
    const replies = await this.#send(this.#req.getServices(), 'IPVS_CMD_GET_SERVICE');
    return replies.map(decodeService).filter((s): s is IpvsService => s !== undefined);
  }

  async dests(s: ServiceKey): Promise<IpvsDestStatus[]> {
    const replies = await this.#send(this.#req.getDests(s), `IPVS_CMD_GET_DEST fwmark ${s.fwmark}`);
    return replies.map((r) => decodeDest(r, s.family)).filter((d): d is IpvsDestStatus => d !== undefined);
  }

  newService = (s: IpvsService) => this.#send(this.#req.newService(s), `IPVS_CMD_NEW_SERVICE fwmark ${s.fwmark}`);
  setService = (s: IpvsService) => this.#send(this.#req.setService(s), `IPVS_CMD_SET_SERVICE fwmark ${s.fwmark}`);
  delService = (s: ServiceKey) => this.#send(this.#req.delService(s), `IPVS_CMD_DEL_SERVICE fwmark ${s.fwmark}`);
  newDest = (s: ServiceKey, d: IpvsDest) =>
    this.#send(this.#req.newDest(s, d), `IPVS_CMD_NEW_DEST fwmark ${s.fwmark} ${d.address}`);
  setDest = (s: ServiceKey, d: IpvsDest) =>
    this.#send(this.#req.setDest(s, d), `IPVS_CMD_SET_DEST fwmark ${s.fwmark} ${d.address}`);
  delDest = (s: ServiceKey, d: IpvsDest) =>
    this.#send(this.#req.delDest(s, d), `IPVS_CMD_DEL_DEST fwmark ${s.fwmark} ${d.address}`);
  /**
   * Sends changes (this.requests' NEW/SET/DEL, no GET) in order, pipelined, and resolves with
   * the first failure, or undefined when all applied; without a promise per request.
   */
  async sendAll(reqs: readonly GenlRequest[]): Promise<Error | undefined> {
    const errors = await this.#sock.requestAll(reqs, describeRequest);
    return errors.find((e) => e !== undefined);
  }

  /** Everything, every service of the namespace: for tests and benchmarks, never for a resync. */
  flush = () => this.#send(this.#req.flush(), 'IPVS_CMD_FLUSH');

  close(): void {
    this.#sock.close();
  }
}
