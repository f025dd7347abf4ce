import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, cli, envFor, serve, tempDataDir } from '../helpers/processes.js';

describe('users, through the real CLI and a running collector', () => {
  it('when the first admin is added over the socket, then loopback alone no longer suffices, and the token made for it opens the API', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    const server = await serve(dir, env);
    try {
      // Zero-config: no user, loopback is enough.
      expect((await fetch(`${server.url}/api/v1/virtual-accounts`)).status).toBe(200);
      const weak = await cli(['user', 'add', 'ann', '--role', 'admin'], { ...env, OUTPOST_USER_PASSWORD: 'short' });
      expect(weak.code).toBe(1);
      expect(weak.stderr).toContain('at least 12 characters');
      const added = await cli(['user', 'add', 'ann', '--role', 'admin'], { ...env, OUTPOST_USER_PASSWORD: 'a long enough passphrase' });
      expect(added.code, added.stderr).toBe(0);
      expect(added.stderr).not.toContain('unknown variable');
      expect((await fetch(`${server.url}/api/v1/virtual-accounts`)).status).toBe(401);
      const made = JSON.parse((await cli(['user', 'token', 'create', '--user', 'ann', '--name', 'scripts', '--json'], env)).stdout) as { secret: string };
      const withToken = await fetch(`${server.url}/api/v1/virtual-accounts`, { headers: { authorization: `Bearer ${made.secret}` } });
      expect(withToken.status).toBe(200);
      // The password signs in over HTTP for a short-lived token; a wrong one is refused.
      const signIn = (password: string) =>
        fetch(`${server.url}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'ann', password }) });
      expect((await signIn('a long enough passphrase')).status).toBe(201);
      expect((await signIn('not the passphrase!')).status).toBe(401);
      // The socket still works for the host, and says who ran the command (self-reported).
      const events = JSON.parse((await cli(['events', '--type', 'user.*', '--json'], env)).stdout) as { type: string; actor: string }[];
      expect(events.find((e) => e.type === 'user.added')!.actor).toMatch(/^cli:\S+ \(self-reported\)$/);
      expect(events.some((e) => e.type === 'user.login_failed')).toBe(true);
      expect(JSON.stringify(events)).not.toContain('a long enough passphrase');
      expect(server.log()).not.toContain('a long enough passphrase');
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('when the password is typed at a terminal, then it is asked twice and never echoed', async () => {
    const dir = tempDataDir();
    const env = envFor(dir);
    // util-linux's script gives the command a terminal; what is typed goes through it.
    const proc = spawn('script', ['-qec', `${process.execPath} ${CLI} user add ann --role admin`, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c));
    proc.stderr.on('data', (c: Buffer) => (out += c));
    const until = async (text: string) => {
      for (let i = 0; i < 200 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain(text);
    };
    await until('password: ');
    proc.stdin.write('a long enough passphrase\r');
    await until('again: ');
    proc.stdin.write('a long enough passphrase\r');
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    expect(code, out).toBe(0);
    expect(out).toContain('added ann');
    expect(out).not.toContain('a long enough passphrase');
  }, 30_000);
});
