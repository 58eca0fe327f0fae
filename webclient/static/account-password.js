// account-password: the "Password" section of the account page. A password
// is optional: it confirms an insecure badge, and secure badges are sealed
// under it, so changing or removing it ends every secure badge. Changing or
// removing needs the current password. Loaded only when the service uses
// badges: account.html marks it data-feature="badge", and without badges
// its routes do not exist.
//
// Tells other sections with a qrauth:password-changed event on document.
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  function field(id, label, autocomplete, describedBy) {
    const wrap = el('div', 'field');
    const l = el('label', '', label);
    l.htmlFor = id;
    const input = el('input');
    input.id = id;
    input.type = 'password';
    input.autocomplete = autocomplete;
    input.maxLength = 1024;
    input.setAttribute('aria-describedby', describedBy);
    wrap.append(l, input);
    return { wrap: wrap, input: input };
  }

  q.accountSection({
    name: 'password',
    title: 'Password',
    path: '/api/password',
    enabled: function (d) { return !!(d && d.password && d.password.enabled); },
    build: build,
  });

  function build(ctx) {
    const section = ctx.section;
    const head = ctx.head;
    let pw = ctx.data.password;

    const edit = el('button', 'btn btn-secondary btn-small');
    edit.type = 'button';
    edit.id = 'password-edit';
    edit.setAttribute('aria-controls', 'password-form');
    edit.setAttribute('aria-expanded', 'false');
    head.append(edit);

    const note = el('p', 'panel-note',
      'Optional. It confirms that an insecure badge is really yours, and secure badges are sealed under it: ' +
      'changing or removing it makes every secure badge stop working.');
    const details = el('dl', 'details');
    const row = el('div');
    const state = el('dd');
    state.id = 'password-state';
    row.append(el('dt', '', 'Status'), state);
    details.append(row);

    const form = el('form', 'profile-form');
    form.id = 'password-form';
    form.noValidate = true;
    form.hidden = true;
    const current = field('password-current', 'Current password', 'current-password', 'password-error');
    const next = field('password-new', 'New password', 'new-password', 'password-error password-rules');
    const confirm = field('password-confirm', 'New password again', 'new-password', 'password-error');
    const rules = el('p', 'form-note password-rules', 'At least 8 characters. A few unrelated words make a good one.');
    rules.id = 'password-rules';
    const error = el('p', 'form-error');
    error.id = 'password-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    const actions = el('div', 'form-actions');
    const save = el('button', 'btn btn-primary', 'Save password');
    save.type = 'submit';
    save.id = 'password-save';
    const cancel = el('button', 'btn btn-secondary', 'Cancel');
    cancel.type = 'button';
    const remove = el('button', 'btn btn-danger', 'Remove password');
    remove.type = 'button';
    remove.id = 'password-remove';
    actions.append(save, cancel, remove);
    form.append(current.wrap, next.wrap, rules, confirm.wrap, error, actions);

    const status = el('p', 'visually-hidden');
    status.setAttribute('role', 'status');
    status.setAttribute('aria-live', 'polite');

    section.append(note, details, form, status);

    function render() {
      state.textContent = pw.set ? 'Set on ' + q.formatDate(pw.set_at) : 'No password';
      state.classList.toggle('missing', !pw.set);
      edit.textContent = pw.set ? 'Change' : 'Set a password';
      current.wrap.hidden = !pw.set;
      remove.hidden = !pw.set;
    }

    function open(on) {
      form.hidden = !on;
      edit.hidden = on;
      edit.setAttribute('aria-expanded', on ? 'true' : 'false');
      form.reset();
      error.hidden = true;
      for (const i of [current.input, next.input, confirm.input]) i.removeAttribute('aria-invalid');
      save.disabled = false;
      remove.disabled = false;
      if (on) {
        (pw.set ? current.input : next.input).focus();
      } else {
        edit.focus();
      }
    }

    function showError(text, input) {
      error.textContent = text;
      error.hidden = false;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    }

    function changed(data, text) {
      pw = (data && data.password) || pw;
      render();
      open(false);
      status.textContent = text;
      document.dispatchEvent(new CustomEvent('qrauth:password-changed', { detail: { password: pw } }));
    }

    function failed(err) {
      if (err.status === 401 && !(err.data && err.data.reason === 'wrong_password')) {
        location.replace('/');
        return;
      }
      const reason = err.data && err.data.reason;
      const input = reason === 'wrong_password' || reason === 'current_password_required' ? current.input
        : /^password_too_|^invalid_password$/.test(reason || '') ? next.input : null;
      showError(err.message, input);
    }

    edit.addEventListener('click', function () { open(true); });
    cancel.addEventListener('click', function () { open(false); });
    form.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape') open(false);
    });

    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      error.hidden = true;
      for (const i of [current.input, next.input, confirm.input]) i.removeAttribute('aria-invalid');
      if (pw.set && !current.input.value) {
        showError('Enter your current password.', current.input);
        return;
      }
      if (Array.from(next.input.value).length < 8) {
        showError('The new password must have at least 8 characters.', next.input);
        return;
      }
      if (next.input.value !== confirm.input.value) {
        showError('The two new passwords are not the same.', confirm.input);
        return;
      }
      save.disabled = true;
      try {
        const body = { new_password: next.input.value };
        if (pw.set) body.current_password = current.input.value;
        const had = pw.set;
        const res = await q.api('PUT', '/api/password', body);
        changed(res.data, had ? 'Password changed. Secure badges made before no longer work.' : 'Password set.');
      } catch (err) {
        save.disabled = false;
        failed(err);
      }
    });

    remove.addEventListener('click', async function () {
      error.hidden = true;
      if (!current.input.value) {
        showError('Enter your current password to remove it.', current.input);
        return;
      }
      if (!window.confirm('Remove your password? Secure badges will stop working.')) return;
      remove.disabled = true;
      try {
        const res = await q.api('DELETE', '/api/password', { current_password: current.input.value });
        changed(res.data, 'Password removed.');
      } catch (err) {
        remove.disabled = false;
        failed(err);
      }
    });

    render();
  }
})();
