// account-oath: the "Authenticator app" section of the account page (OATH
// TOTP/HOTP as a second factor). It shows the state of the user's
// authenticator and sets one up: the otpauth:// QR code and Base32 key from
// POST /api/oath/enrol, then one code to POST /api/oath/confirm.
//
// <section id="oath-panel" data-state="off|active|locked|enrolling">.
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  function button(text, className, id) {
    const b = el('button', className, text);
    b.type = 'button';
    if (id) b.id = id;
    return b;
  }

  function groupSecret(s) {
    return String(s || '').replace(/(.{4})(?=.)/g, '$1 ');
  }

  function kindName(kind) {
    return kind === 'hotp' ? 'counter-based (HOTP)' : 'time-based (TOTP)';
  }

  q.accountSection({ name: 'oath', title: 'Authenticator app', className: 'oath-panel', path: '/api/oath', build: build });

  function build(ctx) {
    const status = ctx.data;
    const panel = ctx.section;
    const head = ctx.head;
    const setup = button('Set up', 'btn btn-primary btn-small', 'oath-setup');
    setup.setAttribute('aria-controls', 'oath-enrol');
    setup.setAttribute('aria-expanded', 'false');
    head.append(setup);

    const note = el('p', 'panel-note', status.policy === 'off'
      ? 'Use an authenticator app such as Google Authenticator, Microsoft Authenticator or FreeOTP for one-time codes.'
      : 'After you scan the sign-in code with your phone, you also type a code from your authenticator app.');
    const state = el('p', 'oath-state');
    state.id = 'oath-state';
    const pageError = el('p', 'form-error');
    pageError.setAttribute('role', 'alert');
    pageError.hidden = true;
    const live = el('p', 'visually-hidden');
    live.setAttribute('role', 'status');
    live.setAttribute('aria-live', 'polite');

    // The enrolment panel.
    const box = el('div', 'link-panel');
    box.id = 'oath-enrol';
    box.hidden = true;
    const boxHead = el('div', 'link-head');
    const boxTitle = el('h3', '', 'Set up your authenticator app');
    const cancel = button('Cancel', 'btn btn-secondary btn-small', 'oath-cancel');
    boxHead.append(boxTitle, cancel);
    const body = el('div', 'link-body');
    const qrWrap = el('div', 'oath-qr');
    const img = el('img');
    img.id = 'oath-qr-img';
    img.alt = 'QR code to scan with your authenticator app. It holds your secret key: do not share it.';
    img.width = 220;
    img.height = 220;
    qrWrap.append(img);
    const steps = el('div', 'link-steps');
    const list = el('ol', 'steps steps-small');
    list.append(
      el('li', '', 'Open your authenticator app and add an account'),
      el('li', '', 'Scan this code'),
      el('li', '', 'Type the code the app shows'));
    const keyLine = el('p', 'oath-key', 'Cannot scan? Enter this key: ');
    const key = el('code', 'oath-secret');
    key.id = 'oath-secret';
    keyLine.append(key);
    const warn = el('p', 'oath-warning', 'Keep this code and key to yourself: anyone who has them can make your sign-in codes.');

    const form = el('form');
    form.id = 'oath-confirm-form';
    form.noValidate = true;
    const field = el('div', 'field');
    const label = el('label', '', 'Code from the app');
    label.htmlFor = 'oath-code';
    const input = el('input', 'oath-code-input');
    input.id = 'oath-code';
    input.type = 'text';
    input.inputMode = 'numeric';
    input.autocomplete = 'one-time-code';
    input.maxLength = 11;
    input.spellcheck = false;
    input.setAttribute('aria-describedby', 'oath-error');
    field.append(label, input);
    const formError = el('p', 'form-error');
    formError.id = 'oath-error';
    formError.setAttribute('role', 'alert');
    formError.hidden = true;
    const actions = el('div', 'form-actions');
    const confirm = el('button', 'btn btn-primary', 'Confirm');
    confirm.type = 'submit';
    confirm.id = 'oath-confirm';
    actions.append(confirm);
    form.append(field, formError, actions);
    const done = button('Done', 'btn btn-primary btn-small', 'oath-done');
    done.hidden = true;
    steps.append(list, keyLine, warn, form, done);
    body.append(qrWrap, steps);
    box.append(boxHead, body);

    panel.append(note, state, pageError, box, live);

    let account = status.account || null;
    let digits = 6;

    function render() {
      const a = account;
      if (a && a.active) {
        panel.dataset.state = a.locked ? 'locked' : 'active';
        let text = 'On: a ' + kindName(a.kind) + ' authenticator, added ' + q.formatDate(a.activated_at || a.created_at) +
          ', last used ' + q.formatDate(a.last_used_at) + '.';
        if (a.locked) text = 'Locked after too many wrong codes. Ask an administrator to unlock it. ' + text;
        state.textContent = text;
        state.classList.toggle('oath-state-locked', !!a.locked);
        setup.textContent = status.overwrite ? 'Replace' : 'Add another app';
      } else {
        panel.dataset.state = 'off';
        state.textContent = 'Not set up.';
        state.classList.remove('oath-state-locked');
        setup.textContent = 'Set up';
      }
      if (!box.hidden) panel.dataset.state = 'enrolling';
    }

    function close() {
      box.hidden = true;
      img.removeAttribute('src');
      key.textContent = '';
      setup.disabled = false;
      setup.setAttribute('aria-expanded', 'false');
      render();
      setup.focus();
    }

    async function open() {
      setup.disabled = true;
      pageError.hidden = true;
      let res;
      try {
        res = await q.api('POST', '/api/oath/enrol');
      } catch (err) {
        setup.disabled = false;
        if (err.status === 401) {
          location.replace('/');
          return;
        }
        pageError.textContent = err.message;
        pageError.hidden = false;
        return;
      }
      const d = res.data || {};
      if (typeof d.qr === 'string' && d.qr.startsWith('data:image/')) img.src = d.qr;
      key.textContent = groupSecret(d.secret);
      digits = d.digits || 6;
      input.placeholder = digits === 8 ? '12345678' : '123456';
      input.value = '';
      formError.hidden = true;
      // A secret shown again (to add a second app) is already active.
      form.hidden = !d.needs_code;
      done.hidden = !!d.needs_code;
      boxTitle.textContent = d.reused ? 'Add your authenticator to another app' : 'Set up your authenticator app';
      box.hidden = false;
      setup.setAttribute('aria-expanded', 'true');
      panel.dataset.state = 'enrolling';
      live.textContent = 'Scan the QR code with your authenticator app.';
      (d.needs_code ? input : done).focus();
    }

    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      const code = input.value.replace(/[\s-]/g, '');
      if (!/^[0-9]+$/.test(code) || code.length !== digits) {
        formError.textContent = 'Enter the ' + digits + '-digit code your authenticator app shows.';
        formError.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      formError.hidden = true;
      input.removeAttribute('aria-invalid');
      confirm.disabled = true;
      try {
        const res = await q.api('POST', '/api/oath/confirm', { code: code });
        account = (res.data && res.data.account) || account;
      } catch (err) {
        confirm.disabled = false;
        if (err.status === 401) {
          location.replace('/');
          return;
        }
        formError.textContent = err.message;
        formError.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      confirm.disabled = false;
      close();
      live.textContent = 'Your authenticator app is set up.';
    });

    setup.addEventListener('click', open);
    cancel.addEventListener('click', close);
    done.addEventListener('click', close);
    box.addEventListener('keydown', function (ev) {
      if (ev.key === 'Escape') close();
    });
    render();
  }
})();
