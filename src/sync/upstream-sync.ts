/**
 * What the collector's lifecycle asks of the connected exchange, whichever kind of upstream it
 * talks to (an Outpost upstream over outpost-sync, or Cisco's cloud over its REST API): one run
 * at a time, on the schedule and on demand, a missed run at start, a bounded stop, its alerts
 * and its status.
 */
export interface UpstreamSync {
  readonly enabled: boolean;
  start(actor: string): { started: boolean };
  run(actor: string): Promise<unknown>;
  scheduled(): Promise<unknown>;
  catchUp(): void;
  tidy(): void;
  stop(): Promise<void>;
  idle(): Promise<void>;
  evaluateAlerts(): void;
  status(): object;
}
