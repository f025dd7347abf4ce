import { join } from 'node:path';

/** The upstream service's local socket, through which its own commands act while it runs. */
export const upstreamSocketFile = (dataDir: string) => join(dataDir, 'upstream.sock');
