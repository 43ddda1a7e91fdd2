/** Shapes of the REST API's `data` (the server's `{code, message, data}` envelope is unwrapped). */
export type {
  BulkUserInput,
  CreateUserInput,
  InboxItem,
  InboxQuery,
  LoginResult,
  Page,
  PatchUserInput,
  Role,
  SendInput,
  SendResult,
  User,
  UserSummary,
} from '../src/api-types.ts';

export interface SystemNotice {
  title?: string;
  content?: string;
  level?: 'info' | 'warning' | 'error' | 'success';
}
