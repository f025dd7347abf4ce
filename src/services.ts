import type { SessionService } from './users/sessions.js';
import type { LoginThrottle } from './http/rate-limit.js';
import type { UserService } from './users/service.js';
import type { UpstreamSync } from './sync/upstream-sync.js';
import type { CloudSync } from './cssm/cloud-sync.js';
import type { CloudCredentials } from './cssm/credentials.js';
import type { CloudPositions } from './cssm/positions.js';
import type { CloudReservations } from './cssm/reservations.js';
import type { Destinations } from './usage/destinations.js';
import type { Config } from './config/schema.js';
import type { Db } from './store/open.js';
import type { Identity } from './identity/identity.js';
import type { Logger } from './shared/logger.js';
import type { Clock } from './shared/clock.js';
import type { AccountService } from './accounts/service.js';
import type { TokenService } from './tokens/service.js';
import type { DeviceService } from './devices/service.js';
import type { LicenseService } from './licenses/service.js';
import type { EventService } from './events/service.js';
import type { RefusalCounter } from './events/refusals.js';
import type { CheckpointService } from './events/checkpoints.js';
import type { AlertService } from './alerts/service.js';
import type { TrustedTime } from './time/trusted-time.js';
import type { PolicyService } from './policy/service.js';
import type { IngestService } from './usage/ingest.js';
import type { AckReader } from './usage/acks.js';
import type { RumImporter } from './rum/import.js';
import type { ExchangeState } from './exchange/state.js';
import type { ExportService } from './exchange/export.js';
import type { ImportService } from './exchange/import.js';
import type { EnrollmentService } from './exchange/enrollment.js';
import type { ExchangeJobs } from './exchange/jobs.js';
import type { KeyRotationService } from './exchange/key-rotation.js';
import type { SyncService } from './sync/service.js';
import type { SyncEnrollment } from './sync/enroll.js';
import type { PolledDeviceService } from './cisco/polled-devices.js';
import type { DevicePoller } from './cisco/poller.js';
import type { PortalExport } from './cisco/portal-export.js';
import type { PortalAcks } from './cisco/portal-acks.js';
import type { AckDelivery } from './cisco/ack-delivery.js';
import type { CollectorMetrics } from './metrics/collector-metrics.js';
import type { WalCheckpointer } from './store/wal-checkpointer.js';
import type { LabelService } from './labels/service.js';
import type { AccessRequestService } from './access/service.js';
import type { Readiness } from './metrics/readiness.js';
import type { BackupService } from './backup/service.js';
import type { ReportPruner } from './retention/pruner.js';
import type { UsageHistory } from './history/service.js';
import type { DeviceRequestSummary } from './device-api/request-summary.js';
import type { NotifyService } from './notify/service.js';

/** Everything the composition root wires, handed to routes and commands. */
export interface Services {
  config: Config;
  db: Db;
  identity: Identity;
  logger: Logger;
  systemClock: Clock;
  time: TrustedTime;
  events: EventService;
  refusals: RefusalCounter;
  /** Signed checkpoints of the audit trail's head. */
  checkpoints: CheckpointService;
  alerts: AlertService;
  accounts: AccountService;
  tokens: TokenService;
  devices: DeviceService;
  licenses: LicenseService;
  /** Daily in-use per VA and tag, and the shortage forecast drawn from it. */
  history: UsageHistory;
  policy: PolicyService;
  ingest: IngestService;
  acks: AckReader;
  users: UserService;
  sessions: SessionService;
  loginThrottle: LoginThrottle;
  /** The connected exchange of the configured upstream kind: `sync` (Outpost) or `cloud.sync` (Cisco). */
  upstreamSync: UpstreamSync;
  cloud: { sync: CloudSync; credentials: CloudCredentials; positions: CloudPositions; reservations: CloudReservations };
  destinations: Destinations;
  rum: RumImporter;
  exchange: { state: ExchangeState; exporter: ExportService; importer: ImportService; enrollment: EnrollmentService; jobs: ExchangeJobs; rotation: KeyRotationService };
  /** The connected exchange with an Outpost upstream. */
  sync: SyncService;
  syncEnrollment: SyncEnrollment;
  /** IOS-XE devices polled over their Smart Licensing REST API. */
  cisco: { devices: PolledDeviceService; poller: DevicePoller; portal: PortalExport; acks: PortalAcks; delivery: AckDelivery };
  /** Prometheus metrics (/metrics). */
  metrics: CollectorMetrics;
  /** Online backups, on demand and scheduled. */
  backups: BackupService;
  /** What /readyz checks. */
  readiness: Readiness;
  /** WAL checkpoints on a worker thread, started with the server. */
  walCheckpoints: WalCheckpointer;
  /** Local labels on devices and entitlement lines. */
  labels: LabelService;
  /** Requests for a role on a VA, and their settling. */
  access: AccessRequestService;
  /** Retention of raw reports: settled old reports pruned, tombstones kept. */
  retention: ReportPruner;
  /** Device requests, logged as one summary line per interval. */
  deviceRequests: DeviceRequestSummary;
  /** Notifications of alerts: e-mail subscriptions, syslog and webhook sinks, the outbox and its delivery loop. */
  notify: NotifyService;
  /** Evaluates every scheduled alert condition (devices, tokens, entitlements, shortage, clock). */
  evaluateAlerts(): Promise<void>;
  /**
   * The collector cannot safely go on (a failed fdatasync: what is on disk is unknown). A running
   * collector logs the cause once, stops with a short grace and exits non-zero, so that the
   * service manager restarts it and SQLite recovers; without a server (tests, the command on
   * the database) it logs. Call it through this object, not a copy taken earlier: the running
   * collector replaces it after the services are built.
   */
  fatal: (cause: Error) => void;
}
