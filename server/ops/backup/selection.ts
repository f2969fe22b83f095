/** Which day partitions a command means: `2026-01-15` and `spans_20260115` both name the same one. */
import { partitionName, dayOf } from '../../storage/partitions.js';
import { OpsError } from './reporter.js';

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const NAME = /^[A-Za-z0-9_]+$/;

/** Partition names for the given selectors, in the order given, without duplicates. */
export function partitionNamesFor(selectors: readonly string[]): string[] {
  const names: string[] = [];
  for (const selector of selectors) {
    let name: string;
    if (DAY.test(selector)) {
      const ms = Date.parse(`${selector}T00:00:00Z`);
      if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== selector) {
        throw new OpsError(`'${selector}' is not a calendar day (YYYY-MM-DD)`, 2);
      }
      name = partitionName(dayOf(ms));
    } else if (NAME.test(selector)) {
      name = selector;
    } else {
      throw new OpsError(
        `'${selector.slice(0, 60)}' is neither a day (YYYY-MM-DD) nor a partition name (spans_YYYYMMDD)`,
        2,
      );
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** Picks the wanted items by name; OpsError listing what exists when one is unknown. */
export function pickPartitions<T extends { name: string }>(
  available: readonly T[],
  wanted: readonly string[],
  where: string,
): T[] {
  const byName = new Map(available.map((p) => [p.name, p]));
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) {
    const known = available.map((p) => p.name);
    const shown = known.length > 12 ? [...known.slice(0, 6), '…', ...known.slice(-6)] : known;
    throw new OpsError(
      `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in ${where}; ` +
        `it has ${known.length === 0 ? 'no partitions' : shown.join(', ')}`,
    );
  }
  return wanted.map((name) => byName.get(name)!);
}

/** A pg_dump --table pattern that matches exactly schema.name. */
export function exactTablePattern(schema: string, name: string): string {
  if (!NAME.test(schema) || !NAME.test(name)) throw new OpsError(`unexpected table name ${schema}.${name}`);
  return `"${schema}"."${name}"`;
}
