/** Every JWS algorithm tracehouse can verify (no jose import, so config validation can use it). */
export const JWS_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

export function isJwsAlgorithm(value: string): value is JwsAlgorithm {
  return (JWS_ALGORITHMS as readonly string[]).includes(value);
}
