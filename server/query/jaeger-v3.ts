/**
 * Jaeger api_v3 over HTTP (the grpc-gateway JSON that Grafana's Jaeger datasource calls with its
 * jaegerEnableGrpcEndpoint toggle), traces in OTLP/JSON:
 *   GET /api/v3/services                            {"services":["svc"]}
 *   GET /api/v3/operations?service=&spanKind=       {"operations":[{"name","spanKind"}]}
 *   GET /api/v3/traces?query.serviceName=&query.operationName=&query.attributes=<JSON map>
 *        &query.durationMin=&query.durationMax=&query.startTimeMin=&query.startTimeMax=&query.searchDepth=
 *                                                   {"result":{"resourceSpans":[…]}}; none found: 404
 *   GET /api/v3/traces/{id}?startTime=&endTime=     {"result":{"resourceSpans":[…]}}
 * Jaeger's deprecated snake_case names (query.service_name, query.start_time_min, query.num_traces,
 * span_kind, start_time, …) are accepted too, as Grafana sends them. Times are RFC 3339; a search
 * without them covers the last hour. Errors: {"error":{"httpCode":status,"message":"…"}}.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { TracehouseError } from '../errors.js';
import type { StoredSpan } from '../storage/reader-types.js';
import { stringifyExact } from './exact-json.js';
import { KIND_NAMES } from './jaeger-model.js';
import { parseTagsJson, toSearchQuery } from './jaeger-search.js';
import { toOtlpTracesData } from './otlp-json.js';
import {
  badRequest,
  oneOf,
  parseLimit,
  parseRfc3339,
  parseTraceId,
  resolveWindow,
  type QueryString,
} from './params.js';
import {
  classifyError,
  DEFAULT_LOOKBACK_NANOS,
  DEFAULT_SEARCH_LIMIT,
  JSON_CONTENT_TYPE,
  logFailure,
  MAX_SEARCH_LIMIT,
  nowNanos,
  READ_ACCESS,
  type QueryRouteOptions,
} from './route-support.js';
import { groupSpans } from './trace-model.js';

function sendTraces(reply: FastifyReply, spans: readonly StoredSpan[]): FastifyReply {
  const result = toOtlpTracesData(groupSpans(spans), { eventTimeAsNumber: true });
  return reply.header('content-type', JSON_CONTENT_TYPE).send(stringifyExact({ result }));
}

function timeParam(query: QueryString, ...names: string[]): bigint | undefined {
  const text = oneOf(query, ...names);
  return text === undefined ? undefined : parseRfc3339(text, names[0]);
}

export async function registerJaegerV3(app: FastifyInstance, options: QueryRouteOptions): Promise<void> {
  const { queries } = options;

  app.setErrorHandler((err, request, reply) => {
    const answer = classifyError(err);
    logFailure(request, err, answer);
    if (answer.retryAfterS !== undefined) reply.header('retry-after', String(answer.retryAfterS));
    return reply
      .code(answer.statusCode)
      .header('content-type', JSON_CONTENT_TYPE)
      .send({ error: { httpCode: answer.statusCode, message: answer.message } });
  });

  app.get('/api/v3/services', { config: READ_ACCESS }, async (request) => {
    return { services: await queries.services(request.tenant) };
  });

  app.get<{ Querystring: QueryString }>('/api/v3/operations', { config: READ_ACCESS }, async (request) => {
    const service = oneOf(request.query, 'service');
    const kind = oneOf(request.query, 'spanKind', 'span_kind');
    if (kind !== undefined && !KIND_NAMES.includes(kind as (typeof KIND_NAMES)[number])) {
      throw badRequest(`spanKind must be one of ${KIND_NAMES.join(', ')}, got '${kind}'`);
    }
    const operations = (await queries.operations(request.tenant)).filter(
      (op) =>
        (service === undefined || op.serviceName === service) &&
        (kind === undefined || KIND_NAMES[op.spanKind] === kind),
    );
    const seen = new Set<string>();
    const out = [];
    for (const op of operations) {
      const spanKind = KIND_NAMES[op.spanKind] ?? '';
      const key = `${op.spanName}\u0000${spanKind}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: op.spanName, spanKind });
    }
    return { operations: out };
  });

  app.get<{ Querystring: QueryString }>('/api/v3/traces', { config: READ_ACCESS }, async (request, reply) => {
    const query = request.query;
    const attributes = oneOf(query, 'query.attributes');
    const search = toSearchQuery({
      service: oneOf(query, 'query.serviceName', 'query.service_name'),
      operation: oneOf(query, 'query.operationName', 'query.operation_name'),
      tags: attributes === undefined ? [] : parseTagsJson(attributes, 'query.attributes'),
      minDuration: oneOf(query, 'query.durationMin', 'query.duration_min'),
      maxDuration: oneOf(query, 'query.durationMax', 'query.duration_max'),
      window: resolveWindow(
        timeParam(query, 'query.startTimeMin', 'query.start_time_min'),
        timeParam(query, 'query.startTimeMax', 'query.start_time_max'),
        nowNanos(options),
        DEFAULT_LOOKBACK_NANOS,
      ),
      limit: parseLimit(
        oneOf(query, 'query.searchDepth', 'query.search_depth', 'query.num_traces'),
        'query.searchDepth',
        DEFAULT_SEARCH_LIMIT,
        MAX_SEARCH_LIMIT,
      ),
    });
    const found = await queries.searchTraces(request.tenant, search);
    if (found.length === 0) throw new TracehouseError('TH_ERR_QUERY_TRACE_NOT_FOUND', 'No traces found');
    return sendTraces(
      reply,
      found.flatMap((entry) => entry.spans),
    );
  });

  app.get<{ Params: { traceId: string }; Querystring: QueryString }>(
    '/api/v3/traces/:traceId',
    { config: READ_ACCESS },
    async (request, reply) => {
      const traceId = parseTraceId(request.params.traceId);
      timeParam(request.query, 'startTime', 'start_time');
      timeParam(request.query, 'endTime', 'end_time');
      const spans = await queries.getTrace(request.tenant, traceId);
      if (spans === undefined) throw new TracehouseError('TH_ERR_QUERY_TRACE_NOT_FOUND', 'trace not found');
      return sendTraces(reply, spans);
    },
  );
}
