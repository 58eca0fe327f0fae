// The phone web app's service worker: keeps the app shell so that /app
// opens without a network (the offline codes need no server). Served at
// /app/sw.js with Service-Worker-Allowed: /app, registered with scope /app.
//
// Network first, cache as the fallback: an online phone always runs the
// newest app, an offline one the last it saw. Only the shell's own files
// are touched; every API call and socket goes to the network untouched.

const CACHE = 'qrauth-app-v2';
const SHELL = [
  '/app',
  '/app/manifest.webmanifest',
  '/static/app.css',
  '/static/favicon.svg',
  '/static/app/app.css',
  '/static/app/app.js',
  '/static/app/keys.js',
  '/static/app/protocol.js',
  '/static/app/offline.js',
  '/static/app/argon2.js',
  '/static/app/scanner.js',
  '/static/app/qrdecode.js',
  '/static/app/countries.js',
  '/static/app/icon-192.png',
  '/static/app/icon-512.png',
  '/static/vendor/barcode-detector/ponyfill.js',
  '/static/vendor/zxing-wasm/zxing_reader.wasm',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(event.request);
      if (res.ok) await cache.put(url.pathname, res.clone());
      return res;
    } catch (e) {
      const hit = await cache.match(url.pathname);
      if (hit) return hit;
      throw e;
    }
  })());
});
