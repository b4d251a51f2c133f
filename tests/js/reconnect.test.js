// Dropped connections: the SDK reconnects with a new connection id, recovers its watches
// through POST /channels, and picks up what it missed. Also the close code on shutdown.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, uid, waitFor } from './harness.js';

/** Waits for the SDK to reconnect and finish recoverState. */
const recovered = (client, timeoutMs = 15_000) => waitFor(client, 'connection.recovered', () => true, timeoutMs);

describe('reconnect and recovery', () => {
  let env, alice, bob, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('recover');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('an abrupt drop (socket terminated) is recovered and watches are restored', async () => {
    const before = bob.client._getConnectionID();
    const back = recovered(bob.client);
    const online = waitFor(bob.client, 'connection.changed', (e) => e.online === true, 15_000);
    bob.client.wsConnection.ws.terminate(); // like a lost network: close code 1006
    await back;
    await online;
    const after = bob.client._getConnectionID();
    assert.ok(after, 'a connection id after the reconnect');
    assert.notEqual(after, before, 'the reconnect got a new connection_id');
    assert.ok(bob.client.wsConnection.isHealthy);

    const got = waitFor(bCh, 'message.new', (e) => e.message?.text === 'after the drop');
    await aCh.sendMessage({ text: 'after the drop' });
    const ev = await got;
    assert.equal(ev.user.id, alice.id);
    assert.ok(bCh.state.messages.some((m) => m.text === 'after the drop'));
  });

  test('a close with a non-1000 code (4000) is treated as a drop and recovered', async () => {
    const before = bob.client._getConnectionID();
    const back = recovered(bob.client);
    bob.client.wsConnection.ws.close(4000, 'test: simulated drop');
    await back;
    assert.notEqual(bob.client._getConnectionID(), before);

    const got = waitFor(bCh, 'message.new', (e) => e.message?.text === 'after the 4000 close');
    await aCh.sendMessage({ text: 'after the 4000 close' });
    await got;
  });

  test('messages sent while disconnected arrive through recoverState', async () => {
    // Hold recovery at the point where the new socket is open but nothing is watched yet,
    // and send from alice then: bob can only learn of this message through recoverState.
    const original = bob.client.recoverState;
    let missedId;
    bob.client.recoverState = async () => {
      bob.client.recoverState = original;
      missedId = (await aCh.sendMessage({ text: 'sent while bob was away' })).message.id;
      return original();
    };
    const back = recovered(bob.client);
    bob.client.wsConnection.ws.terminate();
    await back;
    assert.ok(missedId, 'the message was sent during the reconnect');
    const missed = bCh.state.messages.find((m) => m.id === missedId);
    assert.ok(missed, 'recoverState put the missed message into channel state');
    assert.equal(missed.text, 'sent while bob was away');
    assert.ok(bCh.countUnread() >= 1, 'and it counts as unread');

    // And live delivery works again afterwards.
    const got = waitFor(bCh, 'message.new', (e) => e.message?.text === 'live again');
    await aCh.sendMessage({ text: 'live again' });
    await got;
  });

  test('the other user sees the watcher come back', async () => {
    const stopped = waitFor(aCh, 'user.watching.stop', (e) => e.user?.id === bob.id, 15_000);
    const watching = waitFor(aCh, 'user.watching.start', (e) => e.user?.id === bob.id, 15_000);
    const back = recovered(bob.client);
    bob.client.wsConnection.ws.terminate();
    const stop = await stopped;
    assert.equal(stop.watcher_count, 1, 'only alice watches while bob is away');
    assert.equal(aCh.state.watchers[bob.id], undefined);
    await back;
    const ev = await watching;
    assert.equal(ev.watcher_count, 2);
    assert.equal(ev.cid, aCh.cid);
    assert.equal(aCh.state.watchers[bob.id]?.id, bob.id);
    const channels = await alice.client.queryChannelsRequest({ cid: aCh.cid }, {}, { state: true });
    assert.equal(channels[0].watcher_count, 2);
  });

  test('on shutdown (SIGTERM) the server closes sockets with 1001', async () => {
    const ws = bob.client.wsConnection.ws;
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    const offline = waitFor(bob.client, 'connection.changed', (e) => e.online === false, 15_000);
    await env.srv.stop();
    assert.equal(await closed, 1001);
    await offline;
  });
});
