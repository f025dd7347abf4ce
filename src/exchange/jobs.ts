import { existsSync, lstatSync, readdirSync, watch, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { Db } from '../store/open.js';
import type { AlertService } from '../alerts/service.js';
import type { EventService } from '../events/service.js';
import { AppError } from '../shared/errors.js';
import type { ExportService } from './export.js';
import type { ImportService } from './import.js';
import type { ExchangeState } from './state.js';
import { BUNDLE_EXTENSION } from './manifest.js';
import { nextCronRun, previousPeriod } from '../time/zone.js';

/** The period a scheduled export covers: the month before the one it runs in, on the zone's calendar. */
export { previousPeriod };

export interface InboxResult {
  imported: string[];
  /** Applied before: moved to archive/ with a .note. */
  alreadyImported: string[];
  rejected: string[];
}

/**
 * The exchange's unattended work: the monthly export (its next due time is stored, so an
 * export missed while the host was down runs at the next start) and the watched inbox.
 */
export class ExchangeJobs {
  private busy = false;
  private seen = new Map<string, number>();
  private running = new Set<Promise<unknown>>();

  constructor(
    private db: Db,
    private clock: Clock,
    private state: ExchangeState,
    private exporter: ExportService,
    private importer: ImportService,
    private alerts: AlertService,
    private events: EventService,
    private logger: Logger,
    private opts: { exportCron: string; bundleDir: string; timeZone?: string },
  ) {}

  private get zone(): string {
    return this.opts.timeZone ?? 'UTC';
  }

  /** Read from the collector's clock, not the host's, in the zone the scheduler fires in. */
  private nextRun(): number {
    return nextCronRun(this.opts.exportCron, this.clock.now(), this.zone) ?? Number.MAX_SAFE_INTEGER;
  }

  /** At start: run a missed export, then store when the next one is due. */
  async catchUp(): Promise<string | null> {
    const due = this.state.nextExportDue;
    let file: string | null = null;
    if (due !== null && due <= this.clock.now()) {
      this.logger.info('running the scheduled export missed while the collector was down', { due: new Date(due).toISOString() });
      file = await this.runScheduledExport();
    }
    this.db.transaction(() => (this.state.nextExportDue = this.nextRun()))();
    return file;
  }

  runScheduledExport(): Promise<string> {
    return this.track(
      this.exporter.export({ period: previousPeriod(this.clock.now(), this.zone), actor: 'schedule' }).then((r) => {
        this.db.transaction(() => (this.state.nextExportDue = this.nextRun()))();
        return r.file;
      }),
    );
  }

  /** Resolves when no job is running: shutdown waits for it before it closes the store. */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p)).catch(() => {});
    return p;
  }

  /**
   * Imports the response bundles dropped in the inbox, one at a time, once a file has stopped
   * growing (a copy in progress is left for the next poll). Applied files move to archive/,
   * refused ones to rejected/ with a .reason file.
   */
  pollInbox(): Promise<InboxResult> {
    return this.track(this.readInbox());
  }

  /**
   * Watches the inbox (inotify on Linux) so that a dropped file is imported within about two
   * seconds rather than at the next poll: a change is read after a second's quiet, and again
   * a second later while a file is still settling. The poll stays, for file systems that send
   * no events (network mounts). Returns the function that stops the watch.
   */
  watchInbox(settleMs = 1000): () => void {
    const inbox = join(this.opts.bundleDir, 'inbox');
    let timer: NodeJS.Timeout | null = null;
    let closed = false;
    const later = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        if (closed) return;
        void this.pollInbox()
          .then(() => (this.seen.size > 0 || this.busy) && !closed && later())
          .catch((e: unknown) => this.logger.error('inbox import failed', { error: (e as Error).message }));
      }, settleMs);
    };
    let watcher: ReturnType<typeof watch>;
    try {
      watcher = watch(inbox, later);
    } catch (e) {
      this.logger.warn('the inbox cannot be watched; it is polled', { inbox, error: (e as Error).message });
      return () => {};
    }
    watcher.on('error', (e) => this.logger.warn('the inbox watch failed; it is polled', { inbox, error: e.message }));
    return () => {
      closed = true;
      if (timer) clearTimeout(timer);
      watcher.close();
    };
  }

  /**
   * A response applied before (a second copy, or a file put back) leaves the inbox with a note
   * beside it: left there, it would be verified again at every poll, forever.
   */
  private rejectUnopened(file: string, name: string, st: Stats): void {
    const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSymbolicLink() ? 'a symbolic link' : st.isSocket() ? 'a socket' : 'not a regular file';
    const reason = `not_a_file: ${name} is ${kind}; only regular files are read from the inbox`;
    const target = this.importer.archive(file, 'rejected', reason);
    this.db.transaction(() => {
      this.events.append('exchange.rejected', 'inbox', name, null, { code: 'not_a_file', reason, movedTo: target });
      this.alerts.raise('bundle_rejected', { subject: name, severity: 'warning', message: `${name} was refused: it is ${kind}`, details: { code: 'not_a_file', file: target } });
    })();
  }

  private archiveDuplicate(file: string, name: string, bundleId: string): void {
    const target = this.importer.archive(file, 'archive');
    writeFileSync(`${target}.note`, `already imported: bundle ${bundleId} was applied before; this copy changed nothing\n`);
    this.events.append('exchange.already_imported', 'inbox', bundleId, null, { file: name, movedTo: target });
    this.logger.info('a response already imported was moved from the inbox to the archive', { file: name, bundleId, movedTo: target });
  }

  private async readInbox(): Promise<InboxResult> {
    const out: InboxResult = { imported: [], alreadyImported: [], rejected: [] };
    if (this.busy) return out;
    this.busy = true;
    try {
      const inbox = join(this.opts.bundleDir, 'inbox');
      if (!existsSync(inbox)) return out;
      for (const name of readdirSync(inbox).sort()) {
        if (!name.endsWith(BUNDLE_EXTENSION) || name.startsWith('.')) continue;
        const file = join(inbox, name);
        const st = lstatSync(file);
        if (!st.isFile()) {
          // Never opened: a FIFO would block the inbox (and shutdown) until it got a writer, a
          // directory would be retried forever, a link could point anywhere.
          this.rejectUnopened(file, name, st);
          out.rejected.push(name);
          continue;
        }
        const size = st.size;
        if (this.seen.get(file) !== size) {
          this.seen.set(file, size);
          continue; // seen for the first time, or still growing: take it next poll
        }
        this.seen.delete(file);
        try {
          const r = await this.importer.import(file, { force: false, actor: 'inbox' });
          if (r.status === 'already_imported' && r.archivedAs === null) {
            this.archiveDuplicate(file, name, r.bundleId);
            out.alreadyImported.push(name);
          } else out.imported.push(name);
        } catch (e) {
          if (!(e instanceof AppError)) throw e;
          const target = this.importer.archive(file, 'rejected', `${e.code}: ${e.message}`);
          this.db.transaction(() => {
            this.events.append('exchange.rejected', 'inbox', name, null, { code: e.code, reason: e.message, movedTo: target });
            this.alerts.raise('bundle_rejected', { subject: name, severity: 'warning', message: `${name} was refused: ${e.message}`, details: { code: e.code, file: target } });
          })();
          out.rejected.push(name);
        }
      }
      return out;
    } finally {
      this.busy = false;
    }
  }
}
