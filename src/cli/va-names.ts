import type { Api } from './client.js';

/**
 * VA ids are what the API speaks; a person reads names. A list fetches the names once, with
 * its rows, and shows a name where it has one (an id it does not know stays as it is).
 */
export async function vaNames(api: Api): Promise<(id: string | null | undefined) => string | null> {
  const r = (await api('GET', '/virtual-accounts')) as { items: { id: string; name: string }[] };
  const names = new Map(r.items.map((v) => [v.id, v.name]));
  return (id) => (id ? (names.get(id) ?? id) : null);
}
