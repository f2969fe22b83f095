/**
 * One HTTP(S) request with node:http(s), for tests that talk to nginx with a test CA: the body can
 * be one buffer (sent with Content-Length unless told otherwise) or chunks sent with pauses
 * (chunked transfer encoding), or only announced (`announceLength`: headers with that
 * Content-Length and no body, to see what a proxy answers before reading it).
 */
import http from 'node:http';
import https from 'node:https';

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  ca?: string;
  body?: Buffer;
  /** Sent one after the other without Content-Length, each after its pause. */
  chunks?: Array<{ data: Buffer; pauseMs?: number }>;
  /** Send only the headers with this Content-Length, then wait for the answer. */
  announceLength?: number;
  timeoutMs?: number;
  /** Default: a fresh connection per request (no state between test steps). */
  agent?: http.Agent;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function request(url: string, options: RequestOptions = {}): Promise<Response> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.body) headers['content-length'] ??= String(options.body.length);
  if (options.announceLength !== undefined) headers['content-length'] = String(options.announceLength);
  const requestOptions: https.RequestOptions = {
    method: options.method ?? (options.body || options.chunks || options.announceLength ? 'POST' : 'GET'),
    headers,
    agent: options.agent ?? false,
    ca: options.ca,
    servername: 'localhost',
    timeout: options.timeoutMs ?? 30_000,
  };
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = (target.protocol === 'https:' ? https : http).request(target, requestOptions, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`)));
    // A proxy may answer (413) and close while the body is still going out: the answer counts.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
      else setTimeout(() => answered || reject(err), 2000);
    });
    if (options.announceLength !== undefined) {
      req.flushHeaders();
      return;
    }
    if (options.chunks) {
      void (async () => {
        for (const chunk of options.chunks!) {
          if (chunk.pauseMs) await new Promise((r) => setTimeout(r, chunk.pauseMs));
          if (req.destroyed) return;
          req.write(chunk.data);
        }
        req.end();
      })();
      return;
    }
    req.end(options.body);
  });
}
