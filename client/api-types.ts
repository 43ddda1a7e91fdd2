/** Shapes of the REST API's `data` (the server's `{code, message, data}` envelope is unwrapped). */
import type { MessagePayload } from '../src/protocol.ts';

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
  tokenType: string;
  /** Seconds. */
  expiresIn: number;
  user: UserSummary;
}

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

export interface SendInput {
  title: string;
  content: string;
  messageType?: string;
  /** 0–9. */
  priority?: number;
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

export interface SystemNotice {
  title?: string;
  content?: string;
  level?: 'info' | 'warning' | 'error' | 'success';
}

export interface CreateUserInput {
  id?: number;
  username: string;
  password?: string;
  role?: Role;
  displayName?: string;
}

export interface PatchUserInput {
  disabled?: boolean;
  role?: Role;
  password?: string;
  displayName?: string;
}
