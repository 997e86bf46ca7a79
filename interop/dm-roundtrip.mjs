// Conformance check of an XMTP v3 node with the official SDK (@xmtp/node-sdk 6.0.0):
// two fresh clients register, alice checks canMessage(bob), opens a DM and sends; bob must
// get the message both by sync and on a live stream; bob replies and alice must read it;
// alice's syncAll works, and a second installation of bob joins bob's inbox.
// Usage: node dm-roundtrip.mjs --api http://127.0.0.1:PORT [--timeout-ms 60000]
//        node dm-roundtrip.mjs --gateway http://127.0.0.1:PORT [--api URL] [--mixed]
// With --gateway every client is a d14n client (`gatewayHost`: writes through the gateway's
// PayerApi, reads from the nodes its GetNodes lists); --api then names a v3 URL the d14n
// clients must NOT need (give a closed port to prove it). With --mixed as well, alice is a
// v3 client at --api and bob a d14n client at --gateway: both APIs must share one store.
// Exit status 0 only if every step passed within the time budget.
import { Client, IdentifierKind } from '@xmtp/node-sdk';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { hexToBytes } from 'viem';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const api = arg('--api', 'http://127.0.0.1:5556');
const gateway = arg('--gateway', null);
const mixed = process.argv.includes('--mixed');

// SDK options for one client: v3 (apiUrl) or d14n (gatewayHost; apiUrl is then unused).
function optionsFor(name) {
  const base = { env: 'local', dbPath: null, disableDeviceSync: true };
  if (gateway && !(mixed && name === 'alice')) return { ...base, apiUrl: api, gatewayHost: gateway };
  return { ...base, apiUrl: api };
}
const apiOf = (name) => (optionsFor(name).gatewayHost ? `d14n gateway ${gateway}` : `v3 ${api}`);
const budgetMs = Number(arg('--timeout-ms', '60000'));
const started = Date.now();
const say = (msg) => console.log(`[dm-roundtrip +${Date.now() - started}ms] ${msg}`);

// Every step must finish before the overall deadline.
function within(promise, step) {
  const left = Math.max(0, budgetMs - (Date.now() - started));
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${step}: no result within the ${budgetMs} ms budget`)), left);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function expect(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  say(`ok   ${what}`);
}

function identity(account) {
  return { identifier: account.address.toLowerCase(), identifierKind: IdentifierKind.Ethereum };
}

function signerFor(account) {
  return {
    type: 'EOA',
    getIdentifier: () => identity(account),
    signMessage: async (message) => hexToBytes(await account.signMessage({ message })),
  };
}

async function newClient(name) {
  const account = privateKeyToAccount(generatePrivateKey());
  const client = await within(
    Client.create(signerFor(account), optionsFor(name)),
    `${name}: Client.create`,
  );
  say(`${name} registered through ${apiOf(name)}, inbox ${client.inboxId}`);
  return { account, client };
}

const texts = (messages) => messages.filter((m) => typeof m.content === 'string').map((m) => m.content);

async function main() {
  say(gateway ? `gateway ${gateway}${mixed ? `, v3 ${api} (alice)` : ''}` : `node ${api}`);
  const alice = await newClient('alice');
  const bob = await newClient('bob');

  const reachable = await within(alice.client.canMessage([identity(bob.account)]), 'canMessage');
  expect([...reachable.values()][0] === true, 'alice.canMessage(bob) is true');

  // Bob listens before the DM exists, as an app would.
  let streamedResolve;
  const streamed = new Promise((resolve) => { streamedResolve = resolve; });
  const stream = await within(
    bob.client.conversations.streamAllMessages({
      onValue: (m) => { if (m.content === 'hello bob') streamedResolve(m); },
      onError: (e) => say(`bob stream error: ${e?.message ?? e}`),
    }),
    'bob streamAllMessages',
  );

  const dm = await within(alice.client.conversations.createDmWithIdentifier(identity(bob.account)), 'createDm');
  say(`dm ${dm.id}`);
  await within(dm.sendText('hello bob'), 'alice sendText');

  await within(bob.client.conversations.sync(), 'bob conversations.sync');
  const conversations = await bob.client.conversations.list();
  expect(conversations.length === 1 && conversations[0].id === dm.id, 'bob sees the DM after sync');
  const bobDm = conversations[0];
  await within(bobDm.sync(), 'bob dm.sync');
  expect(texts(await bobDm.messages()).includes('hello bob'), 'bob reads "hello bob" by sync');

  const live = await within(streamed, 'bob live stream');
  expect(live.content === 'hello bob', 'bob receives "hello bob" on the live stream');

  await within(bobDm.sendText('hello alice'), 'bob reply');
  await within(dm.sync(), 'alice dm.sync');
  expect(texts(await dm.messages()).includes('hello alice'), 'alice reads the reply "hello alice"');

  // syncAll goes through GetNewestGroupMessage; it must succeed.
  await within(alice.client.conversations.syncAll(), 'alice syncAll');
  say('ok   alice conversations.syncAll()');

  // A second installation of bob (same wallet) is an AddAssociation-only identity update,
  // which the node validates against bob's existing inbox.
  const bob2 = await within(
    Client.create(signerFor(bob.account), optionsFor('bob')),
    'bob second installation',
  );
  expect(bob2.inboxId === bob.client.inboxId, 'bob\'s second installation joins the same inbox');
  const state = await within(bob2.preferences.fetchInboxState(), 'fetchInboxState');
  expect(state.installations.length === 2, `bob's inbox lists 2 installations (${state.installations.length})`);

  await stream.end?.();
}

main().then(
  () => { say('PASS'); process.exit(0); },
  (e) => { say(`FAIL ${e?.stack ?? e}`); process.exit(1); },
);
