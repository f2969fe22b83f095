/**
 * Where a bearer token is read from. HTTP: `Authorization: Bearer <token>` only. The WebSocket
 * handshake (GET /v1/traces/ws with `Upgrade: websocket`, and no other route) may also carry it
 * where a browser can put it: a `bearer.<token>` entry of `Sec-WebSocket-Protocol` (never echoed
 * back), or an `access_token` query parameter (last resort: URLs end up in proxy logs).
 */
import type { FastifyRequest } from 'fastify';
import { AuthFailure } from './failures.js';

export const WS_BEARER_PROTOCOL_PREFIX = 'bearer.';
export const WS_TOKEN_QUERY_PARAMETER = 'access_token';

const BEARER = /^Bearer +([^\s,]+) *$/i;

/** The token of the request; throws AuthFailure('missing_token' | 'malformed_token'). */
export function readBearerToken(request: FastifyRequest, webSocketPath: string): string {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (!match) throw new AuthFailure('malformed_token', 'the Authorization header is not "Bearer <token>"');
    return match[1];
  }
  if (isWebSocketHandshake(request, webSocketPath)) {
    const fromProtocol = tokenFromProtocols(request.headers['sec-websocket-protocol']);
    if (fromProtocol !== undefined) return fromProtocol;
    const fromQuery = (request.query as Record<string, unknown> | undefined)?.[WS_TOKEN_QUERY_PARAMETER];
    if (typeof fromQuery === 'string' && fromQuery !== '') return fromQuery;
  }
  throw new AuthFailure('missing_token', 'a bearer token is required (Authorization: Bearer <token>)');
}

function isWebSocketHandshake(request: FastifyRequest, webSocketPath: string): boolean {
  return (
    request.method === 'GET' &&
    request.routeOptions.url === webSocketPath &&
    (request.headers.upgrade ?? '').toLowerCase() === 'websocket'
  );
}

function tokenFromProtocols(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const entry of header.split(',')) {
    const protocol = entry.trim();
    if (protocol.startsWith(WS_BEARER_PROTOCOL_PREFIX) && protocol.length > WS_BEARER_PROTOCOL_PREFIX.length) {
      return protocol.slice(WS_BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}
