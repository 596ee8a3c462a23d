import { TYPE } from '../rr.js';
import type { Address } from '../table/types.js';

/** Whether a query of type `asked` takes records of type `type` (ANY takes all we have). */
export function wants(asked: number, type: number): boolean {
  return asked === type || asked === TYPE.ANY;
}

/** Whether a query of type `asked` takes this address (A for IPv4, AAAA for IPv6). */
export function wantsAddress(asked: number, a: Address): boolean {
  return wants(asked, a.bytes.length === 4 ? TYPE.A : TYPE.AAAA);
}
