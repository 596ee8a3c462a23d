// The `cnmd` program: `cnmd daemon …` runs the daemon, anything else is the CLI, which talks to
// a daemon over its socket. Each is loaded only when asked for, and neither imports the other.
import type { Io } from './io.js';

/** Runs one `cnmd` invocation; returns the exit code. */
export async function run(argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // --socket may come before the command, as `docker -H` does.
  const lead = argv[0] === '--socket' ? 2 : argv[0]?.startsWith('--socket=') ? 1 : 0;
  if (argv[lead] === 'daemon') {
    const { runDaemon } = await import('./daemon/main.js');
    return runDaemon([...argv.slice(lead + 1), ...argv.slice(0, lead)], io, env);
  }
  const { main } = await import('./cli/main.js');
  return main(argv, io, env);
}
