// Broadcast baseline for `make bench`: the official @xmtp/node-sdk 6.0.0 sends one text to each
// recipient inbox, the way an app would (createDm + send), with a fixed number in flight.
//
// The SDK rate-limits its own gRPC client: 5,000 calls per 60 s per client (libxmtp
// xmtp_api_grpc; no option changes it). Counted at the node, createDm + sendText is 9 calls
// (2 GetIdentityUpdates, 2 FetchKeyPackages, 1 SendWelcomeMessages, 2 SendGroupMessages,
// 2 QueryGroupMessages) and a repeat sendText 3. A run that crosses a window measures the wait.
// So there are two modes, and the caller says which figure is which:
//   --mode capacity  what the SDK can do: recipients split over fresh clients, --per-client
//                    each (default 400: 400 x (9 + 3) = 4,800 calls, inside one window for
//                    both phases), all clients sending at once with --concurrency in flight;
//   --mode shipped   what one app built on the SDK gets: one client for every recipient, and
//                    --rounds repeat sends per DM, so both phases run past several windows.
//
// Usage: node sdk-bench.mjs --api http://127.0.0.1:PORT --inboxes FILE [--mode capacity]
//          [--concurrency 16] [--per-client 400] [--rounds 1] [--text "..."] [--repeat true]
// FILE holds one inbox id per line. Phase "first" creates each DM then sends (first contact);
// phase "repeat" (default on) sends `rounds` more times over the DMs just created. Prints one
// JSON line: {"mode", "clients", "concurrency", "first": {"sent", "failed", "seconds"},
// "repeat": {...}}. Progress goes to stderr. Client registration is not timed.
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
const mode = arg('--mode', 'capacity');
const perClient = Number(arg('--per-client', '400'));
const rounds = Number(arg('--rounds', '1'));
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

async function newClient() {
  const account = privateKeyToAccount(generatePrivateKey());
  return Client.create(signerFor(account), {
    apiUrl: api,
    env: 'local',
    dbPath: null,
    disableDeviceSync: true,
  });
}

// Splits `items` into `size`-long chunks.
function chunks(items, size) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// Interleaves the clients' work lists so every client is busy from the start.
function interleave(lists) {
  const out = [];
  for (let i = 0; lists.some((l) => i < l.length); i += 1) {
    for (const l of lists) if (i < l.length) out.push(l[i]);
  }
  return out;
}

async function main() {
  if (mode !== 'capacity' && mode !== 'shipped') throw new Error(`--mode must be capacity or shipped, not ${mode}`);
  const groups = mode === 'shipped' ? [inboxes] : chunks(inboxes, Math.max(1, perClient));
  const clients = [];
  for (const _ of groups) clients.push(await newClient());
  const work = interleave(groups.map((group, c) => group.map((inbox) => ({ client: clients[c], inbox }))));
  const dms = new Map();
  const first = await pool(work, async ({ client, inbox }) => {
    const dm = await client.conversations.createDm(inbox);
    dms.set(inbox, dm);
    await dm.sendText(text);
  });
  const result = { mode, clients: clients.length, concurrency, first };
  if (repeat) {
    const ready = work.filter(({ inbox }) => dms.has(inbox));
    const sends = Array.from({ length: Math.max(1, rounds) }, () => ready).flat();
    result.repeat = await pool(sends, ({ inbox }) => dms.get(inbox).sendText(`${text} (repeat)`));
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

main().catch((e) => {
  console.error(`sdk-bench failed: ${e?.stack ?? e}`);
  process.exit(1);
});
