// Threads, thread reads, replies around a message, delivery receipts and mark-all-read, as
// the stock SDK drives them: client.queryThreads / getThread / partialUpdateThread,
// thread.markAsRead, channel.getReplies({id_around}), client.markChannelsDelivered and
// client.markAllRead.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, uid, waitFor } from './harness.js';

describe('threads', () => {
  let env, alice, bob, aCh, bCh, parent;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('threads');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
    parent = (await aCh.sendMessage({ text: 'What dose for the patient in bed 4?' })).message;
  });
  after(async () => {
    await env?.close();
  });

  test("a reply updates the parent's reply_count and thread_participants live", async () => {
    const updated = waitFor(aCh, 'message.updated', (e) => e.message?.id === parent.id);
    await bCh.sendMessage({ text: '5mg', parent_id: parent.id });
    const ev = await updated;
    assert.equal(ev.message.reply_count, 1);
    assert.deepEqual(
      ev.message.thread_participants.map((u) => u.id),
      [alice.id, bob.id],
    );
    const local = aCh.state.findMessage(parent.id);
    assert.equal(local?.reply_count, 1, 'the SDK keeps the count the event carried');
  });

  test('client.queryThreads returns Thread objects the SDK hydrates', async () => {
    const { threads } = await alice.client.queryThreads({ reply_limit: 5 });
    assert.equal(threads.length, 1);
    const thread = threads[0];
    assert.equal(thread.id, parent.id);
    const state = thread.state.getLatestValue();
    assert.equal(state.parentMessage.id, parent.id);
    assert.equal(state.replyCount, 1);
    assert.equal(state.replies.length, 1);
    assert.equal(state.replies[0].text, '5mg');
    assert.equal(state.channel.cid, aCh.cid);
    assert.deepEqual(
      state.participants.map((p) => p.user_id),
      [alice.id, bob.id],
    );
    assert.equal(thread.ownUnreadCount, 1, 'alice has not read the reply');
  });

  test('thread.markAsRead marks only the thread; message.read carries the thread', async () => {
    await bCh.sendMessage({ text: 'a channel message' });
    const { threads } = await alice.client.queryThreads();
    const thread = threads[0];
    const bobSees = waitFor(bCh, 'message.read', (e) => e.user?.id === alice.id && e.thread);
    const res = await thread.markAsRead();
    assert.ok(res, 'a request was sent');
    const ev = await bobSees;
    assert.equal(ev.thread.parent_message_id, parent.id);
    const unread = await alice.client.getUnreadCount();
    assert.equal(unread.total_unread_threads_count, 0);
    assert.equal(unread.total_unread_count, 1, 'the channel message stays unread');
  });

  test('getThread and partialUpdateThread, with thread.updated', async () => {
    const thread = await bob.client.getThread(parent.id);
    assert.equal(thread.id, parent.id);
    const updated = waitFor(alice.client, 'thread.updated', (e) => e.thread?.parent_message_id === parent.id);
    const res = await alice.client.partialUpdateThread(parent.id, {
      set: { title: 'Bed 4 dosing', ward: 'cardio' },
    });
    assert.equal(res.thread.title, 'Bed 4 dosing');
    assert.equal(res.thread.ward, 'cardio');
    const ev = await updated;
    assert.equal(ev.thread.title, 'Bed 4 dosing');
    await thread.reload();
    assert.equal(thread.state.getLatestValue().title, 'Bed 4 dosing');
    assert.equal(thread.state.getLatestValue().custom.ward, 'cardio');
    await assert.rejects(
      alice.client.partialUpdateThread(parent.id, { set: { nested: 'x'.repeat(6000) } }),
      (err) => err.code === 4,
    );
  });

  test('channel.getReplies({id_around}) returns the page around a reply', async () => {
    const ids = [];
    for (let i = 0; i < 8; i += 1) {
      ids.push((await aCh.sendMessage({ text: `r${i}`, parent_id: parent.id })).message.id);
    }
    const page = await aCh.getReplies(parent.id, { id_around: ids[4], limit: 4 });
    const got = page.messages.map((m) => m.id);
    assert.equal(got.length, 4);
    assert.ok(got.includes(ids[4]), 'the target is in the page');
    assert.deepEqual(got, [ids[3], ids[4], ids[5], ids[6]]);
    const oldest = await aCh.getReplies(parent.id, { limit: 2 }, [{ created_at: 1 }]);
    assert.equal(oldest.messages[0].text, '5mg');
  });
});

describe('reads and delivery', () => {
  let env, alice, bob;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
  });
  after(async () => {
    await env?.close();
  });

  test('client.markChannelsDelivered sends message.delivered and sets read[].last_delivered_*', async () => {
    const id = uid('delivered');
    const aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    assert.equal(aCh.getConfig()?.delivery_events, true);
    const msg = (await aCh.sendMessage({ text: 'delivered?' })).message;
    const delivered = waitFor(aCh, 'message.delivered', (e) => e.user?.id === bob.id);
    await bob.client.markChannelsDelivered({
      latest_delivered_messages: [{ cid: aCh.cid, id: msg.id }],
    });
    const ev = await delivered;
    assert.equal(ev.last_delivered_message_id, msg.id);
    assert.equal(aCh.state.read[bob.id].last_delivered_message_id, msg.id);
    const again = await alice.client.channel('messaging', id).query({ state: true });
    const bobRead = again.read.find((r) => r.user.id === bob.id);
    assert.equal(bobRead.last_delivered_message_id, msg.id);
    assert.ok(!Number.isNaN(Date.parse(bobRead.last_delivered_at)));
  });

  test('client.markAllRead clears every channel', async () => {
    for (const name of ['x', 'y']) {
      const ch = alice.client.channel('messaging', uid(name), { members: [alice.id, bob.id] });
      await ch.create();
      await ch.sendMessage({ text: `hello ${name}` });
    }
    assert.ok((await bob.client.getUnreadCount()).total_unread_count >= 2);
    const note = waitFor(bob.client, 'notification.mark_read');
    await bob.client.markAllRead();
    await note;
    assert.equal((await bob.client.getUnreadCount()).total_unread_count, 0);
  });
});
