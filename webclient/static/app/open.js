// The page a phone's camera app opens (/q/PSK, scan.html). When this
// browser holds a qrauth key, it goes straight to the app's approval
// screen; otherwise it offers to set the app up, and then answers the same
// code. The code travels to /app in the URL fragment, which browsers never
// send to a server; this script itself calls no API.

import { hasDevice } from './keys.js';

const target = '/app#open=' + encodeURIComponent(location.href);
const link = document.getElementById('open-setup');
link.href = target;

(async () => {
  if (window.isSecureContext && (await hasDevice())) {
    location.replace(target);
    return;
  }
  document.getElementById('scan').dataset.state = 'nokey';
})();
