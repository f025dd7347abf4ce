import { conflict } from '../shared/errors.js';
import type { CssmClient } from './client.js';

export interface CssmVirtualAccount {
  name: string;
  id: string;
}

export interface CssmAccount {
  domain: string;
  accountId: string;
  name: string | null;
  virtualAccounts: CssmVirtualAccount[];
}

/** A local VA, the CSSM virtual account it maps to, and why not when it does not. */
export interface VaMapping {
  vaId: string;
  vaName: string;
  cssm: CssmVirtualAccount | null;
  problem: string | null;
}

export interface ResolvedAccount {
  account: CssmAccount;
  mappings: VaMapping[];
  /** CSSM virtual accounts no local VA maps to. */
  unmappedCssm: string[];
}

const text = (v: unknown): string | null => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : null);

/**
 * The accounts search answer (`{"accounts": [{domain, account_id, virtual_accounts: [{name,
 * virtual_account_id}]}]}` in Cisco's published sample), read leniently: unknown fields are
 * ignored, an entry without a domain or an id is skipped.
 */
export function parseAccounts(json: unknown): CssmAccount[] {
  const list = Array.isArray(json) ? json : (json as { accounts?: unknown } | null)?.accounts;
  if (!Array.isArray(list)) return [];
  const out: CssmAccount[] = [];
  for (const a of list as Record<string, unknown>[]) {
    const domain = text(a?.domain);
    const accountId = text(a?.account_id ?? a?.accountId);
    if (!domain || !accountId) continue;
    const vas = Array.isArray(a.virtual_accounts ?? a.virtualAccounts) ? ((a.virtual_accounts ?? a.virtualAccounts) as Record<string, unknown>[]) : [];
    out.push({
      domain, accountId, name: text(a.account_name ?? a.name),
      virtualAccounts: vas.flatMap((v) => {
        const name = text(v?.name);
        const id = text(v?.virtual_account_id ?? v?.virtualAccountId);
        return name && id ? [{ name, id }] : [];
      }),
    });
  }
  return out;
}

export async function searchAccounts(client: CssmClient): Promise<CssmAccount[]> {
  return parseAccounts(await client.call('GET', '/v2/accounts/search'));
}

/**
 * Maps the local VAs onto the smart account's virtual accounts by cisco.cloud.virtualAccounts
 * (local VA name → CSSM VA name). CSSM owns the list: a local VA not named there, or naming a
 * CSSM VA the account does not hold, is unmapped and its reports wait, with the reason shown.
 */
export function resolveAccount(accounts: CssmAccount[], domain: string, map: Record<string, string>, localVas: { id: string; name: string }[]): ResolvedAccount {
  if (!domain) throw conflict('no_smart_account', 'cisco.cloud.domain is not set: name the smart account\'s domain (outpost cisco accounts lists the ones the credentials reach)');
  const account = accounts.find((a) => a.domain.toLowerCase() === domain.toLowerCase());
  if (!account) {
    const reach = accounts.map((a) => a.domain).join(', ') || 'none';
    throw conflict('smart_account_not_found', `the credentials do not reach the smart account ${domain} (they reach: ${reach})`);
  }
  const targets = new Map<string, string>();
  const mappings = localVas.map((va): VaMapping => {
    const want = map[va.name];
    if (!want) return { vaId: va.id, vaName: va.name, cssm: null, problem: `not mapped: add "${va.name}": "<CSSM virtual account>" to cisco.cloud.virtualAccounts` };
    const cssm = account.virtualAccounts.find((v) => v.name === want) ?? null;
    if (!cssm) return { vaId: va.id, vaName: va.name, cssm: null, problem: `mapped to ${want}, which the smart account ${account.domain} does not hold` };
    const other = targets.get(cssm.id);
    if (other) return { vaId: va.id, vaName: va.name, cssm: null, problem: `mapped to ${want}, which ${other} maps to already: one local VA per CSSM virtual account` };
    targets.set(cssm.id, va.name);
    return { vaId: va.id, vaName: va.name, cssm, problem: null };
  });
  return { account, mappings, unmappedCssm: account.virtualAccounts.filter((v) => !targets.has(v.id)).map((v) => v.name) };
}
