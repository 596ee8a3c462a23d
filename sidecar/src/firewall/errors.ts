// The firewall's errors have the shape of SidecarError (a stable `code`, the original error as
// `cause`) but their own class: sidecar/src/errors.ts belongs to another part of the sidecar
// and was not yet committed when this was written. Codes use the SIDECAR_ prefix so that they
// can join SidecarErrorCode unchanged. Callers and tests match on `code`, never the message.

export type FirewallErrorCode =
  /** The host port (protocol, family, host address) is already published; nothing changed. */
  | 'SIDECAR_PORT_IN_USE'
  /** A port names a network the firewall does not know (addNetwork first). */
  | 'SIDECAR_NETWORK_NOT_FOUND'
  /** A network reuses a bridge, or overlaps a subnet, of another network; or its name is
   * taken by a network with another configuration. Nothing changed. */
  | 'SIDECAR_NETWORK_CONFLICT'
  /** `nft -f -` refused the transaction (nothing was applied: it is atomic); stderr in the message. */
  | 'SIDECAR_NFT'
  /** A sysctl (route_localnet of a bridge) could not be written. */
  | 'SIDECAR_SYSCTL'
  /** A malformed argument (bridge name, subnet, address, port); nothing was sent. */
  | 'SIDECAR_INVALID_ARGUMENT'
  /** The firewall was closed. */
  | 'SIDECAR_FIREWALL_CLOSED';

export class FirewallError extends Error {
  readonly code: FirewallErrorCode;

  constructor(code: FirewallErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FirewallError';
    this.code = code;
  }
}

export function isFirewallError(err: unknown, code?: FirewallErrorCode): err is FirewallError {
  return err instanceof FirewallError && (code === undefined || err.code === code);
}

export const invalid = (message: string): FirewallError => new FirewallError('SIDECAR_INVALID_ARGUMENT', message);
