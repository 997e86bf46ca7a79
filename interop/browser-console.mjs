// The console half of browser-pages.mjs (see there): signs in with a wrong key, then the right
// one, creates a channel, imports a CSV, sends an announcement and follows it to 100%.
export async function run({ open, waitText, textOf, env, log, base, report, WAIT }) {
  const { browser, page, seen } = await open();
  try {
    await page.setViewport({ width: 1100, height: 1300 });
    await page.goto(`${base}/console`, { waitUntil: 'networkidle0' });

    log('wrong key');
    seen.allow = 'status of 401'; // Chromium logs the refused request itself
    await page.type('#api-key', 'hk_thisisnotarealkey000000000000000000000000');
    await page.click('#sign-in-form button[type=submit]');
    await waitText(page, '#sign-in-error', 'was not accepted');
    const wrongKeyError = await textOf(page, '#sign-in-error');
    seen.allow = null;
    const keyInUrl = page.url().includes('hk_');

    log('sign in');
    await page.$eval('#api-key', (e) => { e.value = ''; });
    await page.type('#api-key', env('API_KEY'));
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#app:not([hidden])', WAIT);
    const stored = await page.evaluate(() => sessionStorage.getItem('herald.apiKey'));
    const local = await page.evaluate(() => localStorage.length);

    log('create channel');
    await page.type('#new-channel-name', env('CHANNEL_NAME'));
    await page.type('#new-channel-description', 'Made in the console');
    await page.click('#new-channel-form button[type=submit]');
    await waitText(page, '#new-channel-status', 'Created');
    const channelId = await page.$eval('#channel-select', (s) => s.value);

    log('import CSV');
    await page.click('#tab-subscribers');
    const input = await page.$('#csv-file');
    await input.uploadFile(env('CSV_FILE'));
    await page.waitForSelector('#csv-import:not([disabled])', WAIT);
    await page.click('#csv-import');
    await waitText(page, '#import-status', 'Done:');
    const importStatus = await textOf(page, '#import-status');
    const importBar = await page.$eval('#import-progress', (p) => [p.value, p.max]);
    const importErrors = await page.$$eval('#import-errors tr', (rows) => rows.map((r) => Array.from(r.cells, (c) => c.textContent)));
    await waitText(page, '#subscriber-count', 'active');
    const countText = await textOf(page, '#subscriber-count');
    await page.screenshot({ path: env('SCREENSHOT').replace(/\.png$/, '-import.png') });

    log('compose and send');
    await page.click('#tab-compose');
    const text = env('TEXT');
    await page.type('#compose-text', text);
    const preview = await textOf(page, '#compose-preview');
    await page.click('#compose-send');
    await waitText(page, '#progress-percent', '100%');
    await waitText(page, '#progress-percent', 'completed');
    const progress = await page.$eval('#progress-bar', (p) => [p.value, p.max]);
    const counts = {};
    for (const k of ['delivered', 'skipped', 'failed', 'pending']) counts[k] = Number(await textOf(page, `#count-${k}`));
    const announcementId = (await textOf(page, '#progress-id')).trim();
    await page.select('#delivery-filter', 'skipped');
    await page.waitForFunction(() => document.querySelectorAll('#delivery-rows tr').length > 0, WAIT);
    const skippedRows = await page.$$eval('#delivery-rows tr', (rows) => rows.map((r) => r.cells[1].textContent));
    await page.screenshot({ path: env('SCREENSHOT') });

    log('trigger with errors');
    await page.click('#tab-triggers');
    await page.type('#trigger-chain_id', '999999');
    await page.type('#trigger-address', '0x12');
    await page.type('#trigger-event', 'Transfer(');
    await page.type('#trigger-template', 'moved {{ args.value }}');
    seen.allow = 'status of 422';
    await page.click('#trigger-form button[type=submit]');
    await waitText(page, '#trigger-form-status', 'Not created');
    seen.allow = null;
    const triggerErrors = {};
    for (const f of ['chain_id', 'address', 'event', 'template']) triggerErrors[f] = await textOf(page, `#error-${f}`);
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);

    log('consent export');
    await page.click('#tab-consent');
    await page.waitForFunction(() => document.querySelectorAll('#consent-rows tr').length > 0, WAIT);
    const consentRows = await page.$$eval('#consent-rows tr', (rows) => rows.length);
    await page.click('#consent-export');
    await waitText(page, '#consent-export-status', 'Exported');

    // Phone width: nothing wider than the screen outside the scrollable tables.
    await page.setViewport({ width: 375, height: 800 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

    return {
      ok: true, wrongKeyError, keyInUrl, storedKey: stored, localStorageItems: local, channelId,
      importStatus, importBar, importErrors, countText, preview, progress, counts, announcementId,
      skippedRows: [...new Set(skippedRows)], phoneOverflow: overflow, triggerErrors, focused, consentRows, ...report(seen),
    };
  } finally {
    await browser.close();
  }
}
