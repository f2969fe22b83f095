import { describe, expect, it } from 'vitest';
import { parseTraceQL } from '../../../server/query/traceql.js';

const span = (text: string) => parseTraceQL(text).spanConditions;

describe('TraceQL subset parser', () => {
  it('parses what Grafana’s search builder emits: one spanset of &&-joined conditions', () => {
    expect(
      parseTraceQL(
        '{resource.service.name="checkout" && name="GET /cart" && status=error && span.http.status_code>=500}',
      ),
    ).toEqual({
      spanConditions: [
        { target: 'intrinsic', intrinsic: 'service', op: '=', value: 'checkout' },
        { target: 'intrinsic', intrinsic: 'name', op: '=', value: 'GET /cart' },
        { target: 'intrinsic', intrinsic: 'status', op: '=', value: 2 },
        { target: 'attribute', scope: 'span', key: 'http.status_code', op: '>=', value: 500n },
      ],
      traceConditions: [],
    });
  });

  it('reads an empty query and {} as "every trace"', () => {
    expect(parseTraceQL('')).toEqual({ spanConditions: [], traceConditions: [] });
    expect(parseTraceQL(' { } ')).toEqual({ spanConditions: [], traceConditions: [] });
  });

  it('types literals: strings (escaped and raw), ints, floats, booleans, durations, kinds', () => {
    expect(span('{ span.a = "x\\"y" && span.b = `a\\b` && .c = -1.5 && resource.d != true && kind = client }')).toEqual(
      [
        { target: 'attribute', scope: 'span', key: 'a', op: '=', value: 'x"y' },
        { target: 'attribute', scope: 'span', key: 'b', op: '=', value: 'a\\b' },
        { target: 'attribute', scope: 'any', key: 'c', op: '=', value: -1.5 },
        { target: 'attribute', scope: 'resource', key: 'd', op: '!=', value: true },
        { target: 'intrinsic', intrinsic: 'kind', op: '=', value: 3 },
      ],
    );
    expect(span('{ duration > 1.5s && duration <= 1m30s && span:duration < 250us }')).toEqual([
      { target: 'intrinsic', intrinsic: 'duration', op: '>', value: 1_500_000_000n },
      { target: 'intrinsic', intrinsic: 'duration', op: '<=', value: 90_000_000_000n },
      { target: 'intrinsic', intrinsic: 'duration', op: '<', value: 250_000n },
    ]);
  });

  it('supports every comparison operator and quoted attribute names', () => {
    const ops = ['=', '!=', '>', '>=', '<', '<=', '=~', '!~'];
    for (const op of ops) expect(span(`{ span."my attr" ${op} "v" }`)[0]).toMatchObject({ key: 'my attr', op });
  });

  it('maps trace-level intrinsics to trace conditions', () => {
    expect(parseTraceQL('{ traceDuration > 2s && rootName = "GET /" && trace:rootService =~ "web.*" }')).toEqual({
      spanConditions: [],
      traceConditions: [
        { field: 'duration', op: '>', value: 2_000_000_000n },
        { field: 'rootName', op: '=', value: 'GET /' },
        { field: 'rootServiceName', op: '=~', value: 'web.*' },
      ],
    });
  });

  it.each([
    ['{ name = "a" || name = "b" }', /\|\| is not supported/],
    ['{ name = "a" } && { name = "b" }', /only one spanset/],
    ['{ name = "a" } | select(span.x)', /only one spanset/],
    ['{ (name = "a") }', /parentheses are not supported/],
    ['{ http.status = 200 }', /unknown field 'http.status'/],
    ['{ event.name = "x" }', /'event.name' is not supported/],
    ['{ span.x = nil }', /nil comparisons are not supported/],
    ['{ status > error }', /status takes only = and !=/],
    ['{ kind = sideways }', /kind takes one of/],
    ['{ duration = "fast" }', /durations take a value/],
    ['{ duration =~ "1s" }', /durations take no regex/],
    ['{ span.x =~ 5 }', /take a string pattern/],
    ['{ span.x > true }', /booleans take only/],
    ['{ span.x = error }', /attributes are compared to/],
    ['{ name = 5 }', /this field takes a string value/],
    ['{ name = "unterminated }', /unterminated string/],
    ['{ name "x" }', /expected an operator/],
    ['name = "x"', /one spanset in braces/],
    ['{ name = "x"', /expected '&&' or '}'/],
  ])('refuses %s with a 400 that names the problem', (text, message) => {
    let error: unknown;
    try {
      parseTraceQL(text);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ httpStatus: 400, code: 'TH_ERR_QUERY_BAD_REQUEST' });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/at character \d+/);
  });
});
