import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../store/open.js';
import type { Clock } from '../shared/clock.js';
import type { EventService } from '../events/service.js';
import { badRequest, conflict, notFound } from '../shared/errors.js';
import { readSecretFile } from '../shared/secret-file.js';
import { parseOrThrow } from '../shared/validation.js';
import { filterSchema, type Filter } from './filter.js';
import { dropSecretFile, makeSecret, writeSecretFile } from './sink-secrets.js';

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
  /**
   * A file (mode 0600) holding the HMAC key: never in the config or the API. Left out, the
   * collector makes a key, keeps it in its data folder and answers it once.
   */
  hmacKeyFile: z.string().min(1, 'a file holding the HMAC secret (mode 0600)').max(4096).optional(),
});

const common = { name: z.string().trim().min(1).max(100), filter: filterSchema.prefault({}), resolutions: z.boolean().default(false) };
export const sinkBody = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('syslog'), ...common, syslog: syslogTarget }),
  z.strictObject({ kind: z.literal('webhook'), ...common, webhook: webhookTarget }),
]);
export type SinkInput = z.infer<typeof sinkBody>;

/** The fields of a schema, each optional and of any value: a change names which it sets, and the sink's own schema judges the result. */
const anyOf = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.strictObject(Object.fromEntries(Object.keys(shape).map((k) => [k, z.unknown().optional()])) as { [K in keyof S]: z.ZodOptional<z.ZodUnknown> });

/**
 * A change to a sink: any of the fields POST takes (but its kind), plus `enabled`. The values
 * are judged by sinkBody itself once laid over the sink, so a change is held to exactly what
 * an addition is; `newSecret` has the collector make a webhook key in place of the one it had.
 */
export const sinkPatch = z
  .strictObject({
    name: z.unknown().optional(),
    filter: anyOf(filterSchema.shape).optional(),
    resolutions: z.unknown().optional(),
    enabled: z.boolean().optional(),
    syslog: anyOf(syslogTarget.shape).optional(),
    webhook: anyOf(webhookTarget.shape).extend({ newSecret: z.literal(true).optional() }).optional(),
  })
  .refine((p) => Object.keys(p).length > 0, 'name at least one field to change: name, filter, resolutions, enabled, syslog or webhook');
export type SinkPatch = z.infer<typeof sinkPatch>;

