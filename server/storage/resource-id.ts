/**
 * The id under which a span's resource and instrumentation scope are stored once per tenant
 * (migrations/000005, table `resources`): the first 64 bits of an MD5 over the row's resource JSON,
 * scope name, scope version and scope JSON, joined by newlines (none of them can hold a raw
 * newline: JSON escapes it and decode keeps names as they are, so the join is unambiguous — a
 * name with a newline only makes a different, equally valid text).
 *
 * Spans of one ResourceSpans / ScopeSpans share the very same strings, so the resolver remembers
 * the last tuple it hashed: a batch costs one hash per resource group, not one per span.
 */
import { createHash } from 'node:crypto';
import type { SpanRow } from '../decode/types.js';

export type ResourceFields = Pick<SpanRow, 'resourceAttributes' | 'scopeName' | 'scopeVersion' | 'scopeAttributes'>;

export function computeResourceId(r: ResourceFields): bigint {
  const digest = createHash('md5')
    .update(`${r.resourceAttributes}\n${r.scopeName}\n${r.scopeVersion}\n${r.scopeAttributes}`)
    .digest();
  return digest.readBigInt64BE(0);
}

/** Memoizes computeResourceId for runs of rows that share one resource and scope. */
export class ResourceIdResolver {
  #last: ResourceFields | undefined;
  #lastId = 0n;

  /** The resource fields of the last row resolved (its own strings, not the row). */
  get last(): ResourceFields | undefined {
    return this.#last;
  }

  idOf(row: ResourceFields): bigint {
    const last = this.#last;
    if (
      last === undefined ||
      last.resourceAttributes !== row.resourceAttributes ||
      last.scopeName !== row.scopeName ||
      last.scopeVersion !== row.scopeVersion ||
      last.scopeAttributes !== row.scopeAttributes
    ) {
      // Only the four strings are kept, not the row (its buffers are the writer's to release).
      this.#last = {
        resourceAttributes: row.resourceAttributes,
        scopeName: row.scopeName,
        scopeVersion: row.scopeVersion,
        scopeAttributes: row.scopeAttributes,
      };
      this.#lastId = computeResourceId(row);
    }
    return this.#lastId;
  }
}
