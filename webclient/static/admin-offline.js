// admin-offline: on the admin page, an "Unlock" button for every offline
// method (OFFLINE_DEVICE, OFFLINE_PIN) of a user that is locked after too
// many wrong codes or has wrong codes counted. Administrators and helpdesk
// may unlock; the server records who did in the audit log.
'use strict';

(function () {
  const q = window.qrauth;

  const names = { OFFLINE_DEVICE: 'offline codes', OFFLINE_PIN: 'offline PIN codes' };

  document.addEventListener('qrauth:admin-user', function (ev) {
    const user = ev.detail.user;
    const actions = ev.detail.actions;
    const list = user.methods && user.methods.offline;
    if (!Array.isArray(list)) return;
    for (const m of list) {
      if (!m.locked && !(m.failures > 0)) continue;
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'btn btn-secondary btn-small';
      const what = names[m.method] || m.method;
      btn.textContent = m.locked ? 'Unlock ' + what : 'Reset wrong ' + what;
      btn.title = m.method + ' on device ' + m.device_id + (m.locked ? ' is locked' : ': ' + m.failures + ' wrong code(s)');
      btn.dataset.offlineUnlock = m.method;
      btn.addEventListener('click', async function () {
        btn.disabled = true;
        try {
          await q.api('POST', '/admin/api/offline/users/' + encodeURIComponent(user.id) + '/unlock',
            { device_id: m.device_id, method: m.method });
          ev.detail.refresh();
        } catch (err) {
          btn.disabled = false;
          btn.textContent = err.message;
        }
      });
      actions.append(btn);
    }
  });
})();
