// Smoke test of the VM itself: its kernel has IPVS. The data plane's own tests come with @cnmd/lb.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';

test('the kernel offers IPVS and a virtual service can be added and listed', () => {
  expect(readFileSync('/proc/net/ip_vs', 'utf8')).toMatch(/IP Virtual Server version/);
  execFileSync('ipvsadm', ['-A', '-f', '256', '-s', 'rr']);
  try {
    expect(execFileSync('ipvsadm', ['-Ln'], { encoding: 'utf8' })).toMatch(/FWM\s+256 rr/);
  } finally {
    execFileSync('ipvsadm', ['-D', '-f', '256']);
  }
});
