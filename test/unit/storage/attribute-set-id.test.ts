import { describe, expect, it } from 'vitest';
import { attributeSetIdOf, computeAttributeSetId } from '../../../server/storage/attribute-set-id.js';
import { encodeCopyBinary } from '../../../server/storage/copy-binary.js';
import { encodeCopyRows } from '../../../server/storage/copy-text.js';
import { STAGE_COLUMNS } from '../../../server/storage/sql.js';
import type { SpanBatch } from '../../../server/storage/types.js';
import { CommittedCatalog } from '../../../server/storage/write-catalog.js';
import { summarizeWrite } from '../../../server/storage/write-summaries.js';
import { makeRow } from '../../integration/storage/span-rows.js';

const GET = '{"http.method":"GET"}';
const PUT = '{"http.method":"PUT"}';

/** The attribute_set column of each staged COPY text row. */
function stagedSets(batches: SpanBatch[], committed?: CommittedCatalog): string[] {
  return stagedColumn(batches, STAGE_COLUMNS.length - 1, committed);
}

/** Column `index` of each staged COPY text row. */
function stagedColumn(batches: SpanBatch[], index: number, committed?: CommittedCatalog): string[] {
  const text = Buffer.concat(encodeCopyRows(batches, { committed }).chunks).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const fields = line.split('\t');
      expect(fields).toHaveLength(STAGE_COLUMNS.length);
      return fields[index];
    });
}

/** The summaries' rows of one catalog table, as "tenant attributes", sorted. */
function summarized(
  batches: SpanBatch[],
  table: 'resources' | 'attributeSets',
  committed?: CommittedCatalog,
): string[] {
  const json = summarizeWrite(batches, encodeCopyBinary(batches).catalog, committed)[table];
  return (JSON.parse(json) as Array<{ tenant: string; attributes: unknown }>)
    .map((r) => `${r.tenant} ${JSON.stringify(r.attributes)}`)
    .sort();
}

describe('attribute set ids', () => {
  it('are 64 bits of an MD5 of the text, null for a span with no shared attribute', () => {
    expect(attributeSetIdOf('{}')).toBeNull();
    expect(attributeSetIdOf(GET)).toBe(computeAttributeSetId(GET));
    expect(attributeSetIdOf(['{"http.method"', ':"GET"}'].join(''))).toBe(attributeSetIdOf(GET));
    expect(attributeSetIdOf(PUT)).not.toBe(attributeSetIdOf(GET));
  });
});

describe('CommittedCatalog', () => {
  it('leaves sets already committed out of the summaries and the staged rows, per tenant', () => {
    const batches: SpanBatch[] = [
      { tenant: 'a', rows: [makeRow({ sharedAttributes: GET }), makeRow({ sharedAttributes: PUT }), makeRow()] },
      { tenant: 'b', rows: [makeRow({ sharedAttributes: GET })] },
    ];
    const setsOf = (committed?: CommittedCatalog) => summarized(batches, 'attributeSets', committed);

    expect(setsOf()).toEqual([`a ${GET}`, `a ${PUT}`, `b ${GET}`]);
    expect(stagedSets(batches)).toEqual([GET, PUT, '\\N', GET]);

    const committed = new CommittedCatalog();
    committed.addAll(encodeCopyBinary([{ tenant: 'a', rows: [makeRow({ sharedAttributes: GET })] }]).catalog);
    expect(committed.attributeSets.has('a', attributeSetIdOf(GET)!)).toBe(true);
    expect(committed.attributeSets.has('b', attributeSetIdOf(GET)!)).toBe(false);
    expect(setsOf(committed)).toEqual([`a ${PUT}`, `b ${GET}`]);
    expect(stagedSets(batches, committed)).toEqual(['\\N', PUT, '\\N', GET]);
  });

  it('leaves resources already committed out of the summaries and the staged rows, per tenant', () => {
    const BILLING = '{"service.name":"billing"}';
    const batches: SpanBatch[] = [
      { tenant: 'a', rows: [makeRow(), makeRow(), makeRow({ resourceAttributes: BILLING })] },
      { tenant: 'b', rows: [makeRow()] },
    ];
    const resourcesOf = (committed?: CommittedCatalog) => summarized(batches, 'resources', committed);
    const resourceColumn = STAGE_COLUMNS.indexOf('resource_attributes');
    const plain = makeRow().resourceAttributes;

    expect(resourcesOf()).toEqual([`a ${BILLING}`, `a ${plain}`, `b ${plain}`].sort());
    expect(stagedColumn(batches, resourceColumn)).toEqual([plain, '\\N', BILLING, plain]);

    const committed = new CommittedCatalog();
    committed.addAll(encodeCopyBinary([{ tenant: 'a', rows: [makeRow()] }]).catalog);
    expect(resourcesOf(committed)).toEqual([`a ${BILLING}`, `b ${plain}`]);
    expect(stagedColumn(batches, resourceColumn, committed)).toEqual(['\\N', '\\N', BILLING, plain]);
    committed.clear();
    expect(resourcesOf(committed)).toEqual(resourcesOf());
  });
});
