import type { Db } from '../store/open.js';

export interface TokenRow {
  id: string;
  va_id: string;
  secret_hash: string;
  description: string;
  expires_at: number;
  max_uses: number;
  uses: number;
  created_at: number;
  revoked_at: number | null;
}

export class TokenRepository {
  private bySecretStmt;
  private useStmt;
  constructor(private db: Db) {
    this.bySecretStmt = db.prepare('SELECT * FROM tokens WHERE secret_hash = ?');
    this.useStmt = db.prepare('UPDATE tokens SET uses = uses + 1 WHERE id = ?');
  }
  insert(r: TokenRow): void {
    this.db
      .prepare(
        'INSERT INTO tokens (id, va_id, secret_hash, description, expires_at, max_uses, uses, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(r.id, r.va_id, r.secret_hash, r.description, r.expires_at, r.max_uses, r.uses, r.created_at, r.revoked_at);
  }
  get(id: string): TokenRow | undefined {
    return this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRow | undefined;
  }
  bySecretHash(hash: string): TokenRow | undefined {
    return this.bySecretStmt.get(hash) as TokenRow | undefined;
  }
  use(id: string): void {
    this.useStmt.run(id);
  }
  revoke(id: string, at: number): void {
    this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id);
  }
  list(vaId: string | undefined): TokenRow[] {
    return (
      vaId
        ? this.db.prepare('SELECT * FROM tokens WHERE va_id = ? ORDER BY created_at DESC').all(vaId)
        : this.db.prepare('SELECT * FROM tokens ORDER BY created_at DESC').all()
    ) as TokenRow[];
  }
  expiringBetween(from: number, to: number): TokenRow[] {
    return this.db
      .prepare('SELECT * FROM tokens WHERE revoked_at IS NULL AND uses < max_uses AND expires_at > ? AND expires_at <= ?')
      .all(from, to) as TokenRow[];
  }
}
