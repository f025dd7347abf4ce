import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import { badRequest, conflict, notFound } from '../shared/errors.js';
import { readSecretFile } from '../shared/secret-file.js';
import { filterSchema, type Filter } from './filter.js';

const hostName = z.string().min(1).max(255).regex(/^[A-Za-z0-9.:_-]+$/, 'a host name or an IP address');

export const syslogTarget = z.strictObject({
  host: hostName,
  port: z.number().int().min(1).max(65535).default(514),
  transport: z.enum(['udp', 'tcp']).default('udp'),
  /** RFC 5424 facility code: 16 (local0) by default. */
  facility: z.number().int().min(0).max(23).default(16),
});
export const webhookTarget = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'an http(s) URL, such as https://hooks.example/outpost' }),
  /** A file (mode 0600) holding the HMAC key: never in the config or the API. */
  hmacKeyFile: z.string().min(1, 'a file holding the HMAC secret (mode 0600)').max(4096),
});

const common = { name: z.string().trim().min(1).max(100), filter: filterSchema.prefault({}), resolutions: z.boolean().default(false) };
export const sinkBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('syslog'), ...common, syslog: syslogTarget }),
  z.strictObject({ kind: z.literal('webhook'), ...common, webhook: webhookTarget }),
]);
export type SinkInput = z.infer<typeof sinkBody>;

export interface Sink {
  id: string;
  name: string;
  kind: 'syslog' | 'webhook';
  syslog?: z.infer<typeof syslogTarget>;
  webhook?: z.infer<typeof webhookTarget>;
  filter: Filter;
  resolutions: boolean;
  createdAt: string;
}

interface SinkRow { id: string; name: string; kind: 'syslog' | 'webhook'; target_json: string; filter_json: string; resolutions: number; created_at: number }

const toSink = (r: SinkRow): Sink => ({
  id: r.id, name: r.name, kind: r.kind, [r.kind]: JSON.parse(r.target_json), filter: JSON.parse(r.filter_json) as Filter,
  resolutions: r.resolutions === 1, createdAt: new Date(r.created_at).toISOString(),
});

/** Syslog and webhook sinks, which an admin configures. */
export class SinkStore {
  private allStmt;
  constructor(private db: Db, private clock: Clock) {
    this.allStmt = db.prepare('SELECT * FROM notify_sinks ORDER BY name');
  }

  all(): Sink[] {
    return (this.allStmt.all() as SinkRow[]).map(toSink);
  }

  get(id: string): Sink | undefined {
    const r = this.db.prepare('SELECT * FROM notify_sinks WHERE id = ?').get(id) as SinkRow | undefined;
    return r && toSink(r);
  }

  /** Checks what the schema cannot (the secret file, the VAs) before anything is written. */
  add(input: SinkInput, knownVa: (id: string) => boolean): Sink {
    if (input.kind === 'webhook') {
      try {
        readSecretFile(input.webhook.hmacKeyFile, 'webhook secret file');
      } catch (e) {
        throw badRequest('invalid_sink', `webhook.hmacKeyFile: ${(e as Error).message}`, { field: 'webhook.hmacKeyFile' });
      }
    }
    const unknown = (input.filter.vaIds ?? []).filter((v) => !knownVa(v));
    if (unknown.length) throw badRequest('invalid_sink', `filter.vaIds: no such VA: ${unknown.join(', ')}`, { field: 'filter.vaIds', unknown });
    return this.db.transaction(() => {
      if (this.db.prepare('SELECT 1 FROM notify_sinks WHERE name = ?').get(input.name)) throw conflict('sink_exists', `a sink named "${input.name}" exists already`);
      const id = randomUUID();
      const now = this.clock.now();
      const target = input.kind === 'syslog' ? input.syslog : input.webhook;
      this.db
        .prepare('INSERT INTO notify_sinks (id, name, kind, target_json, filter_json, resolutions, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, input.name, input.kind, JSON.stringify(target), JSON.stringify(input.filter), input.resolutions ? 1 : 0, now, now);
      return this.get(id)!;
    })();
  }

  /** Removes a sink; what it still had to deliver is failed, naming why. */
  remove(id: string): void {
    this.db.transaction(() => {
      if (this.db.prepare('DELETE FROM notify_sinks WHERE id = ?').run(id).changes === 0) throw notFound('sink', id);
      this.db.prepare("UPDATE notifications SET state = 'failed', last_error = 'the sink was removed' WHERE target = ? AND state = 'pending' AND claimed_at IS NULL").run(id);
    })();
  }
}
