/**
 * Tenant names. A tenant comes only from a verified token's claim (DESIGN decision 7); headers,
 * query parameters and span attributes never choose it. The rules are Tempo's / Cortex's tenant ID
 * rules, so a tenant is safe in a Redis key, a metric label, a SQL parameter and a file name.
 */

/** The tenant of every request while no JWT keys are configured (the server runs open). */
export const OPEN_TENANT = 'default';

export const MAX_TENANT_BYTES = 150;

const TENANT_CHARS = /^[A-Za-z0-9!\-_.*'()]+$/;

/** Why `value` is not a valid tenant name, or undefined when it is one. */
export function tenantProblem(value: unknown): string | undefined {
  if (value === undefined) return 'is missing';
  if (typeof value !== 'string') return 'is not a string';
  if (value.length === 0) return 'is empty';
  if (Buffer.byteLength(value, 'utf8') > MAX_TENANT_BYTES) return `is longer than ${MAX_TENANT_BYTES} bytes`;
  if (!TENANT_CHARS.test(value)) return "may only contain A-Z a-z 0-9 ! - _ . * ' ( )";
  if (value === '.' || value === '..') return 'may not be "." or ".."';
  return undefined;
}

export function isValidTenant(value: unknown): value is string {
  return tenantProblem(value) === undefined;
}
