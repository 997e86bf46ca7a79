// JSON-lines driver for the official @xmtp/node-sdk, used by herald's Rust interop tests.
//
// Reads one JSON request per stdin line: {"id": N, "cmd": "...", ...args}
// Writes one JSON reply per request on stdout: {"id": N, "ok": true, "result": ...}
// or {"id": N, "ok": false, "error": "..."}. Anything else goes to stderr.
//
// Clients are named ("bob1", "bob2", ...). Several names may share one wallet key: each
// Client.create with an in-memory database is a new installation of the same inbox.
//
// Commands:
//   create        {name, key, apiUrl, gatewayHost?} -> {inboxId, installationId, address}
//                 (with gatewayHost the client speaks d14n only: gateway + nodes from GetNodes)
//   sync          {name}                         -> conversations.sync()
//   syncAll       {name}                         -> conversations.syncAll(all consent states)
//   list          {name}                         -> [{id, kind, peerInboxId}]
//   messages      {name, conversationId}         -> [{id, senderInboxId, text, contentType}]
//   contents      {name, conversationId}         -> [{id, contentType, sdkContent, sdkFallback,
//                                                    official, rawFallback}]: the SDK's own
//                 decoding, and the raw EncodedContent decoded by the official codec packages
//                 (@xmtp/content-type-markdown, -transaction-reference, -reply with
//                 -text for the reply's inner content; null for other types);
//                 rawFallback is what a client without the codec shows
//   streamStart   {name}                         -> starts conversation + message streams
//   streamed      {name}                         -> {conversations: [...], messages: [...]}
//   reply         {name, conversationId, text}   -> message id
//   newDm         {name, peerInboxId}            -> {id} (SDK creates the DM)
//   revoke        {name, installationIds: [hex]} -> revokes those installations of the inbox
//   inboxState    {name, inboxId}                -> {installations: [hex]} fetched from the network
//   exit          {}                             -> exits the process
import { Client, ConsentState, IdentifierKind } from '@xmtp/node-sdk';
import { privateKeyToAccount } from 'viem/accounts';
import { hexToBytes } from 'viem';
import readline from 'node:readline';

const clients = new Map();
const streams = new Map();
const ALL_CONSENT = [ConsentState.Allowed, ConsentState.Unknown, ConsentState.Denied];

const json = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
const reply = (obj) => process.stdout.write(json(obj) + '\n');
const need = (name) => {
  const c = clients.get(name);
  if (!c) throw new Error(`no client named ${name}`);
  return c;
};

function signerFor(key) {
  const account = privateKeyToAccount(key);
  return {
    type: 'EOA',
    getIdentifier: () => ({ identifier: account.address.toLowerCase(), identifierKind: IdentifierKind.Ethereum }),
    signMessage: async (message) => hexToBytes(await account.signMessage({ message })),
  };
}

function describeMessage(m) {
  return {
    id: m.id,
    senderInboxId: m.senderInboxId,
    text: typeof m.content === 'string' ? m.content : null,
    contentType: m.contentType ? `${m.contentType.authorityId}/${m.contentType.typeId}` : null,
    conversationId: m.conversationId,
  };
}

async function findConversation(client, id) {
  const conv = await client.conversations.getConversationById(id);
  if (!conv) throw new Error(`conversation ${id} not found`);
  return conv;
}

// The raw EncodedContent of messages: the SDK wraps the native conversation in a private
// field, so the native method the SDK calls is wrapped once to see which object it runs on.
let lastNativeConversation = null;
async function rawMessages(conv) {
  const { Conversation: Native } = await import('@xmtp/node-bindings');
  if (!Native.prototype.__heraldWrapped) {
    const original = Native.prototype.listEnrichedMessages;
    Native.prototype.listEnrichedMessages = function (...args) {
      lastNativeConversation = this;
      return original.apply(this, args);
    };
    Native.prototype.__heraldWrapped = true;
  }
  lastNativeConversation = null;
  const decoded = await conv.messages();
  if (!lastNativeConversation) throw new Error('native conversation not seen');
  const raw = await lastNativeConversation.listMessages();
  return { decoded, raw: new Map(raw.map((m) => [m.id, m])) };
}

async function officialCodecs() {
  const { MarkdownCodec } = await import('@xmtp/content-type-markdown');
  const { TransactionReferenceCodec } = await import('@xmtp/content-type-transaction-reference');
  const { ReplyCodec } = await import('@xmtp/content-type-reply');
  const { TextCodec } = await import('@xmtp/content-type-text');
  return {
    'xmtp.org/markdown': new MarkdownCodec(),
    'xmtp.org/transactionReference': new TransactionReferenceCodec(),
    'xmtp.org/reply': new ReplyCodec(),
    'xmtp.org/text': new TextCodec(),
  };
}

