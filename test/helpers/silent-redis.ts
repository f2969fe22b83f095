/**
 * A Redis that is there but never answers: it speaks just enough RESP for ioredis to become ready
 * (INFO, CLIENT SETNAME, …), then leaves every EVAL / EVALSHA unanswered. Reliability catalog row
 * 14 (a slow Redis) for anything that runs scripts: the rate limiter and the query cache.
 */
import net from 'node:net';

export interface SilentRedis {
  url: string;
  /** EVAL / EVALSHA commands received (none of them answered). */
  scripts(): number;
  close(): Promise<void>;
}

export async function startSilentRedis(): Promise<SilentRedis> {
  let scripts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const command = takeCommand(buffered);
        if (!command) return;
        buffered = buffered.slice(command.length);
        const name = command.args[0]?.toUpperCase();
        if (name === 'EVALSHA' || name === 'EVAL') scripts += 1;
        else if (name === 'INFO') socket.write(bulk('# Server\r\nredis_version:7.0.0\r\nloading:0\r\n'));
        else socket.write('+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    scripts: () => scripts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function bulk(text: string): string {
  return `$${Buffer.byteLength(text, 'latin1')}\r\n${text}\r\n`;
}

/** One RESP array of bulk strings from the front of `input`, or undefined when incomplete. */
function takeCommand(input: string): { args: string[]; length: number } | undefined {
  if (!input.startsWith('*')) return undefined;
  let offset = input.indexOf('\r\n');
  if (offset < 0) return undefined;
  const count = Number(input.slice(1, offset));
  offset += 2;
  const args: string[] = [];
  for (let i = 0; i < count; i++) {
    const end = input.indexOf('\r\n', offset);
    if (end < 0) return undefined;
    const size = Number(input.slice(offset + 1, end));
    if (input.length < end + 2 + size + 2) return undefined;
    args.push(input.slice(end + 2, end + 2 + size));
    offset = end + 2 + size + 2;
  }
  return { args, length: offset };
}
