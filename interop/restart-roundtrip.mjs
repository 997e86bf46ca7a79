// Checks that a node restarted on its data directory still serves what it stored, using the
// official SDK (@xmtp/node-sdk 6.0.0) with clients kept on disk between two phases.
//   phase 1: alice and bob register; alice opens a DM with bob and sends "before restart";
//            bob never syncs, so his copy can only come from the node later.
//   (the caller restarts the node on the same data directory)
//   phase 2: both clients reopen from their databases; bob must receive the DM (welcome) and
//            "before restart" from the node, reply "after restart", and alice must read it.
// Usage: node restart-roundtrip.mjs --api URL --phase 1|2 --dir STATE_DIR [--timeout-ms 60000]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, IdentifierKind } from '@xmtp/node-sdk';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { hexToBytes } from 'viem';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const api = arg('--api', 'http://127.0.0.1:5556');
const phase = arg('--phase', '1');
const dir = arg('--dir', null);
const budgetMs = Number(arg('--timeout-ms', '60000'));
const started = Date.now();
const say = (msg) => console.log(`[restart-roundtrip ${phase} +${Date.now() - started}ms] ${msg}`);

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

const identity = (account) => ({ identifier: account.address.toLowerCase(), identifierKind: IdentifierKind.Ethereum });
const texts = (messages) => messages.filter((m) => typeof m.content === 'string').map((m) => m.content);

// Wallet keys and the local database key live in the state dir so phase 2 reopens the same clients.
function loadState() {
  const file = join(dir, 'keys.json');
  if (phase === '1') {
    mkdirSync(dir, { recursive: true });
    const state = { alice: generatePrivateKey(), bob: generatePrivateKey(), db: generatePrivateKey() };
    writeFileSync(file, JSON.stringify(state));
    return state;
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

async function open(name, key, dbKey) {
  const account = privateKeyToAccount(key);
  const signer = {
    type: 'EOA',
    getIdentifier: () => identity(account),
    signMessage: async (message) => hexToBytes(await account.signMessage({ message })),
  };
  const options = {
    apiUrl: api,
    env: 'local',
    dbPath: join(dir, `${name}.db3`),
    dbEncryptionKey: hexToBytes(dbKey),
    disableDeviceSync: true,
  };
  const client = await within(Client.create(signer, options), `${name}: Client.create`);
  say(`${name} open, inbox ${client.inboxId}`);
  return { account, client };
}

async function phaseOne(state) {
  const alice = await open('alice', state.alice, state.db);
  const bob = await open('bob', state.bob, state.db);
  const dm = await within(alice.client.conversations.createDmWithIdentifier(identity(bob.account)), 'createDm');
  await within(dm.sendText('before restart'), 'alice sendText');
  writeFileSync(join(dir, 'dm.txt'), dm.id);
  say(`dm ${dm.id} created, "before restart" sent`);
}

async function phaseTwo(state) {
  const dmId = readFileSync(join(dir, 'dm.txt'), 'utf8');
  const alice = await open('alice', state.alice, state.db);
  const bob = await open('bob', state.bob, state.db);
  await within(bob.client.conversations.sync(), 'bob conversations.sync');
  const conversations = await bob.client.conversations.list();
  expect(conversations.some((c) => c.id === dmId), 'bob receives the DM created before the restart');
  const bobDm = conversations.find((c) => c.id === dmId);
  await within(bobDm.sync(), 'bob dm.sync');
  expect(texts(await bobDm.messages()).includes('before restart'), 'bob reads "before restart" from the restarted node');
  await within(bobDm.sendText('after restart'), 'bob reply');
  const aliceDm = await alice.client.conversations.getConversationById(dmId);
  await within(aliceDm.sync(), 'alice dm.sync');
  expect(texts(await aliceDm.messages()).includes('after restart'), 'alice reads "after restart"');
}

if (!dir) {
  console.error('--dir is required');
  process.exit(2);
}
const state = loadState();
(phase === '1' ? phaseOne(state) : phaseTwo(state)).then(
  () => { say('PASS'); process.exit(0); },
  (e) => { say(`FAIL ${e?.stack ?? e}`); process.exit(1); },
);
