/** A JSON object: not null, not an array (the one check every hand-written JSON parser here starts with). */
export const isObject = (v: unknown): v is { [k: string]: unknown } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