export interface Sink {
  id: string;
  name: string;
  kind: 'syslog' | 'webhook';
  enabled: boolean;
  syslog?: z.infer<typeof syslogTarget>;
  webhook?: { url: string; hmacKeyFile: string };
  filter: Filter;
  resolutions: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A sink as added or changed: with the key the collector made, the only time it is shown. */
export type SinkWithSecret = Sink & { secret?: string };

interface SinkRow { id: string; name: string; kind: 'syslog' | 'webhook'; enabled: number; target_json: string; filter_json: string; resolutions: number; created_at: number; updated_at: number }

const toSink = (r: SinkRow): Sink => ({
  id: r.id, name: r.name, kind: r.kind, enabled: r.enabled === 1, [r.kind]: JSON.parse(r.target_json), filter: JSON.parse(r.filter_json) as Filter,
  resolutions: r.resolutions === 1, createdAt: new Date(r.created_at).toISOString(), updatedAt: new Date(r.updated_at).toISOString(),
});

/** Where a sink sends, for the audit trail: a webhook's origin only, since a receiver's path or query often is its password. */
const whereTo = (s: Pick<Sink, 'kind' | 'syslog' | 'webhook'>) =>
  s.kind === 'syslog' ? `${s.syslog!.transport}://${s.syslog!.host}:${s.syslog!.port}` : new URL(s.webhook!.url).origin;

export interface SinkEnv {
  knownVa: (id: string) => boolean;
  /** Where keys the collector makes are kept (the data folder). */
  dataDir: string;
  events: EventService;
  actor: string;
}

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
  add(input: SinkInput, env: SinkEnv): SinkWithSecret {
    this.checkBeyondSchema(input, env.knownVa);
    const id = randomUUID();
    const secret = input.kind === 'webhook' && !input.webhook.hmacKeyFile ? makeSecret() : undefined;
    const made = secret ? writeSecretFile(env.dataDir, id, secret) : undefined;
    try {
      return this.db.transaction(() => {
        if (this.db.prepare('SELECT 1 FROM notify_sinks WHERE name = ?').get(input.name)) throw conflict('sink_exists', `a sink named "${input.name}" exists already`);
        const now = this.clock.now();
        const target = input.kind === 'syslog' ? input.syslog : { url: input.webhook.url, hmacKeyFile: made ?? input.webhook.hmacKeyFile };
        this.db
          .prepare('INSERT INTO notify_sinks (id, name, kind, target_json, filter_json, resolutions, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(id, input.name, input.kind, JSON.stringify(target), JSON.stringify(input.filter), input.resolutions ? 1 : 0, now, now);
        const sink = this.get(id)!;
        env.events.append('sink.created', env.actor, id, null, { name: sink.name, kind: sink.kind, to: whereTo(sink), filter: sink.filter, resolutions: sink.resolutions });
        return secret ? { ...sink, secret } : sink;
      })();
    } catch (e) {
      dropSecretFile(env.dataDir, made, id, (f) => this.keyInUse(f));
      throw e;
    }
  }

  /**
   * Lays a change over the sink as it is inside the transaction and holds the result to the
   * schema and checks an addition meets; any refusal leaves the sink as it was.
   */
  update(id: string, patch: SinkPatch, env: SinkEnv): SinkWithSecret {
    const { newSecret, ...webhookChange } = patch.webhook ?? {};
    if (newSecret && webhookChange.hmacKeyFile !== undefined) throw badRequest('invalid_body', 'body: webhook: give either hmacKeyFile or newSecret, not both', { field: 'webhook' });
    // Looked up before a key file is written: the file is named for the sink, never for what the caller typed.
    if (!this.get(id)) throw notFound('sink', id);
    const secret = newSecret ? makeSecret() : undefined;
    const made = secret ? writeSecretFile(env.dataDir, id, secret) : undefined;
    let replaced: string | undefined;
    try {
      const sink = this.db.transaction(() => {
        const old = this.get(id);
        if (!old) throw notFound('sink', id);
        const other = old.kind === 'syslog' ? 'webhook' : 'syslog';
        if (patch[other]) throw badRequest('invalid_body', `body: ${other}: this is a ${old.kind} sink and its kind cannot change (remove it and add another)`, { field: other });
        const merged = {
          kind: old.kind,
          // A field sent as null is judged as null (and refused), not taken for one left out.
          name: patch.name !== undefined ? patch.name : old.name,
          filter: { ...old.filter, ...patch.filter },
          resolutions: patch.resolutions !== undefined ? patch.resolutions : old.resolutions,
          ...(old.kind === 'syslog' ? { syslog: { ...old.syslog, ...patch.syslog } } : { webhook: { ...old.webhook, ...webhookChange, ...(made ? { hmacKeyFile: made } : {}) } }),
        };
        const next = parseOrThrow(sinkBody, merged, 'body');
        this.checkBeyondSchema(next, env.knownVa);
        if (next.name.toLowerCase() !== old.name.toLowerCase() && this.db.prepare('SELECT 1 FROM notify_sinks WHERE name = ?').get(next.name)) {
          throw conflict('sink_exists', `a sink named "${next.name}" exists already`);
        }
        const enabled = patch.enabled ?? old.enabled;
        this.db
          .prepare('UPDATE notify_sinks SET name = ?, target_json = ?, filter_json = ?, resolutions = ?, enabled = ?, updated_at = ? WHERE id = ?')
          .run(next.name, JSON.stringify(next.kind === 'syslog' ? next.syslog : next.webhook), JSON.stringify(next.filter), next.resolutions ? 1 : 0, enabled ? 1 : 0, this.clock.now(), id);
        const now = this.get(id)!;
        if (old.webhook && old.webhook.hmacKeyFile !== now.webhook!.hmacKeyFile) replaced = old.webhook.hmacKeyFile;
        env.events.append('sink.updated', env.actor, id, null, { name: now.name, changed: changedFields(old, now, !!secret), to: whereTo(now), filter: now.filter, enabled: now.enabled });
        return now;
      })();
      // The key the change replaced goes once the change is in, when the collector had made it.
      dropSecretFile(env.dataDir, replaced, id, (f) => this.keyInUse(f));
      return secret ? { ...sink, secret } : sink;
    } catch (e) {
      dropSecretFile(env.dataDir, made, id, (f) => this.keyInUse(f));
      throw e;
    }
  }

  /** Removes a sink; what it still had to deliver is failed, naming why. */
  remove(id: string, env: Pick<SinkEnv, 'dataDir' | 'events' | 'actor'>): void {
    const removed = this.db.transaction(() => {
      const old = this.get(id);
      if (!old) throw notFound('sink', id);
      this.db.prepare('DELETE FROM notify_sinks WHERE id = ?').run(id);
      const failed = this.db.prepare("UPDATE notifications SET state = 'failed', last_error = 'the sink was removed' WHERE target = ? AND state = 'pending' AND claimed_at IS NULL").run(id).changes;
      env.events.append('sink.deleted', env.actor, id, null, { name: old.name, kind: old.kind, to: whereTo(old), pendingFailed: failed });
      return old;
    })();
    dropSecretFile(env.dataDir, removed.webhook?.hmacKeyFile, id, (f) => this.keyInUse(f));
  }

  /** Whether a sink still signs with this key file. */
  private keyInUse(file: string): boolean {
    return this.db.prepare("SELECT 1 FROM notify_sinks WHERE kind = 'webhook' AND json_extract(target_json, '$.hmacKeyFile') = ?").get(file) !== undefined;
  }

  private checkBeyondSchema(input: SinkInput, knownVa: (id: string) => boolean): void {
    if (input.kind === 'webhook' && input.webhook.hmacKeyFile) {
      try {
        readSecretFile(input.webhook.hmacKeyFile, 'webhook secret file');
      } catch (e) {
        throw badRequest('invalid_sink', `webhook.hmacKeyFile: ${(e as Error).message}`, { field: 'webhook.hmacKeyFile' });
      }
    }
    const unknown = (input.filter.vaIds ?? []).filter((v) => !knownVa(v));
    if (unknown.length) throw badRequest('invalid_sink', `filter.vaIds: no such VA: ${unknown.join(', ')}`, { field: 'filter.vaIds', unknown });
  }
}

function changedFields(a: Sink, b: Sink, newSecret: boolean): string[] {
  const out: string[] = [];
  if (a.name !== b.name) out.push('name');
  if (a.enabled !== b.enabled) out.push('enabled');
  if (a.resolutions !== b.resolutions) out.push('resolutions');
  for (const k of ['severities', 'vaIds', 'kinds'] as const) if (JSON.stringify(a.filter[k]) !== JSON.stringify(b.filter[k])) out.push(`filter.${k}`);
  const t = a.kind === 'syslog' ? (['host', 'port', 'transport', 'facility'] as const) : (['url', 'hmacKeyFile'] as const);
  const ta = (a.syslog ?? a.webhook) as Record<string, unknown>;
  const tb = (b.syslog ?? b.webhook) as Record<string, unknown>;
  for (const k of t) if (ta[k] !== tb[k] && !(k === 'hmacKeyFile' && newSecret)) out.push(`${a.kind}.${k}`);
  if (newSecret) out.push('webhook.secret');
  return out;
}
