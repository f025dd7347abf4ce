import { join } from 'node:path';
import type { Config } from '../config/schema.js';

export const databaseFile = (config: Config) => join(config.dataDir, 'outpost.db');
export const socketFile = (config: Config) => join(config.dataDir, 'outpost.sock');
