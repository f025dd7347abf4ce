import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { str } from '../command.js';
import { CliError } from '../client.js';
import { commandProgress, quietOption, withProgress } from '../progress.js';
import { systemClock } from '../../shared/clock.js';
import type { RestoreResult } from '../../backup/restore.js';
import type { BackupResult } from '../../backup/backup.js';
import type { BackupListing } from '../../backup/service.js';

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

function renderRestore(r: RestoreResult): string {
  return [
    `restored ${r.restoredFrom} (made ${r.backup.createdAt} by Outpost ${r.backup.version}, collector ${r.backup.collectorId})`,
    r.previousStore ? `the store it replaced is kept as ${r.previousStore}` : 'there was no store to replace',
    `trusted-time floor: ${r.timeFloor.kept} (backup ${r.timeFloor.backup}, this install ${r.timeFloor.install ?? 'none'})`,
    r.epoch === null ? 'no new epoch (no identity key): the upstream must enroll this collector again' : `epoch ${r.epoch}: the next usage bundle or sync tells the upstream`,
    ...(r.kept.length ? ['', 'kept:', ...r.kept.map((k) => `  - ${k}`)] : []),
    ...(r.lost.length ? ['', 'could not keep:', ...r.lost.map((k) => `  - ${k}`)] : []),
    '',
    'start the collector; devices send again what the backup lacks when its answers tell them, and polled devices are polled at start',
  ].join('\n');
}

export const backupCommands: Command[] = [
  {
    name: 'backup',
    usage: 'outpost backup [FILE] [--with-keys] [--quiet]',
    summary: 'Make an online, consistent backup of the store (mode 0600) while devices report; without FILE, into backup.dir. --with-keys adds the private and secret keys',
    options: { 'with-keys': { type: 'boolean' }, ...quietOption },
    async run(ctx) {
      const file = ctx.positionals[0];
      const body = { ...(file ? { file: resolve(file) } : {}), ...(ctx.values['with-keys'] ? { withKeys: true } : {}) };
      const r = (await withProgress(commandProgress(ctx, 'backup', 'pages'), (p) =>
        ctx.api((api) => api('POST', '/backups', body, { onProgress: (e) => p.update(e) })),
      )) as BackupResult;
      ctx.output(r, () =>
        [
          `backup written to ${r.file} (${mb(r.bytes)}, migration ${r.schemaVersion}, events up to ${r.eventHead.id}, ${(r.durationMs / 1000).toFixed(1)} s)`,
          r.withKeys
            ? `it holds the keys (${r.keys.join(', ')}): guard it as you guard data/keys`
            : 'it holds no keys: restored where data/keys is lost, it cannot bring back the collector identity nor open the sealed device passwords and cloud credentials (see the README)',
        ].join('\n'),
      );
    },
  },
  {
    name: 'backups list',
    usage: 'outpost backups list',
    summary: 'List the scheduled backups in backup.dir, newest first',
    async run(ctx) {
      const r = (await ctx.api((api) => api('GET', '/backups'))) as { dir: string; lastSuccessAt: string | null; backups: BackupListing[] };
      ctx.output(r, () =>
        r.backups.length
          ? [`${r.backups.length} backup(s) in ${r.dir}`, ...r.backups.map((b) => `${b.modifiedAt}  ${mb(b.bytes).padStart(10)}  ${b.file}`)].join('\n')
          : `no scheduled backups in ${r.dir} yet`,
      );
    },
  },
  {
    name: 'restore',
    usage: 'outpost restore FILE [--quiet]',
    summary: 'Put a backup in place of the store, with the collector stopped: checks it first, keeps the replaced store aside, keeps newer keys and the higher time floor, starts a new epoch',
    options: quietOption,
    async run(ctx) {
      const file = str(ctx.positionals[0]);
      if (!file) throw new CliError('name the backup file: outpost restore FILE', 2);
      const config = ctx.config();
      const { restoreBackup } = await import('../../backup/restore.js');
      const r = await withProgress(commandProgress(ctx, 'restore', 'steps'), async (p) =>
        restoreBackup({ dataDir: config.dataDir, file: resolve(file), now: () => systemClock.now(), actor: 'cli', onProgress: (e) => p.update(e) }),
      );
      ctx.output(r, () => renderRestore(r));
    },
  },
];
