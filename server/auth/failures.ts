/**
 * Why a request was not authenticated or not authorized: one closed list, counted in
 * tracehouse_auth_failures_total{reason}, each mapped to one error code of server/errors.ts.
 */
import { TracehouseError, type ErrorCode } from '../errors.js';

export type AuthFailureReason =
  | 'missing_token'
  | 'malformed_token'
  | 'forbidden_header'
  | 'algorithm_not_allowed'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_claims'
  | 'bad_tenant'
  | 'insufficient_scope'
  | 'keys_unavailable';

export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = [
  'missing_token',
  'malformed_token',
  'forbidden_header',
  'algorithm_not_allowed',
  'unknown_key',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'bad_claims',
  'bad_tenant',
  'insufficient_scope',
  'keys_unavailable',
];

/** A refused token or request. `message` is safe to send to the client (no key material). */
export class AuthFailure extends Error {
  readonly reason: AuthFailureReason;

  constructor(reason: AuthFailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuthFailure';
    this.reason = reason;
  }

  get code(): ErrorCode {
    if (this.reason === 'missing_token') return 'TH_ERR_AUTH_MISSING_TOKEN';
    if (this.reason === 'insufficient_scope') return 'TH_ERR_AUTH_FORBIDDEN';
    if (this.reason === 'keys_unavailable') return 'TH_ERR_AUTH_KEYS_UNAVAILABLE';
    return 'TH_ERR_AUTH_INVALID_TOKEN';
  }

  toTracehouseError(): TracehouseError {
    return new TracehouseError(this.code, this.message, { cause: this });
  }
}
