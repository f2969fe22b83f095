/**
 * The catalog rows a write refers to: resources (migrations/000005) and attribute sets (000006).
 * Both are shared by many spans and stored once per tenant under an id that is a hash of their
 * content (resource-id.ts, attribute-set-id.ts), so a stored row never changes.
 *
 * The binary COPY encoder collects a write's distinct rows of both as it computes each span's ids
 * (WriteCatalog); the write summaries and CommittedCatalog use them instead of each going over the
 * rows again.
 */
import type { ResourceFields } from './resource-id.js';

/** The two catalog tables, and the column by which a span row (and the catalog row) names its row. */
export const CATALOG_TABLES = {
  resources: { table: 'resources', id: 'resource_id' },
  attributeSets: { table: 'attribute_sets', id: 'attribute_set_id' },
} as const;
export type Catalog = keyof typeof CATALOG_TABLES;

/** Rows of one catalog table met in a write, by tenant: id → row. */
export type CatalogRows<T> = Map<string, Map<bigint, T>>;

export interface WriteCatalog {
  resources: CatalogRows<ResourceFields>;
  /** id → the set's JSON text */
  attributeSets: CatalogRows<string>;
}

export function newWriteCatalog(): WriteCatalog {
  return { resources: new Map(), attributeSets: new Map() };
}

/** Adds `row` under (tenant, id) unless a row is there already (equal ids, equal rows). */
export function collectCatalogRow<T>(rows: CatalogRows<T>, tenant: string, id: bigint, row: T): void {
  let ofTenant = rows.get(tenant);
  if (ofTenant === undefined) rows.set(tenant, (ofTenant = new Map()));
  if (!ofTenant.has(id)) ofTenant.set(id, row);
}

/** Ids CommittedIds remembers before it starts over. */
const MAX_COMMITTED = 65_536;

/** Ids of one catalog table known to be committed, by tenant; at most MAX_COMMITTED, then it starts over. */
export class CommittedIds {
  #byTenant = new Map<string, Set<bigint>>();
  #size = 0;

  clear(): void {
    this.#byTenant = new Map();
    this.#size = 0;
  }

  has(tenant: string, id: bigint): boolean {
    return this.#byTenant.get(tenant)?.has(id) ?? false;
  }

  addAll(rows: CatalogRows<unknown>): void {
    for (const [tenant, ofTenant] of rows) {
      let known = this.#byTenant.get(tenant);
      if (known === undefined) this.#byTenant.set(tenant, (known = new Set()));
      for (const id of ofTenant.keys()) {
        if (known.has(id)) continue;
        if (this.#size >= MAX_COMMITTED) {
          this.#byTenant = new Map([[tenant, (known = new Set())]]);
          this.#size = 0;
        }
        known.add(id);
        this.#size++;
      }
    }
  }
}

/**
 * The catalog rows this process has seen committed, so that a write sends only the rows that may
 * be new: most batches repeat resources and sets already stored, and upserting each attribute set
 * again cost PostgreSQL ~8 µs per span in the load test (JSON parsing and an index probe per row).
 *
 * Sound because a committed catalog row never changes or goes away under a running server: its
 * content is its id, retention does not delete these tables, a day restore only adds to them, and a
 * whole-database restore refuses to run while a server is connected. Only rows of committed writes
 * are added, and the writer clears it when its pool opens a connection (possibly to another server
 * after a failover) or a write fails. A forgotten row is only sent again (ON CONFLICT DO NOTHING
 * keeps the stored one).
 */
export class CommittedCatalog {
  readonly resources = new CommittedIds();
  readonly attributeSets = new CommittedIds();

  clear(): void {
    this.resources.clear();
    this.attributeSets.clear();
  }

  /** Records the catalog rows of a write just committed. */
  addAll(catalog: WriteCatalog): void {
    this.resources.addAll(catalog.resources);
    this.attributeSets.addAll(catalog.attributeSets);
  }
}
