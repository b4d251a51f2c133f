// Capabilities decided by the Cedar policies, as the SDK sees and uses them: a guest member
// of a messaging channel may read and send but leaves no typing or read signals; a regular
// member of the same channel has them; `phi` channels never reach guests, members or not.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { barrier, collect, setup, uid, waitFor } from './harness.js';

/** Records the REST requests a client sends (method and path). */
function recordRequests(client) {
  const seen = [];
  const id = client.axiosInstance.interceptors.request.use((config) => {
    seen.push(`${config.method.toUpperCase()} ${new URL(config.url, client.baseURL).pathname}`);
    return config;
  });
  return {
    seen,
    stop() {
      client.axiosInstance.interceptors.request.eject(id);
      return seen;
    },
  };
}

/** Asserts `promise` rejects with a Stream API error `code` and HTTP status `status`. */
async function rejectsWith(promise, code, status, what) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `${what}: code ${code} expected, got ${err.message}`);
    assert.equal(err.response?.status, status, `${what}: HTTP ${status} expected`);
    return true;
  });
}

describe('guest and regular members of one messaging channel', () => {
  let env, alice, bob, gina, aCh, bCh, gCh;

  before(async () => {
    env = await setup(['alice', 'bob', 'gina'], { userFields: { gina: { role: 'guest' } } });
    ({ alice, bob, gina } = env.users);
    const id = uid('caps');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id, gina.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
    gCh = gina.client.channel('messaging', id);
    await gCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test("the guest's own_capabilities: send-message, but no typing or read events", () => {
    assert.equal(gina.me.role, 'guest');
    const caps = gCh.data.own_capabilities;
    assert.ok(Array.isArray(caps), 'own_capabilities is a list');
    assert.ok(caps.includes('send-message'), `send-message in ${caps}`);
    for (const c of ['typing-events', 'send-typing-events', 'read-events']) {
      assert.ok(!caps.includes(c), `${c} must not be in the guest's capabilities: ${caps}`);
    }
    // The channel type has them on: it is the role that takes them away.
    assert.equal(gCh.getConfig()?.typing_events, true);
    assert.equal(gCh.getConfig()?.read_events, true);
  });

  test("a regular member's own_capabilities include typing and read events", () => {
    for (const ch of [aCh, bCh]) {
      const caps = ch.data.own_capabilities;
      for (const c of ['send-message', 'typing-events', 'send-typing-events', 'read-events']) {
        assert.ok(caps.includes(c), `${c} in ${ch.getClient().userID}'s capabilities: ${caps}`);
      }
    }
  });

  test('the guest may send: the others get message.new', async () => {
    const got = waitFor(aCh, 'message.new', (e) => e.message?.text === 'hello from a guest');
    await gCh.sendMessage({ text: 'hello from a guest' });
    assert.equal((await got).user.id, gina.id);
  });

  test("the guest's keystroke() is refused by the server and no typing.start reaches anyone", async () => {
    // stream-chat 9.53.0 gates keystroke() on config.typing_events, a healthy socket and
    // user.privacy_settings only — not on own_capabilities — so the request is sent; the
    // server refuses it (403, code 17) and publishes nothing.
    const typing = collect(aCh, 'typing.start', (e) => e.user?.id === gina.id);
    const requests = recordRequests(gina.client);
    try {
      await rejectsWith(gCh.keystroke(), 17, 403, 'keystroke as a guest');
    } finally {
      requests.stop();
    }
    assert.deepEqual(requests.seen, [`POST /channels/messaging/${gCh.id}/event`]);
    await barrier(alice.client); // everything queued for alice so far has been delivered
    assert.deepEqual(typing.stop(), [], 'alice saw no typing.start from the guest');
    assert.equal(aCh.state.typing[gina.id], undefined);
  });

  test("the guest's markRead() resolves to null without a request; the server refuses a direct one", async () => {
    const got = waitFor(gCh, 'message.new', (e) => e.message?.text === 'unread for the guest');
    await aCh.sendMessage({ text: 'unread for the guest' });
    await got;

    const reads = collect(aCh, 'message.read', (e) => e.user?.id === gina.id);
    const requests = recordRequests(gina.client);
    let res;
    try {
      res = await gCh.markRead();
    } finally {
      requests.stop();
    }
    assert.equal(res, null, 'the SDK gates markRead on the read-events capability');
    assert.deepEqual(requests.seen, [], 'markRead sent no request');

    // Past the SDK's gate, the server says no as well.
    await rejectsWith(gina.client.post(`${gina.client.baseURL}/channels/messaging/${gCh.id}/read`, {}), 17, 403, 'POST /read as a guest');
    await barrier(alice.client);
    assert.deepEqual(reads.stop(), [], 'no message.read from the guest');
  });

  test("a regular member's keystroke() reaches the others and markRead() is sent", async () => {
    const start = waitFor(aCh, 'typing.start', (e) => e.user?.id === bob.id);
    await bCh.keystroke();
    assert.equal((await start).cid, aCh.cid);
    assert.ok(aCh.state.typing[bob.id], "bob is in alice's typing state");
    const stop = waitFor(aCh, 'typing.stop', (e) => e.user?.id === bob.id);
    await bCh.stopTyping();
    await stop;

    const read = waitFor(aCh, 'message.read', (e) => e.user?.id === bob.id);
    const res = await bCh.markRead();
    assert.ok(res, 'markRead sent a request for a regular member');
    assert.equal(res.event.type, 'message.read');
    await read;
  });
});

describe('phi channels and guests', () => {
  let env, alice, gina;

  before(async () => {
    env = await setup(['alice', 'gina'], { userFields: { gina: { role: 'guest' } } });
    ({ alice, gina } = env.users);
  });
  after(async () => {
    await env?.close();
  });

  test('a phi channel refuses a guest as a member and as a watcher (code 17)', async () => {
    await rejectsWith(
      alice.client.channel('phi', uid('phi'), { members: [alice.id, gina.id] }).watch(),
      17, 403, 'creating a phi channel with a guest member',
    );
    const id = uid('phi');
    const aCh = alice.client.channel('phi', id, { members: [alice.id] });
    await aCh.watch();
    await rejectsWith(aCh.addMembers([gina.id]), 17, 403, 'adding a guest to a phi channel');
    assert.ok(!aCh.state.members[gina.id], 'the guest is not a member of the phi channel');

    const gCh = gina.client.channel('phi', id);
    await rejectsWith(gCh.watch(), 17, 403, 'watch of a phi channel as a guest');

    // A regular member still reads it (the refusal is about the role, not the channel).
    const got = waitFor(aCh, 'message.new', (e) => e.message?.text === 'clinical note');
    await aCh.sendMessage({ text: 'clinical note' });
    await got;
  });
});
