// How the nftables data plane and the conntrack cleaner run their tools: child processes with
// no shell, the script on stdin, in a namespace entered by `ip netns exec` (a /run/netns name)
// or `nsenter --net=PATH` (any other path), as the sidecar's firewall does (its exec.ts).
import { type ChildProcess, execFile, spawn } from 'node:child_process';

/** Runs a command with `input` on its stdin; resolves with its stdout, rejects with an Error
 * whose message holds its stderr. */
export type Exec = (cmd: string, args: string[], input?: string) => Promise<string>;

export function execIn(netns?: string): Exec {
  return (cmd, args, input) => {
    const [c, a] = wrap(netns, cmd, args);
    return new Promise((resolve, reject) => {
      const child = execFile(c, a, { maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
      });
      child.stdin?.on('error', () => {}); // a command that exits early closes stdin: its exit code tells
      child.stdin?.end(input ?? '');
    });
  };
}

/** Starts a command in `netns` with its stdin open, for input written while it is produced. */
export function spawnIn(netns: string | undefined, cmd: string, args: string[]): ChildProcess {
  const [c, a] = wrap(netns, cmd, args);
  return spawn(c, a, { stdio: ['pipe', 'ignore', 'pipe'] });
}

function wrap(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  if (netns === undefined) return [cmd, args];
  const named = /^(?:(?:\/var)?\/run\/netns\/)?([^/]+)$/.exec(netns);
  return named ? ['ip', ['netns', 'exec', named[1]!, cmd, ...args]] : ['nsenter', [`--net=${netns}`, cmd, ...args]];
}
