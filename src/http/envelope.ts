/** The seed's response envelope `{code, message, data}` (code 0 = success) and shared schema pieces. */

export interface Envelope<T> {
  code: number;
  message: string;
  data: T;
}

export function ok<T>(data: T, message = 'success'): Envelope<T> {
  return { code: 0, message, data };
}

/** OpenAPI/JSON schema for an envelope around `data`. */
export function envelopeSchema(data: object = {}) {
  return {
    type: 'object',
    properties: { code: { type: 'integer' }, message: { type: 'string' }, data },
    required: ['code', 'message', 'data'],
  } as const;
}

export const errorSchema = {
  type: 'object',
  description:
    'Error envelope: a non-zero code from the catalogue (docs/API.md), a message, optional details',
  properties: { code: { type: 'integer' }, message: { type: 'string' }, data: {} },
  required: ['code', 'message'],
} as const;

export const idParam = {
  type: 'object',
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
  required: ['id'],
} as const;

export const bearer = [{ bearerAuth: [] }];
