// The benchmark's own names: c0001.bench.test … c1000.bench.test, one IPv4 address each
// (10.200.0.0/16, never routed: nothing here is ever a real name or a real host).

export const NETWORK = 'bench';

export interface BenchName {
  name: string;
  address: string;
}

export function benchNames(count = 1000): BenchName[] {
  return Array.from({ length: count }, (_, k) => {
    const i = k + 1;
    return { name: `c${String(i).padStart(4, '0')}.bench.test`, address: `10.200.${i >> 8}.${i & 255}` };
  });
}
