/**
 * WebSocket transport: GET /v1/traces/ws upgrades (same port, after the app's onRequest hooks, so
 * authentication happens before the upgrade) to a connection that carries one OTLP export request
 * per frame and answers each with an ack after its spans are committed. The protocol is
 * docs/websocket-protocol.md; one connection is a WsConnection, this module holds the set of them.
 *
 * Why it holds state: the open connections, for the connection limit (1013 past it), the keepalive
 * timer, and the shutdown: on close the app's preClose runs ours, which stops taking frames (503
 * shutting-down acks), waits within the drain deadline until every admitted frame is committed and
 * acked, then closes every connection with 1001 (going away) so clients reconnect elsewhere.
 */
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { WebSocketConfig } from '../config.js';
import type { Metrics } from '../ops/metrics.js';
import type { IngestPipeline } from './ingest.js';
import { CloseCode, WS_SUBPROTOCOL } from './ws-envelope.js';
import { WsConnection, closeCodeLabel } from './ws-connection.js';

export const WS_INGEST_PATH = '/v1/traces/ws';

/** How long closing connections get to answer our close frame before they are cut. */
const CLOSE_HANDSHAKE_MS = 2000;

export interface OtlpWebSocketOptions {
  pipeline: IngestPipeline;
  config: WebSocketConfig;
  retryAfterS: number;
  drainTimeoutMs: number;
  metrics: Metrics;
  isDraining: () => boolean;
}

export async function registerOtlpWebSocket(app: FastifyInstance, options: OtlpWebSocketOptions): Promise<void> {
  const { pipeline, config, retryAfterS, drainTimeoutMs, metrics, isDraining } = options;
  const connections = new Set<WsConnection>();
  let closing = false;
  let heartbeat: NodeJS.Timeout | undefined;

  const refuse = (socket: WebSocket, code: number, reason: string): void => {
    metrics.wsCloses.inc({ code: closeCodeLabel(code) });
    socket.close(code, reason);
  };

  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: config.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Select our subprotocol, never echo another one (browsers may send a token as a subprotocol).
      handleProtocols: (protocols) => (protocols.has(WS_SUBPROTOCOL) ? WS_SUBPROTOCOL : false),
    },
    errorHandler(error, socket, request) {
      const code = (error as { code?: string }).code ?? '';
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        // ws has already sent close 1009; the frame was not read past the limit.
        metrics.wsFrames.inc({ outcome: 'too_large' });
        request.log.info({ limit: config.maxFrameBytes }, 'websocket frame over the limit: closed with 1009');
      } else if (code.startsWith('WS_ERR_')) {
        metrics.wsFrames.inc({ outcome: 'protocol_error' }); // ws has already sent the close frame
        request.log.info({ err: error }, 'websocket protocol error');
      } else if (code === 'ECONNRESET' || code === 'EPIPE') {
        request.log.debug({ code }, 'websocket connection reset');
      } else {
        request.log.error({ err: error }, 'websocket handler failed');
        socket.close(CloseCode.INTERNAL_ERROR, 'internal error');
      }
    },
    preClose: async () => {
      closing = true;
      await drainConnections(connections, drainTimeoutMs);
      clearInterval(heartbeat);
      heartbeat = undefined;
      await new Promise<void>((resolve) => app.websocketServer.close(() => resolve()));
    },
  });

  app.get(WS_INGEST_PATH, { websocket: true, config: { access: 'traces:write' } }, (socket, request) => {
    if (socket.protocol !== WS_SUBPROTOCOL) {
      refuse(socket, CloseCode.PROTOCOL_ERROR, `subprotocol ${WS_SUBPROTOCOL} is required`);
      return;
    }
    if (closing || isDraining()) {
      refuse(socket, CloseCode.GOING_AWAY, 'server shutting down');
      return;
    }
    if (connections.size >= config.maxConnections) {
      request.log.warn({ limit: config.maxConnections }, 'websocket connection limit reached: closed with 1013');
      refuse(socket, CloseCode.TRY_AGAIN_LATER, 'too many WebSocket connections; retry later');
      return;
    }
    const connection = new WsConnection(socket, {
      pipeline,
      tenant: request.tenant,
      limits: config,
      retryAfterS,
      metrics,
      log: request.log,
    });
    connections.add(connection);
    metrics.wsConnections.set(connections.size);
    if (request.authExpiresAt !== undefined) connection.closeAt(request.authExpiresAt);
    heartbeat ??= setInterval(() => {
      for (const each of connections) each.checkLiveness();
    }, config.pingIntervalMs).unref();
    void connection.closed.then(() => {
      connections.delete(connection);
      metrics.wsConnections.set(connections.size);
      if (connections.size === 0) {
        clearInterval(heartbeat);
        heartbeat = undefined;
      }
    });
  });
}

/**
 * Shutdown: stop taking frames, wait (within the drain deadline) until every admitted frame is
 * committed and acked, then close with 1001 and give clients a moment to answer the close frame.
 */
async function drainConnections(connections: Set<WsConnection>, drainTimeoutMs: number): Promise<void> {
  const open = [...connections];
  for (const connection of open) connection.startDraining();
  await withDeadline(Promise.all(open.map((connection) => connection.whenIdle())), drainTimeoutMs);
  for (const connection of open) connection.close(CloseCode.GOING_AWAY, 'server shutting down');
  await withDeadline(Promise.all(open.map((connection) => connection.closed)), CLOSE_HANDSHAKE_MS);
  for (const connection of open) connection.terminate('no answer to the close frame');
}

async function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
