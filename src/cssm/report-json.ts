import { scanRum } from '../rum/scan.js';

/**
 * A stored RUM report as the JSON text the device wrote: a polled report is kept as that JSON
 * already; an imported one as its <RUMReport> element, whose CDATA holds it. Nothing is parsed
 * and written again: the bytes go to Cisco's cloud as the device gave them.
 */
export function reportJson(body: string): string {
  if (!body.trimStart().startsWith('<')) return body;
  const scanned = scanRum(body);
  const only = scanned.elements.length === 1 && scanned.problems.length === 0 ? scanned.elements[0] : undefined;
  if (!only) throw new Error('a stored RUM report that is not one <RUMReport> element');
  return only.content;
}
