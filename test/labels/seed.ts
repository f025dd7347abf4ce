import type { Services } from '../../src/services.js';
import type { Role } from '../../src/users/roles.js';

let n = 0;

/** Devices written straight to the store (registering each over the device API would only slow the tests). */
export function seedDevices(s: Services, vaId: string, pid: string, count: number, prefix = 'LBL'): string[] {
  const ids: string[] = [];
  s.db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const k = ++n;
      const id = `dev_label${String(k).padStart(6, '0')}`;
      s.devices.repo.insert({
        id, va_id: vaId, udi_pid: pid, udi_serial: `${prefix}${String(k).padStart(6, '0')}`, hostname: `host-${k}`, software_version: '17.9',
        public_key: null, pending_public_key: null, pending_since: null, status: 'active', source: 'rum',
        registered_at: 1_700_000_000_000 + k, last_seen_at: null, last_seq: null,
      });
      ids.push(id);
    }
  })();
  return ids;
}

export const PASSWORD = 'correct horse battery staple';

/** A user with these roles, and an API token of theirs. */
export async function bearerOf(s: Services, name: string, roles: { role: Role; vaId?: string }[]): Promise<string> {
  const u = await s.users.add({ name, password: PASSWORD, roles }, 'test');
  return s.users.createToken(u.id, { name: 'labels', expiresInDays: 1 }, 'test').secret;
}
