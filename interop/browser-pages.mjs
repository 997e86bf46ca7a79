// Drives herald's browser pages in headless Chromium (Debian's /usr/bin/chromium, never a
// downloaded browser) with puppeteer-core, for the Rust test tests/it/browser/.
//
//   node browser-pages.mjs subscribe   env: HERALD_URL CHANNEL_ID CHANNEL_NAME WALLET_KEY TOPIC_OFF SCREENSHOT
//   node browser-pages.mjs console     env: HERALD_URL API_KEY CSV_FILE SCREENSHOT
//
// Every request the page makes is intercepted: one leaving herald's origin is aborted and
// reported. Console errors and page exceptions are collected. The result is one JSON line on
// stdout ({ok, offsite, consoleErrors, ...}); progress goes to stderr. Exit code 1 on failure.
import puppeteer from 'puppeteer-core';
import { privateKeyToAccount } from 'viem/accounts';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const log = (...args) => console.error('[browser]', ...args);
const base = env('HERALD_URL');
const origin = new URL(base).origin;
const WAIT = { timeout: 60_000 };

async function open() {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The test machine runs as root in a container: Chromium's sandbox needs user namespaces.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-default-apps', '--disable-sync'],
  });
  const page = await browser.newPage();
  const seen = { offsite: [], consoleErrors: [], allowedErrors: [] };
  seen.allow = null; // a substring of console errors expected right now (e.g. a deliberate 401)
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    const url = req.url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      req.continue();
    } else {
      seen.offsite.push(url);
      req.abort();
    }
  });
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (seen.allow && text.includes(seen.allow)) seen.allowedErrors.push(text);
    else seen.consoleErrors.push(text);
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(`page error: ${e.message}`));
  return { browser, page, seen };
}

async function textOf(page, selector) {
  return page.$eval(selector, (e) => e.textContent);
}

async function waitText(page, selector, needle) {
  await page.waitForFunction(
    (s, n) => document.querySelector(s) && document.querySelector(s).textContent.includes(n),
    WAIT, selector, needle,
  ).catch(async (e) => {
    throw new Error(`${selector} never showed "${needle}" (shows "${await textOf(page, selector).catch(() => '?')}"): ${e.message}`);
  });
}

async function subscribe() {
  const account = privateKeyToAccount(env('WALLET_KEY'));
  const channel = env('CHANNEL_ID');
  const { browser, page, seen } = await open();
  try {
    await page.setViewport({ width: 480, height: 900 });
    // The wallet: an EIP-1193 provider backed by the viem account, announced over EIP-6963
    // next to a second wallet that refuses everything (so the page must let the user choose).
    await page.exposeFunction('__heraldTestSign', (hex) => account.signMessage({ message: { raw: hex } }));
    await page.evaluateOnNewDocument((address) => {
      const make = (accept) => ({
        request: async ({ method, params }) => {
          if (!accept) throw Object.assign(new Error('User rejected the request.'), { code: 4001 });
          if (method === 'eth_requestAccounts' || method === 'eth_accounts') return [address];
          if (method === 'personal_sign') {
            if (params[1].toLowerCase() !== address.toLowerCase()) throw new Error('wrong account');
            return window.__heraldTestSign(params[0]);
          }
          throw Object.assign(new Error(`unsupported ${method}`), { code: 4200 });
        },
      });
      const wallets = [
        { info: { uuid: '00000000-0000-4000-8000-000000000001', name: 'Refusing wallet', icon: 'data:,', rdns: 'test.refuse' }, provider: make(false) },
        { info: { uuid: '00000000-0000-4000-8000-000000000002', name: 'Test wallet', icon: 'data:,', rdns: 'test.viem' }, provider: make(true) },
      ];
      window.addEventListener('eip6963:requestProvider', () => {
        for (const w of wallets) window.dispatchEvent(new CustomEvent('eip6963:announceProvider', { detail: Object.freeze(w) }));
      });
    }, account.address);

    log('open subscribe page');
    await page.goto(`${base}/subscribe/${channel}`, { waitUntil: 'networkidle0' });
    await waitText(page, '#channel-name', env('CHANNEL_NAME'));
    await page.waitForSelector('#wallet-choice:not([hidden])', WAIT);
    const options = await page.$$eval('#wallet-select option', (os) => os.map((o) => [o.value, o.textContent]));
    const chosen = options.find(([, name]) => name === 'Test wallet');
    if (!chosen) throw new Error(`EIP-6963 wallets not listed: ${JSON.stringify(options)}`);
    await page.select('#wallet-select', chosen[0]);
    log('connect');
    await page.waitForSelector('#connect:not([disabled])', { ...WAIT, visible: true });
    await page.click('#connect');
    if (process.env.EXPECT_NOT_ON_XMTP) {
      // A wallet without an XMTP inbox: the page explains instead of offering the signature.
      await page.waitForSelector('#not-on-xmtp', { ...WAIT, visible: true });
      const subscribeShown = await page.$eval('#subscribe', (b) => !b.hidden);
      const warning = await textOf(page, '#not-on-xmtp');
      return { ok: true, address: account.address.toLowerCase(), subscribeShown, warning, ...report(seen) };
    }
    await waitText(page, '#wallet-status', 'is on XMTP');
    log('sign and subscribe');
    await page.waitForSelector('#subscribe:not([disabled])', { ...WAIT, visible: true });
    await page.click('#subscribe');
    await waitText(page, '#wallet-status', 'Subscribed');
    await page.waitForSelector('#topics:not([hidden])', WAIT);
    // The test queues an announcement for the topic now, then lets the switch go off.
    process.stdout.write(JSON.stringify({ phase: 'subscribed' }) + '\n');
    await nextStdinLine();
    const off = env('TOPIC_OFF');
    const topics = await page.$$eval('#topic-switches input', (is) => is.map((i) => [i.dataset.topic, i.checked]));
    log('switch off', off);
    await page.click(`#topic-switches input[data-topic="${off}"]`);
    await waitText(page, '#topics-status', `Saved: ${off} off`);
    await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });
    return { ok: true, address: account.address.toLowerCase(), topics, ...report(seen) };
  } finally {
    await browser.close();
  }
}

// Resolves with the next line the test writes on stdin.
function nextStdinLine() {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk;
      if (buffer.includes('\n')) { process.stdin.off('data', onData); process.stdin.pause(); resolve(buffer.trim()); }
    };
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', onData);
    process.stdin.once('end', () => reject(new Error('stdin closed before the test said continue')));
    process.stdin.resume();
  });
}

function report(seen) {
  return { offsite: seen.offsite, consoleErrors: seen.consoleErrors, allowedErrors: seen.allowedErrors };
}

const mode = process.argv[2];
const run = { subscribe, console: async () => (await import('./browser-console.mjs')).run({ open, waitText, textOf, env, log, base, report, WAIT }) }[mode];
if (!run) {
  console.error('usage: node browser-pages.mjs subscribe|console');
  process.exit(2);
}
run().then(
  (result) => { process.stdout.write(JSON.stringify(result) + '\n'); process.exit(result.ok ? 0 : 1); },
  (e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.stack || e) }) + '\n'); process.exit(1); },
);
