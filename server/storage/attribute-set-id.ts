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
