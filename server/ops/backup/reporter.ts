/**
 * What the ops commands print. Progress lines go to stderr, and only when stderr is a terminal;
 * warnings and errors always go to stderr; the summary goes to stdout at the end. Warnings are kept
 * so the summary can repeat them: at 3 a.m. the last screen is the one that gets read.
 */
import type { Writable } from 'node:stream';

export interface CommandIo {
  stdout: Writable;
  stderr: Writable;
  /** Show progress lines (default: stderr is a TTY). */
  progress?: boolean;
}

export class Reporter {
  readonly warnings: string[] = [];
  readonly #command: string;
  readonly #io: CommandIo;
  readonly #progress: boolean;
  readonly #startedAt = Date.now();

  constructor(command: string, io: CommandIo) {
    this.#command = command;
    this.#io = io;
    this.#progress = io.progress ?? Boolean((io.stderr as Writable & { isTTY?: boolean }).isTTY);
  }

  /** A step in progress, e.g. "[3/12] dumping spans_20260101". */
  progress(message: string): void {
    if (this.#progress) this.#io.stderr.write(`${elapsed(this.#startedAt)} ${message}\n`);
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.#io.stderr.write(`tracehouse ${this.#command}: WARNING: ${message}\n`);
  }

  error(message: string): void {
    this.#io.stderr.write(`tracehouse ${this.#command}: ERROR: ${message}\n`);
  }

  /** Plain output to stdout (plans, lists, summaries). */
  print(text: string): void {
    this.#io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Repeats the warnings at the end of a summary. */
  printWarnings(): void {
    if (this.warnings.length === 0) return;
    this.print(`${this.warnings.length} warning(s):`);
    for (const warning of this.warnings) this.print(`  - ${warning}`);
  }
}

function elapsed(since: number): string {
  return `[${((Date.now() - since) / 1000).toFixed(1).padStart(6)} s]`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A left-aligned text table; numbers right-aligned. */
export function formatTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [
    header,
    ...rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatCount(cell) : cell))),
  ];
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** An error whose message is meant for the operator as is; `exitCode` 1 (problem) or 2 (usage). */
export class OpsError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'OpsError';
    this.exitCode = exitCode;
  }
}

/** A refusal: the problems found before anything was written. */
export function refusal(problems: readonly string[], why = 'refusing to restore'): OpsError {
  return new OpsError(`${why}; nothing was written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

/** Runs `fn` with at most `limit` of them at once; rejects with the first failure (after the rest settle). */
export async function runLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        await fn(items[index], index);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== undefined) throw failure;
}
