import type { Services } from '../services.js';
import { LabelService } from './service.js';

const built = new WeakMap<Services, LabelService>();

/**
 * The label service of a collector's services, made on first use: labels touch nothing the
 * rest of the collector builds on, so they need no place in its start-up.
 */
export function labelService(s: Services): LabelService {
  let l = built.get(s);
  if (!l) built.set(s, (l = new LabelService(s.db, s.time, s.events, s.accounts, s.devices.repo)));
  return l;
}
