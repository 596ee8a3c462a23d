// The firewall of cnmd's bridge networks: what Docker's bridge driver programs with iptables
// (outbound masquerade, isolation between networks, --internal, icc=false, published ports
// without docker-proxy), kept in cnmd's own nftables tables. Implementations:
// nftables.ts (the kernel) and memory.ts (state only, for the unit tests of its callers).

export interface FwNetwork {
  /** The network's name; the key of removeNetwork. */
  name: string;
  /** Its Linux bridge (an interface name, at most 15 characters). */
  bridge: string;
  /** IPv4 subnet, as a network address: "172.18.0.0/16". */
  subnet: string;
  /** IPv6 subnet, when the network has one. */
  subnet6?: string;
  /** Docker's --internal: nothing is forwarded out of the network or into it; the host
   * (the gateway address) stays reachable, as in libnetwork. */
  internal: boolean;
  /** Inter-container communication: false drops traffic between the bridge's ports. */
  icc: boolean;
}

export type FwProto = 'tcp' | 'udp';

/** `docker run -p [hostIp:]hostPort:port/proto` for one container address. A port whose
 * `address` is IPv6 is published on the host's IPv6 addresses; publish twice (one IPv4 and
 * one IPv6 address) for both, as Docker does for a dual-stack container. */
export interface FwPort {
  network: string;
  bridge: string;
  proto: FwProto;
  /** A host address to publish on; all the host's addresses of the family when absent
   * (or 0.0.0.0 / ::). */
  hostIp?: string;
  hostPort: number;
  /** The container's address on the network. */
  address: string;
  port: number;
}

/** The host side of a port, what checkPorts looks at. */
export type FwHostPort = Pick<FwPort, 'proto' | 'hostIp' | 'hostPort'>;

export interface Firewall extends AsyncDisposable {
  /** Creates cnmd's tables (idempotent; what they already hold is kept until reconcile). */
  start(): Promise<void>;
  /** Idempotent for the same network; a different network of the same name, bridge or an
   * overlapping subnet is refused (SIDECAR_NETWORK_CONFLICT). */
  addNetwork(n: FwNetwork): Promise<void>;
  /** Removes the network's rules and its published ports; unknown names are ignored. */
  removeNetwork(name: string): Promise<void>;
  /** SIDECAR_PORT_IN_USE when the host port (proto, family, host address) is taken; a port
   * on all addresses conflicts with the same port on one address, as in Docker. */
  publish(p: FwPort): Promise<void>;
  /** Throws SIDECAR_PORT_IN_USE if any of these host ports is published already, or named
   * twice; publishes nothing. Without hostIp, a port is checked on IPv4 and IPv6. */
  checkPorts(ports: FwHostPort[]): Promise<void>;
  /** Removes the published host port (proto, host address, host port); unknown is ignored. */
  unpublish(p: FwPort): Promise<void>;
  /** Makes the kernel's cnmd tables hold exactly these networks and ports (one transaction).
   * A bridge whose route_localnet cannot be set (it does not exist yet) gives
   * SIDECAR_SYSCTL after the rules are in force; publish checks that first and changes nothing. */
  reconcile(nets: FwNetwork[], ports: FwPort[]): Promise<void>;
  /** Removes everything cnmd added; the firewall may be started again. */
  reset(): Promise<void>;
  /** reset(), then refuses further calls. Idempotent. */
  close(): Promise<void>;
  /** What is in force, as the firewall sees it. */
  networks(): FwNetwork[];
  ports(): FwPort[];
}
