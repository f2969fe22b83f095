/**
 * Attribute sets (migrations/000006): a span's shared attributes live once per (tenant, set) in
 * `attribute_sets`, its other attributes in its row. Covers both write paths, the reader's merge,
 * search, tag names and values, and span_view, each with the same attribute sometimes in the set
 * and sometimes in the row (the split is a layout, never an answer).
 */
import { describe, expect, it } from 'vitest';
import type { SpanRow } from '../../../server/decode/types.js';
import type { SearchQuery, SpanCondition } from '../../../server/storage/reader-types.js';
import { useTestDatabase } from '../../helpers/db.js';
import { BASE_NS, makeRow, makeTrace } from './span-rows.js';
import { useStorage } from './storage-fixture.js';

const db = useTestDatabase();
const newStorage = useStorage(db);

const GET_ORDERS = '{"http.method":"GET","http.route":"/orders"}';
const POST_ORDERS = '{"http.method":"POST","http.route":"/orders"}';
const WINDOW = { startUnixNano: BASE_NS - 60_000_000_000n, endUnixNano: BASE_NS + 60_000_000_000n };

function query(...spanConditions: SpanCondition[]): SearchQuery {
  return { window: WINDOW, spanConditions, traceConditions: [], limit: 20 };
}

/** Three traces: GET in the set, POST in the set, and GET in the row's own attributes. */
function threeTraces(): { get: SpanRow[]; post: SpanRow[]; inline: SpanRow[] } {
  return {
    get: makeTrace(3, { sharedAttributes: GET_ORDERS, attributes: '{"url.full":"/orders?page=1"}' }),
    post: makeTrace(3, { sharedAttributes: POST_ORDERS, attributes: '{"url.full":"/orders?page=2"}' }),
    inline: makeTrace(2, { attributes: '{"http.method":"GET","http.route":"/orders","url.full":"/orders?page=3"}' }),
  };
}

const hex = (rows: SpanRow[]): string => rows[0].traceId.toString('hex');

