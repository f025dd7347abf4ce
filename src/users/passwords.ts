import { hash, verify, Algorithm } from '@node-rs/argon2';

/** Passwords an operator can remember and an attacker cannot guess quickly enough. */
export const MIN_PASSWORD = 12;

// argon2id with OWASP's recommended minimum (19 MiB, 2 passes): hashed off the main thread.
const OPTIONS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => hash(password, OPTIONS);

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** A hash of a password nobody has: checked against when the user does not exist, so both take as long. */
let decoy: Promise<string> | undefined;
export const decoyHash = (): Promise<string> => (decoy ??= hashPassword('outpost-decoy-password-never-used'));
