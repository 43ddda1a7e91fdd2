/**
 * The signed-in user, shared by the inbox and admin pages and by every tab (localStorage), and the REST
 * client that sends its token. Signing in or out in one tab is seen by the others through `storage`.
 */
import { SkypushApiError, SkypushRest, type LoginResult, type UserSummary } from '../../../client/index.ts';

const KEY = 'skypush.session';

export interface Session {
  token: string;
  user: UserSummary;
  /** Epoch ms. */
  expiresAt: number;
}

export function loadSession(): Session | undefined {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    if (s && typeof s.token === 'string' && s.expiresAt > Date.now()) return s;
  } catch {
    // unreadable: treated as signed out
  }
  return undefined;
}

export function saveSession(r: LoginResult): Session {
  const s: Session = { token: r.accessToken, user: r.user, expiresAt: Date.now() + r.expiresIn * 1000 };
  localStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

export function clearSession(): void {
  localStorage.removeItem(KEY);
}

/** Another tab signed in or out. */
export function onSessionChange(fn: (s: Session | undefined) => void): void {
  window.addEventListener('storage', (e) => {
    if (e.key === KEY || e.key === null) fn(loadSession());
  });
}

export const rest = new SkypushRest({ getToken: () => loadSession()?.token });

export function isUnauthorized(e: unknown): boolean {
  return e instanceof SkypushApiError && e.status === 401;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/ws/messages`;
}
