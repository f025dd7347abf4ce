/**
 * The oldest Node.js the code runs on, and why: crypto.hash (one-shot SHA-256 of reports)
 * arrived in 20.12. package.json's "engines" says the same; a test keeps the two in step.
 */
export const MIN_NODE_20 = [20, 12] as const;

/** Node 20 from 20.12, and 22 or later (21 is end of life and not tested). */
export function nodeSupported(version: string): boolean {
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
  if (major === 20) return minor >= MIN_NODE_20[1];
  return major >= 22;
}
