import { createHash } from 'node:crypto';

export const sha256hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
