/**
 * The fastify side of auth: one onRequest hook, run before any route's own hooks and before a
 * WebSocket upgrade. It reads the route's declared access (route config `access`, see scopes.ts),
 * verifies the bearer token and sets request.tenant, request.scopes and request.authExpiresAt,
 * or answers 401 / 403 (503 when the JWKS cannot be fetched) in the request's OTLP encoding
 * through the one status mapper, counting tracehouse_auth_failures_total{reason}.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../ops/metrics.js';
import { formatOf, sendOtlpReply } from '../receive/otlp-http.js';
import { replyForError } from '../receive/otlp-status.js';
import type { Authenticator } from './authenticator.js';
import { AuthFailure } from './failures.js';
import { ALL_SCOPES, NO_SCOPES, type RouteAccess, type Scope } from './scopes.js';
import { OPEN_TENANT } from './tenant.js';
import { readBearerToken } from './token-source.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The scopes of the verified token (every scope while auth is off; none on public routes). */
    scopes: ReadonlySet<Scope>;
    /**
     * When the token stops being accepted (ms since the epoch, exp + clock tolerance); undefined
     * while auth is off and on public routes. A WebSocket is closed at this instant.
     */
    authExpiresAt: number | undefined;
  }
  interface FastifyContextConfig {
    /** What the route needs; undeclared routes need `admin`. */
    access?: RouteAccess;
  }
}

export interface AuthHookOptions {
  authenticator: Authenticator;
  metrics: Metrics;
  retryAfterS: number;
  /** The WebSocket ingest route: the only one that takes a token from the handshake. */
  webSocketPath: string;
}

const REALM = 'Bearer realm="tracehouse"';

export function registerAuth(app: FastifyInstance, options: AuthHookOptions): void {
  const { authenticator, metrics, retryAfterS, webSocketPath } = options;
  // Reference-typed decorators must start null; the hook sets both on every request.
  app.decorateRequest('scopes', null as unknown as ReadonlySet<Scope>);
  app.decorateRequest('authExpiresAt', undefined);

  app.addHook('onRequest', async (request, reply) => {
    const access = accessOf(request);
    if (authenticator.open) {
      request.tenant = OPEN_TENANT;
      request.scopes = ALL_SCOPES;
      return;
    }
    request.scopes = NO_SCOPES;
    if (access === 'public' || access === undefined) return;
    try {
      const principal = await authenticator.verify(readBearerToken(request, webSocketPath));
      if (!principal.scopes.has(access)) {
        throw new AuthFailure('insufficient_scope', `this endpoint needs the "${access}" scope`);
      }
      request.tenant = principal.tenant;
      request.scopes = principal.scopes;
      request.authExpiresAt = principal.expiresAtMs;
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      metrics.authFailures.inc({ reason: err.reason });
      if (err.reason === 'keys_unavailable') request.log.warn({ err }, 'JWKS unavailable: request refused with 503');
      else request.log.debug({ reason: err.reason, route: request.routeOptions.url }, 'request not authenticated');
      return refuse(request, reply, err, access, retryAfterS);
    }
  });
}

/** The route's declared access; undefined for a request that matched no route (404). */
function accessOf(request: FastifyRequest): RouteAccess | undefined {
  if (request.routeOptions.url === undefined) return undefined;
  return request.routeOptions.config.access ?? 'admin';
}

function refuse(
  request: FastifyRequest,
  reply: FastifyReply,
  failure: AuthFailure,
  access: RouteAccess,
  retryAfterS: number,
): FastifyReply {
  if (failure.reason === 'missing_token') reply.header('www-authenticate', REALM);
  else if (failure.reason === 'insufficient_scope') {
    reply.header('www-authenticate', `${REALM}, error="insufficient_scope", scope="${access}"`);
  } else if (failure.reason !== 'keys_unavailable') {
    reply.header('www-authenticate', `${REALM}, error="invalid_token"`);
  }
  if ((request.headers.upgrade ?? '').toLowerCase() === 'websocket') endSocketAfterReply(request, reply);
  return sendOtlpReply(reply, replyForError(failure.toTracehouseError(), formatOf(request), retryAfterS));
}

/**
 * A refused WebSocket handshake is answered on a socket that the HTTP server no longer tracks, and
 * the websocket plugin only cleans up after requests that got past this hook: end the socket once
 * the answer is written, or it stays open (and server.close() waits for it).
 */
function endSocketAfterReply(request: FastifyRequest, reply: FastifyReply): void {
  const socket = request.raw.socket;
  reply.header('connection', 'close');
  reply.raw.once('finish', () => {
    socket.end();
    socket.once('finish', () => socket.destroy());
  });
}
