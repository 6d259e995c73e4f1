/** Row -> record mapping of the KBS's tables (migration 7), shared by both engines. */
import type { KbsGrantRow, KbsSessionPhase, KbsSessionRow, KbsTokenKeysRow } from './kbs-state-types.js';
import { bytes, num } from './rows.js';

type Row = Record<string, unknown>;

const phaseOf = (v: unknown): KbsSessionPhase => {
  if (v !== 'authed' && v !== 'attested') throw new TypeError(`store returned a session phase ${String(v)}`);
  return v;
};

export function toSession(r: Row): KbsSessionRow {
  return {
    idDigest: bytes(r.id_digest),
    source: r.source as string,
    tee: r.tee as string,
    nonce: r.nonce as string,
    phase: phaseOf(r.phase),
    tokenWrapped: r.token_wrapped === null || r.token_wrapped === undefined ? null : bytes(r.token_wrapped),
    kekId: (r.kek_id as string | null) ?? null,
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
  };
}

export function toGrant(r: Row): KbsGrantRow {
  return {
    grantId: r.grant_id as string,
    instanceId: r.instance_id as string,
    wrapped: bytes(r.wrapped),
    kekId: r.kek_id as string,
    expiresAt: num(r.expires_at),
  };
}

export function toTokenKeys(r: Row): KbsTokenKeysRow {
  return { generation: num(r.generation), wrapped: bytes(r.wrapped), kekId: r.kek_id as string };
}
