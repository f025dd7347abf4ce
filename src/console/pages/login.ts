import { api, ApiError } from '../api.js';
import { h, icon, status } from '../dom.js';

/** Sign-in with a user of the collector; the session cookie is set by the answer, the CSRF token kept in memory. */
export function loginPage(root: HTMLElement, why: string | undefined, done: (csrfToken: string) => Promise<void>): void {
  const message = h('div', { id: 'login-message' }, why ? status(why) : null);
  const name = h('input', { id: 'login-name', name: 'username', autocomplete: 'username', required: true, maxlength: 64 });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const submit = h('button', { type: 'submit', class: 'primary' }, icon('login'), h('span', {}, 'Sign in'));
  const form = h('form', { class: 'login-form', 'aria-labelledby': 'login-title', novalidate: true },
    h('p', { class: 'field' }, h('label', { for: 'login-name' }, 'User name'), name),
    h('p', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    message,
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!name.value.trim() || !password.value) {
      message.replaceChildren(status('Enter your user name and password.', 'error'));
      return;
    }
    submit.disabled = true;
    void api<{ csrfToken: string }>('POST', '/auth/login', { name: name.value.trim(), password: password.value })
      .then((r) => done(r.csrfToken))
      .catch((err: unknown) => {
        const text = err instanceof ApiError && err.code === 'bad_credentials' ? 'The user name or password is wrong.' : (err as Error).message;
        message.replaceChildren(status(text, 'error'));
        password.value = '';
        password.focus();
      })
      .finally(() => (submit.disabled = false));
  });
  root.append(
    h('main', { id: 'main', class: 'login', tabindex: '-1' },
      h('div', { class: 'login-card' },
        h('p', { class: 'brand' }, icon('outpost'), h('span', {}, 'Outpost')),
        h('h1', { id: 'login-title' }, 'Sign in to the collector'),
        form,
      ),
    ),
  );
  name.focus();
}
