// Read state and typing: unread counters everywhere the SDK reads them, markRead and its
// events, and typing.start / typing.stop.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect, setup, uid, waitFor } from './harness.js';

describe('unread counts and markRead', () => {
  let env, alice, bob, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('reads');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('messages from others raise countUnread() and GET /unread', async () => {
    assert.equal(bCh.countUnread(), 0);
    for (const text of ['u1', 'u2', 'u3']) {
      const got = waitFor(bCh, 'message.new', (e) => e.message?.text === text);
      await aCh.sendMessage({ text });
      await got;
    }
    assert.equal(bCh.countUnread(), 3, "bob's channel counts 3 unread");
    assert.equal(aCh.countUnread(), 0, 'the sender has none');

    const unread = await bob.client.getUnreadCount();
    assert.equal(unread.total_unread_count, 3);
    const row = unread.channels.find((c) => c.channel_id === aCh.cid);
    assert.ok(row, `GET /unread lists ${aCh.cid}: ${JSON.stringify(unread.channels)}`);
    assert.equal(row.unread_count, 3);
    const byType = unread.channel_type.find((t) => t.channel_type === 'messaging');
    assert.equal(byType?.unread_count, 3);
    assert.equal(byType?.channel_count, 1);
    assert.equal((await alice.client.getUnreadCount()).total_unread_count, 0);
  });

  test('me.total_unread_count and the channel read state survive a reconnect', async () => {
    const again = await connect(env.srv, bob.id);
    try {
      assert.equal(again.me.total_unread_count, 3);
      assert.equal(again.me.unread_channels, 1);
      assert.equal(again.me.unread_count, 3);
      const ch = again.client.channel('messaging', aCh.id);
      const state = await ch.watch();
      const mine = state.read.find((r) => r.user.id === bob.id);
      assert.equal(mine?.unread_messages, 3, 'the query carries the read row');
      assert.equal(ch.countUnread(), 3, 'the SDK takes unreadCount from it');
    } finally {
      await again.client.disconnectUser();
    }
  });

  test('markRead: message.read to watchers, notification.mark_read to the reader, counters reset', async () => {
    const last = aCh.state.latestMessages[aCh.state.latestMessages.length - 1];
    const aliceSees = waitFor(aCh, 'message.read', (e) => e.user?.id === bob.id);
    const bobSeesOwn = waitFor(bCh, 'message.read', (e) => e.user?.id === bob.id);
    const note = waitFor(bob.client, 'notification.mark_read', (e) => e.cid === aCh.cid);
    const res = await bCh.markRead();
    assert.ok(res, 'markRead sent a request (config.read_events and the read-events capability are on)');
    assert.equal(res.event.type, 'message.read');

    const ev = await aliceSees;
    assert.equal(ev.cid, aCh.cid);
    assert.equal(ev.last_read_message_id, last.id);
    assert.ok(!Number.isNaN(Date.parse(ev.created_at)));
    assert.equal(aCh.state.read[bob.id].unread_messages, 0);
    assert.equal(aCh.state.read[bob.id].last_read_message_id, last.id);

    await bobSeesOwn;
    const n = await note;
    assert.equal(n.total_unread_count, 0);
    assert.equal(n.unread_channels, 0);
    assert.equal(bCh.countUnread(), 0);

    const unread = await bob.client.getUnreadCount();
    assert.equal(unread.total_unread_count, 0);
    assert.deepEqual(unread.channels.filter((c) => c.unread_count > 0), []);

    const again = await connect(env.srv, bob.id);
    assert.equal(again.me.total_unread_count, 0, 'me after reconnect');
    await again.client.disconnectUser();
  });

  test('a member who is not watching gets notification.message_new with counters', async () => {
    const id = uid('quiet');
    const ch = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await ch.create();
    const note = waitFor(bob.client, 'notification.message_new', (e) => e.cid === ch.cid);
    const notNew = [];
    const sub = bob.client.on('message.new', (e) => e.cid === ch.cid && notNew.push(e));
    await ch.sendMessage({ text: 'ping while you are away' });
    const ev = await note;
    sub.unsubscribe();
    assert.equal(ev.message.text, 'ping while you are away');
    assert.equal(ev.channel.cid, ch.cid);
    assert.equal(ev.channel.config.read_events, true, 'the channel carries its config');
    assert.equal(ev.total_unread_count, 1);
    assert.equal(ev.unread_channels, 1);
    assert.equal(notNew.length, 0, 'no message.new for a channel bob does not watch');

    const unread = await bob.client.getUnreadCount();
    assert.equal(unread.total_unread_count, 1);
    assert.equal(unread.channels.find((c) => c.channel_id === ch.cid)?.unread_count, 1);

    // Reading it through a watched channel object clears it.
    const bobCh = bob.client.channel('messaging', id);
    await bobCh.watch();
    assert.equal(bobCh.countUnread(), 1);
    const cleared = waitFor(bob.client, 'notification.mark_read', (e) => e.cid === ch.cid);
    await bobCh.markRead();
    assert.equal((await cleared).total_unread_count, 0);
  });

  test('markUnread from a message restores the count (notification.mark_unread)', async () => {
    const msgs = [];
    for (const text of ['m1', 'm2']) {
      const got = waitFor(bCh, 'message.new', (e) => e.message?.text === text);
      msgs.push((await aCh.sendMessage({ text })).message);
      await got;
    }
    const read = waitFor(bob.client, 'notification.mark_read', (e) => e.cid === aCh.cid);
    await bCh.markRead();
    await read;
    assert.equal(bCh.countUnread(), 0);

    const marked = waitFor(bCh, 'notification.mark_unread', () => true);
    await bCh.markUnread({ message_id: msgs[0].id });
    const ev = await marked;
    assert.equal(ev.unread_messages, 2);
    assert.equal(bCh.countUnread(), 2);
    assert.equal((await bob.client.getUnreadCount()).total_unread_count, 2);
  });
});

