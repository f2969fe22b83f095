/**
 * Jaeger search parameters (v1 and api_v3 share their meaning) → a SearchQuery.
 *
 * Tags are matched as Jaeger matches them: on the span's or its resource's attributes, by the text
 * form of the value (`http.status_code=500` finds the int 500). The tags Jaeger derives from OTLP
 * fields map back to those fields: error=true|false, span.kind, otel.status_code,
 * otel.status_description. minDuration / maxDuration bound the duration of the matching span.
 */
import type { SearchQuery, SpanCondition, TimeWindow } from '../storage/reader-types.js';
import { KIND_NAMES } from './jaeger-model.js';
import { badRequest, parseDuration } from './params.js';

export interface JaegerSearch {
  service?: string;
  operation?: string;
  tags: Array<[string, string]>;
  minDuration?: string;
  maxDuration?: string;
  window: TimeWindow;
  limit: number;
}

const STATUS_BY_NAME: Record<string, number> = { UNSET: 0, OK: 1, ERROR: 2 };

export function tagCondition(key: string, value: string): SpanCondition {
  switch (key) {
    case 'error':
      if (value !== 'true' && value !== 'false') return { target: 'tag', key, value };
      return { target: 'intrinsic', intrinsic: 'status', op: value === 'true' ? '=' : '!=', value: 2 };
    case 'span.kind': {
      const kind = KIND_NAMES.indexOf(value.toLowerCase() as (typeof KIND_NAMES)[number]);
      if (kind < 0) throw badRequest(`span.kind must be one of ${KIND_NAMES.join(', ')}, got '${value}'`);
      return { target: 'intrinsic', intrinsic: 'kind', op: '=', value: kind };
    }
    case 'otel.status_code': {
      const status = STATUS_BY_NAME[value.toUpperCase()];
      if (status === undefined) throw badRequest(`otel.status_code must be OK, ERROR or UNSET, got '${value}'`);
      return { target: 'intrinsic', intrinsic: 'status', op: '=', value: status };
    }
    case 'otel.status_description':
      return { target: 'intrinsic', intrinsic: 'statusMessage', op: '=', value };
    default:
      return { target: 'tag', key, value };
  }
}

/** Parses the `tags` JSON map ({"key": "value"}) Grafana builds from its logfmt tag field. */
export function parseTagsJson(text: string, name: string): Array<[string, string]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest(`${name} must be a JSON object of string values, e.g. {"http.status_code":"500"}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest(`${name} must be a JSON object of string values`);
  }
  return Object.entries(parsed).map(([key, value]) => {
    if (typeof value === 'object' && value !== null) {
      throw badRequest(`${name}: the value of '${key}' must be a scalar`);
    }
    return [key, String(value)];
  });
}

/** Jaeger's `tag=key:value` form. */
export function parseTagParam(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw badRequest(`malformed 'tag' parameter, expecting key:value, received: ${text}`);
  return [text.slice(0, colon), text.slice(colon + 1)];
}

export function toSearchQuery(search: JaegerSearch): SearchQuery {
  const spanConditions: SpanCondition[] = [];
  if (search.service !== undefined) {
    spanConditions.push({ target: 'intrinsic', intrinsic: 'service', op: '=', value: search.service });
  }
  if (search.operation !== undefined) {
    spanConditions.push({ target: 'intrinsic', intrinsic: 'name', op: '=', value: search.operation });
  }
  for (const [key, value] of search.tags) spanConditions.push(tagCondition(key, value));
  const min = search.minDuration === undefined ? undefined : parseDuration(search.minDuration, 'minDuration');
  const max = search.maxDuration === undefined ? undefined : parseDuration(search.maxDuration, 'maxDuration');
  if (min !== undefined && max !== undefined && max < min) {
    throw badRequest("'maxDuration' should be greater than 'minDuration'");
  }
  if (min !== undefined) spanConditions.push({ target: 'intrinsic', intrinsic: 'duration', op: '>=', value: min });
  if (max !== undefined) spanConditions.push({ target: 'intrinsic', intrinsic: 'duration', op: '<=', value: max });
  return { window: search.window, spanConditions, traceConditions: [], limit: search.limit };
}
