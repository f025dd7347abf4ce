import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { route, type Route } from '../http/route.js';
import { forbidden } from '../shared/errors.js';
import { throttled } from '../shared/progress.js';

export const backupRoutes: Route[] = [
  route({
    method: 'post', path: '/backups', permission: 'admin',
    summary: 'Make an online backup of the store now (into backup.dir, or to a file named over the local socket); --with-keys adds the private keys',
    body: z.strictObject({
      file: z.string().min(1).max(4096).refine(isAbsolute, 'an absolute path on the collector\'s host').optional(),
      withKeys: z.boolean().optional(),
    }),
    status: 201,
    progress: true,
    handler: async ({ services, body, actor, remote, progress }) => {
      // A path is a place on the collector's host: only a command run on that host names one.
      if (body.file && remote !== 'socket') {
        throw forbidden('file_over_network', 'a backup file can be named only by `outpost backup` on the collector\'s host; over the network, leave out file to write into backup.dir');
      }
      const onProgress = throttled(progress);
      try {
        if (!body.file) return (await services.backups.scheduled(actor, onProgress, body.withKeys)).backup;
        return await services.backups.backup({ file: body.file, withKeys: body.withKeys ?? false, actor, onProgress });
      } finally {
        onProgress.flush();
      }
    },
  }),
  route({
    method: 'get', path: '/backups', permission: 'admin',
    summary: 'The scheduled backups in backup.dir, newest first, and the last success',
    handler: ({ services }) => ({
      dir: services.backups.dir,
      lastSuccessAt: services.backups.lastSuccessAt === null ? null : new Date(services.backups.lastSuccessAt).toISOString(),
      backups: services.backups.list(),
    }),
  }),
];
