// globalSetup of the `vm` project: its tests program IPVS, which only the VM's kernel has.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export default function setup(): void {
  if (process.env.CNMD_IN_VM !== '1') {
    throw new Error('the vm project runs inside the IPVS VM: use `npm run test:vm`, which boots it');
  }
  // The VM's /etc is the host's, read-only (vm-run.sh --hostroot): the daemon writes an
  // /etc/netns/NAME/resolv.conf for each `ip netns` sandbox, so give /etc/netns a tmpfs of the
  // VM's own (gone when the VM powers off; the host's is untouched).
  try {
    accessSync('/etc/netns', constants.W_OK); // EROFS on a read-only mount
  } catch {
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', '/etc/netns']);
  }
}
