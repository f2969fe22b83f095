/**
 * The contract between the fault suite's runner (run.ts) and its scenarios (scenarios/*.ts).
 *
 * A scenario starts what it needs (a private PostgreSQL, a private Redis, one or more tracehouse
 * processes), drives a real exporter or the load generator with unique span ids, records every
 * request's outcome, and ends with the accounting identity of reference/reliability.md:
 *   acknowledged ⊆ stored, no duplicate rows, received = accepted + rejected + refused.
 * It never stops the shared PostgreSQL (5432) or Redis (6379), and stops everything it started.
 *
 * Each file under scenarios/ default-exports one `Scenario` or an array of them; the runner finds
 * them by listing the folder, so adding a scenario touches no other file.
 */

export type FaultMode = 'smoke' | 'full';

export interface ScenarioContext {
  /** smoke: seconds and a few trials, run by CI; full: the catalog's sizes, run on purpose. */
  mode: FaultMode;
  /** Progress lines for the operator; not part of the report. */
  log(message: string): void;
}

export interface Accounting {
  /** Spans in requests / frames the client created (each span counted once, however often resent). */
  sent: number;
  /** Spans the server acknowledged (HTTP 200 or a WebSocket ack). */
  acknowledged: number;
  /** Spans refused with a retryable answer at their last attempt and never acknowledged. */
  refused: number;
  /** Spans rejected permanently (4xx other than 429, or partial success). */
  rejected: number;
  /** Distinct acknowledged-or-not span keys found in PostgreSQL at the end. */
  stored: number;
  /** Acknowledged span keys missing from PostgreSQL: must be 0. */
  acknowledgedLost: number;
  /** Rows beyond the first for any span key: must be 0. */
  duplicates: number;
}

export interface ScenarioResult {
  /** Stable id, kebab-case: 'overload-10x', 'postgres-immediate-restart'. */
  id: string;
  /** One line a reader understands without the code. */
  title: string;
  /** Row numbers of the fault catalog in reference/reliability.md (b) this covers. */
  catalogRows: number[];
  /** Absent for scenarios where no spans flow (e.g. a pure decoder fuzz run). */
  accounting?: Accounting;
  /** Answers by HTTP status (or 'ws-1013', 'connection-error'), counted per attempt. */
  statuses: Record<string, number>;
  /** Peak RSS of the tracehouse process(es) in MB, when measured. */
  peakRssMb?: number;
  /** Seconds from the fault ending to normal service, when the scenario has a recovery. */
  recoverySeconds?: number;
  /** Further figures for the report table: name → value with its unit in the name. */
  figures: Record<string, number | string>;
  /** What was asserted and failed; empty means the scenario passed. */
  failures: string[];
  durationSeconds: number;
}

export interface Scenario {
  id: string;
  title: string;
  catalogRows: number[];
  run(context: ScenarioContext): Promise<ScenarioResult>;
}
