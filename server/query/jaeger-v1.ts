/**
 * Jaeger's v1 HTTP JSON API (the internal API Jaeger UI and Grafana's Jaeger datasource call):
 *   GET /api/services                       {"data":["svc"],"total":n,…}
 *   GET /api/services/{service}/operations  {"data":["op"],…}
 *   GET /api/operations?service=&spanKind=  {"data":[{"name","spanKind"}],…}
 *   GET /api/traces?service=&operation=&tags=&tag=&minDuration=&maxDuration=&limit=&start=&end=
 *                                           {"data":[Trace,…]} (service required, as in Jaeger)
 *   GET /api/traces?traceID=…&traceID=…     those traces
 *   GET /api/traces/{id}[?start=&end=]      {"data":[Trace]}; with Accept: application/protobuf the
 *                                           Tempo answer (tempopb.Trace, wire-identical to TracesData)
 *   GET /api/dependencies?endTs=&lookback=  {"data":[{"parent","child","callCount"}]}
 * Errors: {"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":status,"msg":"…"}]}.
 * start / end / endTs are epoch times read by magnitude (params.ts); start / end on trace-by-id are
 * validated but not needed: the trace summary bounds the lookup.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { TracehouseError } from '../errors.js';
import type { TimeWindow } from '../storage/reader-types.js';
import { stringifyExact } from './exact-json.js';
import { KIND_NAMES, toJaegerTrace } from './jaeger-model.js';
import { parseTagParam, parseTagsJson, toSearchQuery } from './jaeger-search.js';
import { encodeTracesData } from './otlp-protobuf.js';
import {
  badRequest,
  many,
  one,
  parseDuration,
  parseEpoch,
  parseLimit,
  parseTraceId,
  resolveWindow,
  type QueryString,
} from './params.js';
import {
  acceptsProtobuf,
  classifyError,
  DEFAULT_LOOKBACK_NANOS,
  DEFAULT_SEARCH_LIMIT,
  JSON_CONTENT_TYPE,
  logFailure,
  MAX_SEARCH_LIMIT,
  nowNanos,
  PROTOBUF_CONTENT_TYPE,
  READ_ACCESS,
  type QueryRouteOptions,
} from './route-support.js';
import { groupSpans } from './trace-model.js';

const DEFAULT_DEPENDENCY_LOOKBACK_NANOS = 86_400_000_000_000n;

function sendData(reply: FastifyReply, data: unknown[]): FastifyReply {
  return reply
    .header('content-type', JSON_CONTENT_TYPE)
    .send(stringifyExact({ data, total: data.length, limit: 0, offset: 0, errors: null }));
}

function notFound(): TracehouseError {
  return new TracehouseError('TH_ERR_QUERY_TRACE_NOT_FOUND', 'trace not found');
}

function kindParam(query: QueryString): number[] | undefined {
  const kind = one(query, 'spanKind');
  if (kind === undefined) return undefined;
  const index = KIND_NAMES.indexOf(kind as (typeof KIND_NAMES)[number]);
  if (index < 0) throw badRequest(`spanKind must be one of ${KIND_NAMES.join(', ')}, got '${kind}'`);
  return [index];
}

function epochParam(query: QueryString, name: string): bigint | undefined {
  const text = one(query, name);
  return text === undefined ? undefined : parseEpoch(text, name);
}

export async function registerJaegerV1(app: FastifyInstance, options: QueryRouteOptions): Promise<void> {
  const { queries } = options;

  app.setErrorHandler((err, request, reply) => {
    const answer = classifyError(err);
    logFailure(request, err, answer);
    if (answer.retryAfterS !== undefined) reply.header('retry-after', String(answer.retryAfterS));
    if (acceptsProtobuf(request)) return reply.code(answer.statusCode).type('text/plain').send(answer.message);
    return reply
      .code(answer.statusCode)
      .header('content-type', JSON_CONTENT_TYPE)
      .send({ data: null, total: 0, limit: 0, offset: 0, errors: [{ code: answer.statusCode, msg: answer.message }] });
  });

  app.get('/api/services', { config: READ_ACCESS }, async (request, reply) => {
    return sendData(reply, await queries.services(request.tenant));
  });

  app.get<{ Params: { service: string } }>(
    '/api/services/:service/operations',
    { config: READ_ACCESS },
    async (request, reply) => {
      const operations = await queries.operations(request.tenant);
      const names = operations.filter((op) => op.serviceName === request.params.service).map((op) => op.spanName);
      return sendData(reply, [...new Set(names)]);
    },
  );

  app.get<{ Querystring: QueryString }>('/api/operations', { config: READ_ACCESS }, async (request, reply) => {
    const service = one(request.query, 'service');
    if (service === undefined) throw badRequest("parameter 'service' is required");
    const kinds = kindParam(request.query);
    const operations = (await queries.operations(request.tenant)).filter(
      (op) => op.serviceName === service && (kinds === undefined || kinds.includes(op.spanKind)),
    );
    return sendData(
      reply,
      operations.map((op) => ({ name: op.spanName, spanKind: KIND_NAMES[op.spanKind] ?? '' })),
    );
  });

  app.get<{ Querystring: QueryString }>('/api/traces', { config: READ_ACCESS }, async (request, reply) => {
    const query = request.query;
    const ids = many(query, 'traceID');
    if (ids.length > 0) {
      const traces = [];
      for (const id of ids) {
        const spans = await queries.getTrace(request.tenant, parseTraceId(id));
        if (spans !== undefined) traces.push(toJaegerTrace(spans));
      }
      return sendData(reply, traces);
    }
    const service = one(query, 'service');
    if (service === undefined) throw badRequest("parameter 'service' is required");
    const tags = many(query, 'tag').map(parseTagParam);
    for (const json of many(query, 'tags')) tags.push(...parseTagsJson(json, 'tags'));
    const search = toSearchQuery({
      service,
      operation: one(query, 'operation'),
      tags,
      minDuration: one(query, 'minDuration'),
      maxDuration: one(query, 'maxDuration'),
      window: resolveWindow(
        epochParam(query, 'start'),
        epochParam(query, 'end'),
        nowNanos(options),
        DEFAULT_LOOKBACK_NANOS,
      ),
      limit: parseLimit(one(query, 'limit'), 'limit', DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT),
    });
    const found = await queries.searchTraces(request.tenant, search);
    return sendData(
      reply,
      found.map((entry) => toJaegerTrace(entry.spans)),
    );
  });

  app.get<{ Params: { traceId: string }; Querystring: QueryString }>(
    '/api/traces/:traceId',
    { config: READ_ACCESS },
    async (request, reply) => {
      const traceId = parseTraceId(request.params.traceId);
      epochParam(request.query, 'start');
      epochParam(request.query, 'end');
      const spans = await queries.getTrace(request.tenant, traceId);
      if (spans === undefined) throw notFound();
      if (acceptsProtobuf(request)) {
        return reply.header('content-type', PROTOBUF_CONTENT_TYPE).send(encodeTracesData(groupSpans(spans)));
      }
      return sendData(reply, [toJaegerTrace(spans)]);
    },
  );

  app.get<{ Querystring: QueryString }>('/api/dependencies', { config: READ_ACCESS }, async (request, reply) => {
    const end = epochParam(request.query, 'endTs') ?? nowNanos(options);
    const lookbackText = one(request.query, 'lookback');
    const lookback =
      lookbackText === undefined
        ? DEFAULT_DEPENDENCY_LOOKBACK_NANOS
        : /^\d+$/.test(lookbackText)
          ? BigInt(lookbackText) * 1_000_000n
          : parseDuration(lookbackText, 'lookback');
    const window: TimeWindow = { startUnixNano: end - lookback, endUnixNano: end };
    return sendData(reply, await queries.dependencies(request.tenant, window));
  });
}
