/** Rows to API types: a stored message as it is pushed (MessagePayload) and as an inbox lists it. */
import type { InboxItem } from '../api-types.ts';
import type { MessagePayload } from '../protocol.ts';
import type { InboxItemRow } from './inbox.repository.ts';
import type { MessageRow } from './message.repository.ts';

/** Unix milliseconds (or null) as an ISO 8601 string (or null). */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(Number(ms)).toISOString();
}

export function toPayload(m: MessageRow): MessagePayload {
  return {
    messageId: Number(m.id),
    title: m.title,
    content: m.content,
    messageType: m.message_type,
    priority: m.priority,
    senderId: Number(m.sender_id),
    senderName: m.sender_name,
    linkUrl: m.link_url,
    targetType: m.target_type,
    createTime: iso(m.created_at) as string,
    expiresAt: iso(m.expires_at),
  };
}

export function toItem(m: InboxItemRow): InboxItem {
  const { messageId, ...rest } = toPayload(m);
  return { id: messageId, messageId, ...rest, isRead: m.read_at !== null, readAt: iso(m.read_at) };
}
