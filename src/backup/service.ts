import { lastBackupAt } from './last-backup.js';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { EventService } from '../events/service.js';
import type { Logger } from '../shared/logger.js';
import { conflict } from '../shared/errors.js';
import { makeBackup, type BackupResult, type BackupSource } from './backup.js';
import type { OnProgress } from '../shared/progress.js';

/** Scheduled backups' names: sortable by time, recognised by the pruning (nothing else in the folder is touched). */
const SCHEDULED = /^outpost-backup-\d{8}T\d{6}Z\.db$/;
const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');

export interface BackupListing {
  file: string;
  bytes: number;
  modifiedAt: string;
}

/**
 * Backups made inside the collector: one at a time (a second is refused, not queued), on demand
 * or on the schedule, each an event. Scheduled ones go to `backup.dir` and the oldest beyond
 * `backup.keep` are deleted after each new one is safely written.
 */
export class BackupService {
  private running: Promise<BackupResult> | null = null;

  constructor(
    private source: BackupSource,
    private events: EventService,
    private logger: Logger,
    private config: Config['backup'],
  ) {}

  /** Resolves once no backup is being made (at a stop, before the store closes). */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** When the newest backup was written (from the trail: a restart keeps it). */
  get lastSuccessAt(): number | null {
    return lastBackupAt(this.source.db);
  }

  get dir(): string {
    return this.config.dir;
  }

  async backup(o: { file: string; withKeys: boolean; actor: string; reason?: 'manual' | 'schedule'; onProgress?: OnProgress }): Promise<BackupResult> {
    if (this.running) throw conflict('backup_running', 'a backup is being made; wait for it to finish');
    const run = makeBackup(this.source, { file: o.file, withKeys: o.withKeys, reason: o.reason ?? 'manual', onProgress: o.onProgress });
    this.running = run;
    try {
      const r = await run;
      this.events.append('backup.created', o.actor, r.file, null, {
        bytes: r.bytes, withKeys: r.withKeys, keys: r.keys, schemaVersion: r.schemaVersion, eventHead: r.eventHead.id, reason: o.reason ?? 'manual', durationMs: r.durationMs,
      });
      this.logger.info('backup written', { file: r.file, bytes: r.bytes, withKeys: r.withKeys, durationMs: r.durationMs });
      return r;
    } catch (e) {
      this.events.append('backup.failed', o.actor, o.file, null, { error: (e as Error).message });
      throw e;
    } finally {
      this.running = null;
    }
  }

  /**
   * A backup into backup.dir (the schedule's, or one asked for without a file), then the oldest
   * beyond backup.keep go. `withKeys` asked for by the caller wins over backup.withKeys: an
   * operator who types --with-keys before an upgrade must get the keys.
   */
  async scheduled(actor = 'schedule', onProgress?: OnProgress, withKeys?: boolean): Promise<{ backup: BackupResult; deleted: string[] }> {
    const file = join(this.config.dir, `outpost-backup-${stamp(this.source.now())}.db`);
    const backup = await this.backup({ file, withKeys: withKeys ?? this.config.withKeys, actor, reason: actor === 'schedule' ? 'schedule' : 'manual', onProgress });
    const deleted = this.prune();
    if (deleted.length) this.events.append('backup.pruned', actor, this.config.dir, null, { deleted, keep: this.config.keep });
    return { backup, deleted };
  }

  /** The scheduled backups in backup.dir, newest first. */
  list(): BackupListing[] {
    let names: string[];
    try {
      names = readdirSync(this.config.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => SCHEDULED.test(n))
      .sort()
      .reverse()
      .map((n) => {
        const st = statSync(join(this.config.dir, n));
        return { file: join(this.config.dir, n), bytes: st.size, modifiedAt: st.mtime.toISOString() };
      });
  }

  private prune(): string[] {
    const old = this.list().slice(this.config.keep);
    for (const b of old) rmSync(b.file, { force: true });
    return old.map((b) => b.file);
  }
}
