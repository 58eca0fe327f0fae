// admin-recovery: on the admin page, a "Recovery link code" button for
// every user (administrators and helpdesk). It issues a one-time link code
// that a new phone scans or types to join the account (docs/recovery.md),
// and shows it as a QR code and as text until closed. The server records
// who issued it.
'use strict';

(function () {
  const q = window.qrauth;
  const el = q.el;

  document.addEventListener('qrauth:admin-user', function (ev) {
    const user = ev.detail.user;
    const actions = ev.detail.actions;
    const btn = el('button', 'btn btn-secondary btn-small', 'Recovery link code');
    btn.type = 'button';
    btn.dataset.recoveryLink = user.id;
    const rec = user.methods && user.methods.recovery;
    if (rec && rec.locked) btn.title = 'Recovery codes are locked after too many wrong codes; a link code lifts the lock.';
    btn.addEventListener('click', async function () {
      btn.disabled = true;
      try {
        const res = await q.api('POST', '/admin/api/recovery/users/' + encodeURIComponent(user.id) + '/link');
        show(res.data);
      } catch (err) {
        btn.textContent = err.message;
      } finally {
        btn.disabled = false;
      }
    });
    actions.append(btn);

    function show(d) {
      const old = actions.querySelector('.recovery-link');
      if (old) old.remove();
      const box = el('div', 'recovery-link');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', 'Link code for ' + (user.name || user.id));
      const img = el('img');
      img.src = d.qr;
      img.width = 200;
      img.height = 200;
      img.alt = 'QR code of the link code, for the new phone to scan';
      const code = el('p', 'recovery-code', d.code);
      code.dataset.recoveryCode = '';
      const until = el('p', 'item-meta', 'Works once, until ' + q.formatDate(d.expires_at) +
        '. Using it signs out every browser of the account.');
      const close = el('button', 'btn btn-secondary btn-small', 'Close');
      close.type = 'button';
      close.addEventListener('click', function () { box.remove(); btn.focus(); });
      box.append(img, code, until, close);
      actions.append(box);
      close.focus();
    }
  });
})();
