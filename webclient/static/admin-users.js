// admin-users: an account's lifecycle on the admin page, for the admin
// role: its phones (remove one: the sessions it approved end), disable
// with a reason and enable again, export its data as a JSON file, delete
// it with everything of its after an inline confirmation. Helpdesk users
// see the phones only; the server checks the role of every call anyway.
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  // The rows arrive synchronously while the list renders; whether the
  // viewer is an administrator is read from their own row once /api/me
  // answers.
  const rows = [];
  const me = q.api('GET', '/api/me').then(function (res) {
    return (res.data && res.data.user && res.data.user.id) || '';
  }, function () { return ''; });

  function button(text, className, label) {
    const b = el('button', 'btn btn-small ' + className, text);
    b.type = 'button';
    // The label starts with the visible words (speech users say what
    // they see) and adds whose it is.
    if (label) b.setAttribute('aria-label', text + ' ' + label);
    return b;
  }

  document.addEventListener('qrauth:admin-user', function (ev) {
    rows.push(ev.detail.user);
    decorate(ev.detail);
  });

  async function decorate(detail) {
    const { user, actions, refresh } = detail;
    const myID = await me;
    const mine = rows.find(function (u) { return u.id === myID; });
    const isAdmin = !!(mine && mine.roles.indexOf('admin') >= 0);
    const who = user.name || user.id;
    const path = '/admin/api/users/' + encodeURIComponent(user.id);

    // The buttons go with the row's other actions; what they open (the
    // phones, a question, a message) takes the row's whole width below,
    // so that the name beside the buttons is not squeezed.
    const li = actions.closest('li');
    if (user.disabled) {
      const d = user.disabled;
      li.querySelector('.item-body').append(el('p', 'item-meta user-disabled', 'Disabled ' + q.formatDate(d.at) +
        ' by ' + d.by + (d.reason ? ': ' + d.reason : '')));
    }
    const buttons = el('div', 'oath-admin-buttons user-admin');
    actions.append(buttons);
    const wide = el('div', 'user-admin-wide');
    const phones = el('ul', 'items user-phones');
    phones.hidden = true;
    const panel = el('div', 'user-admin-panel');
    panel.hidden = true;
    const msg = el('p', 'oath-admin-msg');
    msg.setAttribute('role', 'status');
    wide.append(phones, panel, msg);
    li.append(wide);
    li.classList.add('item-wraps');

    // fit hides the wide part while it shows nothing, so that it adds no
    // gap under the row.
    function fit() {
      wide.hidden = phones.hidden && panel.hidden && !msg.firstChild;
    }
    fit();

    function say(text, isError) {
      msg.textContent = text;
      msg.classList.toggle('form-error', !!isError);
      fit();
    }

    async function call(btn, method, url, body) {
      btn.disabled = true;
      say('');
      try {
        return (await q.api(method, url, body)).data || {};
      } catch (err) {
        say(err.message, true);
        return null;
      } finally {
        btn.disabled = false;
      }
    }

    // A panel below the buttons for a question: a field and a confirming
    // button, or only the button. Cancel closes it.
    function ask(question, confirmText, confirmClass, field, onConfirm) {
      panel.replaceChildren();
      const form = el('form', 'user-admin-form');
      form.noValidate = true;
      form.append(el('p', '', question));
      let input = null;
      if (field) {
        const id = 'reason-' + user.id;
        const wrap = el('div', 'field');
        const label = el('label', '', field + ' ');
        label.htmlFor = id;
        label.append(el('span', 'optional', '(optional)'));
        input = el('input');
        input.type = 'text';
        input.id = id;
        input.maxLength = 200;
        wrap.append(label, input);
        form.append(wrap);
      }
      const ok = button(confirmText, confirmClass, who);
      ok.type = 'submit';
      const cancel = button('Cancel', 'btn-secondary');
      cancel.addEventListener('click', function () {
        panel.hidden = true;
        panel.replaceChildren();
        fit();
      });
      const row = el('div', 'oath-admin-buttons');
      row.append(ok, cancel);
      form.append(row);
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        onConfirm(ok, input ? input.value : '');
      });
      panel.append(form);
      panel.hidden = false;
      fit();
      (input || ok).focus();
    }

    const phonesBtn = button('Phones', 'btn-secondary', 'of ' + who);
    phonesBtn.setAttribute('aria-expanded', 'false');
    phonesBtn.addEventListener('click', async function () {
      if (!phones.hidden) {
        phones.hidden = true;
        phonesBtn.setAttribute('aria-expanded', 'false');
        fit();
        return;
      }
      const d = await call(phonesBtn, 'GET', path + '/devices');
      if (!d) return;
      phones.replaceChildren();
      const list = d.devices || [];
      if (list.length === 0) phones.append(el('li', 'item item-empty', 'No phones.'));
      for (const dev of list) {
        const li = el('li', 'item');
        li.dataset.deviceId = dev.id;
        const body = el('div', 'item-body');
        body.append(el('p', 'item-title', dev.name), el('p', 'item-meta',
          'added ' + q.formatDate(dev.created_at) + ' · last seen ' + q.formatDate(dev.last_seen_at)));
        li.append(body);
        if (isAdmin) {
          const rm = button('Remove', 'btn-danger', 'phone ' + dev.name + ' of ' + who);
          rm.addEventListener('click', async function () {
            const r = await call(rm, 'DELETE', path + '/devices/' + encodeURIComponent(dev.id));
            if (r) refresh();
          });
          const acts = el('div', 'item-actions');
          acts.append(rm);
          li.append(acts);
        }
        phones.append(li);
      }
      phones.hidden = false;
      phonesBtn.setAttribute('aria-expanded', 'true');
      fit();
    });
    buttons.append(phonesBtn);
    // Administrators do not disable or delete themselves (the server
    // refuses it too: the last one would lock everyone out).
    if (!isAdmin || user.id === myID) return;

    if (user.disabled) {
      const enable = button('Enable', 'btn-primary', who);
      enable.addEventListener('click', async function () {
        if (await call(enable, 'POST', path + '/enable', {})) refresh();
      });
      buttons.append(enable);
    } else {
      const disable = button('Disable', 'btn-secondary', who);
      disable.addEventListener('click', function () {
        ask('Disable ' + who + '? Every sign-in is refused and their sessions end now.', 'Disable account',
          'btn-danger', 'Reason', async function (btn, reason) {
            if (await call(btn, 'POST', path + '/disable', { reason: reason })) refresh();
          });
      });
      buttons.append(disable);
    }

    const exp = button('Export data', 'btn-secondary', 'of ' + who);
    exp.addEventListener('click', async function () {
      const d = await call(exp, 'GET', path + '/export');
      if (!d) return;
      const url = URL.createObjectURL(new Blob([JSON.stringify(d, null, 2)], { type: 'application/json' }));
      const a = el('a', 'user-export-link', 'Save the export of ' + who);
      a.href = url;
      a.download = 'qrauth-export-' + user.id + '.json';
      say('');
      msg.replaceChildren(a, document.createTextNode(' (the export is recorded in the audit log)'));
      fit();
      a.focus();
    });
    buttons.append(exp);

    const del = button('Delete', 'btn-danger', who);
    del.addEventListener('click', function () {
      ask('Delete ' + who + ' and everything of theirs: phones, sessions, authenticator, badges, offline codes? ' +
        'This cannot be undone.', 'Delete for good', 'btn-danger', null, async function (btn) {
        if (await call(btn, 'DELETE', path)) refresh();
      });
    });
    buttons.append(del);
  }
})();
