/** Where a command's output and errors go: the process's stdout and stderr, or a test's strings. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}
