/**
 * Internal signal: an X.509 value is valid but has no specific C509 encoding (draft-20 §3.3 "partly supported"
 * extensions, unsupported GeneralName choices). Extension encoders catch it and fall back to the generic
 * (~oid, bytes) form; nothing outside this folder ever sees it.
 */
export class Unrepresentable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Unrepresentable';
  }
}

export function unrepresentable(message: string): never {
  throw new Unrepresentable(message);
}
