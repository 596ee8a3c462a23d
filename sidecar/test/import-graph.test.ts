// The sidecar's modules import one another without a circle (type imports included): each part
// can be read, and tested, from the bottom up. The folders are in sidecar/README.md, Layout.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src', import.meta.url));

function graph(): Map<string, string[]> {
  const files = readdirSync(src, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
  const g = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)\.js'/g)].map((m) =>
      resolve(dirname(f), `${m[1]}.ts`),
    );
    g.set(f, deps);
  }
  return g;
}

/** Every circle found by a depth-first walk, as the files on it. */
function circles(g: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[][] = [];
  const walk = (n: string, stack: string[]) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].map((f) => relative(src, f)));
      else if (!state.has(d)) walk(d, stack);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of g.keys()) if (!state.has(n)) walk(n, []);
  return found;
}

it('finds the modules and their imports', () => {
  const g = graph();
  expect(g.size).toBeGreaterThan(60);
  expect(g.get(join(src, 'daemon/daemon.ts'))).toContain(join(src, 'network/controller.ts'));
});

it('has no circle among the modules', () => {
  expect(circles(graph())).toEqual([]);
});

it('the walk finds a circle where there is one', () => {
  const g = new Map([
    ['/a.ts', ['/b.ts']],
    ['/b.ts', ['/c.ts']],
    ['/c.ts', ['/a.ts']],
  ]);
  expect(circles(g)).toHaveLength(1);
});
