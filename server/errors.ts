/**
 * The one table of tracehouse error codes. A code is created once, documented here, and never
 * reused for another meaning. Each carries the HTTP status and the google.rpc.Code that an OTLP
 * client receives, and whether the client should retry (OTLP: only 429/502/503/504 are retried).
 */

export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

interface ErrorSpec {
  readonly httpStatus: number;
  readonly grpcCode: number;
  readonly retryable: boolean;
  readonly description: string;
}

export const ERRORS = {
  // receive
  TH_ERR_RECEIVE_UNSUPPORTED_MEDIA_TYPE: {
    httpStatus: 415,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'Content-Type is not application/x-protobuf or application/json',
  },
  TH_ERR_RECEIVE_UNSUPPORTED_ENCODING: {
    httpStatus: 415,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'Content-Encoding is not gzip or identity',
  },
  TH_ERR_RECEIVE_BODY_TOO_LARGE: {
    httpStatus: 413,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'request body exceeds the limit after decompression',
  },
  TH_ERR_RECEIVE_BAD_GZIP: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'Content-Encoding says gzip but the body is not valid gzip',
  },
  TH_ERR_RECEIVE_BODY_ABORTED: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'the client closed or stalled the request body',
  },
  // decode
  TH_ERR_DECODE_BAD_PROTOBUF: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'the body is not a valid protobuf ExportTraceServiceRequest',
  },
  TH_ERR_DECODE_BAD_JSON: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'the body is not a valid OTLP/JSON ExportTraceServiceRequest',
  },
  TH_ERR_DECODE_TOO_DEEP: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'AnyValue nesting (arrays / key-value lists) is deeper than the limit',
  },
  TH_ERR_DECODE_FORBIDDEN_KEY: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'the JSON body contains a __proto__ or constructor key',
  },
  // auth (tenancy and per-tenant limits)
  TH_ERR_AUTH_MISSING_TOKEN: {
    httpStatus: 401,
    grpcCode: GrpcCode.UNAUTHENTICATED,
    retryable: false,
    description: 'no bearer token: send Authorization: Bearer <JWT>',
  },
  TH_ERR_AUTH_INVALID_TOKEN: {
    httpStatus: 401,
    grpcCode: GrpcCode.UNAUTHENTICATED,
    retryable: false,
    description:
      'the token is malformed, forged, expired, not yet valid, for another issuer or audience, or names no valid tenant',
  },
  TH_ERR_AUTH_FORBIDDEN: {
    httpStatus: 403,
    grpcCode: GrpcCode.PERMISSION_DENIED,
    retryable: false,
    description: 'the token is valid but lacks the scope this endpoint needs (traces:write, traces:read or admin)',
  },
  TH_ERR_AUTH_KEYS_UNAVAILABLE: {
    httpStatus: 503,
    grpcCode: GrpcCode.UNAVAILABLE,
    retryable: true,
    description: 'the JWKS could not be fetched, so the token cannot be checked now; retry',
  },
  TH_ERR_AUTH_RATE_LIMITED: {
    httpStatus: 429,
    grpcCode: GrpcCode.RESOURCE_EXHAUSTED,
    retryable: true,
    description: 'the tenant is over its ingest rate limit (spans/s or bytes/s); retry after Retry-After seconds',
  },
  // batch
  TH_ERR_BATCH_QUEUE_FULL: {
    httpStatus: 503,
    grpcCode: GrpcCode.UNAVAILABLE,
    retryable: true,
    description: 'the ingest queue is full; retry after Retry-After seconds',
  },
  TH_ERR_BATCH_SHUTTING_DOWN: {
    httpStatus: 503,
    grpcCode: GrpcCode.UNAVAILABLE,
    retryable: true,
    description: 'this instance is draining for shutdown; retry (another instance will answer)',
  },
  // storage
  TH_ERR_STORAGE_UNAVAILABLE: {
    httpStatus: 503,
    grpcCode: GrpcCode.UNAVAILABLE,
    retryable: true,
    description: 'PostgreSQL is unreachable or failed transiently; nothing was committed',
  },
  TH_ERR_STORAGE_REJECTED_DATA: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description: 'PostgreSQL refused this request’s rows on their own (never seen with sanitized input)',
  },
  // query
  TH_ERR_QUERY_BAD_REQUEST: {
    httpStatus: 400,
    grpcCode: GrpcCode.INVALID_ARGUMENT,
    retryable: false,
    description:
      'a query parameter is malformed or unsupported (trace id, time, duration, limit, tags, TraceQL, regex)',
  },
  TH_ERR_QUERY_TRACE_NOT_FOUND: {
    httpStatus: 404,
    grpcCode: GrpcCode.NOT_FOUND,
    retryable: false,
    description: 'this tenant has no trace with that id',
  },
  // ops
  TH_ERR_OPS_NOT_READY: {
    httpStatus: 503,
    grpcCode: GrpcCode.UNAVAILABLE,
    retryable: true,
    description: 'the server is starting, draining or cannot reach PostgreSQL',
  },
  TH_ERR_INTERNAL: {
    httpStatus: 500,
    grpcCode: GrpcCode.INTERNAL,
    retryable: false,
    description: 'a bug in tracehouse; the request was not stored',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** The error type every stage throws for an expected problem. */
export class TracehouseError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly grpcCode: number;
  readonly retryable: boolean;
  /** For a retryable error that knows better than the configured RETRY_AFTER_S (rate limits). */
  readonly retryAfterS?: number;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; retryAfterS?: number }) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.description, options);
    this.name = 'TracehouseError';
    this.code = code;
    this.httpStatus = spec.httpStatus;
    this.grpcCode = spec.grpcCode;
    this.retryable = spec.retryable;
    if (options?.retryAfterS !== undefined) this.retryAfterS = options.retryAfterS;
  }
}

export function isTracehouseError(err: unknown): err is TracehouseError {
  return err instanceof TracehouseError;
}
