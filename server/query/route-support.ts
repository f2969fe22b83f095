/**
 * What the three route families share: the route access they declare, how an error becomes a
 * status code, content negotiation, and the defaults of searches.
 */
import type { FastifyRequest } from 'fastify';
import { isTracehouseError } from '../errors.js';
import { InvalidSearchError, isRetryableStorageError } from '../storage/index.js';
import type { TraceQueries } from './trace-queries.js';

/** Route config every query route declares: the auth stage lets a `traces:read` token through. */
export const READ_ACCESS = { access: 'traces:read' as const };

export interface QueryRouteOptions {
  queries: TraceQueries;
  /** Milliseconds since the epoch (tests pin it). */
  now: () => number;
}

/** Searches without a start cover the hour before their end. */
export const DEFAULT_LOOKBACK_NANOS = 3_600_000_000_000n;
export const DEFAULT_SEARCH_LIMIT = 20;
export const MAX_SEARCH_LIMIT = 1000;

export function nowNanos(options: QueryRouteOptions): bigint {
  return BigInt(Math.floor(options.now())) * 1_000_000n;
}

export interface ErrorAnswer {
  statusCode: number;
  message: string;
  /** Set for transient failures: the client may retry after this many seconds. */
  retryAfterS?: number;
}

/** How a failed query is answered: 4xx for the client's mistakes, 503 for transient storage faults. */
export function classifyError(err: unknown): ErrorAnswer {
  if (isTracehouseError(err)) return { statusCode: err.httpStatus, message: err.message };
  if (err instanceof InvalidSearchError) return { statusCode: 400, message: err.message };
  if (isRetryableStorageError(err)) {
    return { statusCode: 503, message: 'storage is unavailable; retry shortly', retryAfterS: 1 };
  }
  const statusCode = (err as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { statusCode, message: (err as Error).message };
  }
  return { statusCode: 500, message: 'internal error' };
}

/** Logs a failed query at a level matching its cause. */
export function logFailure(request: FastifyRequest, err: unknown, answer: ErrorAnswer): void {
  if (answer.statusCode >= 500 && answer.retryAfterS === undefined) request.log.error({ err }, 'query failed');
  else if (answer.statusCode >= 500) {
    request.log.warn({ err: (err as Error).message }, 'query failed: storage unavailable');
  } else request.log.debug({ status: answer.statusCode, message: answer.message }, 'query refused');
}

/** True when the client asked for protobuf (Grafana's Tempo datasource: Accept: application/protobuf). */
export function acceptsProtobuf(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return /application\/(x-)?protobuf/i.test(accept);
}

export const PROTOBUF_CONTENT_TYPE = 'application/protobuf';
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
