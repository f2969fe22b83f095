/**
 * Readers for the deploy artifacts, for the cross-check tests next to this file: the compose file
 * and the Kubernetes manifests (YAML), deploy/nginx/nginx.conf (a small parser of nginx's syntax:
 * directives, quoted strings, blocks), deploy/Dockerfile (instructions by stage) and the secret
 * variables deploy/docker-entrypoint.sh resolves. Plus the configuration facts they are checked
 * against, taken from server/config.ts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULTS, ENV_KEYS } from '../../../server/config.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function read(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

export function exists(relative: string): boolean {
  return existsSync(path.join(ROOT, relative));
}

// ---- configuration facts ----------------------------------------------------------------------

/** Variables the deploy files may set that tracehouse itself does not read, each with its reader. */
export const OTHER_VARIABLES: Record<string, string> = {
  NODE_OPTIONS: 'node (heap limit)',
  BACKUP_KEEP: 'the backup loop of docker-compose.prod.yml',
  BACKUP_INTERVAL_S: 'the backup loop of docker-compose.prod.yml',
};

/** VAR_FILE variables: the ones deploy/docker-entrypoint.sh turns into VAR. */
export function entrypointFileVariables(): string[] {
  const m = /^for var in ([A-Z_ ]+); do$/m.exec(read('deploy/docker-entrypoint.sh'));
  if (!m) throw new Error('deploy/docker-entrypoint.sh: no `for var in …; do` line');
  return m[1].trim().split(/\s+/);
}

/** Problems with a set of environment variables given to the tracehouse image. */
export function environmentProblems(names: Iterable<string>): string[] {
  const fileVariables = new Set(entrypointFileVariables().map((name) => `${name}_FILE`));
  return [...names]
    .filter((name) => !(name in ENV_KEYS) && !(name in OTHER_VARIABLES) && !fileVariables.has(name))
    .map(
      (name) => `${name} is neither in server/config.ts ENV_KEYS, nor a *_FILE the entrypoint reads, nor documented`,
    );
}

/** The configured value (environment over default) of a numeric key. */
export function configuredNumber(name: string, env: Record<string, string | undefined>): number {
  const spec = ENV_KEYS[name];
  const fallback = (DEFAULTS[spec.section] as unknown as Record<string, unknown>)[spec.key];
  return env[name] !== undefined ? Number(env[name]) : Number(fallback);
}

export const DEFAULT_PORT = DEFAULTS.server.port;
export const DEFAULT_MAX_BODY_BYTES = DEFAULTS.receive.maxBodyBytes;

/** "35s", "1m30s", "10m", "500ms" → milliseconds. */
export function durationMs(text: string | number): number {
  if (typeof text === 'number') return text * 1000;
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let consumed = '';
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed += m[0];
  }
  if (consumed !== text) throw new Error(`not a duration: '${text}'`);
  return total;
}

/** nginx size: "16m" → bytes. */
export function nginxSizeBytes(text: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text);
  if (!m) throw new Error(`not an nginx size: '${text}'`);
  return (
    Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'] ?? 1)
  );
}

// ---- YAML -------------------------------------------------------------------------------------

export type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function readYaml(relative: string): Yaml {
  return parse(read(relative), { merge: true }) as Yaml;
}

export interface Manifest {
  file: string;
  doc: Yaml;
}

/** Every document of every deploy/k8s/*.yaml (the backup CronJob included, when it exists). */
export function readManifests(): Manifest[] {
  const dir = path.join(ROOT, 'deploy', 'k8s');
  const manifests: Manifest[] = [];
  for (const file of readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()) {
    for (const document of parseAllDocuments(readFileSync(path.join(dir, file), 'utf8'))) {
      if (document.errors.length > 0) throw new Error(`deploy/k8s/${file}: ${document.errors[0].message}`);
      const doc = document.toJS() as Yaml | null;
      if (doc) manifests.push({ file, doc });
    }
  }
  return manifests;
}

// ---- nginx ------------------------------------------------------------------------------------

export interface NginxDirective {
  name: string;
  args: string[];
  block?: NginxDirective[];
}

interface NginxToken {
  text: string;
  quoted: boolean; // a quoted string is never `{`, `}` or `;`, and may be empty
}

function tokenizeNginx(text: string): NginxToken[] {
  const tokens: NginxToken[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push({ text: c, quoted: false });
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\') j++;
        value += text[j];
        j++;
      }
      tokens.push({ text: value, quoted: true });
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};]/.test(text[j])) j++;
      tokens.push({ text: text.slice(i, j), quoted: false });
      i = j;
    }
  }
  return tokens;
}

export function parseNginx(text: string): NginxDirective[] {
  const tokens = tokenizeNginx(text);
  let pos = 0;
  const is = (token: NginxToken | undefined, punctuation: string): boolean =>
    token !== undefined && !token.quoted && token.text === punctuation;
  const parseBlock = (): NginxDirective[] => {
    const directives: NginxDirective[] = [];
    while (pos < tokens.length && !is(tokens[pos], '}')) {
      const name = tokens[pos++].text;
      const args: string[] = [];
      while (!is(tokens[pos], ';') && !is(tokens[pos], '{')) {
        if (pos >= tokens.length) throw new Error(`nginx.conf: '${name}' is not terminated`);
        args.push(tokens[pos++].text);
      }
      if (is(tokens[pos++], '{')) {
        directives.push({ name, args, block: parseBlock() });
        if (!is(tokens[pos++], '}')) throw new Error(`nginx.conf: block '${name}' is not closed`);
      } else {
        directives.push({ name, args });
      }
    }
    return directives;
  };
  const top = parseBlock();
  if (pos !== tokens.length) throw new Error('nginx.conf: unbalanced braces');
  return top;
}

export function children(block: NginxDirective[] | undefined, name: string): NginxDirective[] {
  return (block ?? []).filter((directive) => directive.name === name);
}

export function only(block: NginxDirective[] | undefined, name: string): NginxDirective {
  const found = children(block, name);
  if (found.length !== 1) throw new Error(`expected exactly one '${name}', found ${found.length}`);
  return found[0];
}

/** proxy_set_header name (lowercased) → value, of one block level. */
export function proxyHeaders(block: NginxDirective[] | undefined): Map<string, string> {
  return new Map(children(block, 'proxy_set_header').map((d) => [d.args[0].toLowerCase(), d.args[1]]));
}

// ---- Dockerfile -------------------------------------------------------------------------------

export interface DockerInstruction {
  keyword: string;
  args: string;
}

export interface DockerStage {
  from: string;
  name?: string;
  instructions: DockerInstruction[];
}

export function parseDockerfile(text: string): { args: Map<string, string>; stages: DockerStage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const args = new Map<string, string>();
  const stages: DockerStage[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile: cannot read '${line}'`);
    const [, keyword, rest] = m;
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!from) throw new Error(`Dockerfile: bad FROM '${rest}'`);
      stages.push({ from: from[1], name: from[2], instructions: [] });
    } else if (stages.length === 0 && keyword === 'ARG') {
      const [name, value = ''] = rest.split('=');
      args.set(name, value);
    } else {
      stages.at(-1)!.instructions.push({ keyword, args: rest.replace(/\s+/g, ' ') });
    }
  }
  return { args, stages };
}
