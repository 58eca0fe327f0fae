// The pages a phone's camera app opens: /q/PSK (scan.html) and /t/TOKEN
// (tx-scan.html). When this browser holds a qrauth key, they go straight to
// the app's approval screen; otherwise scan.html offers to set the app up,
// and then answers the same code (a transaction needs a phone that already
// belongs to the account, so tx-scan.html only explains). The code travels
// to /app in the URL fragment, which browsers never send to a server; this
// script itself calls no API.

import { hasDevice } from './keys.js';

const target = '/app#open=' + encodeURIComponent(location.href);
const link = document.getElementById('open-setup');
if (link) link.href = target;

(async () => {
  if (window.isSecureContext && (await hasDevice())) {
    location.replace(target);
    return;
  }
  document.querySelector('main').dataset.state = 'nokey';
})();
