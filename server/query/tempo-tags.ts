/**
 * Tempo's tag autocomplete endpoints (Grafana's search builder and TraceQL editor):
 *   GET /api/search/tags                      {"tagNames":["http.method",…]}
 *   GET /api/v2/search/tags?scope=            {"scopes":[{"name":"span","tags":[…]},{"name":"resource",…},
 *                                               {"name":"intrinsic",…}]}
 *   GET /api/search/tag/{tag}/values          {"tagValues":["GET",…]}
 *   GET /api/v2/search/tag/{tag}/values?q=    {"tagValues":[{"type":"string","value":"GET"},…]}
 * Services and span names come from the catalog; status and kind are fixed lists; attribute names
 * and values are sampled from the newest spans of each service in the window (at most
 * SAMPLE_PER_SERVICE spans each), like Tempo's size-limited tag search. A v2 `q` narrows values to
 * spans meeting its conditions; a `q` that does not parse (the editor sends half-typed queries) is
 * ignored.
 */
import type { FastifyInstance } from 'fastify';
import type { AttributeRef, SpanCondition, TimeWindow } from '../storage/reader-types.js';
import { parseStoredJson, valueToText } from './any-value.js';
import { KIND_NAMES } from './jaeger-model.js';
import { one, type QueryString } from './params.js';
import { READ_ACCESS, type QueryRouteOptions } from './route-support.js';
import { tempoWindow } from './tempo-search.js';
import { parseTraceQL } from './traceql.js';

const SAMPLE_PER_SERVICE = 1000;
const MAX_VALUES = 1000;
const INTRINSIC_TAGS = [
  'duration',
  'kind',
  'name',
  'rootName',
  'rootServiceName',
  'status',
  'statusMessage',
  'traceDuration',
];
const STATUS_VALUES = ['error', 'ok', 'unset'];

type TagValue = { type: string; value: string };

/** A tag path segment may arrive URL-encoded twice (Grafana encodes, the router decodes once). */
function decodeTag(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function conditionsOf(q: string | undefined): SpanCondition[] {
  if (q === undefined) return [];
  try {
    return parseTraceQL(q).spanConditions;
  } catch {
    return [];
  }
}

/** A v2 tag (TraceQL identifier) → what answers it. */
function classifyV2Tag(tag: string): 'service' | 'name' | 'status' | 'kind' | AttributeRef | undefined {
  if (tag === 'resource.service.name' || tag === '.service.name') return 'service';
  if (tag === 'name' || tag === 'span:name') return 'name';
  if (tag === 'status' || tag === 'span:status') return 'status';
  if (tag === 'kind' || tag === 'span:kind') return 'kind';
  if (tag.startsWith('span.')) return { scope: 'span', key: tag.slice(5) };
  if (tag.startsWith('resource.')) return { scope: 'resource', key: tag.slice(9) };
  if (tag.startsWith('.') && tag.length > 1) return { scope: 'any', key: tag.slice(1) };
  return undefined;
}

function typedValue(json: string): TagValue | undefined {
  const value = parseStoredJson(json);
  switch (value.type) {
    case 'string':
      return { type: 'string', value: value.value };
    case 'int':
      return { type: 'int', value: value.value };
    case 'double':
      return { type: 'float', value: String(value.value) };
    case 'bool':
      return { type: 'bool', value: String(value.value) };
    default:
      return undefined;
  }
}

export async function registerTempoTags(app: FastifyInstance, options: QueryRouteOptions): Promise<void> {
  const { queries } = options;

  const sampledValues = (tenant: string, attribute: AttributeRef, window: TimeWindow, conditions: SpanCondition[]) =>
    queries.tagValues(tenant, attribute, {
      window,
      conditions,
      samplePerService: SAMPLE_PER_SERVICE,
      maxValues: MAX_VALUES,
    });

  const catalogValues = async (
    tenant: string,
    what: 'service' | 'name',
    window: TimeWindow,
    conditions: SpanCondition[],
  ): Promise<string[]> => {
    const services = conditions.flatMap((c) =>
      c.target === 'intrinsic' && c.intrinsic === 'service' && c.op === '=' ? [c.value] : [],
    );
    const operations = await queries.operationsIn(tenant, window, services.length > 0 ? { services } : {});
    return [...new Set(operations.map((op) => (what === 'service' ? op.serviceName : op.spanName)))].sort();
  };

  app.get<{ Querystring: QueryString }>('/api/search/tags', { config: READ_ACCESS }, async (request) => {
    const names = await queries.tagNames(request.tenant, tempoWindow(request.query, options), SAMPLE_PER_SERVICE);
    return { tagNames: [...new Set([...names.span, ...names.resource])].sort() };
  });

  app.get<{ Querystring: QueryString }>('/api/v2/search/tags', { config: READ_ACCESS }, async (request) => {
    const scope = one(request.query, 'scope') ?? 'all';
    const wants = (name: string) => scope === 'all' || scope === 'none' || scope === name;
    const scopes: Array<{ name: string; tags: string[] }> = [];
    if (wants('span') || wants('resource')) {
      const names = await queries.tagNames(request.tenant, tempoWindow(request.query, options), SAMPLE_PER_SERVICE);
      if (wants('span')) scopes.push({ name: 'span', tags: names.span });
      if (wants('resource')) scopes.push({ name: 'resource', tags: names.resource });
    }
    if (wants('intrinsic')) scopes.push({ name: 'intrinsic', tags: INTRINSIC_TAGS });
    return { scopes };
  });

  app.get<{ Params: { tag: string }; Querystring: QueryString }>(
    '/api/search/tag/:tag/values',
    { config: READ_ACCESS },
    async (request) => {
      const tag = decodeTag(request.params.tag);
      const window = tempoWindow(request.query, options);
      if (tag === 'service.name') return { tagValues: await catalogValues(request.tenant, 'service', window, []) };
      const values = await sampledValues(request.tenant, { scope: 'any', key: tag }, window, []);
      return { tagValues: [...new Set(values.map((json) => valueToText(parseStoredJson(json))))].sort() };
    },
  );

  app.get<{ Params: { tag: string }; Querystring: QueryString }>(
    '/api/v2/search/tag/:tag/values',
    { config: READ_ACCESS },
    async (request) => {
      const target = classifyV2Tag(decodeTag(request.params.tag));
      const window = tempoWindow(request.query, options);
      const conditions = conditionsOf(one(request.query, 'q'));
      let tagValues: TagValue[] = [];
      if (target === 'status') tagValues = STATUS_VALUES.map((value) => ({ type: 'keyword', value }));
      else if (target === 'kind') tagValues = KIND_NAMES.map((value) => ({ type: 'keyword', value }));
      else if (target === 'service' || target === 'name') {
        const values = await catalogValues(request.tenant, target, window, target === 'name' ? conditions : []);
        tagValues = values.map((value) => ({ type: 'string', value }));
      } else if (target !== undefined) {
        const values = await sampledValues(request.tenant, target, window, conditions);
        tagValues = values.flatMap((json) => typedValue(json) ?? []);
      }
      return { tagValues };
    },
  );
}
