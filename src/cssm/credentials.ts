import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import { badRequest, conflict } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { SecretBox } from '../cisco/secrets.js';

const KEY = 'cssm.client_secret';
const SET_AT = 'cssm.client_secret_set_at';

/**
 * The API client's secret for Cisco's cloud, sealed with the collector's secret key (data/keys/,
 * apart from the database) and bound to its purpose: a copy of the database alone does not
 * reveal it. It is set by an operator, read only to fetch a token, and never shown again.
 */
export class CloudCredentials {
  constructor(
    private db: Db,
    private clock: Clock,
    private secrets: SecretBox,
    private events: EventService,
  ) {}

  set(secret: string, actor: string): { setAt: string } {
    if (!secret || secret.length > 4096 || /[\r\n]/.test(secret)) throw badRequest('invalid_secret', 'the client secret is one line of at most 4096 characters');
    const now = this.clock.now();
    this.db.transaction(() => {
      const put = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
      put.run(KEY, this.secrets.seal(secret, KEY));
      put.run(SET_AT, String(now));
      this.events.append('cisco.cloud_credentials_set', actor, 'cssm', null, {});
    })();
    return { setAt: toIso(now)! };
  }

  /** When the secret was set, or null: what status shows of it. */
  setAt(): string | null {
    const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(SET_AT) as string | undefined;
    return v ? toIso(Number(v)) : null;
  }

  secret(): string {
    const sealed = this.db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(KEY) as string | undefined;
    if (!sealed) throw conflict('no_cloud_credentials', "no client secret is set for Cisco's cloud: run outpost cisco cloud credentials --secret-file FILE");
    try {
      return this.secrets.open(sealed, KEY);
    } catch {
      throw conflict('cloud_credentials_unreadable', "the stored client secret for Cisco's cloud cannot be opened with data/keys/secrets.key (restored without its key?): set it again");
    }
  }
}
