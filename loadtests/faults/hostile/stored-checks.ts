/**
 * What the hostile requests left in storage, read back through the query API (api_v3 trace by id,
 * OTLP/JSON) rather than SQL, so the checks do not depend on the shape of the tables.
 */
import type { StoredExpectations } from './attacks.js';

interface OtlpSpan {
  name?: string;
  attributes?: unknown[];
  droppedAttributesCount?: number;
}
interface OtlpTrace {
  resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

/** The spans of one trace as the query API returns them, or the HTTP status when it is not 200. */
export async function readTrace(
  baseUrl: string,
  traceIdHex: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; trace?: OtlpTrace; spans: OtlpSpan[] }> {
  const response = await fetch(`${baseUrl}/api/v3/traces/${traceIdHex}`, {
    headers,
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 200) {
    await response.arrayBuffer();
    return { status: response.status, spans: [] };
  }
  const trace = ((await response.json()) as { result: OtlpTrace }).result;
  const spans = (trace.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? []));
  return { status: 200, trace, spans };
}

/** Every string (keys included) in a JSON value. */
function* stringsIn(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* stringsIn(item);
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      yield key;
      yield* stringsIn(item);
    }
  }
}

/** Problems with a trace that was sent with NUL / invalid UTF-8 / lone surrogates everywhere. */
function checkSanitizedTrace(what: string, read: Awaited<ReturnType<typeof readTrace>>, spans: number): string[] {
  if (read.status !== 200) return [`${what}: query answered ${read.status}`];
  const problems: string[] = [];
  if (read.spans.length !== spans) problems.push(`${what}: ${read.spans.length} spans stored, expected ${spans}`);
  let replaced = 0;
  for (const text of stringsIn(read.trace)) {
    if (text.includes('\0')) problems.push(`${what}: a stored string holds NUL: ${JSON.stringify(text.slice(0, 60))}`);
    if (!text.isWellFormed()) problems.push(`${what}: a stored string is not well-formed UTF-16`);
    if (text.includes('\uFFFD')) replaced += 1;
  }
  if (replaced === 0) problems.push(`${what}: no U+FFFD replacement found in the stored strings`);
  return problems.slice(0, 5);
}

export async function checkStored(
  baseUrl: string,
  expected: StoredExpectations,
  maxAttributesPerSpan: number,
  headers: Record<string, string> = {},
): Promise<string[]> {
  const problems: string[] = [];
  const pb = await readTrace(baseUrl, expected.badStringsProtobuf.traceId, headers);
  problems.push(...checkSanitizedTrace('bad strings (protobuf)', pb, expected.badStringsProtobuf.spans));
  const json = await readTrace(baseUrl, expected.badStringsJson.traceId, headers);
  problems.push(...checkSanitizedTrace('bad strings (JSON)', json, expected.badStringsJson.spans));

  const many = await readTrace(baseUrl, expected.manyAttributes.traceId, headers);
  const span = many.spans[0];
  if (many.spans.length !== 1) problems.push(`many attributes: ${many.spans.length} spans stored, expected 1`);
  else {
    const kept = span.attributes?.length ?? 0;
    const dropped = Number(span.droppedAttributesCount ?? 0);
    if (kept > maxAttributesPerSpan) problems.push(`many attributes: ${kept} kept, the cap is ${maxAttributesPerSpan}`);
    if (kept + dropped !== expected.manyAttributes.count) {
      problems.push(`many attributes: ${kept} kept + ${dropped} dropped ≠ ${expected.manyAttributes.count} sent`);
    }
  }
  const times = await readTrace(baseUrl, expected.timestamps.traceId, headers);
  const names = times.spans.map((s) => s.name).join(',');
  if (names !== 'good') problems.push(`timestamps: stored spans [${names}], expected only [good]`);
  return problems;
}
