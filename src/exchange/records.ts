/**
 * The records of each payload, as they cross the air gap. One JSON object a line; a security
 * reviewer reads them with zcat and jq. Field names are the contract between the two sides.
 */
export const PAYLOAD = {
  reports: 'reports.ndjson.gz',
  devices: 'devices.ndjson.gz',
  virtualAccounts: 'virtual-accounts.ndjson.gz',
  usageSummary: 'usage-summary.ndjson.gz',
  acks: 'acks.ndjson.gz',
  entitlements: 'entitlements.ndjson.gz',
  policy: 'policy.ndjson.gz',
  vaConfirmations: 'va-confirmations.ndjson.gz',
  /** Format version 2: usage bundles, the provisional license transfers (TransferRecord). */
  transfers: 'transfers.ndjson.gz',
  /** Format version 2: responses, the upstream's answer to each transfer (TransferOutcomeRecord). */
  transferOutcomes: 'transfer-outcomes.ndjson.gz',
} as const;

/**
 * A report not yet acknowledged. `ref` is the collector's own handle, echoed in the ACK;
 * `udi` is the device's (the devices payload maps it to the collector's device id).
 */
export interface ReportRecord {
  ref: number;
  udi: string;
  source: 'device' | 'rum';
  reportId: string;
  seq: number | null;
  /** Unix seconds. */
  generatedAt: number | null;
  tags: string[];
  measurements: number;
  /** The report as received; RUM reports byte for byte as the device wrote them. */
  body: string;
}

export interface DeviceRecord {
  deviceId: string;
  udi: string;
  udis: string[];
  vaId: string;
  hostname: string;
  softwareVersion: string;
  status: string;
  registeredAt: string;
  lastSeenAt: string | null;
}

export interface VaRecord {
  vaId: string;
  name: string;
  origin: 'local' | 'upstream';
}

export interface UsageSummaryRecord {
  vaId: string;
  tag: string;
  inUse: number;
  devices: number;
}

/**
 * ACKs for a run of reports: every report of the answered bundle whose ref lies in
 * [from, to] has this status. Refs in a bundle ascend, so runs keep 3M ACKs to a few lines.
 */
export interface AckRecord {
  from: number;
  to: number;
  status: 'accepted' | 'rejected';
  reason: string | null;
}

export interface EntitlementLineRecord {
  tag: string;
  displayName: string;
  kind: 'perpetual' | 'subscription' | 'term' | 'unlimited';
  quantity: number;
  startsAt: string;
  endsAt: string | null;
}

export interface EntitlementSnapshotRecord {
  vaId: string;
  vaName: string;
  version: number;
  lines: EntitlementLineRecord[];
}

export interface PolicyRecord {
  version: number;
  reportingIntervalDays: number;
  ackDueDays: number;
}

export interface VaConfirmationRecord {
  vaId: string;
  name: string;
  status: 'confirmed' | 'refused';
  reason: string | null;
}

/**
 * A license transfer between two VAs of the account, provisional at the collector, sent in
 * every usage bundle until the upstream answers it. `lines` are what the collector debited
 * (soonest-ending first); the upstream debits its own ledger by the same rule.
 */
export interface TransferRecord {
  transferId: string;
  fromVaId: string;
  toVaId: string;
  tag: string;
  quantity: number;
  reason: string | null;
  requestedAt: string;
  lines: { kind: 'perpetual' | 'subscription' | 'term' | 'unlimited'; quantity: number; startsAt: string; endsAt: string | null }[];
}

export interface TransferOutcomeRecord {
  transferId: string;
  status: 'confirmed' | 'refused';
  reason: string | null;
}
