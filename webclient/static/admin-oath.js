// admin-oath: the authenticator (OATH) actions of each user row on the
// admin page: unlock, view the secret (role secret_viewer; audited), order
// an activation letter (written on the server into its letter directory),
// delete. Rows get nothing when the flow is off (no "oath" method).
'use strict';

(function () {
  const q = window.qrauth;

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function button(text, className) {
    const b = el('button', 'btn btn-small ' + className, text);
    b.type = 'button';
    return b;
  }

  function groupSecret(s) {
    return String(s || '').replace(/(.{4})(?=.)/g, '$1 ');
  }

  document.addEventListener('qrauth:admin-user', function (ev) {
    const { user, actions, refresh } = ev.detail;
    if (!user.methods || !('oath' in user.methods)) return;
    const oath = user.methods.oath;
    const path = '/admin/api/oath/' + encodeURIComponent(user.id);
    const who = user.name || user.id;

    const box = el('div', 'oath-admin');
    box.dataset.userId = user.id;
    const line = el('p', 'item-meta', oath
      ? 'Authenticator: ' + (oath.kind === 'hotp' ? 'HOTP' : 'TOTP') + (oath.locked ? ' — locked' : '') +
        (q.formatDate(oath.last_used_at) === '—' ? ', not used yet' : ', last used ' + q.formatDate(oath.last_used_at))
      : 'Authenticator: none');
    if (oath && oath.locked) line.classList.add('oath-state-locked');
    const buttons = el('div', 'oath-admin-buttons');
    const out = el('div', 'oath-admin-out');
    out.hidden = true;
    const msg = el('p', 'oath-admin-msg');
    msg.setAttribute('role', 'status');
    box.append(line, buttons, msg, out);
    actions.append(box);

    function say(text, isError) {
      msg.textContent = text;
      msg.classList.toggle('form-error', !!isError);
    }

    async function run(btn, method, url, okText, after) {
      btn.disabled = true;
      say('');
      try {
        const res = await q.api(method, url);
        if (after) after(res.data || {});
        if (okText) say(typeof okText === 'function' ? okText(res.data || {}) : okText);
      } catch (err) {
        say(err.message, true);
      } finally {
        btn.disabled = false;
      }
    }

    if (oath && oath.locked) {
      const unlock = button('Unlock authenticator', 'btn-primary');
      unlock.addEventListener('click', function () {
        run(unlock, 'POST', path + '/unlock', null, refresh);
      });
      buttons.append(unlock);
    }
    if (oath) {
      const view = button('View secret', 'btn-secondary');
      // Each label starts with the button's visible words (speech users
      // say what they see) and adds whose it is.
      const viewText = function (text) {
        view.textContent = text;
        view.setAttribute('aria-label', text + ' of ' + who);
      };
      viewText('View secret');
      view.addEventListener('click', function () {
        if (!out.hidden) {
          out.hidden = true;
          out.replaceChildren();
          viewText('View secret');
          return;
        }
        run(view, 'POST', path + '/secret', 'Shown. This view is recorded in the audit log.', function (d) {
          const img = el('img');
          img.alt = 'QR code of the authenticator secret of ' + who;
          img.width = 180;
          img.height = 180;
          if (typeof d.qr === 'string' && d.qr.startsWith('data:image/')) img.src = d.qr;
          const qr = el('div', 'oath-qr oath-qr-small');
          qr.append(img);
          const dl = el('dl', 'oath-secret-list');
          for (const [k, v] of [['Base32', groupSecret(d.secret)], ['Hex', d.hex], ['Token', d.token_id]]) {
            const row = el('div');
            row.append(el('dt', '', k), el('dd', 'oath-secret', v || ''));
            dl.append(row);
          }
          out.replaceChildren(qr, dl);
          out.hidden = false;
          viewText('Hide secret');
        });
      });
      buttons.append(view);
    }
    const letter = button(oath ? 'Order activation letter' : 'Create with activation letter', 'btn-secondary');
    letter.setAttribute('aria-label', letter.textContent + ' for ' + who);
    letter.addEventListener('click', function () {
      run(letter, 'POST', path + '/letter', function (d) {
        return 'Letter written to ' + d.file + (d.reused ? ' (existing secret).' : ' (new secret).');
      }, function (d) {
        // The list is not reloaded, so that this message stays.
        if (!d.reused) line.textContent = 'Authenticator: created for the letter; reload to manage it';
      });
    });
    buttons.append(letter);
    if (oath) {
      const del = button('Delete authenticator', 'btn-danger');
      del.setAttribute('aria-label', 'Delete authenticator of ' + who);
      del.addEventListener('click', function () {
        if (!window.confirm('Delete the authenticator of ' + who + '? They will have to set up a new one.')) return;
        run(del, 'DELETE', path, null, refresh);
      });
      buttons.append(del);
    }
  });
})();
