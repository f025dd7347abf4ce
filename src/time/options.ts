import type { Config } from '../config/schema.js';

export interface TimeOptions {
  /** How far the system clock may step back below the floor before it is an alert. */
  backwardsToleranceMs: number;
  /** How far the system clock may run ahead of the measured time before it is not believed. */
  forwardToleranceMs: number;
  /** On start, how far past the stored floor the system clock is believed (the downtime is unknown). */
  maxDowntimeMs: number;
  /** How close a verified upstream time must be to the system clock to vouch for it: the signature window. */
  agreementWindowMs: number;
}

export const defaultTimeOptions: TimeOptions = {
  backwardsToleranceMs: 120_000,
  forwardToleranceMs: 120_000,
  maxDowntimeMs: 30 * 86_400_000,
  agreementWindowMs: 300_000,
};

export function timeOptions(config: Config): TimeOptions {
  return {
    backwardsToleranceMs: config.time.backwardsToleranceSeconds * 1000,
    forwardToleranceMs: config.time.forwardToleranceSeconds * 1000,
    maxDowntimeMs: config.time.maxDowntimeDays * 86_400_000,
    agreementWindowMs: config.device.signatureWindowSeconds * 1000,
  };
}
