/**
 * The TraceQL subset Grafana's search builder emits: one spanset `{ cond && cond && … }` (or `{}`),
 * where a condition is `field op literal`.
 *   fields     resource.service.name, name, status, kind, duration, statusMessage (also as
 *              span:name, span:status, span:kind, span:duration, span:statusMessage),
 *              traceDuration, rootName, rootServiceName (trace:duration, trace:rootName,
 *              trace:rootService), span.<attr>, resource.<attr>, .<attr> (span or resource);
 *              an attribute name may be quoted: span."my attr"
 *   operators  = != > >= < <= =~ !~   (regexes match the whole value, as in Tempo)
 *   literals   "string" or `raw string`, 42, -1.5, true / false, durations (100ms, 1.5s, 1m30s),
 *              status error / ok / unset, kind server / client / producer / consumer / internal /
 *              unspecified
 * Anything else (||, several spansets, pipelines, select(), nil, events, links, parentheses) is
 * refused with a 400 naming the position and the construct, rather than guessed at.
 */
import type { Comparison, Scalar, SpanCondition, TraceCondition } from '../storage/reader-types.js';
import { badRequest, clip, tryParseDuration } from './params.js';

export interface TraceQLQuery {
  spanConditions: SpanCondition[];
  traceConditions: TraceCondition[];
}

const STATUS_CODES: Record<string, number> = { unset: 0, ok: 1, error: 2 };
const KIND_CODES: Record<string, number> = {
  unspecified: 0,
  internal: 1,
  server: 2,
  client: 3,
  producer: 4,
  consumer: 5,
};

type Field =
  | { kind: 'text'; intrinsic: 'name' | 'service' | 'statusMessage' }
  | { kind: 'enum'; intrinsic: 'status' | 'kind' }
  | { kind: 'duration' }
  | { kind: 'trace-duration' }
  | { kind: 'trace-text'; field: 'rootName' | 'rootServiceName' }
  | { kind: 'attribute'; scope: 'span' | 'resource' | 'any'; key: string };

const INTRINSICS: Record<string, Field> = {
  name: { kind: 'text', intrinsic: 'name' },
  'span:name': { kind: 'text', intrinsic: 'name' },
  statusMessage: { kind: 'text', intrinsic: 'statusMessage' },
  'span:statusMessage': { kind: 'text', intrinsic: 'statusMessage' },
  status: { kind: 'enum', intrinsic: 'status' },
  'span:status': { kind: 'enum', intrinsic: 'status' },
  kind: { kind: 'enum', intrinsic: 'kind' },
  'span:kind': { kind: 'enum', intrinsic: 'kind' },
  duration: { kind: 'duration' },
  'span:duration': { kind: 'duration' },
  traceDuration: { kind: 'trace-duration' },
  'trace:duration': { kind: 'trace-duration' },
  rootName: { kind: 'trace-text', field: 'rootName' },
  'trace:rootName': { kind: 'trace-text', field: 'rootName' },
  rootServiceName: { kind: 'trace-text', field: 'rootServiceName' },
  'trace:rootService': { kind: 'trace-text', field: 'rootServiceName' },
};

