// What the service tests share: the daemon in a simulated host (TestHost), one network, a client
// sandbox attached to it, and everything a test makes, removed by close() in reverse order even
// when a test failed.
import { TestHost } from './daemon-harness.js';
import { Netns } from './netns.js';

/** Something a test made: a sandbox (remove) or a server (stop). */
export interface Made {
  remove?: () => Promise<void>;
  stop?: () => Promise<void>;
}

export class ServiceLab {
  readonly #made: Made[] = [];

  private constructor(
    readonly host: TestHost,
    /** The network's id, as `network create` printed it. */
    readonly networkId: string,
    readonly client: Netns,
  ) {}

  /** Starts the daemon, creates `network` with `createArgs` and attaches a client named `client`. */
  static async start(network: string, ...createArgs: string[]): Promise<ServiceLab> {
    const host = await TestHost.start();
    let client: Netns | undefined;
    try {
      const id = (await host.ok('network', 'create', network, ...createArgs)).trim();
      client = await Netns.create('cnmd-sb');
      await host.ok('attach', client.name, '--network', network, '--name', 'client');
      const lab = new ServiceLab(host, id, client);
      lab.track(client);
      return lab;
    } catch (err) {
      await client?.remove().catch(() => {});
      await host.close();
      throw err;
    }
  }

  /** The network's load-balancer sandbox (an ip-netns name). */
  get lbns(): string {
    return `cnmd-lb-${this.networkId.slice(0, 10)}`;
  }

  track<T extends Made>(made: T): T {
    this.#made.push(made);
    return made;
  }

  /** A new sandbox, removed by close(). */
  async sandbox(prefix = 'cnmd-sb'): Promise<Netns> {
    return this.track(await Netns.create(prefix));
  }

  /** curl from `ns` (the client by default): the body, or '' when it fails. */
  curlIn(ns: Netns, url: string, ...extra: string[]): Promise<string> {
    return ns.exec('curl', ['-s', '-g', '--max-time', '3', ...extra, url]).then(
      (s) => s,
      () => '',
    );
  }

  curl(url: string, ...extra: string[]): Promise<string> {
    return this.curlIn(this.client, url, ...extra);
  }

  async close(): Promise<void> {
    for (const m of this.#made.reverse()) await (m.stop ?? m.remove)?.call(m).catch(() => {});
    this.#made.length = 0;
    await this.host.close();
  }
}
