import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

/**
 * A subscriber is told only what it may read: a VA-scoped user hears of its VAs alone, and
 * nothing collector-wide; a disabled user, or one whose role was taken away, hears nothing more.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ config: { notifications: { email: { host: '127.0.0.1', port: 2525, starttls: false } } } });
});
afterAll(() => h.close());

const targets = (subject: string) =>
  (h.services.db.prepare('SELECT target FROM notifications WHERE subject = ? ORDER BY target').pluck().all(subject) as string[]);

describe('subscriptions and what their users may read', () => {
  it('when alerts are raised about two VAs and about none, then each subscriber is told of those it may read, and no more', async () => {
    const lab = h.services.accounts.createVa({ name: 'Lab' }, 'test').id;
    const add = async (name: string, roles: { role: 'auditor' | 'va-viewer'; vaId?: string }[]) => {
      const u = await h.services.users.add({ name, password: "a long passphrase for alerts", roles }, 'test');
      // Every VA and every severity asked for: the roles must narrow it.
      h.services.notify.subscriptions.set(u.id, { email: `${name}@site.example`, severities: ['info', 'warning', 'critical'], vaIds: null, resolutions: false, digest: false }, () => true);
      return u.id;
    };
    // Users can be disabled only while an admin remains.
    await h.services.users.add({ name: 'boss', password: 'a long passphrase for alerts', roles: [{ role: 'admin' }] }, 'test');
    const auditor = await add('aud', [{ role: 'auditor' }]);
    const viewer = await add('labview', [{ role: 'va-viewer', vaId: lab }]);
    const gone = await add('gone', [{ role: 'auditor' }]);
    h.services.users.setStatus('gone', 'disabled', 'test');

    const raise = (subject: string, vaId: string | null) =>
      h.services.alerts.raise('device_silent', { subject, severity: 'warning', message: `${subject} is silent`, details: vaId ? { vaId } : {} });
    raise('in-default', h.defaultVa);
    raise('in-lab', lab);
    raise('collector-wide', null);

    expect(targets('in-default')).toEqual([auditor]);
    expect(targets('in-lab')).toEqual([auditor, viewer].sort());
    expect(targets('collector-wide')).toEqual([auditor]);
    expect(h.count('SELECT count(*) FROM notifications WHERE target = ?', gone)).toBe(0);

    // The viewer's role on Lab taken away: its next Lab alert is not written for it.
    h.services.users.setRoles('labview', [{ role: 'va-viewer', vaId: h.defaultVa }], 'test');
    raise('in-lab-later', lab);
    expect(targets('in-lab-later')).toEqual([auditor]);
  });
});
