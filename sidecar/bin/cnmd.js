#!/usr/bin/env node
import { run } from '../dist/src/entry.js';

process.exitCode = await run(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
});
