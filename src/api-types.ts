/**
 * Shapes of the REST API's `data` payloads, shared by the server's services and the client SDK (which
 * imports this file, so it must stay free of Node-only imports).
 */
import type { MessagePayload } from './protocol.ts';

export type Role = 'admin' | 'user';

export interface UserSummary {
  id: number;
  username: string;
  role: Role;
  displayName: string;
}

export interface User extends UserSummary {
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
}

export interface LoginResult {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds. */
  expiresIn: number;
  user: UserSummary;
}

export interface CreateUserInput {
  id?: number;
  username: string;
  password?: string;
  role?: Role;
  displayName?: string;
}

/** A password-less user mirrored from a host platform. */
export interface BulkUserInput {
  id: number;
  username: string;
  displayName?: string;
  role?: Role;
  disabled?: boolean;
}

export interface PatchUserInput {
  disabled?: boolean;
  role?: Role;
  password?: string;
  displayName?: string;
}

/**
 * A send. Sizes are UTF-8 bytes: title ≤ 1,024, linkUrl ≤ 2,048, the whole message ≤ the server's
 * SKYPUSH_MAX_MESSAGE_BYTES (64 KiB by default), distinct targets × message ≤ SKYPUSH_MAX_SEND_BYTES.
 */
export interface SendInput {
  title: string;
  content: string;
  messageType?: string;
  /** 0–9. */
  priority?: number;
  /** An http(s) URL with a host, or a path starting with a single `/` (docs/API.md, "Links"). */
  linkUrl?: string | null;
  targetType: 'user' | 'all';
  targetIds?: number[];
  expiresAt?: string | null;
}

export interface SendResult {
  messageId: number;
  targetType: 'user' | 'all';
  recipients: number;
}

/** One inbox entry: the pushed payload plus the caller's state. */
export interface InboxItem extends MessagePayload {
  id: number;
  isRead: boolean;
  readAt: string | null;
}

export interface InboxQuery {
  status?: 'unread' | 'read' | 'all';
  /** `nextCursor` of the previous page. */
  cursor?: string;
  limit?: number;
  messageType?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
