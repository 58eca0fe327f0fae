// qrauth: code shared by every page that runs a script (each loads this file
// first). It looks up no id of its own: the page scripts pass it their
// elements.
//
// Defines window.qrauth with:
//   byId(id)                  document.getElementById
//   el(tag, className, text)  a new element, text set with textContent
//   safeNext(next)            next when it is a path on this site, else /account
//   showState(root, state, parts)
//                             switches root between states (see there)
//   say(line, text)           writes a live region only when the words change
//   accountSection(opts)      adds a flow's section to the account page
//   api(method, path, body)   same-origin JSON fetch; rejects with an Error
//                             whose message is fit to show (and .status)
//   formatDate(s)             an RFC 3339 time for people, or "—"
//   Room                      one QR room over /ws/browser: states, QR
//                             rotation, reconnects with backoff
//   Countdown                 "new code in N s" text and progress bar
'use strict';

(function () {
  const TOO_MANY = 'Too many attempts, wait a moment';

  function byId(id) {
    return document.getElementById(id);
  }

  // el builds an element. Text goes in with textContent, never as HTML.
  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // safeNext accepts only a path on this site, as the URL parser reads it
  // ("//host/x" and "/\t/host" are other sites to it), so that a "next"
  // from the server or the address bar cannot send the browser elsewhere.
  function safeNext(next) {
    if (typeof next !== 'string' || next.charAt(0) !== '/') return '/account';
    try {
      return new URL(next, location.href).origin === location.origin ? next : '/account';
    } catch (e) {
      return '/account';
    }
  }

  // showState moves root to state: root's data-state names it (CSS and the
  // browser tests read it), and of the parts inside root that carry a
  // data-state (parts is a selector, by default the <section data-state>s)
  // only the one of that state is shown.
  function showState(root, state, parts) {
    root.dataset.state = state;
    for (const s of root.querySelectorAll(parts || 'section[data-state]')) s.hidden = s.dataset.state !== state;
  }

  // say writes text to a live region only when the words change, so that
  // the same state entered again (a rotating code) is not announced again.
  function say(line, text) {
    if (line.textContent !== text) line.textContent = text;
  }

  // accountSection adds one flow's section to the account page. account.js
  // dispatches qrauth:account-ready (detail: user, and extensions, the
  // element that holds these sections) once the account has loaded. At that
  // moment an empty, hidden
  //   <section id="NAME-panel" class="card panel CLASS" aria-labelledby="NAME-title">
  // is placed there, so that the sections keep the order of their scripts
  // whatever answers first. Then GET opts.path is asked: when that fails
  // (account.js itself reports a lost session or an unreachable service) or
  // opts.enabled(data) is false (default: data.enabled), the section stays
  // hidden. Otherwise opts.build({section, head, data, user}) fills it, head
  // being its .panel-head with <h2 id="NAME-title">opts.title</h2>
  // appended already, and the section is shown.
  function accountSection(opts) {
    document.addEventListener('qrauth:account-ready', async function (ev) {
      const host = ev.detail && ev.detail.extensions;
      const id = opts.name + '-panel';
      if (!host || document.getElementById(id)) return;
      const section = el('section', 'card panel' + (opts.className ? ' ' + opts.className : ''));
      section.id = id;
      section.setAttribute('aria-labelledby', opts.name + '-title');
      section.hidden = true;
      host.append(section);

      let data;
      try {
        data = (await api('GET', opts.path)).data;
      } catch (err) {
        return;
      }
      const enabled = opts.enabled || function (d) { return !!(d && d.enabled); };
      if (!enabled(data)) return;

      const head = el('div', 'panel-head');
      const title = el('h2', '', opts.title);
      title.id = opts.name + '-title';
      head.append(title);
      section.append(head);
      opts.build({ section: section, head: head, data: data, user: ev.detail.user });
      section.hidden = false;
    });
  }

  function statusWords(status) {
    switch (status) {
      case 400: return 'The request was not accepted';
      case 401: return 'You are not signed in';
      case 403: return 'This is not allowed';
      case 404: return 'Not found';
      case 409: return 'This conflicts with the current state';
      case 410: return 'This has expired';
      case 429: return TOO_MANY;
      case 502:
      case 503:
      case 504: return 'The server is not available right now';
      default: return 'The server could not do this';
    }
  }

  // api sends a same-origin JSON request. It resolves to {status, data}
  // (data is the parsed body or null) for 2xx answers and rejects otherwise
  // with an Error whose message is the body's "message" when there is one.
  async function api(method, path, body) {
    const init = {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      const err = new Error('Cannot reach the server. Check your connection and try again.');
      err.status = 0;
      throw err;
    }
    let data = null;
    try {
      const text = await res.text();
      if (text) data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
    if (res.ok) return { status: res.status, data: data };
    let message = data && typeof data.message === 'string' && data.message.trim();
    if (!message) message = statusWords(res.status) + ' (HTTP ' + res.status + ').';
    const err = new Error(message);
    err.status = res.status;
    err.data = data;
    throw err;
  }

  function formatDate(s) {
    if (!s) return '—';
    const d = new Date(s);
    // Go's zero time (year 1) means "never".
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 1971) return '—';
    return d.toLocaleString();
  }

  function wsURL(path) {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + path;
  }

  // Countdown shows the seconds until the QR code rotates in textEl and as
  // the width of barEl (a transform, set through the CSSOM, which the CSP
  // allows).
  class Countdown {
    constructor(textEl, barEl) {
      this.textEl = textEl;
      this.barEl = barEl;
      this.timer = 0;
      this.deadline = 0;
      this.total = 0;
    }

    start(seconds) {
      this.stop();
      const s = Number(seconds);
      this.total = s > 0 ? s * 1000 : 30000;
      this.deadline = Date.now() + this.total;
      if (this.barEl) {
        // Jump back to full without animating the refill.
        this.barEl.classList.add('meter-reset');
        this.barEl.style.transform = 'scaleX(1)';
        void this.barEl.offsetWidth;
        this.barEl.classList.remove('meter-reset');
      }
      this.tick();
    }

    tick() {
      const left = Math.max(0, this.deadline - Date.now());
      if (this.textEl) this.textEl.textContent = String(Math.ceil(left / 1000));
      if (this.barEl) {
        // Aim where the bar will be at the next tick; CSS animates there.
        const next = Math.max(0, left - 1000);
        this.barEl.style.transform = 'scaleX(' + (next / this.total).toFixed(4) + ')';
      }
      if (left > 0) {
        const wait = left % 1000 || 1000;
        this.timer = setTimeout(() => this.tick(), wait);
      }
    }

    stop() {
      clearTimeout(this.timer);
      this.timer = 0;
    }
  }

  // Room follows one room over a WebSocket to path. It calls
  // onState(state, msg) on every change of state, where state is one of
  // connecting, reconnecting, waiting, scanned, signup, approved, linked,
  // denied, expired, error; msg is the server message that caused it (for
  // "error": {code, reason, message}, always with a message). A "qr" message
  // calls onState("waiting", msg) every time, also when the code rotates.
  //
  // onError(msg), if set, is asked first about an "error" message; when it
  // returns true the room stays open (for example a form field the server
  // rejected).
  //
  // Reconnects happen automatically, with a backoff of 1 s, 2 s, 4 s … up to
  // 30 s, after a "reconnect" message or when the socket closes with 1001,
  // 1005, 1006, 1012 or 1013 before the room ended. Close codes 4000–4999
  // end the room: 4429 as "too many attempts", 4410 as expired.
  class Room {
    constructor(path, handlers) {
      this.path = path;
      this.onState = handlers.onState || function () {};
      this.onError = handlers.onError || null;
      this.ws = null;
      this.gen = 0;
      this.attempt = 0;
      this.timer = 0;
      this.state = '';
      this.lastError = null;
      this.onOnline = () => {
        if (this.state === 'reconnecting' && this.timer) this.connect('reconnecting');
      };
      window.addEventListener('online', this.onOnline);
    }

    // start opens a fresh room, forgetting any earlier one and its backoff.
    start() {
      this.attempt = 0;
      this.connect('connecting');
    }

    // stop closes the socket and cancels any pending reconnect. No more
    // onState calls follow.
    stop() {
      this.detach();
      this.state = '';
    }

    send(obj) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(obj));
      return true;
    }

    detach() {
      clearTimeout(this.timer);
      this.timer = 0;
      this.gen++;
      const ws = this.ws;
      this.ws = null;
      if (!ws) return;
      ws.onmessage = null;
      ws.onclose = null;
      ws.onerror = null;
      if (ws.readyState === WebSocket.CONNECTING) {
        // Closing a socket that is still connecting makes browsers log an
        // error; close it as soon as it opens instead.
        ws.onopen = function () { ws.close(1000); };
      } else {
        ws.onopen = null;
        if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      }
    }

    set(state, msg) {
      this.state = state;
      this.onState(state, msg || {});
    }

    // end moves to a final state and lets the socket go.
    end(state, msg) {
      this.detach();
      this.set(state, msg);
    }

    fail(msg) {
      this.end('error', msg);
    }

    connect(state) {
      this.detach();
      this.lastError = null;
      const gen = this.gen;
      this.set(state);
      let ws;
      try {
        ws = new WebSocket(wsURL(this.path));
      } catch (e) {
        this.fail({ code: 'internal', reason: 'no_websocket', message: 'This browser cannot open a connection to the server.' });
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => { opened = true; };
      ws.onerror = () => {}; // a close event follows with the details
      ws.onmessage = (ev) => {
        if (gen === this.gen) this.message(ev.data);
      };
      ws.onclose = (ev) => {
        if (gen !== this.gen) return;
        this.ws = null;
        this.closed(ev.code, opened);
      };
    }

    message(data) {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch (e) {
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      switch (msg.type) {
        case 'qr':
          this.attempt = 0;
          this.set('waiting', msg);
          break;
        case 'scanned':
        case 'signup':
          this.set(msg.type, msg);
          break;
        case 'approved':
        case 'linked':
        case 'denied':
        case 'expired':
          this.end(msg.type, msg);
          break;
        case 'error': {
          const err = {
            code: String(msg.code || ''),
            reason: String(msg.reason || ''),
            message: String(msg.message || '') || 'Something went wrong. Please try again.',
          };
          if (err.code === 'rate_limited') err.message = TOO_MANY;
          this.lastError = err;
          if (this.onError && this.onError(err)) return;
          this.fail(err);
          break;
        }
        case 'reconnect':
          this.retry();
          break;
        default:
          // Unknown types are ignored, for newer servers.
          break;
      }
    }

    async closed(code, opened) {
      if (code === 4429) {
        this.fail({ code: 'rate_limited', reason: 'close_4429', message: TOO_MANY });
      } else if (code === 4410) {
        this.end('expired', { type: 'expired' });
      } else if (code >= 4000 && code <= 4999) {
        this.fail(this.lastError || {
          code: 'closed', reason: 'close_' + code,
          message: 'The server ended the connection (code ' + code + '). Please try again.',
        });
      } else if (!opened) {
        // The handshake failed, and browsers hide its HTTP status. Ask the
        // same path once with a plain GET: the server answers it with the
        // reason the socket would be refused (429 when rate-limited, 401
        // without the sign-in cookie), or 400 "not a WebSocket" when all
        // is well. No answer, or a 5xx from a proxy, means "unreachable":
        // retry with backoff.
        const gen = this.gen;
        let status = 0;
        let body = null;
        try {
          const res = await fetch(this.path, { credentials: 'same-origin', cache: 'no-store' });
          status = res.status;
          body = await res.json().catch(() => null);
        } catch (e) {
          status = 0;
        }
        if (gen !== this.gen) return;
        if (status === 429) {
          this.fail({ code: 'rate_limited', reason: 'http_429', message: TOO_MANY, status: status });
        } else if (status >= 400 && status < 500 && body && body.reason !== 'not_websocket') {
          this.fail({
            code: body.code || 'refused', reason: body.reason || 'handshake_refused',
            message: body.message || 'The server refused the connection. Reload the page.', status: status,
          });
        } else {
          this.retry();
        }
      } else if (code === 1001 || code === 1005 || code === 1006 || code === 1012 || code === 1013) {
        this.retry();
      } else {
        this.fail(this.lastError || {
          code: 'closed', reason: 'close_' + code,
          message: 'The connection to the server was closed. Please try again.',
        });
      }
    }

    // retry opens a new socket after the next backoff delay.
    retry() {
      this.detach();
      const delay = Math.min(30000, 1000 * Math.pow(2, this.attempt));
      this.attempt = Math.min(this.attempt + 1, 10);
      this.set('reconnecting', { delay: delay });
      this.timer = setTimeout(() => this.connect('reconnecting'), delay);
    }
  }

  window.qrauth = {
    TOO_MANY: TOO_MANY,
    byId: byId,
    el: el,
    safeNext: safeNext,
    showState: showState,
    say: say,
    accountSection: accountSection,
    api: api,
    formatDate: formatDate,
    wsURL: wsURL,
    Countdown: Countdown,
    Room: Room,
  };
})();
