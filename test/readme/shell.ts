import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BlockRun {
  output: string;
  /** The commands that exited non-zero, with their line in the block. */
  failures: string[];
}

/**
 * One bash session that runs blocks in turn, like a terminal the reader types into: variables
 * and functions set by one block are there for the next. Each block is sourced from a file with
 * stdin closed, so a command that reads stdin cannot swallow the blocks after it. A command
 * that fails is recorded (ERR trap, pipefail) and the block goes on, as a terminal would; one
 * killed by SIGPIPE is not a failure (`zcat … | head` stops zcat once head has its lines).
 */
export class ReadmeShell {
  private bash: ChildProcessWithoutNullStreams;
  private buffer = '';
  private count = 0;
  private exited = false;

  constructor(
    private cwd: string,
    private scratch: string,
    env: Record<string, string | undefined>,
  ) {
    this.bash = spawn('bash', ['--noprofile', '--norc'], { cwd, env, stdio: 'pipe' });
    this.bash.stdout.on('data', (c: Buffer) => (this.buffer += c));
    this.bash.stderr.on('data', (c: Buffer) => (this.buffer += c));
    this.bash.on('exit', () => (this.exited = true));
    this.bash.stdin.write(`exec 2>&1; set -E -o pipefail; __err() { [ "$1" = 141 ] || __failed+="line $2: $3"$'\\n'; }; trap '__err "$?" "$LINENO" "$BASH_COMMAND"' ERR\n`);
  }

  run(code: string, timeoutMs: number): Promise<BlockRun> {
    const n = ++this.count;
    const file = join(this.scratch, `block-${n}.sh`);
    writeFileSync(file, code + '\n');
    const marker = `@@readme-block-${n}-end@@`;
    this.buffer = '';
    this.bash.stdin.write(`__failed=; cd ${JSON.stringify(this.cwd)}; source ${JSON.stringify(file)} </dev/null; printf '\\n${marker}\\n%s${marker}\\n' "$__failed"\n`);
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const at = this.buffer.indexOf(`\n${marker}\n`);
        if (at >= 0 && this.buffer.endsWith(`${marker}\n`)) {
          clearInterval(poll);
          const failed = this.buffer.slice(at + marker.length + 2, this.buffer.length - marker.length - 1);
          // The block's own last failure also fails the `source` that ran it: one report is enough.
          const failures = failed.split('\n').filter((f) => f && !f.includes(file));
          resolve({ output: this.buffer.slice(0, at), failures });
        } else if (this.exited || Date.now() - started > timeoutMs) {
          clearInterval(poll);
          reject(new Error(`${this.exited ? 'the shell exited' : `no end after ${timeoutMs} ms`}; output so far:\n${this.buffer}`));
        }
      }, 20);
    });
  }

  close(): void {
    if (!this.exited) this.bash.kill('SIGKILL');
  }
}
