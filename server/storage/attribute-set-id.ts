/**
 * The id under which a span's shared attributes are stored once per tenant (migrations/000006,
 * table `attribute_sets`): the first 64 bits of an MD5 over the set's JSON text, or null for a span
 * with no shared attribute ('{}').
 *
 * State: the ids of recently seen texts. Decode hands every row of one set the same string
 * (AttributeSharing.setText), and a few hundred sets cover most traffic, so a lookup is a Map hit on
 * a string whose hash V8 has already computed, instead of an MD5 per span. The memo holds at most
 * MAX_REMEMBERED texts (decode caps each at the sharing limits) and starts over when full; an id is
 * a pure function of its text, so forgetting one only costs a hash.
 */
import { createHash } from 'node:crypto';

const NO_SET = '{}';
const MAX_REMEMBERED = 4096;
const remembered = new Map<string, bigint>();

export function computeAttributeSetId(setJson: string): bigint {
  return createHash('md5').update(setJson).digest().readBigInt64BE(0);
}

/** The span's attribute_set_id: null when it has no shared attribute. */
export function attributeSetIdOf(setJson: string): bigint | null {
  if (setJson === NO_SET) return null;
  let id = remembered.get(setJson);
  if (id === undefined) {
    if (remembered.size >= MAX_REMEMBERED) remembered.clear();
    id = computeAttributeSetId(setJson);
    remembered.set(setJson, id);
  }
  return id;
}

/**
 * The distinct attribute sets of one write, by tenant: id → JSON text. The binary COPY encoder
 * collects them as it computes each row's id, so the summaries and CommittedSets need no pass of
 * their own over the rows.
 */
export type WriteSets = Map<string, Map<bigint, string>>;

/** Adds a row's set to `sets`; returns the row's attribute_set_id (null: no shared attribute). */
export function collectAttributeSet(sets: WriteSets, tenant: string, setJson: string): bigint | null {
  const id = attributeSetIdOf(setJson);
  if (id === null) return null;
  let ofTenant = sets.get(tenant);
  if (ofTenant === undefined) sets.set(tenant, (ofTenant = new Map()));
  if (!ofTenant.has(id)) ofTenant.set(id, setJson);
  return id;
}

/** Sets CommittedSets remembers before it starts over. */
const MAX_COMMITTED = 65_536;

/**
 * The attribute sets this process has seen committed, by tenant, so that a write sends only the
 * sets that may be new: most batches repeat sets already stored, and upserting each of them again
 * cost PostgreSQL ~8 µs per span in the load test (JSON parsing and an index probe per set).
 *
 * Sound because a committed set row never changes or goes away under a running server: its
 * attributes are its id, retention does not delete sets, a day restore only adds them, and a
 * whole-database restore refuses to run while a server is connected. Only sets of committed
 * writes are added, and the writer clears it when its pool opens a connection (possibly to another
 * server after a failover) or a write fails. At most MAX_COMMITTED are remembered, then it starts
 * over: a forgotten set is only sent again (ON CONFLICT DO NOTHING keeps the stored row).
 */
export class CommittedSets {
  #byTenant = new Map<string, Set<bigint>>();
  #size = 0;

  clear(): void {
    this.#byTenant = new Map();
    this.#size = 0;
  }

  has(tenant: string, id: bigint): boolean {
    return this.#byTenant.get(tenant)?.has(id) ?? false;
  }

  /** Records the sets of a write just committed. */
  addAll(sets: WriteSets): void {
    for (const [tenant, ofTenant] of sets) {
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
