/**
 * Language: English or Simplified Chinese, chosen once (browser language), switchable, remembered in
 * localStorage and kept in step across tabs. Static text is marked in the HTML with `data-i18n="key"`
 * (text) and `data-i18n-attr="attr:key;attr:key"` (attributes); dynamic text calls `t()`.
 */
import { en, zhCN, type StringKey } from './strings.ts';

export type Lang = 'en' | 'zh-CN';
export const LANGS: readonly Lang[] = ['en', 'zh-CN'];
const KEY = 'skypush.lang';
const DICTS: Record<Lang, Record<StringKey, string>> = { en, 'zh-CN': zhCN };
const listeners = new Set<() => void>();

function isLang(v: unknown): v is Lang {
  return v === 'en' || v === 'zh-CN';
}

function initial(): Lang {
  const saved = localStorage.getItem(KEY);
  if (isLang(saved)) return saved;
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

let lang: Lang = initial();

export function getLang(): Lang {
  return lang;
}

export function t(key: StringKey, params: Record<string, string | number> = {}): string {
  return DICTS[lang][key].replace(/\{(\w+)\}/g, (m, name: string) => String(params[name] ?? m));
}

/** Re-renders everything marked with data-i18n / data-i18n-attr under `root`. */
export function applyStatic(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n]')) {
    el.textContent = t(el.dataset['i18n'] as StringKey);
  }
  for (const el of root.querySelectorAll<HTMLElement>('[data-i18n-attr]')) {
    for (const pair of (el.dataset['i18nAttr'] ?? '').split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr, t(key as StringKey));
    }
  }
}

function apply(next: Lang, remember: boolean): void {
  lang = next;
  if (remember) localStorage.setItem(KEY, next);
  document.documentElement.lang = next;
  applyStatic();
  for (const fn of listeners) fn();
}

export function setLang(next: Lang): void {
  if (next !== lang) apply(next, true);
}

/** Called after every language change (to re-render dynamic text). */
export function onLangChange(fn: () => void): void {
  listeners.add(fn);
}

/** Sets up the page: applies the language and wires a `<select>` to switch it. */
export function initI18n(select: HTMLSelectElement): void {
  apply(lang, false);
  select.value = lang;
  select.addEventListener('change', () => {
    if (isLang(select.value)) setLang(select.value);
  });
  window.addEventListener('storage', (e) => {
    if (e.key === KEY && isLang(e.newValue) && e.newValue !== lang) {
      apply(e.newValue, false);
      select.value = e.newValue;
    }
  });
}
