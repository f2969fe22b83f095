/**
 * Tempo's HTTP API as Grafana's Tempo datasource calls it:
 *   GET /api/echo                      200 "echo" (the datasource health check)
 *   GET /api/v2/traces/{id}            Accept: application/protobuf → tempopb.TraceByIDResponse;
 *                                      otherwise {"trace":{"resourceSpans":[…]}} (OTLP/JSON)
 *   (GET /api/traces/{id} with Accept: application/protobuf is answered by jaeger-v1.ts)
 *   GET /api/search?q=&tags=&minDuration=&maxDuration=&limit=&spss=&start=&end=
 *                                      {"traces":[…],"metrics":{…}} (tempo-search.ts)
 * and the tag endpoints of tempo-tags.ts. start / end are epoch seconds (any unit by magnitude);
 * a search without them covers the last hour. Errors are text/plain with the status.
 */
import type { FastifyInstance } from 'fastify';
import { TracehouseError } from '../errors.js';
import { stringifyExact } from './exact-json.js';
import { toOtlpTracesData } from './otlp-json.js';
import { encodeTraceByIdResponse } from './otlp-protobuf.js';
import { badRequest, one, parseLimit, parseTraceId, type QueryString } from './params.js';
import {
  acceptsProtobuf,
  classifyError,
  DEFAULT_SEARCH_LIMIT,
  JSON_CONTENT_TYPE,
  logFailure,
  MAX_SEARCH_LIMIT,
  PROTOBUF_CONTENT_TYPE,
  READ_ACCESS,
  type QueryRouteOptions,
} from './route-support.js';
import { registerTempoTags } from './tempo-tags.js';
import { tempoWindow, toTempoSearchQuery, toTempoSearchResponse } from './tempo-search.js';
import { groupSpans } from './trace-model.js';

/** Spans shown per span set unless `spss` says otherwise (Tempo's default). */
const DEFAULT_SPANS_PER_SPAN_SET = 3;
const MAX_SPANS_PER_SPAN_SET = 100;

export async function registerTempo(app: FastifyInstance, options: QueryRouteOptions): Promise<void> {
  const { queries } = options;

  app.setErrorHandler((err, request, reply) => {
    const answer = classifyError(err);
    logFailure(request, err, answer);
    if (answer.retryAfterS !== undefined) reply.header('retry-after', String(answer.retryAfterS));
    return reply.code(answer.statusCode).type('text/plain; charset=utf-8').send(answer.message);
  });

  app.get('/api/echo', { config: READ_ACCESS }, async (_request, reply) => {
    return reply.type('text/plain; charset=utf-8').send('echo');
  });

  app.get<{ Params: { traceId: string }; Querystring: QueryString }>(
    '/api/v2/traces/:traceId',
    { config: READ_ACCESS },
    async (request, reply) => {
      const traceId = parseTraceId(request.params.traceId);
      tempoWindow(request.query, options); // validated; the trace summary bounds the lookup
      const spans = await queries.getTrace(request.tenant, traceId);
      if (spans === undefined) throw new TracehouseError('TH_ERR_QUERY_TRACE_NOT_FOUND', 'trace not found');
      const resources = groupSpans(spans);
      if (acceptsProtobuf(request)) {
        return reply.header('content-type', PROTOBUF_CONTENT_TYPE).send(encodeTraceByIdResponse(resources));
      }
      return reply
        .header('content-type', JSON_CONTENT_TYPE)
        .send(stringifyExact({ trace: toOtlpTracesData(resources) }));
    },
  );

  app.get<{ Querystring: QueryString }>('/api/search', { config: READ_ACCESS }, async (request, reply) => {
    const query = request.query;
    if (one(query, 'q') !== undefined && one(query, 'tags') !== undefined) {
      throw badRequest('give either q (TraceQL) or tags (logfmt), not both');
    }
    const search = toTempoSearchQuery({
      q: one(query, 'q'),
      tags: one(query, 'tags'),
      minDuration: one(query, 'minDuration'),
      maxDuration: one(query, 'maxDuration'),
      window: tempoWindow(query, options),
      limit: parseLimit(one(query, 'limit'), 'limit', DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT),
    });
    const spss = parseLimit(one(query, 'spss'), 'spss', DEFAULT_SPANS_PER_SPAN_SET, MAX_SPANS_PER_SPAN_SET);
    const hits = await queries.searchTempo(request.tenant, search, spss);
    return reply.header('content-type', JSON_CONTENT_TYPE).send(JSON.stringify(toTempoSearchResponse(hits, search)));
  });

  await registerTempoTags(app, options);
}