describe('typing indicators', () => {
  let env, alice, bob, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('typing');
    aCh = alice.client.channel('team', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('team', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('keystroke() sends typing.start and stopTyping() typing.stop to the other user', async () => {
    assert.equal(bCh.getConfig()?.typing_events, true);
    const start = waitFor(aCh, 'typing.start', (e) => e.user?.id === bob.id);
    await bCh.keystroke();
    const ev = await start;
    assert.equal(ev.cid, aCh.cid);
    assert.equal(ev.user.id, bob.id);
    assert.ok(aCh.state.typing[bob.id], "bob is in alice's typing state");

    const stop = waitFor(aCh, 'typing.stop', (e) => e.user?.id === bob.id);
    await bCh.stopTyping();
    await stop;
    assert.equal(aCh.state.typing[bob.id], undefined, 'bob left the typing state');
  });

  test('typing in a thread carries parent_id; the typist gets the echo', async () => {
    const parent = (await aCh.sendMessage({ text: 'thread for typing' })).message;
    const start = waitFor(aCh, 'typing.start', (e) => e.user?.id === bob.id && e.parent_id === parent.id);
    const echo = waitFor(bCh, 'typing.start', (e) => e.user?.id === bob.id);
    await bCh.keystroke(parent.id);
    await start;
    await echo;
    const stop = waitFor(aCh, 'typing.stop', (e) => e.user?.id === bob.id && e.parent_id === parent.id);
    await bCh.stopTyping(parent.id);
    await stop;
  });

  test('livestream channels have typing off, so keystroke sends nothing', async () => {
    const ls = alice.client.channel('livestream', uid('live'));
    await ls.watch();
    assert.equal(ls.getConfig()?.typing_events, false);
    assert.equal(ls.getConfig()?.read_events, false);
    assert.equal(await ls.markRead(), null, 'markRead is a no-op without read events');
  });
});
