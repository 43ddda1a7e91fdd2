/** The sign-in form shared by both pages. */
import { t } from './i18n.ts';
import { logError } from './notify.ts';
import { errorText, rest, saveSession, type Session } from './session.ts';

export interface LoginForm {
  /** Shows a message above the form (e.g. "session expired"). */
  notice(text: string): void;
  focus(): void;
}

export function mountLogin(form: HTMLFormElement, onSignedIn: (s: Session) => void): LoginForm {
  const error = form.querySelector<HTMLElement>('[data-role="error"]');
  const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]');
  const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement;
  const show = (text: string) => {
    if (!error) return;
    error.textContent = text;
    error.hidden = text === '';
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    show('');
    if (submit) {
      submit.disabled = true;
      submit.textContent = t('signingIn');
    }
    rest
      .login(field('username').value.trim(), field('password').value)
      .then((r) => {
        field('password').value = '';
        onSignedIn(saveSession(r));
      })
      .catch((e: unknown) => {
        logError('sign-in failed', e);
        show(t('loginFailed', { reason: errorText(e) }));
      })
      .finally(() => {
        if (submit) {
          submit.disabled = false;
          submit.textContent = t('signIn');
        }
      });
  });
  return {
    notice: show,
    focus: () => field('username').focus(),
  };
}