// The registry a reply codec decodes its inner content with (the official codecs by type).
function registryOf(codecs) {
  return { codecFor: (type) => codecs[`${type.authorityId}/${type.typeId}`] };
}

const handlers = {
  async create({ name, key, apiUrl, gatewayHost }) {
    const network = gatewayHost ? { apiUrl, gatewayHost } : { apiUrl };
    const client = await Client.create(signerFor(key), { ...network, dbPath: null, disableDeviceSync: true });
    clients.set(name, client);
    return { inboxId: client.inboxId, installationId: client.installationId, address: privateKeyToAccount(key).address.toLowerCase() };
  },
  async sync({ name }) {
    await need(name).conversations.sync();
    return null;
  },
  async syncAll({ name }) {
    return await need(name).conversations.syncAll(ALL_CONSENT);
  },
  async list({ name }) {
    const convs = await need(name).conversations.list({ consentStates: ALL_CONSENT });
    return convs.map((c) => ({ id: c.id, kind: c.peerInboxId === undefined ? 'group' : 'dm', peerInboxId: c.peerInboxId ?? null }));
  },
  async messages({ name, conversationId }) {
    const conv = await findConversation(need(name), conversationId);
    await conv.sync();
    return (await conv.messages()).map(describeMessage);
  },
  async contents({ name, conversationId }) {
    const conv = await findConversation(need(name), conversationId);
    await conv.sync();
    const codecs = await officialCodecs();
    const { decoded, raw } = await rawMessages(conv);
    return decoded
      .filter((m) => m.contentType?.typeId !== 'group_updated')
      .map((m) => {
        const encoded = raw.get(m.id)?.content;
        const type = encoded?.type ? `${encoded.type.authorityId}/${encoded.type.typeId}` : null;
        const codec = type ? codecs[type] : undefined;
        return {
          id: m.id,
          contentType: m.contentType ? `${m.contentType.authorityId}/${m.contentType.typeId}` : null,
          sdkContent: m.content ?? null,
          sdkFallback: m.fallback ?? null,
          official: codec && encoded && type !== 'xmtp.org/text' ? codec.decode(encoded, registryOf(codecs)) : null,
          rawType: type,
          rawFallback: encoded?.fallback ?? null,
        };
      });
  },
  async streamStart({ name }) {
    const client = need(name);
    const state = { conversations: [], messages: [], errors: [] };
    streams.set(name, state);
    await client.conversations.stream({
      onValue: (c) => c && state.conversations.push({ id: c.id, peerInboxId: c.peerInboxId ?? null }),
      onError: (e) => state.errors.push(String(e?.message ?? e)),
    });
    await client.conversations.streamAllMessages({
      consentStates: ALL_CONSENT,
      onValue: (m) => state.messages.push(describeMessage(m)),
      onError: (e) => state.errors.push(String(e?.message ?? e)),
    });
    return null;
  },
  async streamed({ name }) {
    const state = streams.get(name);
    if (!state) throw new Error(`no stream for ${name}`);
    return state;
  },
  async reply({ name, conversationId, text }) {
    const conv = await findConversation(need(name), conversationId);
    return await conv.sendText(text);
  },
  async newDm({ name, peerInboxId }) {
    const dm = await need(name).conversations.createDm(peerInboxId);
    return { id: dm.id };
  },
  async revoke({ name, installationIds }) {
    const ids = installationIds.map((h) => hexToBytes(h.startsWith('0x') ? h : `0x${h}`));
    await need(name).revokeInstallations(ids);
    return null;
  },
  async inboxState({ name, inboxId }) {
    const [state] = await need(name).preferences.fetchInboxStates([inboxId]);
    return { installations: state.installations.map((i) => Buffer.from(i.bytes).toString('hex')) };
  },
  async exit() {
    setTimeout(() => process.exit(0), 10);
    return null;
  },
};

async function handle(line) {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    reply({ id: null, ok: false, error: `bad json: ${e.message}` });
    return;
  }
  const handler = handlers[req.cmd];
  if (!handler) {
    reply({ id: req.id, ok: false, error: `unknown cmd ${req.cmd}` });
    return;
  }
  try {
    reply({ id: req.id, ok: true, result: (await handler(req)) ?? null });
  } catch (e) {
    reply({ id: req.id, ok: false, error: String(e?.stack ?? e) });
  }
}

// Requests run one at a time, in arrival order.
let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  queue = queue.then(() => handle(line));
});
rl.on('close', () => {
  queue.then(() => process.exit(0));
});
reply({ id: 0, ok: true, result: 'ready' });
