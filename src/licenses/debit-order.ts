/**
 * The order in which a transfer debits the source's lines valid now: the line that ends soonest
 * first, perpetual lines (no end) last, so that what the VA gives away is what is worth least to
 * it; among lines ending together, the one that started last (its price is still to be earned
 * back least). Unlimited lines are never debited: they have no quantity to move.
 */
export function debitOrder(a: { ends_at: number | null; starts_at: number; id: string }, b: { ends_at: number | null; starts_at: number; id: string }): number {
  const ea = a.ends_at ?? Number.POSITIVE_INFINITY;
  const eb = b.ends_at ?? Number.POSITIVE_INFINITY;
  if (ea !== eb) return ea - eb;
  if (a.starts_at !== b.starts_at) return b.starts_at - a.starts_at;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
