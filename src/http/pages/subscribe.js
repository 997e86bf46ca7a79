// herald's subscribe page: shows a channel, finds the browser's wallets (EIP-6963, with the
// legacy window.ethereum as fallback), checks the wallet is on XMTP, gets a SIWE challenge,
// has the wallet sign it (personal_sign), subscribes, then shows topic switches saved with the
// subscriber session token the subscribe returned (kept in memory only).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const channelId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
  const api = (path) => `/v1/channels/${encodeURIComponent(channelId)}${path}`;
  const wallets = []; // {info: {uuid, name}, provider}
  let wallet = null;
  let address = null;
  let session = null;

  async function call(path, options = {}) {
    const response = await fetch(api(path), options);
    const body = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error((body && body.detail) || `HTTP ${response.status}`);
      error.code = body && body.code;
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function say(id, text, kind) {
    const el = $(id);
    el.textContent = text;
    el.className = `status ${kind || ''}`;
  }

  async function loadProfile() {
    try {
      const profile = await call('/profile');
      document.title = `Subscribe to ${profile.name}`;
      $('channel-name').textContent = `Subscribe to ${profile.name}`;
      $('channel-description').textContent = profile.description || '';
      $('channel-address').textContent = profile.xmtp_address;
      $('dm-address').textContent = profile.xmtp_address;
      const list = $('topic-list');
      list.replaceChildren(...profile.topics.map((t) => {
        const li = document.createElement('li');
        const name = document.createElement('strong');
        name.textContent = t.name;
        li.append(name, t.description ? ` — ${t.description}` : '',
          t.default === 'required' ? ' (always sent)' : t.default === 'off' ? ' (off unless you turn it on)' : '');
        return li;
      }));
      if (profile.topics.length) {
        list.before(Object.assign(document.createElement('p'), { textContent: 'Topics:' }));
      }
    } catch (e) {
      $('load-error').hidden = false;
      $('load-error').textContent = e.status === 404 ? 'This channel does not exist.' : `Could not load the channel: ${e.message}`;
      $('connect').disabled = true;
      return false;
    }
    return true;
  }

  function discoverWallets() {
    window.addEventListener('eip6963:announceProvider', (event) => {
      const detail = event.detail;
      if (!detail || !detail.provider || !detail.info) return;
      if (wallets.some((w) => w.info.uuid === detail.info.uuid)) return;
      wallets.push(detail);
      renderWallets();
    });
    window.dispatchEvent(new Event('eip6963:requestProvider'));
    // A wallet that predates EIP-6963 only sets window.ethereum.
    setTimeout(() => {
      if (!wallets.length && window.ethereum) {
        wallets.push({ info: { uuid: 'window.ethereum', name: 'Browser wallet' }, provider: window.ethereum });
        renderWallets();
      } else if (!wallets.length) {
        say('wallet-status', 'No browser wallet found. Install one, or use option 1.', 'warn');
      }
    }, 300);
  }

  function renderWallets() {
    const select = $('wallet-select');
    select.replaceChildren(...wallets.map((w, i) => new Option(w.info.name || `Wallet ${i + 1}`, String(i))));
    $('wallet-choice').hidden = wallets.length < 2;
    $('connect').disabled = false;
    say('wallet-status', '', '');
  }

  async function connect() {
    wallet = wallets[Number($('wallet-select').value) || 0];
    if (!wallet) return;
    say('wallet-status', 'Waiting for the wallet…');
    try {
      const accounts = await wallet.provider.request({ method: 'eth_requestAccounts' });
      address = (accounts && accounts[0] || '').toLowerCase();
      if (!address) throw new Error('the wallet returned no account');
    } catch (e) {
      say('wallet-status', `The wallet did not connect: ${e.message || e}`, 'bad');
      return;
    }
    $('wallet-address').textContent = address;
    await checkReachable();
  }

  async function checkReachable() {
    say('wallet-status', 'Checking whether this wallet is on XMTP…');
    try {
      const r = await call(`/reachability?address=${encodeURIComponent(address)}`);
      $('not-on-xmtp').hidden = r.on_xmtp;
      $('subscribe').hidden = !r.on_xmtp;
      $('subscribe').disabled = !r.on_xmtp;
      say('wallet-status', r.on_xmtp ? 'This wallet is on XMTP. Sign to subscribe.' : '', r.on_xmtp ? 'ok' : '');
    } catch (e) {
      say('wallet-status', `Could not ask the XMTP network: ${e.message}`, 'bad');
    }
  }

  function toHex(text) {
    return '0x' + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function subscribe() {
    $('subscribe').disabled = true;
    try {
      say('wallet-status', 'Asking herald for a message to sign…');
      const challenge = await call(`/subscribe-challenge?address=${encodeURIComponent(address)}`);
      say('wallet-status', 'Sign the message in your wallet…');
      const signature = await wallet.provider.request({ method: 'personal_sign', params: [toHex(challenge.message), address] });
      const result = await call('/subscriptions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: challenge.message, signature }),
      });
      session = result.session_token;
      $('not-on-xmtp').hidden = true;
      say('wallet-status', `Subscribed ${result.address}. Look for the channel's first message in your XMTP app (under message requests until you accept it).`, 'ok');
      await loadTopics();
    } catch (e) {
      say('wallet-status', `Not subscribed: ${e.message || e}`, 'bad');
      $('subscribe').disabled = false;
    }
  }

  async function loadTopics() {
    const prefs = await call('/me/topics', { headers: { authorization: `Bearer ${session}` } });
    const box = $('topic-switches');
    box.replaceChildren(...prefs.items.map((p) => {
      const label = document.createElement('label');
      label.className = 'switch';
      const input = document.createElement('input');
      input.type = 'checkbox';
      input.setAttribute('role', 'switch');
      input.checked = p.enabled;
      input.disabled = p.default === 'required';
      input.dataset.topic = p.topic;
      input.addEventListener('change', () => saveTopic(input));
      const text = document.createElement('span');
      text.textContent = p.topic + (p.default === 'required' ? ' (always sent)' : '');
      label.append(input, text);
      return label;
    }));
    $('topics').hidden = prefs.items.length === 0;
  }

  async function saveTopic(input) {
    input.disabled = true;
    const topic = input.dataset.topic;
    try {
      await call(`/me/topics/${encodeURIComponent(topic)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${session}` },
        body: JSON.stringify({ enabled: input.checked }),
      });
      say('topics-status', `Saved: ${topic} ${input.checked ? 'on' : 'off'}.`, 'ok');
    } catch (e) {
      input.checked = !input.checked;
      say('topics-status', e.status === 401 ? 'Your session expired: sign and subscribe again to change topics.' : `Not saved: ${e.message}`, 'bad');
    } finally {
      input.disabled = false;
    }
  }

  $('copy-address').addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText($('dm-address').textContent);
      $('copy-status').textContent = 'Copied.';
    } catch {
      $('copy-status').textContent = 'Copy it by hand: select the address above.';
    }
  });
  $('connect').addEventListener('click', connect);
  $('subscribe').addEventListener('click', subscribe);
  $('recheck').addEventListener('click', checkReachable);
  $('subscribe-anyway').addEventListener('click', () => { $('subscribe').hidden = false; $('subscribe').disabled = false; subscribe(); });

  loadProfile().then((ok) => { if (ok) discoverWallets(); });
})();
