import { Ipam, type IpamOptions, MemoryStore } from '../src/index.js';

/** A started Ipam on a memory store. */
export async function newIpam(options: Partial<IpamOptions> = {}): Promise<Ipam> {
  const ipam = new Ipam({ store: new MemoryStore(), ...options });
  await ipam.start();
  return ipam;
}

/** Resolves to the error's code, or fails when the promise does not reject. */
export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected an error');
}
