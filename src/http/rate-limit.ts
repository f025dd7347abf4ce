import type { Config } from '../config/schema.js';
import { AppError } from '../shared/errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets keyed by a string (a device id, an address, an account). Each key holds up to
 * `burst` tokens and gets `perMinute` back a minute, evenly. On the hot path a request costs a
 * Map look-up and two number writes; the one allocation is a key's first bucket. Buckets that
 * have filled up again say nothing a fresh one would not, so a sweep, at most once per refill
 * time, drops them: the map holds only the keys seen recently.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly refillMs: number;
  private nextSweep: number;

  constructor(
    readonly perMinute: number,
    private readonly now: () => number,
    readonly burst = perMinute,
  ) {
    this.perMs = perMinute / 60_000;
    this.refillMs = burst / this.perMs;
    this.nextSweep = now() + this.refillMs;
  }

  /** Takes a token for `key`: 0 when there was one, else the whole seconds until there is (nothing taken). */
  take(key: string): number {
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return this.secondsUntilOne(b);
  }

  /** 0 when `key` has a token, else the whole seconds until it has one; takes nothing. */
  wait(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return 0;
    return this.refill(key).tokens >= 1 ? 0 : this.secondsUntilOne(b);
  }

  /** Forgets `key`: it starts again with a full bucket. */
  reset(key: string): void {
    this.buckets.delete(key);
  }

  /** Keys held now (tests watch the sweep). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(key: string): Bucket {
    const t = this.now();
    if (t >= this.nextSweep) this.sweep(t);
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else if (t > b.at) {
      // A clock that went back refills nothing until it passes the last request again.
      b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perMs);
      b.at = t;
    }
    return b;
  }

  private secondsUntilOne(b: Bucket): number {
    // Less a hair: 1/3 of a token a minute is 180 s, not the 181 that float rounding makes of it.
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000 - 1e-9));
  }

  private sweep(t: number): void {
    this.nextSweep = t + this.refillMs;
    for (const [key, b] of this.buckets) {
      if (b.tokens + (t - b.at) * this.perMs >= this.burst) this.buckets.delete(key);
    }
  }
}

/** The device API's limits: per device (signed requests) and per address (every request). */
export interface DeviceRateLimits {
  device: RateLimiter;
  address: RateLimiter;
}

export function deviceRateLimits(rate: Config['rate'], now: () => number): DeviceRateLimits {
  return { device: new RateLimiter(rate.devicePerMinute, now), address: new RateLimiter(rate.addressPerMinute, now) };
}

/** The 429 answer: `retryAfterSeconds` becomes the Retry-After header. */
export function tooManyRequests(what: string, setting: string, retryAfterSeconds: number): AppError {
  return new AppError(429, 'rate_limited', `too many requests from this ${what} (${setting}); retry after ${retryAfterSeconds} s`, { retryAfterSeconds });
}

/**
 * Failed operator logins, slowed per account and per address, apart from every other limit: an
 * account under attack is not locked out by a busy address, and one address trying many
 * accounts meets its own limit. The login route asks `wait` before it checks a password (a
 * refused try costs no hash), and reports each failure; a success clears the account's count
 * but not the address's.
 */
export class LoginThrottle {
  private readonly accounts: RateLimiter;
  private readonly addresses: RateLimiter;

  constructor(rate: Pick<Config['rate'], 'loginFailuresPerAccount' | 'loginFailuresPerAddress' | 'loginWindowMinutes'>, now: () => number) {
    const w = rate.loginWindowMinutes;
    this.accounts = new RateLimiter(rate.loginFailuresPerAccount / w, now, rate.loginFailuresPerAccount);
    this.addresses = new RateLimiter(rate.loginFailuresPerAddress / w, now, rate.loginFailuresPerAddress);
  }

  /** Before a login is tried: null when it may be, else the 429 to answer (which of the two limits, and when to retry). */
  check(account: string, address: string): AppError | null {
    const byAccount = this.accounts.wait(account);
    if (byAccount) {
      return new AppError(429, 'login_locked', `too many failed logins for this account; it is locked for ${byAccount} s more`, { retryAfterSeconds: byAccount });
    }
    const byAddress = this.addresses.wait(address);
    if (byAddress) {
      return new AppError(429, 'rate_limited', `too many failed logins from this address; retry after ${byAddress} s`, { retryAfterSeconds: byAddress });
    }
    return null;
  }

  failed(account: string, address: string): void {
    this.accounts.take(account);
    this.addresses.take(address);
  }

  succeeded(account: string): void {
    this.accounts.reset(account);
  }
}
