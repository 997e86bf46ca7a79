// Broadcast baseline for `make bench`: the official @xmtp/node-sdk 6.0.0 sends one text to each
// recipient inbox, the way an app would (createDm + send), with a fixed number in flight.
//
// Usage: node sdk-bench.mjs --api http://127.0.0.1:PORT --inboxes FILE [--concurrency 16]
//                           [--text "..."] [--repeat true]
// FILE holds one inbox id per line. Phase "first" creates each DM then sends (first contact);
// phase "repeat" (default on) sends once more over the DMs just created. Prints one JSON line:
// {"first": {"sent", "failed", "seconds"}, "repeat": {...}}. Progress goes to stderr.
import { readFileSync } from 'node:fs';
import { Client, IdentifierKind } from '@xmtp/node-sdk';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { hexToBytes } from 'viem';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const api = arg('--api', 'http://127.0.0.1:5556');
const concurrency = Number(arg('--concurrency', '16'));
const text = arg('--text', 'herald bench: SDK baseline');
const repeat = arg('--repeat', 'true') === 'true';
const inboxes = readFileSync(arg('--inboxes', '/dev/stdin'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);

function signerFor(account) {
  return {
    type: 'EOA',
    getIdentifier: () => ({ identifier: account.address.toLowerCase(), identifierKind: IdentifierKind.Ethereum }),
    signMessage: async (message) => hexToBytes(await account.signMessage({ message })),
  };
}

// Runs `task` over `items` with at most `concurrency` in flight; counts outcomes.
async function pool(items, task) {
  let next = 0;
  let sent = 0;
  let failed = 0;
  let firstError = null;
  const started = performance.now();
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await task(item);
        sent += 1;
      } catch (e) {
        failed += 1;
        firstError ??= String(e?.message ?? e);
      }
      if ((sent + failed) % 500 === 0) console.error(`sdk-bench: ${sent + failed}/${items.length}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { sent, failed, seconds: (performance.now() - started) / 1000, firstError };
}

async function main() {
  const account = privateKeyToAccount(generatePrivateKey());
  const client = await Client.create(signerFor(account), {
    apiUrl: api,
    env: 'local',
    dbPath: null,
    disableDeviceSync: true,
  });
  const dms = new Map();
  const first = await pool(inboxes, async (inbox) => {
    const dm = await client.conversations.createDm(inbox);
    dms.set(inbox, dm);
    await dm.sendText(text);
  });
  const result = { first };
  if (repeat) {
    const ready = inboxes.filter((i) => dms.has(i));
    result.repeat = await pool(ready, (inbox) => dms.get(inbox).sendText(`${text} (repeat)`));
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

main().catch((e) => {
  console.error(`sdk-bench failed: ${e?.stack ?? e}`);
  process.exit(1);
});
