import { describe, expect, it } from 'vitest';
import { attributeSetIdOf, CommittedSets, computeAttributeSetId } from '../../../server/storage/attribute-set-id.js';
import { encodeCopyBinary } from '../../../server/storage/copy-binary.js';
import { encodeCopyRows } from '../../../server/storage/copy-text.js';
import { STAGE_COLUMNS } from '../../../server/storage/sql.js';
import type { SpanBatch } from '../../../server/storage/types.js';
import { summarizeWrite } from '../../../server/storage/write-summaries.js';
import { makeRow } from '../../integration/storage/span-rows.js';

const GET = '{"http.method":"GET"}';
const PUT = '{"http.method":"PUT"}';

/** The attribute_set column of each staged COPY text row. */
function stagedSets(batches: SpanBatch[], committedSets?: CommittedSets): string[] {
  const text = Buffer.concat(encodeCopyRows(batches, { committedSets }).chunks).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split('\t');
      expect(fields).toHaveLength(STAGE_COLUMNS.length);
      return fields.at(-1)!;
    });
}

describe('attribute set ids', () => {
  it('are 64 bits of an MD5 of the text, null for a span with no shared attribute', () => {
    expect(attributeSetIdOf('{}')).toBeNull();
    expect(attributeSetIdOf(GET)).toBe(computeAttributeSetId(GET));
    expect(attributeSetIdOf(['{"http.method"', ':"GET"}'].join(''))).toBe(attributeSetIdOf(GET));
    expect(attributeSetIdOf(PUT)).not.toBe(attributeSetIdOf(GET));
  });
});

describe('CommittedSets', () => {
  it('leaves sets already committed out of the summaries and the staged rows, per tenant', () => {
    const batches: SpanBatch[] = [
      { tenant: 'a', rows: [makeRow({ sharedAttributes: GET }), makeRow({ sharedAttributes: PUT }), makeRow()] },
      { tenant: 'b', rows: [makeRow({ sharedAttributes: GET })] },
    ];
    const setsOf = (committed?: CommittedSets) =>
      (
        JSON.parse(summarizeWrite(batches, encodeCopyBinary(batches).attributeSets, committed).attributeSets) as Array<{
          tenant: string;
          attributes: unknown;
        }>
      )
        .map((s) => `${s.tenant} ${JSON.stringify(s.attributes)}`)
        .sort();

    expect(setsOf()).toEqual([`a ${GET}`, `a ${PUT}`, `b ${GET}`]);
    expect(stagedSets(batches)).toEqual([GET, PUT, '\\N', GET]);

    const committed = new CommittedSets();
    committed.addAll(encodeCopyBinary([{ tenant: 'a', rows: [makeRow({ sharedAttributes: GET })] }]).attributeSets);
    expect(committed.has('a', attributeSetIdOf(GET)!)).toBe(true);
    expect(committed.has('b', attributeSetIdOf(GET)!)).toBe(false);
    expect(setsOf(committed)).toEqual([`a ${PUT}`, `b ${GET}`]);
    expect(stagedSets(batches, committed)).toEqual(['\\N', PUT, '\\N', GET]);
  });
});
