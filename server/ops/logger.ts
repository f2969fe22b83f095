import { pino, type Logger } from 'pino';

/** JSON logs to stdout; authorization headers never reach a log line. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'tracehouse' },
    redact: [
      'req.headers.authorization',
      'req.headers.cookie',
      'headers.authorization',
      'req.headers["sec-websocket-protocol"]', // may carry a bearer.<token> subprotocol
    ],
  });
}
