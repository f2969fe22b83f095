/**
 * Search conditions as SQL fragments: each span or trace condition becomes a boolean expression over
 * the spans row `s` (or the traces row `t`), with every value a parameter (Params). Equalities on
 * attribute maps are written as containment, so the GIN indexes answer them. A condition on an
 * attribute that may live in a shared table (a span's resource, migrations/000005; its attribute
 * set, 000006) is a test of the span's id column against the ids that meet it: looked up first
 * (buildCatalogMatches) when the caller can, else by an uncorrelated subquery.
 * The statements built from them are in search-sql.ts.
 */
import type { Comparison, Scalar, SpanCondition, TraceCondition } from './reader-types.js';
import { CATALOG_TABLES, type Catalog } from './write-catalog.js';

export interface Statement {
  text: string;
  values: unknown[];
}

/** Collects parameter values; add() returns the placeholder of the value it was given. */
export class Params {
  readonly values: unknown[] = [];
  /** The tenant's placeholder, for conditions on the tenant's catalogs (set by each builder). */
  tenant = '';
  /** Resource and attribute set ids already known to meet a condition (buildCatalogMatches). */
  catalogs: CatalogMatches | undefined;

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** Unix microseconds → timestamptz text with microseconds, e.g. 2030-01-15T10:00:00.123456Z. */
export function microsToTimestamptz(micros: bigint): string {
  const ms = micros / 1000n;
  const rest = Number(micros - ms * 1000n);
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

export function nanosToTimestamptz(nanos: bigint): string {
  return microsToTimestamptz(nanos / 1000n);
}

const TEXT_OPERATORS: Record<Comparison, string> = {
  '=': '=',
  '!=': '<>',
  '>': '>',
  '>=': '>=',
  '<': '<',
  '<=': '<=',
  '=~': '~',
  '!~': '!~',
};

/** A TraceQL regex matches the whole value; PostgreSQL's `~` finds a match anywhere. */
function anchored(pattern: string): string {
  return `^(?:${pattern})$`;
}

function compareColumn(column: string, op: Comparison, value: string | bigint | number, params: Params): string {
  if (op === '=~' || op === '!~') return `${column} ${TEXT_OPERATORS[op]} ${params.add(anchored(String(value)))}`;
  return `${column} ${TEXT_OPERATORS[op]} ${params.add(typeof value === 'string' ? value : value.toString())}`;
}

function jsonTypeOf(value: Scalar): { type: string; cast: string } {
  if (typeof value === 'string') return { type: 'string', cast: 'text' };
  if (typeof value === 'boolean') return { type: 'boolean', cast: 'boolean' };
  return { type: 'number', cast: 'numeric' };
}

/** A JSON literal of a typed value (bigint digits kept exact). */
function jsonLiteral(value: Scalar): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return Number.isFinite(value) ? String(value) : JSON.stringify(String(value));
}

/** `{"key": value}` as jsonb text: the containment a GIN jsonb_path_ops index answers. */
function containment(column: string, key: string, valueJson: string, params: Params): string {
  return `${column} @> ${params.add(`{${JSON.stringify(key)}:${valueJson}}`)}::jsonb`;
}

/**
 * A typed comparison on one jsonb attribute map; false when the key is missing or holds another
 * type. Equality is containment, so the GIN index on the column can answer it.
 */
function compareAttribute(column: string, key: string, op: Comparison, value: Scalar, params: Params): string {
  if (op === '=') return containment(column, key, jsonLiteral(value), params);
  const k = params.add(key);
  if (op === '=~' || op === '!~') {
    return `(jsonb_typeof(${column} -> ${k}) = 'string' AND ${column} ->> ${k} ${TEXT_OPERATORS[op]} ${params.add(anchored(String(value)))})`;
  }
  const { type, cast } = jsonTypeOf(value);
  if (type === 'boolean' && op !== '!=') return 'false';
  const literal = `to_jsonb(${params.add(String(value))}::${cast})`;
  return `(jsonb_typeof(${column} -> ${k}) = '${type}' AND ${column} -> ${k} ${TEXT_OPERATORS[op]} ${literal})`;
}

const NUMBER_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/;

/**
 * The JSON values whose text form is `text`: the string itself, and the number or boolean it
 * spells (Jaeger compares tags by their text: `http.status_code=500` finds the int 500).
 */
function textForms(text: string): string[] {
  const forms = [JSON.stringify(text)];
  if (NUMBER_TEXT.test(text)) forms.push(text);
  if (text === 'true' || text === 'false') forms.push(text);
  return forms;
}

/**
 * The ids of the tenant's resources and attribute sets that meet each condition reading them, by
 * condition: found before a search, so the span statement gets the actual ids (or `false`).
 */
export interface CatalogMatches {
  resources: Map<SpanCondition, readonly bigint[]>;
  attributeSets: Map<SpanCondition, readonly bigint[]>;
}

/** More matching ids than this are left to a subquery rather than sent as a parameter. */
const MAX_INLINE_CATALOG_IDS = 1000;

/** Whether a condition reads resource attributes (other than service.name, a spans column). */
export function readsResources(condition: SpanCondition): boolean {
  if (condition.target === 'tag') return true;
  return condition.target === 'attribute' && condition.scope !== 'span' && condition.key !== 'service.name';
}

/** Whether a condition reads span attributes, which may sit in the span's attribute set (000006). */
export function readsAttributeSets(condition: SpanCondition): boolean {
  if (condition.target === 'tag') return true;
  return condition.target === 'attribute' && condition.scope !== 'resource';
}

const READS: Record<Catalog, (condition: SpanCondition) => boolean> = {
  resources: readsResources,
  attributeSets: readsAttributeSets,
};

/** The condition's test on one attribute map (a resource's, a set's or a span's own). */
function attributeMapTest(condition: SpanCondition, column: string, params: Params): string {
  if (condition.target === 'tag') {
    return `(${textForms(condition.value)
      .map((form) => containment(column, condition.key, form, params))
      .join(' OR ')})`;
  }
  if (condition.target !== 'attribute') throw new Error(`${condition.target} conditions read no attribute map`);
  return compareAttribute(column, condition.key, condition.op, condition.value, params);
}

/**
 * One statement listing, for each condition (by its index in `conditions`) and each catalog it
 * reads, the tenant's resources or attribute sets that meet it: lookups in small tables, done
 * before a search. Rows: { n, catalog, id }.
 */
export function buildCatalogMatches(tenant: string, conditions: readonly SpanCondition[]): Statement | undefined {
  const params = new Params();
  const $tenant = params.add(tenant);
  const arms = conditions.flatMap((condition, n) =>
    (Object.keys(CATALOG_TABLES) as Catalog[])
      .filter((catalog) => READS[catalog](condition))
      .map((catalog) => {
        const { table, id } = CATALOG_TABLES[catalog];
        return (
          `SELECT ${n} AS n, '${catalog}' AS catalog, c.${id} AS id FROM ${table} c ` +
          `WHERE c.tenant = ${$tenant} AND ${attributeMapTest(condition, 'c.attributes', params)}`
        );
      }),
  );
  if (arms.length === 0) return undefined;
  return { text: arms.join('\nUNION ALL\n'), values: params.values };
}

/** The CatalogMatches of `conditions` from the rows of their buildCatalogMatches statement. */
export function catalogMatchesFrom(
  conditions: readonly SpanCondition[],
  rows: ReadonlyArray<Record<string, unknown>>,
): CatalogMatches {
  const matches: CatalogMatches = { resources: new Map(), attributeSets: new Map() };
  for (const condition of conditions) {
    for (const catalog of Object.keys(CATALOG_TABLES) as Catalog[]) {
      if (READS[catalog](condition)) matches[catalog].set(condition, []);
    }
  }
  for (const row of rows) {
    const ids = matches[row.catalog as Catalog].get(conditions[row.n as number]) as bigint[];
    ids.push(BigInt(row.id as string));
  }
  return matches;
}

/**
 * A condition on the span's resource or attribute set as a test of the span's id column: against
 * the ids found by buildCatalogMatches when the caller has them (`false` when none match), else
 * against an uncorrelated subquery on the catalog table.
 */
function onCatalog(catalog: Catalog, condition: SpanCondition, params: Params): string {
  const { table, id } = CATALOG_TABLES[catalog];
  const spanColumn = `s.${id}`;
  const ids = params.catalogs?.[catalog].get(condition);
  if (ids !== undefined && ids.length === 0) return 'false';
  if (ids !== undefined && ids.length <= MAX_INLINE_CATALOG_IDS) {
    return `${spanColumn} = ANY(${params.add(ids.map(String))}::bigint[])`;
  }
  if (params.tenant === '') throw new Error('a catalog condition needs the tenant placeholder');
  return (
    `${spanColumn} = ANY(ARRAY(SELECT c.${id} FROM ${table} c ` +
    `WHERE c.tenant = ${params.tenant} AND ${attributeMapTest(condition, 'c.attributes', params)}))`
  );
}

/** A condition on span attributes: the span's own, or its attribute set's. */
function onSpanAttributes(condition: SpanCondition, params: Params): string {
  return `(${attributeMapTest(condition, 's.attributes', params)} OR ${onCatalog('attributeSets', condition, params)})`;
}

/** One span condition as a boolean SQL expression over the spans row `s`. */
export function spanConditionSql(condition: SpanCondition, params: Params): string {
  switch (condition.target) {
    case 'intrinsic':
      switch (condition.intrinsic) {
        case 'name':
          return compareColumn('s.name', condition.op, condition.value, params);
        case 'service':
          return compareColumn('s.service_name', condition.op, condition.value, params);
        case 'statusMessage':
          return compareColumn('s.status_message', condition.op, condition.value, params);
        case 'status':
          return `s.status_code ${TEXT_OPERATORS[condition.op]} ${params.add(condition.value)}::smallint`;
        case 'kind':
          return `s.kind ${TEXT_OPERATORS[condition.op]} ${params.add(condition.value)}::smallint`;
        case 'duration':
          if (condition.op === '=~' || condition.op === '!~') throw new Error('duration takes no regex');
          return `s.duration_ns ${TEXT_OPERATORS[condition.op]} ${params.add(condition.value.toString())}::bigint`;
      }
      break;
    case 'attribute': {
      const { scope, key, op, value } = condition;
      const onSpan = () => onSpanAttributes(condition, params);
      // service.name is a resource attribute that also has its own (indexed) column.
      const onResource = () =>
        key === 'service.name'
          ? typeof value === 'string'
            ? compareColumn('s.service_name', op, value, params)
            : 'false'
          : onCatalog('resources', condition, params);
      if (scope === 'span') return onSpan();
      if (scope === 'resource') return onResource();
      return `(${onSpan()} OR ${onResource()})`;
    }
    case 'tag': {
      return `(${onSpanAttributes(condition, params)} OR ${onCatalog('resources', condition, params)})`;
    }
  }
}

/** One trace condition as a boolean SQL expression over the traces row `t`. */
export function traceConditionSql(condition: TraceCondition, params: Params): string {
  switch (condition.field) {
    case 'duration':
      return `(t.last_end_unix_nano - t.first_start_unix_nano) ${TEXT_OPERATORS[condition.op]} ${params.add(condition.value.toString())}::bigint`;
    case 'rootName':
      return compareColumn('t.root_span_name', condition.op, condition.value, params);
    case 'rootServiceName':
      return compareColumn('t.root_service_name', condition.op, condition.value, params);
  }
}

export function andAll(conditions: readonly SpanCondition[], params: Params): string {
  return conditions.map((c) => `\n     AND ${spanConditionSql(c, params)}`).join('');
}