describe('attribute sets', () => {
  it('stores each set once per tenant on both write paths, and no span row repeats it', async () => {
    const storage = await newStorage();
    const { get, post } = threeTraces();
    expect(await storage.writer.write([{ tenant: 'sets-a', rows: [...get, ...post] }])).toMatchObject({
      inserted: 6,
      path: 'copy',
    });
    // A replay plus new spans of a new set goes the staged way.
    const more = makeTrace(2, { sharedAttributes: '{"http.method":"PUT"}', attributes: '{}' });
    expect(
      await storage.writer.write([
        { tenant: 'sets-a', rows: [...get, ...more] },
        { tenant: 'sets-b', rows: get },
      ]),
    ).toEqual({ inserted: 5, duplicates: 3, path: 'staged' });

    const sets = await db.query(
      "SELECT tenant, attributes FROM attribute_sets ORDER BY tenant, attributes ->> 'http.method'",
    );
    expect(sets.rows).toEqual([
      { tenant: 'sets-a', attributes: { 'http.method': 'GET', 'http.route': '/orders' } },
      { tenant: 'sets-a', attributes: { 'http.method': 'POST', 'http.route': '/orders' } },
      { tenant: 'sets-a', attributes: { 'http.method': 'PUT' } },
      { tenant: 'sets-b', attributes: { 'http.method': 'GET', 'http.route': '/orders' } },
    ]);
    const rows = await db.query(
      `SELECT count(*)::int AS spans, count(a.attribute_set_id)::int AS resolved,
              count(*) FILTER (WHERE s.attributes ? 'http.method')::int AS repeated
         FROM spans s LEFT JOIN attribute_sets a USING (tenant, attribute_set_id)`,
    );
    expect(rows.rows).toEqual([{ spans: 11, resolved: 11, repeated: 0 }]);
  });

  it('sends its sets and resources again once its connections are new: a failed-over server may lack them', async () => {
    const storage = await newStorage();
    const tenant = 'sets-failover';
    await storage.writer.write([{ tenant, rows: makeTrace(2, { sharedAttributes: GET_ORDERS, attributes: '{}' }) }]);
    // The server the writer reconnects to lost the last commits, the set and the resource among them.
    await db.query('DELETE FROM attribute_sets WHERE tenant = $1', [tenant]);
    await db.query('DELETE FROM resources WHERE tenant = $1', [tenant]);
    await db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'tracehouse' AND datname = current_database()`,
    );
    const later = makeTrace(2, { sharedAttributes: GET_ORDERS, attributes: '{}' });
    for (let attempt = 1; ; attempt++) {
      try {
        await storage.writer.write([{ tenant, rows: later }]);
        break;
      } catch (err) {
        if (attempt >= 3) throw err; // a pooled connection that died with its backend
      }
    }
    const { rows } = await db.query('SELECT attributes FROM span_view WHERE tenant = $1 AND trace_id = $2', [
      tenant,
      hex(later),
    ]);
    expect(rows.map((row) => row.attributes)).toEqual([
      { 'http.method': 'GET', 'http.route': '/orders' },
      { 'http.method': 'GET', 'http.route': '/orders' },
    ]);
    const resources = await db.query('SELECT resource_attributes FROM span_view WHERE tenant = $1 AND trace_id = $2', [
      tenant,
      hex(later),
    ]);
    expect(resources.rows.map((row) => row.resource_attributes)).toEqual([
      JSON.parse(later[0].resourceAttributes),
      JSON.parse(later[1].resourceAttributes),
    ]);
  });

  it('reads every span with its set and its own attributes merged, in the trace and in span_view', async () => {
    const storage = await newStorage();
    const { get, inline } = threeTraces();
    const plain = makeRow({ attributes: '{"only":"own"}' });
    await storage.writer.write([{ tenant: 'sets-read', rows: [...get, ...inline, plain] }]);

    const merged = { 'http.method': 'GET', 'http.route': '/orders' };
    const trace = await storage.reader.getTrace('sets-read', get[0].traceId);
    expect(trace!.spans.map((s) => JSON.parse(s.attributes))).toEqual(
      get.map(() => ({ ...merged, 'url.full': '/orders?page=1' })),
    );
    const view = await db.query(
      `SELECT trace_id, attributes FROM span_view WHERE tenant = 'sets-read' ORDER BY trace_id, span_id`,
    );
    const byTrace = new Map<string, unknown[]>();
    for (const row of view.rows) byTrace.set(row.trace_id, [...(byTrace.get(row.trace_id) ?? []), row.attributes]);
    expect(byTrace.get(hex(get))).toEqual(get.map(() => ({ ...merged, 'url.full': '/orders?page=1' })));
    expect(byTrace.get(hex(inline))).toEqual(inline.map(() => ({ ...merged, 'url.full': '/orders?page=3' })));
    expect(byTrace.get(plain.traceId.toString('hex'))).toEqual([{ only: 'own' }]);
  });

  it('finds a span by an attribute whether it sits in the set or in the row, with every operator', async () => {
    const storage = await newStorage();
    const { get, post, inline } = threeTraces();
    await storage.writer.write([{ tenant: 'sets-search', rows: [...get, ...post, ...inline] }]);
    const found = async (...conditions: SpanCondition[]): Promise<string[]> =>
      (await storage.reader.searchTraces('sets-search', query(...conditions)))
        .map((hit) => hit.summary.traceId.toString('hex'))
        .sort();
    const method = (op: '=' | '!=' | '=~' | '!~', value: string): SpanCondition => ({
      target: 'attribute',
      scope: 'span',
      key: 'http.method',
      op,
      value,
    });

    expect(await found(method('=', 'GET'))).toEqual([hex(get), hex(inline)].sort());
    expect(await found(method('!=', 'GET'))).toEqual([hex(post)]);
    expect(await found(method('=~', 'P.*'))).toEqual([hex(post)]);
    expect(await found(method('!~', 'P.*'))).toEqual([hex(get), hex(inline)].sort());
    expect(await found({ target: 'tag', key: 'http.route', value: '/orders' })).toEqual(
      [hex(get), hex(post), hex(inline)].sort(),
    );
    // One condition on the set, one on the row, both on the same span.
    const both: SpanCondition[] = [
      method('=', 'GET'),
      { target: 'attribute', scope: 'any', key: 'url.full', op: '=', value: '/orders?page=1' },
    ];
    expect(await found(...both)).toEqual([hex(get)]);
    expect(await found(method('=', 'GET'), { target: 'tag', key: 'url.full', value: '/orders?page=2' })).toEqual([]);
    expect(await found({ target: 'attribute', scope: 'resource', key: 'http.method', op: '=', value: 'GET' })).toEqual(
      [],
    );

    const matching = await storage.reader.getMatchingSpans(
      'sets-search',
      query(...both),
      (await storage.reader.searchTraces('sets-search', query(...both))).map((hit) => hit.summary),
      10,
    );
    expect(matching.get(hex(get))!.matched).toBe(3);
  });

  it('lists the keys and values of set attributes among the tag names and values', async () => {
    const storage = await newStorage();
    const { get, post, inline } = threeTraces();
    await storage.writer.write([{ tenant: 'sets-tags', rows: [...get, ...post, ...inline] }]);
    const names = await storage.reader.listTagNames('sets-tags', WINDOW, 100);
    expect(names.span).toEqual(['http.method', 'http.route', 'url.full']);
    const values = async (scope: 'span' | 'any' | 'resource', conditions: SpanCondition[] = []) =>
      (
        await storage.reader.listTagValues(
          'sets-tags',
          { scope, key: 'http.method' },
          { window: WINDOW, conditions, samplePerService: 100, maxValues: 10 },
        )
      ).sort();
    expect(await values('span')).toEqual(['"GET"', '"POST"']);
    expect(await values('any')).toEqual(['"GET"', '"POST"']);
    expect(await values('resource')).toEqual([]);
    expect(await values('span', [{ target: 'tag', key: 'url.full', value: '/orders?page=2' }])).toEqual(['"POST"']);
  });
});