const OPERATORS: readonly Comparison[] = ['=~', '!~', '!=', '>=', '<=', '=', '>', '<'];
const NAME_CHAR = /[^\s{}()=!<>~&|,"`]/;

type Literal =
  | { type: 'string'; value: string }
  | { type: 'int'; value: bigint }
  | { type: 'float'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'duration'; value: bigint }
  | { type: 'keyword'; value: string };

class Parser {
  #pos = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  fail(problem: string): never {
    throw badRequest(
      `unsupported or invalid TraceQL at character ${this.#pos + 1} of '${clip(this.#text, 200)}': ${problem}. ` +
        'Supported: one spanset { cond && cond … } on resource.service.name, name, status, kind, duration, ' +
        'statusMessage, traceDuration, rootName, rootServiceName, span.*, resource.* and .* attributes ' +
        'with = != > >= < <= =~ !~',
    );
  }

  #space(): void {
    while (this.#pos < this.#text.length && /\s/.test(this.#text[this.#pos])) this.#pos++;
  }

  #peek(): string {
    return this.#text[this.#pos] ?? '';
  }

  #eat(token: string): boolean {
    this.#space();
    if (!this.#text.startsWith(token, this.#pos)) return false;
    this.#pos += token.length;
    return true;
  }

  parse(): TraceQLQuery {
    const query: TraceQLQuery = { spanConditions: [], traceConditions: [] };
    this.#space();
    if (this.#pos === this.#text.length) return query; // an empty query matches every trace
    if (!this.#eat('{')) this.fail('a query must be one spanset in braces, e.g. { name = "GET /" }');
    if (!this.#eat('}')) {
      do this.#condition(query);
      while (this.#eat('&&'));
      this.#space();
      if (this.#text.startsWith('||', this.#pos)) this.fail('|| is not supported; only && joins conditions');
      if (!this.#eat('}')) this.fail("expected '&&' or '}'");
    }
    this.#space();
    if (this.#pos < this.#text.length) {
      this.fail('only one spanset is supported (no pipelines, select(), aggregates or spanset operators)');
    }
    return query;
  }

  #condition(query: TraceQLQuery): void {
    this.#space();
    if (this.#peek() === '(') this.fail('parentheses are not supported');
    const field = this.#field();
    const op = this.#operator();
    const literal = this.#literal();
    this.#typed(query, field, op, literal);
  }

  #name(): string {
    this.#space();
    if (this.#peek() === '"') return this.#string();
    const start = this.#pos;
    while (this.#pos < this.#text.length && NAME_CHAR.test(this.#text[this.#pos])) this.#pos++;
    return this.#text.slice(start, this.#pos);
  }

  #field(): Field {
    this.#space();
    if (this.#peek() === '.') {
      this.#pos++;
      return this.#attribute('any', this.#name());
    }
    const start = this.#pos;
    for (const scope of ['span', 'resource'] as const) {
      if (this.#text.startsWith(`${scope}.`, this.#pos)) {
        this.#pos += scope.length + 1;
        return this.#attribute(scope, this.#name());
      }
    }
    const word = this.#name();
    const intrinsic = INTRINSICS[word];
    if (intrinsic !== undefined) return intrinsic;
    this.#pos = start;
    if (/^(event|link|instrumentation|scope|trace|span)[.:]/.test(word)) this.fail(`'${word}' is not supported`);
    if (word === '') this.fail('expected a field such as name, status or span.http.route');
    this.fail(`unknown field '${word}' (attributes need a scope: span.${word}, resource.${word} or .${word})`);
  }

  #attribute(scope: 'span' | 'resource' | 'any', key: string): Field {
    if (key === '') this.fail('expected an attribute name');
    if (key === 'service.name' && scope === 'resource') return { kind: 'text', intrinsic: 'service' };
    return { kind: 'attribute', scope, key };
  }

  #operator(): Comparison {
    this.#space();
    for (const op of OPERATORS) {
      if (this.#text.startsWith(op, this.#pos)) {
        this.#pos += op.length;
        return op;
      }
    }
    this.fail('expected an operator (= != > >= < <= =~ !~)');
  }

  #string(): string {
    const quote = this.#peek();
    const start = this.#pos;
    let i = start + 1;
    while (i < this.#text.length && this.#text[i] !== quote) i += quote === '"' && this.#text[i] === '\\' ? 2 : 1;
    if (i >= this.#text.length) this.fail('unterminated string');
    this.#pos = i + 1;
    const body = this.#text.slice(start + 1, i);
    if (quote === '`') return body;
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      this.#pos = start;
      this.fail('invalid escape in string');
    }
  }

  #literal(): Literal {
    this.#space();
    const c = this.#peek();
    if (c === '"' || c === '`') return { type: 'string', value: this.#string() };
    const start = this.#pos;
    const word = this.#name();
    if (word === '') this.fail('expected a value');
    if (word === 'true' || word === 'false') return { type: 'bool', value: word === 'true' };
    if (/^-?\d+$/.test(word)) return { type: 'int', value: BigInt(word) };
    if (/^-?(\d+\.\d*|\.\d+|\d+)(e[-+]?\d+)?$/i.test(word)) return { type: 'float', value: Number(word) };
    const duration = tryParseDuration(word);
    if (duration !== undefined) return { type: 'duration', value: duration };
    if (word === 'nil') {
      this.#pos = start;
      this.fail('nil comparisons are not supported');
    }
    if (/^[A-Za-z]\w*$/.test(word)) return { type: 'keyword', value: word };
    this.#pos = start;
    this.fail(`invalid value '${word}'`);
  }

  #typed(query: TraceQLQuery, field: Field, op: Comparison, literal: Literal): void {
    const isRegex = op === '=~' || op === '!~';
    switch (field.kind) {
      case 'text':
      case 'trace-text':
        if (literal.type !== 'string') this.fail('this field takes a string value');
        if (field.kind === 'text') {
          query.spanConditions.push({ target: 'intrinsic', intrinsic: field.intrinsic, op, value: literal.value });
        } else query.traceConditions.push({ field: field.field, op, value: literal.value });
        return;
      case 'enum': {
        const codes = field.intrinsic === 'status' ? STATUS_CODES : KIND_CODES;
        if (op !== '=' && op !== '!=') this.fail(`${field.intrinsic} takes only = and !=`);
        if (literal.type !== 'keyword' || !(literal.value in codes)) {
          this.fail(`${field.intrinsic} takes one of ${Object.keys(codes).join(', ')}`);
        }
        query.spanConditions.push({ target: 'intrinsic', intrinsic: field.intrinsic, op, value: codes[literal.value] });
        return;
      }
      case 'duration':
      case 'trace-duration': {
        if (isRegex) this.fail('durations take no regex');
        const value =
          literal.type === 'duration' ? literal.value : literal.type === 'int' && literal.value === 0n ? 0n : undefined;
        if (value === undefined) this.fail('durations take a value such as 100ms or 1.5s');
        if (field.kind === 'duration') {
          query.spanConditions.push({ target: 'intrinsic', intrinsic: 'duration', op, value });
        } else query.traceConditions.push({ field: 'duration', op, value });
        return;
      }
      case 'attribute': {
        if (isRegex && literal.type !== 'string') this.fail('=~ and !~ take a string pattern');
        if (literal.type === 'bool' && op !== '=' && op !== '!=') this.fail('booleans take only = and !=');
        if (literal.type === 'duration' || literal.type === 'keyword') {
          this.fail('attributes are compared to "quoted strings", numbers or true / false');
        }
        const value: Scalar = literal.value;
        query.spanConditions.push({ target: 'attribute', scope: field.scope, key: field.key, op, value });
        return;
      }
    }
  }
}

/** Parses the supported TraceQL subset; throws a 400 TracehouseError on anything else. */
export function parseTraceQL(text: string): TraceQLQuery {
  return new Parser(text).parse();
}
