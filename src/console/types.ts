/** The API's shapes the console's pages share (each page declares what only it reads). */

export interface Va {
  id: string;
  name: string;
}

/** A device as GET /devices and GET /devices/:id answer. */
export interface Device {
  id: string;
  vaId: string;
  udi: { pid: string; serial: string };
  udis: string[];
  hostname: string;
  softwareVersion: string;
  status: 'active' | 'stale' | 'deregistered';
  source: 'registered' | 'rum';
  pendingRekey: { since: string; reason: 'new_key' | 'claim_keyless' | 'revive' } | null;
  registeredAt: string;
  lastSeenAt: string | null;
  lastSeq: number | null;
  /** Local labels (name and colour); they never leave the site. */
  labels: { name: string; colour: string }[];
}
