import { describe, expect, it } from 'vitest';
import { decode } from './decode-helpers.js';

function body(attributes: Array<{ key: string; value: string }>): string {
  return JSON.stringify({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              {
                traceId: '0af7651916cd43dd8448eb211c80319c',
                spanId: 'b7ad6b7169203331',
                name: 'memo',
                startTimeUnixNano: '1790000000000000000',
                endTimeUnixNano: '1790000000000000005',
                attributes: attributes.map(({ key, value }) => ({ key, value: { stringValue: value } })),
              },
            ],
          },
        ],
      },
    ],
  });
}

describe('the OTLP/JSON string memo', () => {
  it('answers a repeated request exactly as the first, counters included', () => {
    const request = body([
      { key: 'http.route', value: '/orders' },
      { key: 'bad\u0000key', value: 'lone \ud800' },
      { key: 'user_agent.original', value: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0' },
    ]);
    const first = decode(request, 'json');
    const second = decode(request, 'json');
    expect(second.rows[0].attributes).toBe(first.rows[0].attributes);
    expect(second.sanitized).toEqual(first.sanitized);
    expect(first.sanitized).toEqual({ nul_byte: 1, lone_surrogate: 1 });
  });

  it('never hands a remembered value to a request whose value limit would cut it', () => {
    const request = body([{ key: 'k', value: 'twenty characters..' }]);
    expect(JSON.parse(decode(request, 'json').rows[0].attributes)).toEqual({ k: 'twenty characters..' });
    const cut = decode(request, 'json', { maxAttributeValueBytes: 6 });
    expect(JSON.parse(cut.rows[0].attributes)).toEqual({ k: 'twenty' });
    expect(cut.sanitized).toEqual({ value_truncated: 1 });
  });
});
