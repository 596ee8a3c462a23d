// What the admin API and the CLI speak, and the controller works on: networks, attachments,
// services, and what is told back about them. Their validation is parse.ts and parse-service.ts.

/** A network driver's name (bridge, macvlan: ../drivers/); the daemon's Drivers know which exist. */
export type Driver = string;
export type Proto = 'tcp' | 'udp';

export interface NetworkSpec {
  name: string;
  driver: Driver;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  ipv6: boolean;
  subnet6?: string;
  gateway6?: string;
  /** No traffic leaves the network; no forwarding of DNS. */
  internal: boolean;
  mtu: number;
  /** Inter-container communication on the network. */
  icc: boolean;
  /** Driver options: `parent` for macvlan. */
  options: Record<string, string>;
  /** local: this host's (the default); global: the cluster's, on every host (--cluster). */
  scope?: 'local' | 'global';
}

export interface PortSpec {
  hostPort: number;
  port: number;
  proto: Proto;
  /** Host address to publish on; all when absent. */
  hostIp?: string;
}

export interface AttachSpec {
  /** A netns path (/proc/PID/ns/net, a Docker SandboxKey) or a name under /run/netns. */
  sandbox: string;
  network: string;
  name?: string;
  aliases: string[];
  hostname?: string;
  ip?: string;
  ip6?: string;
  mac?: string;
  /** Interface name inside the sandbox; eth0, eth1… by default. */
  ifname?: string;
  publish: PortSpec[];
  /** This network's gateway becomes the sandbox's default route even if another gave one. */
  defaultRoute?: boolean;
  /** The endpoint is a task of this service (on the same network). */
  service?: string;
  /** Its weight in the service (wrr); 1 by default, 0 to drain. */
  weight?: number;
  /** A source's own id of the container (Docker's, 64 hex digits); not from the API. */
  containerId?: string;
  /** Which source made the endpoint, so that it alone reconciles it; not from the API. */
  origin?: 'docker';
  /** The container's own DNS settings (docker run --dns, --dns-search, --dns-option). */
  dns?: DnsSettings;
}

/** A sandbox's own resolver settings, as `docker run --dns/--dns-search/--dns-option` give them. */
export interface DnsSettings {
  /** Its upstreams, asked from inside the sandbox; the host's when empty. */
  servers: string[];
  /** Its resolv.conf's search domains; the host's when empty. */
  search: string[];
  /** Its resolv.conf's options (`ndots:2`, `timeout:1`, `edns0`); the host's when empty. */
  options: string[];
}

export type Scheduler = 'rr' | 'wrr' | 'lc' | 'sh';

export interface ServicePortSpec {
  /** Names the port for SRV answers: _<name>._<proto>.<service>. */
  name?: string;
  proto: Proto;
  port: number;
  /** The port on the tasks; `port` when absent. */
  targetPort?: number;
}

export interface ServiceSpec {
  name: string;
  network: string;
  /** The VIP (vip mode); the next free address of the network when absent. */
  vip?: string;
  /** Balanced ports; none: every port of the VIP. */
  ports: ServicePortSpec[];
  scheduler: Scheduler;
  /** vip: the name answers a virtual IP balanced over the tasks; dnsrr: the tasks' addresses. */
  mode: 'vip' | 'dnsrr';
  /** vip mode on a dual-stack network: the IPv6 VIP; the next free one of the network when absent. */
  vip6?: string;
  /** Host ports to VIP ports (Docker's ingress on one host); vip mode only. */
  publish?: PortSpec[];
  /** Off when absent: every task is in the rotation while attached. */
  health?: HealthSpec;
}

/** A health check of a service's tasks, probed from the network's load-balancer sandbox. */
export interface HealthSpec {
  type: 'tcp' | 'http';
  port: number;
  /** http only: the path of the GET; a status below 400 is healthy. */
  path?: string;
  intervalMs: number;
  timeoutMs: number;
  /** Successes in a row that bring an unhealthy task back. */
  rise: number;
  /** Failures in a row that take a task out. */
  fall: number;
}

export interface NetworkInfo extends NetworkSpec {
  id: string;
  /** The bridge (or macvlan parent) on the host. */
  device: string;
  subnet: string;
  gateway?: string;
  created: string;
  endpoints: number;
  /** An encrypted network's keys, as the cluster holds them. */
  encryption?: KeysStatus;
}

/** What `network inspect` shows of an encrypted network's keys: their tags, never a key. */
export interface KeysStatus {
  tags: number[];
  /** The tag of the key hosts send with. */
  primary: number;
  /** A rotation is under way (more than one key). */
  rotating: boolean;
  /** When the last rotation ended, and when the next is due. */
  rotated: string;
  next: string;
  everyMs: number;
}

export interface EndpointInfo {
  id: string;
  sandbox: string;
  network: string;
  name?: string;
  aliases: string[];
  ifname: string;
  mac: string;
  ip: string;
  ip6?: string;
  publish: PortSpec[];
  /** failed: a restart could not bring it back (error says why); detach removes what is left. */
  status: 'ready' | 'failed';
  error?: { code: string; message: string };
}

/** What the daemon does; the API and the CLI are its two faces. */
export interface Controller {
  createNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  listNetworks(): NetworkInfo[];
  inspectNetwork(name: string): NetworkInfo;
  removeNetwork(name: string): Promise<void>;
  /** Rotates an encrypted network's keys now: the new key's tag, and how long every host took. */
  rotateKey(name: string): Promise<{ network: string; tag: number; ms: number }>;
  attach(spec: AttachSpec): Promise<EndpointInfo>;
  /** Detaches a sandbox from one network, or from all; returns what was detached. */
  detach(sandbox: string, network?: string): Promise<EndpointInfo[]>;
  listEndpoints(): EndpointInfo[];
  /** The endpoints of a container, by name or sandbox. */
  inspectContainer(nameOrSandbox: string): EndpointInfo[];
  createService(spec: ServiceSpec): Promise<ServiceInfo>;
  listServices(): ServiceInfo[];
  inspectService(name: string, network?: string): ServiceInfo;
  removeService(name: string, network?: string): Promise<void>;
}

export interface ServiceInfo extends ServiceSpec {
  id: string;
  vip?: string;
  vip6?: string;
  mark?: number;
  backends: {
    name?: string;
    address: string;
    address6?: string;
    weight: number;
    /** With a health check only. */
    health?: 'healthy' | 'unhealthy';
  }[];
}
