/**
 * Scopes, from the standard space-separated `scope` claim. Each route declares the access it needs
 * in its route config (`config: { access: 'traces:write' }`, or `requireScope('traces:write')`);
 * a route that declares nothing needs `admin`, so a forgotten declaration is closed, not open.
 *   traces:write  ingest (POST /v1/traces, the WebSocket)
 *   traces:read   the query API
 *   admin         maintenance and backup endpoints
 * Scopes do not imply each other: an admin token cannot ingest unless it also has traces:write.
 */
export type Scope = 'traces:write' | 'traces:read' | 'admin';
export const SCOPES: readonly Scope[] = ['traces:write', 'traces:read', 'admin'];

/** What a route needs: a scope, or nothing at all (probes, metrics). */
export type RouteAccess = Scope | 'public';

export const ALL_SCOPES: ReadonlySet<Scope> = new Set(SCOPES);
export const NO_SCOPES: ReadonlySet<Scope> = new Set();

const KNOWN = new Set<string>(SCOPES);

/** The known scopes in a `scope` claim; unknown ones are ignored, anything but a string is none. */
export function parseScopes(claim: unknown): ReadonlySet<Scope> {
  if (typeof claim !== 'string') return NO_SCOPES;
  const scopes = new Set<Scope>();
  for (const item of claim.split(' ')) if (KNOWN.has(item)) scopes.add(item as Scope);
  return scopes;
}

export function isScope(value: string): value is Scope {
  return KNOWN.has(value);
}

/** Route options that make a route need `scope`: `app.get('/api/…', requireScope('traces:read'), handler)`. */
export function requireScope(scope: RouteAccess): { config: { access: RouteAccess } } {
  return { config: { access: scope } };
}
