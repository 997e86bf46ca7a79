// herald's tenant console: a small vanilla script over the REST API (same origin only). The
// API key lives in sessionStorage for this tab and goes out only as a bearer header.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = 'herald.apiKey';
  const state = { channel: null, subscribersCursor: null, consentCursor: null, deliveriesCursor: null, announcement: null, stream: null, idempotencyKey: null, csvRows: null };

  // ---- API ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = body && body.code;
      this.body = body;
    }
  }

  async function api(path, { method = 'GET', body, headers = {}, raw = false } = {}) {
    const init = { method, headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`, ...headers } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (raw && response.ok) return response;
    const text = response.status === 204 ? '' : await response.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
    if (!response.ok) {
      if (response.status === 401 && $('app').hidden === false) signOut('Your API key is no longer accepted. Sign in again.');
      throw new ApiError(response.status, parsed);
    }
    return parsed;
  }

  const ch = (suffix = '') => `/v1/channels/${encodeURIComponent(state.channel.id)}${suffix}`;

  function say(id, text, kind = '') {
    const el = $(id);
    el.textContent = text;
    el.className = `${el.classList.contains('field-error') ? 'field-error' : 'status'} ${kind}`;
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text == null ? '' : String(text);
    if (className) td.className = className;
    return td;
  }

  function button(label, onClick, className = 'secondary') {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.className = className;
    b.addEventListener('click', onClick);
    return b;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');

  // ---- Sign in -----------------------------------------------------------------------------
  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    try {
      const list = await api('/v1/channels?limit=1000');
      $('sign-in').hidden = true;
      $('app').hidden = false;
      $('sign-out').hidden = false;
      say('sign-in-error', '');
      renderChannels(list.items);
    } catch (e) {
      sessionStorage.removeItem(KEY);
      const why = e.status === 401
        ? 'That API key was not accepted. Check that you copied the whole key (it starts with hk_) and that it has not been revoked.'
        : `Could not sign in: ${e.message}`;
      $('sign-in-error').textContent = why;
    }
  }

  function signOut(message = '') {
    sessionStorage.removeItem(KEY);
    stopStream();
    $('app').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    $('api-key').value = '';
    $('sign-in-error').textContent = message;
    $('api-key').focus();
  }

  // ---- Channels ----------------------------------------------------------------------------
  function renderChannels(items, selectId) {
    const select = $('channel-select');
    select.replaceChildren(...items.map((c) => {
      const o = new Option(c.name, c.id);
      o.channel = c;
      return o;
    }));
    $('new-channel').open = items.length === 0;
    if (selectId) select.value = selectId;
    if (items.length) selectChannel(select.selectedOptions[0].channel);
    else $('channel').hidden = true;
  }

  async function selectChannel(channel) {
    stopStream();
    state.channel = channel;
    $('channel').hidden = false;
    $('channel-address').textContent = channel.xmtp.address;
    $('channel-xmtp-status').textContent = `(${channel.xmtp.status})`;
    $('channel-name').value = channel.name;
    $('channel-description').value = channel.description || '';
    $('subscribe-link').href = new URL(channel.subscribe_url).pathname;
    $('embed-snippet').value = channel.subscribe_embed;
    $('progress').hidden = true;
    $('import-report').hidden = true;
    say('import-status', '');
    try {
      const welcome = await api(ch('/welcome'));
      $('channel-welcome').value = welcome.text || '';
    } catch (e) { say('settings-status', `Could not read the welcome text: ${e.message}`, 'bad'); }
    loadSubscribers(true);
    loadTopics();
    loadAnnouncements();
    loadTriggers();
    loadConsent(true);
  }

  async function createChannel(event) {
    event.preventDefault();
    const body = { name: $('new-channel-name').value.trim() };
    const description = $('new-channel-description').value.trim();
    if (description) body.description = description;
    say('new-channel-status', 'Creating…');
    try {
      const created = await api('/v1/channels', { method: 'POST', body });
      const list = await api('/v1/channels?limit=1000');
      renderChannels(list.items, created.id);
      $('new-channel-form').reset();
      $('new-channel').open = false;
      say('new-channel-status', `Created ${created.name}.`, 'ok');
    } catch (e) { say('new-channel-status', `Not created: ${e.message}`, 'bad'); }
  }

  async function saveSettings(event) {
    event.preventDefault();
    const description = $('channel-description').value.trim();
    try {
      const updated = await api(ch(), { method: 'PATCH', body: { name: $('channel-name').value.trim(), description: description || null } });
      const welcome = $('channel-welcome').value.trim();
      await api(ch('/welcome'), { method: 'PUT', body: { text: welcome || null } });
      state.channel = updated;
      const option = $('channel-select').selectedOptions[0];
      option.textContent = updated.name;
      option.channel = updated;
      say('settings-status', 'Saved.', 'ok');
    } catch (e) { say('settings-status', `Not saved: ${e.message}`, 'bad'); }
  }

  // ---- Subscribers -------------------------------------------------------------------------
  async function loadCount() {
    try {
      const n = await api(ch('/subscribers/count'));
      $('subscriber-count').textContent = `(${n.active} active)`;
    } catch (e) { $('subscriber-count').textContent = ''; }
  }

  async function loadSubscribers(reset) {
    if (reset) { state.subscribersCursor = null; $('subscriber-rows').replaceChildren(); }
    loadCount();
    const cursor = state.subscribersCursor ? `&cursor=${encodeURIComponent(state.subscribersCursor)}` : '';
    try {
      const page = await api(ch(`/subscribers?limit=100${cursor}`));
      for (const s of page.items) $('subscriber-rows').append(subscriberRow(s));
      state.subscribersCursor = page.next_cursor;
      $('subscribers-more').hidden = !page.next_cursor;
    } catch (e) { say('search-result', `Could not list subscribers: ${e.message}`, 'bad'); }
  }

  function subscriberRow(s) {
    const tr = document.createElement('tr');
    tr.dataset.address = s.address;
    tr.append(cell(s.address, 'mono'), cell(when(s.subscribed_at)));
    const td = document.createElement('td');
    td.append(button('Remove', () => removeSubscriber(s.address, tr), 'danger'));
    tr.append(td);
    return tr;
  }

  async function removeSubscriber(address, row) {
    if (!confirm(`Unsubscribe ${address}?`)) return;
    try {
      await api(ch(`/subscribers/${address}`), { method: 'DELETE' });
      row.remove();
      loadCount();
      say('add-status', `Removed ${address}.`, 'ok');
    } catch (e) { say('add-status', `Not removed: ${e.message}`, 'bad'); }
  }

  async function addSubscriber(event) {
    event.preventDefault();
    const address = $('add-address').value.trim();
    try {
      await api(ch(`/subscribers/${encodeURIComponent(address)}`), { method: 'PUT' });
      $('add-address').value = '';
      say('add-status', `Subscribed ${address.toLowerCase()}.`, 'ok');
      loadSubscribers(true);
    } catch (e) { say('add-status', `Not added: ${e.message}`, 'bad'); }
  }

  async function search(event) {
    event.preventDefault();
    const q = $('subscriber-search').value.trim().toLowerCase();
    if (/^0x[0-9a-f]{40}$/.test(q)) {
      try {
        const c = await api(ch(`/subscribers/${q}/consent`));
        const text = { active: 'is subscribed', unsubscribed: 'unsubscribed', never: 'was never subscribed' }[c.status] || c.status;
        say('search-result', `${q} ${text}.`, c.status === 'active' ? 'ok' : '');
      } catch (e) { say('search-result', `Search failed: ${e.message}`, 'bad'); }
      return;
    }
    // Part of an address: filter the rows loaded so far.
    let shown = 0;
    for (const tr of $('subscriber-rows').children) {
      const match = !q || tr.dataset.address.includes(q);
      tr.hidden = !match;
      if (match) shown += 1;
    }
    say('search-result', q ? `${shown} loaded subscriber(s) match "${q}"${state.subscribersCursor ? ' (load more to search further)' : ''}.` : '');
  }

  // CSV: the first column of every non-empty row; a first row that is not an address is a header.
  function parseCsv(text) {
    const rows = [];
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim()) return;
      let first = line.split(',')[0].trim();
      if (first.startsWith('"') && first.endsWith('"') && first.length >= 2) first = first.slice(1, -1).trim();
      if (i === 0 && !/^0x/i.test(first)) return;
      rows.push({ row: i + 1, value: first });
    });
    return rows;
  }

  async function importCsv() {
    const rows = state.csvRows;
    if (!rows || !rows.length) return;
    const BATCH = 250;
    const bar = $('import-progress');
    const errors = [];
    let added = 0;
    let already = 0;
    bar.hidden = false;
    bar.max = rows.length;
    bar.value = 0;
    $('csv-import').disabled = true;
    $('import-report').hidden = true;
    for (let start = 0; start < rows.length; start += BATCH) {
      const chunk = rows.slice(start, start + BATCH);
      const sendable = chunk.filter((r) => r.value);
      for (const r of chunk) if (!r.value) errors.push({ row: r.row, value: '', reason: 'empty first column' });
      try {
        const result = await api(ch('/subscribers/batch'), { method: 'POST', body: { addresses: sendable.map((r) => r.value) } });
        added += result.added;
        already += result.already;
        for (const bad of result.invalid) {
          for (const r of sendable.filter((x) => x.value === bad.address)) errors.push({ row: r.row, value: bad.address, reason: bad.reason });
        }
      } catch (e) {
        for (const r of sendable) errors.push({ row: r.row, value: r.value, reason: `batch refused: ${e.message}` });
      }
      bar.value = Math.min(rows.length, start + chunk.length);
      say('import-status', `Imported ${bar.value} of ${rows.length} rows…`);
    }
    errors.sort((a, b) => a.row - b.row);
    $('import-errors').replaceChildren(...errors.map((e) => {
      const tr = document.createElement('tr');
      tr.append(cell(e.row), cell(e.value, 'mono'), cell(e.reason));
      return tr;
    }));
    $('import-report').hidden = errors.length === 0;
    say('import-status', `Done: ${added} added, ${already} already subscribed, ${errors.length} row(s) not imported.`, errors.length ? 'warn' : 'ok');
    $('csv-import').disabled = false;
    loadSubscribers(true);
  }

  async function pickCsv() {
    const file = $('csv-file').files[0];
    state.csvRows = file ? parseCsv(await file.text()) : null;
    $('csv-import').disabled = !state.csvRows || !state.csvRows.length;
    say('import-status', state.csvRows ? `${state.csvRows.length} row(s) ready to import.` : '');
  }

  // ---- Compose and progress ----------------------------------------------------------------
  async function loadTopics() {
    try {
      const topics = await api(ch('/topics'));
      const select = $('compose-topic');
      select.replaceChildren(new Option('Everyone subscribed', ''), ...topics.items.map((t) => new Option(t.name, t.name)));
    } catch (e) { say('compose-status', `Could not list topics: ${e.message}`, 'bad'); }
  }

  function preview() {
    $('compose-preview').textContent = $('compose-text').value;
    state.idempotencyKey = null; // a changed text is a new announcement
  }

  async function send(event) {
    event.preventDefault();
    const body = { text: $('compose-text').value, priority: $('compose-priority').value };
    if ($('compose-topic').value) body.topic = $('compose-topic').value;
    // Kept until the send succeeds, so a retry after a network error cannot send twice.
    state.idempotencyKey = state.idempotencyKey || crypto.randomUUID();
    $('compose-send').disabled = true;
    say('compose-status', 'Sending…');
    try {
      const created = await api(ch('/announcements'), { method: 'POST', body, headers: { 'idempotency-key': state.idempotencyKey } });
      state.idempotencyKey = null;
      say('compose-status', `Accepted: ${created.counts.total} recipient(s).`, 'ok');
      follow(created);
      loadAnnouncements();
    } catch (e) {
      say('compose-status', `Not sent: ${e.message}`, 'bad');
    } finally {
      $('compose-send').disabled = false;
    }
  }

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  function renderProgress(p) {
    const c = p.counts;
    const done = c.total === 0 ? 1 : (c.total - c.pending) / c.total;
    $('progress-bar').max = 1;
    $('progress-bar').value = done;
    $('progress-percent').textContent = `${Math.floor(done * 100)}% — ${p.status}`;
    for (const k of ['delivered', 'skipped', 'failed', 'pending']) $(`count-${k}`).textContent = c[k];
    $('count-rate').textContent = p.rate_per_second != null ? p.rate_per_second : '–';
    $('count-eta').textContent = p.eta_seconds != null ? `${p.eta_seconds} s` : (p.eta_stale ? 'stalled' : '–');
  }

  // Reads the announcement's Server-Sent Events with fetch (EventSource cannot send the key).
  async function follow(announcement) {
    stopStream();
    state.announcement = announcement;
    $('progress').hidden = false;
    $('progress-id').textContent = announcement.id;
    renderProgress({ ...announcement, rate_per_second: null });
    loadDeliveries(true);
    const controller = new AbortController();
    state.stream = controller;
    try {
      const response = await api(`/v1/announcements/${announcement.id}/events`, { raw: true, headers: { accept: 'text/event-stream' } });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      controller.signal.addEventListener('abort', () => reader.cancel().catch(() => {}));
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (!data) continue;
          renderProgress(JSON.parse(data));
          if (name === 'completed') {
            loadDeliveries(true);
            loadAnnouncements();
          }
        }
      }
    } catch (e) {
      if (!controller.signal.aborted) say('compose-status', `Live progress stopped: ${e.message}`, 'warn');
    }
  }

  async function loadDeliveries(reset) {
    if (!state.announcement) return;
    if (reset) { state.deliveriesCursor = null; $('delivery-rows').replaceChildren(); }
    const status = $('delivery-filter').value;
    const q = new URLSearchParams({ limit: '100' });
    if (status) q.set('status', status);
    if (state.deliveriesCursor) q.set('cursor', state.deliveriesCursor);
    try {
      const page = await api(`/v1/announcements/${state.announcement.id}/deliveries?${q}`);
      for (const d of page.items) {
        const tr = document.createElement('tr');
        tr.append(cell(d.address, 'mono'), cell(d.status), cell(d.reason), cell(d.attempts));
        $('delivery-rows').append(tr);
      }
      state.deliveriesCursor = page.next_cursor;
      $('deliveries-more').hidden = !page.next_cursor;
    } catch (e) { say('compose-status', `Could not list deliveries: ${e.message}`, 'bad'); }
  }

  async function loadAnnouncements() {
    try {
      const page = await api(ch('/announcements?limit=50'));
      $('announcement-rows').replaceChildren(...page.items.map((a) => {
        const tr = document.createElement('tr');
        const c = a.counts;
        tr.append(cell(when(a.created_at)), cell(a.text.length > 80 ? `${a.text.slice(0, 80)}…` : a.text), cell(a.status),
          cell(`${c.delivered} / ${c.skipped} / ${c.failed} / ${c.pending}`));
        const td = document.createElement('td');
        td.append(button('Progress', () => { showTab('compose'); follow(a); }));
        tr.append(td);
        return tr;
      }));
    } catch (e) { /* shown by the other sections */ }
  }

  // ---- Triggers ----------------------------------------------------------------------------
  async function loadTriggers() {
    try {
      const page = await api(ch('/triggers?limit=100'));
      $('trigger-rows').replaceChildren(...page.items.map((t) => {
        const tr = document.createElement('tr');
        const event = typeof t.event === 'string' ? t.event : (t.event.name || JSON.stringify(t.event));
        tr.append(cell(t.id, 'mono'), cell(t.chain_id), cell(event), cell(t.paused ? 'paused' : 'active'), cell(t.scanned_to ?? '–'),
          cell(t.last_match_block != null ? `block ${t.last_match_block}` : 'none yet'));
        const td = document.createElement('td');
        td.append(button(t.paused ? 'Resume' : 'Pause', () => pauseTrigger(t, !t.paused)));
        tr.append(td);
        return tr;
      }));
    } catch (e) { say('trigger-status', `Could not list triggers: ${e.message}`, 'bad'); }
  }

  async function pauseTrigger(t, paused) {
    try {
      await api(ch(`/triggers/${t.id}`), { method: 'PATCH', body: { paused } });
      say('trigger-status', `${paused ? 'Paused' : 'Resumed'} ${t.id}.`, 'ok');
      loadTriggers();
    } catch (e) { say('trigger-status', `Not changed: ${e.message}`, 'bad'); }
  }

  const TRIGGER_FIELDS = ['chain_id', 'address', 'event', 'condition', 'template', 'confirmations'];

  async function createTrigger(event) {
    event.preventDefault();
    for (const f of TRIGGER_FIELDS) say(`error-${f}`, '');
    const body = {
      chain_id: Number($('trigger-chain_id').value),
      address: $('trigger-address').value.trim() || undefined,
      event: $('trigger-event').value.trim(),
      template: $('trigger-template').value,
    };
    const condition = $('trigger-condition').value.trim();
    if (condition) {
      try { body.condition = JSON.parse(condition); } catch (e) { say('error-condition', `Not JSON: ${e.message}`); return; }
    }
    if ($('trigger-confirmations').value) body.confirmations = Number($('trigger-confirmations').value);
    try {
      await api(ch('/triggers'), { method: 'POST', body });
      $('trigger-form').reset();
      say('trigger-form-status', 'Trigger created.', 'ok');
      loadTriggers();
    } catch (e) {
      const errors = (e.body && e.body.errors) || [];
      const elsewhere = [];
      for (const err of errors) {
        const name = err.field.startsWith('addresses') ? 'address' : err.field;
        const field = TRIGGER_FIELDS.find((f) => name === f || name.startsWith(`${f}.`) || name.startsWith(`${f}[`));
        if (field) say(`error-${field}`, `${$(`error-${field}`).textContent} ${err.detail}`.trim());
        else elsewhere.push(`${err.field}: ${err.detail}`);
      }
      const first = TRIGGER_FIELDS.find((f) => $(`error-${f}`).textContent);
      if (first) $(`trigger-${first}`).focus();
      say('trigger-form-status', errors.length ? `Not created: fix the fields marked above.${elsewhere.length ? ` ${elsewhere.join('; ')}` : ''}` : `Not created: ${e.message}`, 'bad');
    }
  }

  // ---- Consent -----------------------------------------------------------------------------
  async function loadConsent(reset) {
    if (reset) { state.consentCursor = null; $('consent-rows').replaceChildren(); }
    const cursor = state.consentCursor ? `&cursor=${encodeURIComponent(state.consentCursor)}` : '';
    try {
      const page = await api(ch(`/consent?limit=100${cursor}`));
      for (const c of page.items) {
        const tr = document.createElement('tr');
        tr.append(cell(when(c.created_at)), cell(c.address, 'mono'), cell(c.action), cell(c.topic), cell(c.source));
        $('consent-rows').append(tr);
      }
      state.consentCursor = page.next_cursor;
      $('consent-more').hidden = !page.next_cursor;
    } catch (e) { say('consent-export-status', `Could not read the log: ${e.message}`, 'bad'); }
  }

  async function exportConsent() {
    const parts = [];
    let cursor = null;
    say('consent-export-status', 'Exporting…');
    try {
      do {
        const q = new URLSearchParams({ format: 'ndjson', limit: '1000' });
        if (cursor) q.set('cursor', cursor);
        const response = await api(ch(`/consent?${q}`), { raw: true });
        parts.push(await response.text());
        cursor = response.headers.get('x-next-cursor');
      } while (cursor);
      const blob = new Blob(parts, { type: 'application/x-ndjson' });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `consent-${state.channel.id}.ndjson`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
      say('consent-export-status', 'Exported.', 'ok');
    } catch (e) { say('consent-export-status', `Export failed: ${e.message}`, 'bad'); }
  }

  // ---- Tabs and wiring ---------------------------------------------------------------------
  const TABS = ['settings', 'subscribers', 'compose', 'announcements', 'triggers', 'consent'];

  function showTab(name) {
    for (const t of TABS) {
      $(`tab-${t}`).setAttribute('aria-selected', String(t === name));
      $(`tab-${t}`).tabIndex = t === name ? 0 : -1;
      $(`panel-${t}`).hidden = t !== name;
    }
  }

  // Sections other tabs change are read again when shown.
  function refresh(name) {
    if (!state.channel) return;
    if (name === 'consent') loadConsent(true);
    if (name === 'announcements') loadAnnouncements();
    if (name === 'triggers') loadTriggers();
  }

  TABS.forEach((t, i) => {
    const tab = $(`tab-${t}`);
    tab.addEventListener('click', () => { showTab(t); refresh(t); });
    tab.addEventListener('keydown', (e) => {
      const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = TABS[(i + step + TABS.length) % TABS.length];
      showTab(next);
      refresh(next);
      $(`tab-${next}`).focus();
    });
  });
  showTab('settings');

  $('sign-in-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('api-key').value.trim()); });
  $('sign-out').addEventListener('click', () => signOut());
  $('channel-select').addEventListener('change', () => selectChannel($('channel-select').selectedOptions[0].channel));
  $('new-channel-form').addEventListener('submit', createChannel);
  $('settings-form').addEventListener('submit', saveSettings);
  $('search-form').addEventListener('submit', search);
  $('add-form').addEventListener('submit', addSubscriber);
  $('subscribers-more').addEventListener('click', () => loadSubscribers(false));
  $('csv-file').addEventListener('change', pickCsv);
  $('csv-import').addEventListener('click', importCsv);
  $('compose-text').addEventListener('input', preview);
  $('compose-form').addEventListener('submit', send);
  $('delivery-filter').addEventListener('change', () => loadDeliveries(true));
  $('deliveries-more').addEventListener('click', () => loadDeliveries(false));
  $('trigger-form').addEventListener('submit', createTrigger);
  $('consent-more').addEventListener('click', () => loadConsent(false));
  $('consent-export').addEventListener('click', exportConsent);

  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
})();
