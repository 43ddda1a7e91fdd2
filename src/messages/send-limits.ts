/**
 * Size rules of a send, in UTF-8 bytes (what is stored, pushed and paid for), not in characters: a
 * JSON schema's maxLength counts UTF-16 units, so "200 characters" can be 200 or 800 bytes. Checked
 * before anything is written, so a refused send changes nothing.
 */
import type { SendInput } from '../api-types.ts';
import { AppError, Errors } from '../errors.ts';
import { linkUrlProblem } from './link-url.ts';

/** Fixed per-field caps; the whole message is capped by SKYPUSH_MAX_MESSAGE_BYTES. */
export const FIELD_MAX_BYTES = Object.freeze({ title: 1024, linkUrl: 2048 });

export interface SendLimits {
  /** SKYPUSH_MAX_MESSAGE_BYTES: title + content + linkUrl + messageType (+ any custom data). */
  maxMessageBytes: number;
  /** SKYPUSH_MAX_SEND_BYTES: distinct targets × message bytes. */
  maxSendBytes: number;
}

const bytes = (s: string | null | undefined) => (s ? Buffer.byteLength(s, 'utf8') : 0);

/** The UTF-8 size of what a message stores and pushes to each recipient (its text fields). */
export function messageBytes(input: SendInput): number {
  return bytes(input.title) + bytes(input.content) + bytes(input.linkUrl) + bytes(input.messageType);
}

function fieldError(field: string, message: string): AppError {
  return new AppError(Errors.VALIDATION_FAILED, `body/${field} ${message}`, {
    data: { in: 'body', field: `/${field}` },
  });
}

/**
 * Throws the catalogue error for the first rule `input` breaks: the linkUrl rule, a field's byte cap
 * (400 40001 naming the field), the message cap (413 41301) or targets × bytes (413 41302).
 */
export function checkSendSize(input: SendInput, distinctTargets: number, limits: SendLimits): number {
  if (typeof input.linkUrl === 'string') {
    const problem = linkUrlProblem(input.linkUrl);
    if (problem) throw fieldError('linkUrl', problem);
  }
  const fields: Array<[string, number]> = [
    ['title', FIELD_MAX_BYTES.title],
    ['linkUrl', FIELD_MAX_BYTES.linkUrl],
    ['content', limits.maxMessageBytes],
  ];
  for (const [field, max] of fields) {
    if (bytes(input[field as 'title' | 'linkUrl' | 'content']) > max)
      throw fieldError(field, `must be at most ${max} bytes of UTF-8`);
  }
  const size = messageBytes(input);
  if (size > limits.maxMessageBytes)
    throw new AppError(
      Errors.MESSAGE_TOO_LARGE,
      `the message is ${size} bytes; at most ${limits.maxMessageBytes} (SKYPUSH_MAX_MESSAGE_BYTES)`,
      { data: { bytes: size, maxBytes: limits.maxMessageBytes } },
    );
  const total = size * distinctTargets;
  if (total > limits.maxSendBytes)
    throw new AppError(
      Errors.SEND_TOO_LARGE,
      `${distinctTargets} targets × ${size} bytes is over ${limits.maxSendBytes} (SKYPUSH_MAX_SEND_BYTES); send fewer targets per request or a shorter message`,
      { data: { bytes: total, maxBytes: limits.maxSendBytes } },
    );
  return size;
}
