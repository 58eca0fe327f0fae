// qrauth admin page: the user list. Each user row has an actions area
// that the scripts of other flows fill on the qrauth:admin-user event:
//   document.addEventListener('qrauth:admin-user', (ev) => {
//     const { user, actions, refresh } = ev.detail; // refresh() reloads the list
//   });
'use strict';

(function () {
  const q = window.qrauth;
  const byId = q.byId;
  const el = q.el;
  const root = byId('admin');
  const list = byId('users');

  function showError(text) {
    byId('admin-error-text').textContent = text;
    byId('admin-error').hidden = false;
  }

  function methodNames(methods) {
    return Object.keys(methods || {}).filter(function (k) {
      const v = methods[k];
      return v && v !== false;
    }).sort();
  }

  function render(users) {
    list.replaceChildren();
    list.setAttribute('aria-busy', 'false');
    if (users.length === 0) {
      list.append(el('li', 'item item-empty', 'No users yet.'));
      return;
    }
    for (const u of users) {
      const li = el('li', 'item');
      li.dataset.userId = u.id;
      const body = el('div', 'item-body');
      body.append(el('p', 'item-title', u.name || '(no name)'));
      const meta = [u.email || 'no e-mail', u.id, 'roles: ' + (u.roles.length ? u.roles.join(', ') : 'none'),
        'methods: ' + (methodNames(u.methods).join(', ') || 'none'), u.devices + ' phone(s)'];
      body.append(el('p', 'item-meta', meta.join(' · ')));
      const actions = el('div', 'item-actions');
      li.append(body, actions);
      list.append(li);
      document.dispatchEvent(new CustomEvent('qrauth:admin-user', {
        detail: { user: u, actions: actions, refresh: load },
      }));
    }
  }

  async function load() {
    list.setAttribute('aria-busy', 'true');
    let res;
    try {
      res = await q.api('GET', '/admin/api/users?limit=1000');
    } catch (err) {
      if (err.status === 401) {
        location.replace('/');
        return;
      }
      root.dataset.state = 'error';
      byId('admin-lead').textContent = 'The user list could not be loaded.';
      showError(err.message);
      return;
    }
    const users = (res.data && res.data.users) || [];
    byId('admin-lead').textContent = users.length + (users.length === 1 ? ' user' : ' users');
    render(users);
    root.dataset.state = 'ready';
  }

  load();
})();
