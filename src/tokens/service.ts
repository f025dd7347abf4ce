import { randomBytes } from 'node:crypto';
import { sha256hex } from '../shared/hash.js';
import { newId } from '../shared/ids.js';
import { DAY_MS, toIso, type Clock } from '../shared/clock.js';
import { badRequest, conflict, forbidden, notFound } from '../shared/errors.js';
import type { Db } from '../store/open.js';
import type { EventService } from '../events/service.js';
import type { AccountService } from '../accounts/service.js';
import { TokenRepository, type TokenRow } from './repository.js';

export type TokenState = 'active' | 'expired' | 'revoked' | 'used_up';

export interface Token {
  id: string;
  vaId: string;
  description: string;
  expiresAt: string;
  maxUses: number;
  uses: number;
  state: TokenState;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreateTokenInput {
  vaId: string;
  description: string;
  expiresInDays?: number | undefined;
  maxUses?: number | undefined;
}

/** Token secrets carry a recognisable prefix (so a leaked one is easy to grep for) and 256 bits. */
const SECRET_PREFIX = 'opt_';

export class TokenService {
  readonly repo: TokenRepository;
  constructor(
    private db: Db,
    private clock: Clock, // the trusted clock: setting the system clock back never revives a token
    private events: EventService,
    private accounts: AccountService,
  ) {
    this.repo = new TokenRepository(db);
  }

  /** Returns the token with its secret; the secret is stored only as a hash and never shown again. */
  create(input: CreateTokenInput, actor: string): Token & { secret: string } {
    return this.db.transaction(() => {
      const va = this.accounts.require(input.vaId);
      const now = this.clock.now();
      const secret = SECRET_PREFIX + randomBytes(32).toString('base64url');
      const row: TokenRow = {
        id: newId('tok', now),
        va_id: va.id,
        secret_hash: sha256hex(secret),
        description: input.description,
        expires_at: now + (input.expiresInDays ?? 30) * DAY_MS,
        max_uses: input.maxUses ?? 1,
        uses: 0,
        created_at: now,
        revoked_at: null,
      };
      this.repo.insert(row);
      this.events.append('token.created', actor, row.id, va.id, {
        description: row.description,
        expiresAt: toIso(row.expires_at),
        maxUses: row.max_uses,
      });
      return { ...this.toToken(row), secret };
    })();
  }

  list(vaId?: string): Token[] {
    const va = vaId ? this.accounts.require(vaId).id : undefined;
    return this.repo.list(va).map((r) => this.toToken(r));
  }

  revoke(id: string, actor: string): Token {
    return this.db.transaction(() => {
      const r = this.repo.get(id);
      if (!r) throw notFound('token', id);
      if (r.revoked_at !== null) throw conflict('already_revoked', `token ${id} is already revoked`, { token: id });
      this.repo.revoke(id, this.clock.now());
      this.events.append('token.revoked', actor, id, r.va_id, {});
      return this.toToken(this.repo.get(id)!);
    })();
  }

  /**
   * Checks a presented secret and counts one use. Call inside the registration transaction,
   * so a refused registration does not spend a use.
   */
  /** Throws what consume() would, without using the token: a cheap check before costly work. */
  check(secret: unknown): void {
    this.usable(secret);
  }

  consume(secret: unknown): TokenRow {
    const r = this.usable(secret);
    this.repo.use(r.id);
    return r;
  }

  private usable(secret: unknown): TokenRow {
    if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) {
      throw badRequest('token_malformed', 'the registration token is missing or malformed', { field: 'token' });
    }
    const r = this.repo.bySecretHash(sha256hex(secret));
    if (!r) throw forbidden('token_unknown', 'the registration token is not known to this collector');
    const state = this.state(r);
    if (state !== 'active') {
      const why = { expired: 'has expired', revoked: 'has been revoked', used_up: 'has reached its use limit' }[state];
      throw forbidden(`token_${state}`, `the registration token ${why}`, { token: r.id });
    }
    return r;
  }

  private state(r: TokenRow): TokenState {
    if (r.revoked_at !== null) return 'revoked';
    if (r.expires_at <= this.clock.now()) return 'expired';
    if (r.uses >= r.max_uses) return 'used_up';
    return 'active';
  }

  private toToken(r: TokenRow): Token {
    return {
      id: r.id,
      vaId: r.va_id,
      description: r.description,
      expiresAt: toIso(r.expires_at)!,
      maxUses: r.max_uses,
      uses: r.uses,
      state: this.state(r),
      createdAt: toIso(r.created_at)!,
      revokedAt: toIso(r.revoked_at),
    };
  }
}
