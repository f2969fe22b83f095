/**
 * Typed attribute values as the query encoders need them, read back from the stored JSON text
 * (decode/any-value.ts documents the stored forms). JSON.parse would lose what the forms keep:
 * an int64 beyond 2^53, and int versus double (a stored double always has a fraction or exponent,
 * so `2.0` stays a double). This parser keeps a number's digits and its kind.
 *
 * Lossy by design of the stored forms: bytes come back as their base64 string, NaN and ±Infinity
 * as the strings "NaN" / "Infinity" / "-Infinity".
 */

export type AnyValue =
  | { type: 'string'; value: string }
  | { type: 'bool'; value: boolean }
  /** `value` holds the exact decimal digits of the int64. */
  | { type: 'int'; value: string }
  | { type: 'double'; value: number }
  | { type: 'array'; values: AnyValue[] }
  | { type: 'kvlist'; values: KeyValue[] }
  | { type: 'empty' };

export interface KeyValue {
  key: string;
  value: AnyValue;
}

const EMPTY: AnyValue = { type: 'empty' };

class StoredJsonParser {
  #pos = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  parse(): AnyValue {
    const value = this.#value();
    this.#space();
    if (this.#pos !== this.#text.length) this.#fail('trailing characters');
    return value;
  }

  #fail(problem: string): never {
    throw new Error(`stored JSON is malformed at ${this.#pos}: ${problem}`);
  }

  #space(): void {
    const t = this.#text;
    while (this.#pos < t.length) {
      const c = t.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.#pos++;
    }
  }

  #value(): AnyValue {
    this.#space();
    const c = this.#text[this.#pos];
    if (c === '{') return { type: 'kvlist', values: this.#object() };
    if (c === '[') return this.#array();
    if (c === '"') return { type: 'string', value: this.#string() };
    if (this.#text.startsWith('true', this.#pos)) return this.#literal(4, { type: 'bool', value: true });
    if (this.#text.startsWith('false', this.#pos)) return this.#literal(5, { type: 'bool', value: false });
    if (this.#text.startsWith('null', this.#pos)) return this.#literal(4, EMPTY);
    return this.#number();
  }

  #literal(length: number, value: AnyValue): AnyValue {
    this.#pos += length;
    return value;
  }

  #object(): KeyValue[] {
    const values: KeyValue[] = [];
    this.#pos++; // {
    this.#space();
    if (this.#text[this.#pos] === '}') {
      this.#pos++;
      return values;
    }
    for (;;) {
      this.#space();
      if (this.#text[this.#pos] !== '"') this.#fail('expected a key');
      const key = this.#string();
      this.#space();
      if (this.#text[this.#pos++] !== ':') this.#fail('expected :');
      values.push({ key, value: this.#value() });
      this.#space();
      const next = this.#text[this.#pos++];
      if (next === '}') return values;
      if (next !== ',') this.#fail('expected , or }');
    }
  }

  #array(): AnyValue {
    const values: AnyValue[] = [];
    this.#pos++; // [
    this.#space();
    if (this.#text[this.#pos] === ']') {
      this.#pos++;
      return { type: 'array', values };
    }
    for (;;) {
      values.push(this.#value());
      this.#space();
      const next = this.#text[this.#pos++];
      if (next === ']') return { type: 'array', values };
      if (next !== ',') this.#fail('expected , or ]');
    }
  }

  #string(): string {
    const t = this.#text;
    const start = this.#pos;
    let escaped = false;
    let i = start + 1;
    for (; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c === 0x5c) {
        escaped = true;
        i++;
      } else if (c === 0x22) break;
    }
    if (i >= t.length) this.#fail('unterminated string');
    this.#pos = i + 1;
    return escaped ? (JSON.parse(t.slice(start, i + 1)) as string) : t.slice(start + 1, i);
  }

  #number(): AnyValue {
    const t = this.#text;
    const start = this.#pos;
    let integral = true;
    while (this.#pos < t.length) {
      const c = t[this.#pos];
      if (c === '.' || c === 'e' || c === 'E') integral = false;
      else if (!((c >= '0' && c <= '9') || c === '-' || c === '+')) break;
      this.#pos++;
    }
    const digits = t.slice(start, this.#pos);
    if (digits === '' || Number.isNaN(Number(digits))) this.#fail('expected a value');
    return integral ? { type: 'int', value: digits } : { type: 'double', value: Number(digits) };
  }
}

/** Parses stored JSON text (jsonb output or the writer's own text) into a typed value. */
export function parseStoredJson(text: string): AnyValue {
  return new StoredJsonParser(text).parse();
}

/** Parses a stored attribute object (`{"key": value, …}`) into key / value pairs. */
export function parseAttributes(text: string): KeyValue[] {
  if (text === '{}') return [];
  const value = parseStoredJson(text);
  return value.type === 'kvlist' ? value.values : [];
}

/** The value's text as Jaeger and the tag APIs show a scalar: digits, true / false, JSON for the rest. */
export function valueToText(value: AnyValue): string {
  switch (value.type) {
    case 'string':
      return value.value;
    case 'bool':
      return String(value.value);
    case 'int':
      return value.value;
    case 'double':
      return String(value.value);
    case 'empty':
      return '';
    default:
      return JSON.stringify(toPlainJson(value));
  }
}

/** A plain JSON rendering (ints beyond 2^53 become strings) for values shown as text. */
function toPlainJson(value: AnyValue): unknown {
  switch (value.type) {
    case 'array':
      return value.values.map(toPlainJson);
    case 'kvlist':
      return Object.fromEntries(value.values.map((kv) => [kv.key, toPlainJson(kv.value)]));
    case 'int': {
      const n = Number(value.value);
      return Number.isSafeInteger(n) ? n : value.value;
    }
    case 'empty':
      return null;
    default:
      return value.value;
  }
}
