import { beforeAll, describe, expect, it } from 'vitest';
import { cli, envFor, tempDataDir } from '../helpers/processes.js';
import { loadConfig } from '../../src/config/load.js';
import { buildServices } from '../../src/main.js';
import { capturingLogger } from '../helpers/secrets.js';
import type { Services } from '../../src/services.js';

/**
 * `outpost access …` as an admin runs it on the collector's host: the requests listed, one
 * approved with a role, one denied with a reason. Without a collector running, the command
 * opens the store itself and speaks to the same API over a private socket.
 */
const dir = tempDataDir();
const env = envFor(dir);
const ids: Record<string, string> = {};

/** Opens the site's store through the services, and closes it after. */
function withServices<T>(fn: (s: Services) => T | Promise<T>): Promise<T> {
  const s = buildServices(loadConfig({ env, overrides: { http: { port: 0 } } as never }), { logger: capturingLogger() });
  return Promise.resolve(fn(s)).finally(() => s.db.close());
}

beforeAll(async () => {
  await withServices(async (s) => {
    const lab = s.accounts.createVa({ name: 'Lab' }, 'test').id;
    const principalOf = (id: string) => ({ actor: 'test', kind: 'user' as const, userId: id, grants: s.users.grantsOf(id) });
    const a = s.access;
    for (const name of ['amy', 'bob']) {
      const u = await s.users.add({ name, password: 'a passphrase long enough', roles: [{ role: 'va-viewer', vaId: s.accounts.list().find((v) => v.name === 'Default')!.id }] }, 'test');
      ids[name] = a.create(principalOf(u.id), { vaId: lab, role: 'va-viewer', justification: `${name} runs the lab bench` }, 'test').id;
    }
  });
}, 30_000);

describe('outpost access', () => {
  it('when an admin lists pending requests, then each shows its id, user, VA, role asked and justification', async () => {
    const r = await cli(['access', 'requests', '--state', 'pending'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+VA\s+ASKS\s+SINCE\s+JUSTIFICATION\s+OUTCOME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([[ids.amy, 'amy', 'Lab', 'va-viewer'], [ids.bob, 'bob', 'Lab', 'va-viewer']]);
    const bad = await cli(['access', 'requests', '--state', 'open'], env);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('--state is one of pending, approved, denied, withdrawn')]);
  });

  it('when an admin approves one with a role and denies the other with a reason, then the roles and the outcomes say so', async () => {
    const ok = await cli(['access', 'approve', ids.amy!, '--role', 'va-admin'], env);
    expect([ok.code, ok.stdout.trim()]).toEqual([0, 'approved: amy is now va-admin on Lab']);
    const noReason = await cli(['access', 'deny', ids.bob!], env);
    expect([noReason.code, noReason.stderr]).toEqual([1, expect.stringContaining('--reason')]);
    const no = await cli(['access', 'deny', ids.bob!, '--reason', 'the lab is full this quarter'], env);
    expect([no.code, no.stdout.trim()]).toEqual([0, "denied bob's request for Lab"]);
    const again = await cli(['access', 'approve', ids.bob!, '--role', 'va-viewer'], env);
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining('is denied already (not_pending)')]);

    const all = JSON.parse((await cli(['access', 'requests', '--json'], env)).stdout) as { user: string; state: string; grantedRole: string | null; reason: string | null; decidedBy: string }[];
    expect(all.map((x) => [x.user, x.state, x.grantedRole, x.reason])).toEqual([['amy', 'approved', 'va-admin', null], ['bob', 'denied', null, 'the lab is full this quarter']]);
    expect(all[0]!.decidedBy).toMatch(/^cli:.* \(self-reported\)$/);
    await withServices((s) => {
      expect(s.users.get('amy').roles.map((g) => g.role).sort()).toEqual(['va-admin', 'va-viewer']);
      const types = (s.db.prepare("SELECT type, details FROM events WHERE type LIKE 'access.%' ORDER BY id").all() as { type: string; details: string }[]).map((e) => e.type);
      expect(types).toEqual(['access.requested', 'access.requested', 'access.approved', 'access.denied']);
    });
  });
});
