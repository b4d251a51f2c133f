// Two users in one channel: watch, messages, reactions, updates, deletes and threads, all
// observed through the real SDK's event handling and channel state.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { randomUUID, serverClient, setup, uid, waitFor } from './harness.js';

describe('messaging between two users', () => {
  let env, alice, bob, aCh, bCh;
  const cidOf = () => aCh.cid;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('room');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id], name: 'Room One', topic: 'tests' });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
  });
  after(async () => {
    await env?.close();
  });

  test('watch returns channel state with config, capabilities, members and watchers', async () => {
    const started = waitFor(alice.client, 'user.watching.start', (e) => e.cid === cidOf() && e.user?.id === bob.id);
    const state = await bCh.watch();
    const ev = await started;
    assert.equal(ev.watcher_count, 2, 'alice sees watcher_count 2');

    assert.equal(state.channel.cid, cidOf());
    assert.equal(state.channel.type, 'messaging');
    assert.equal(state.channel.name, 'Room One', 'custom channel fields are flattened');
    assert.equal(state.channel.topic, 'tests');
    assert.equal(state.channel.created_by?.id, alice.id);
    assert.equal(state.channel.member_count, 2);
    assert.equal(state.channel.config.typing_events, true);
    assert.equal(state.channel.config.read_events, true);
    assert.equal(state.channel.config.delivery_events, true, 'delivery receipts are on for messaging');
    for (const cap of ['send-message', 'send-reaction', 'read-events', 'send-typing-events', 'send-reply']) {
      assert.ok(state.channel.own_capabilities.includes(cap), `own_capabilities has ${cap}`);
    }
    assert.deepEqual(state.members.map((m) => m.user.id).sort(), [alice.id, bob.id].sort());
    assert.equal(state.membership?.user?.id, bob.id);
    assert.ok(Array.isArray(state.messages));
    assert.ok(Array.isArray(state.read));
    assert.equal(state.watcher_count, 2);
    assert.deepEqual(state.watchers.map((w) => w.id).sort(), [alice.id, bob.id].sort());

    // The SDK state mirrors it.
    assert.ok(bCh.initialized);
    assert.equal(bCh.data.name, 'Room One');
    assert.deepEqual(Object.keys(bCh.state.members).sort(), [alice.id, bob.id].sort());
    assert.equal(bCh.state.watcher_count, 2);
    assert.ok(aCh.state.watchers[bob.id], 'alice state has bob as a watcher');
  });

  test('sendMessage: the other user gets message.new and the sender gets its echo', async () => {
    const id = randomUUID();
    const bobGets = waitFor(bob.client, 'message.new', (e) => e.message?.id === id);
    const aliceEcho = waitFor(aCh, 'message.new', (e) => e.message?.id === id);
    const res = await aCh.sendMessage({ id, text: 'hello bob', mood: 'cheerful' });

    assert.equal(res.message.id, id, 'the client-supplied id is kept');
    assert.equal(res.message.text, 'hello bob');
    assert.equal(res.message.user.id, alice.id);
    assert.equal(res.message.type, 'regular');
    assert.equal(res.message.mood, 'cheerful', 'custom message fields are flattened');

    const ev = await bobGets;
    assert.equal(ev.cid, cidOf());
    assert.equal(ev.channel_type, 'messaging');
    assert.equal(ev.channel_id, aCh.id);
    assert.equal(ev.user.id, alice.id);
    assert.equal(ev.message.text, 'hello bob');
    assert.equal(ev.message.mood, 'cheerful');
    assert.ok(!Number.isNaN(Date.parse(ev.created_at)), 'created_at is a date');
    assert.equal(ev.watcher_count, 2);

    await aliceEcho;
    const own = aCh.state.messages.find((m) => m.id === id);
    assert.ok(own, "the sender's echo is in channel.state.messages");
    assert.equal(own.text, 'hello bob');
    assert.ok(own.created_at instanceof Date);
    const theirs = bCh.state.messages.find((m) => m.id === id);
    assert.ok(theirs, "the message is in the receiver's state");
    assert.equal(theirs.user.id, alice.id);
    assert.equal(bCh.state.unreadCount, 1, 'a message from someone else counts as unread');
    assert.equal(aCh.state.unreadCount, 0, 'own messages are not unread');
  });

  test('messages come back ascending on a fresh query', async () => {
    for (const text of ['one', 'two', 'three']) {
      const echo = waitFor(aCh, 'message.new', (e) => e.message?.text === text);
      await aCh.sendMessage({ text });
      await echo;
    }
    const fresh = alice.client.channel('messaging', aCh.id);
    const state = await fresh.query({ messages: { limit: 3 } });
    assert.deepEqual(state.messages.map((m) => m.text), ['one', 'two', 'three']);
    const times = state.messages.map((m) => Date.parse(m.created_at));
    assert.deepEqual([...times].sort((a, b) => a - b), times);
  });

  test('sendReaction with enforce_unique: reaction.new / reaction.updated with groups', async () => {
    const msg = (await aCh.sendMessage({ text: 'react to me' })).message;

    const seenNew = waitFor(alice.client, 'reaction.new', (e) => e.message?.id === msg.id);
    const res = await bCh.sendReaction(msg.id, { type: 'like', emoji_note: 'thumb' });
    assert.equal(res.reaction.type, 'like');
    assert.equal(res.reaction.user_id, bob.id);
    assert.equal(res.message.reaction_groups.like.count, 1);
    assert.equal(res.message.own_reactions.length, 1, "the reply carries bob's own reaction");

    const ev = await seenNew;
    assert.equal(ev.reaction.type, 'like');
    assert.equal(ev.reaction.user_id, bob.id);
    assert.equal(ev.reaction.user.id, bob.id);
    assert.equal(ev.reaction.emoji_note, 'thumb', 'custom reaction fields are flattened');
    assert.equal(ev.reaction.message_id, msg.id);
    assert.equal(ev.reaction.score, 1);
    assert.equal(ev.message.reaction_groups.like.count, 1);
    assert.equal(ev.message.reaction_groups.like.sum_scores, 1);
    assert.ok(ev.message.reaction_groups.like.first_reaction_at);
    assert.deepEqual(ev.message.latest_reactions.map((r) => [r.user_id, r.type]), [[bob.id, 'like']]);
    const inAlice = aCh.state.messages.find((m) => m.id === msg.id);
    assert.equal(inAlice.reaction_groups.like.count, 1, "alice's state has the reaction");
    assert.equal(inAlice.own_reactions.length, 0, 'not her own reaction');

    // Alice adds her own like: counts add up, own_reactions follow the viewer.
    const aliceLike = waitFor(bob.client, 'reaction.new', (e) => e.message?.id === msg.id && e.reaction.user_id === alice.id);
    const aliceEcho = waitFor(aCh, 'reaction.new', (e) => e.message?.id === msg.id && e.reaction.user_id === alice.id);
    await aCh.sendReaction(msg.id, { type: 'like' });
    const ev2 = await aliceLike;
    assert.equal(ev2.message.reaction_groups.like.count, 2);
    await aliceEcho;
    assert.deepEqual(aCh.state.messages.find((m) => m.id === msg.id).own_reactions.map((r) => r.type), ['like'], 'the SDK derives own_reactions from reaction.user_id');
    assert.equal(bCh.state.messages.find((m) => m.id === msg.id).own_reactions.length, 1, "bob's own like stays his");

    // Bob switches to "love" with enforce_unique: his like is replaced, not added.
    const replaced = waitFor(alice.client, /** reaction.updated or reaction.new */ 'all', (e) =>
      (e.type === 'reaction.updated' || e.type === 'reaction.new') && e.message?.id === msg.id && e.reaction?.type === 'love');
    const res2 = await bCh.sendReaction(msg.id, { type: 'love' }, { enforce_unique: true });
    assert.equal(res2.message.reaction_groups.love.count, 1);
    assert.equal(res2.message.reaction_groups.like.count, 1, "only alice's like remains");
    assert.deepEqual(res2.message.own_reactions.map((r) => r.type), ['love']);
    const ev3 = await replaced;
    assert.equal(ev3.message.reaction_groups.love.count, 1);
    assert.equal(ev3.message.reaction_groups.like.count, 1);
    const counted = ev3.message.latest_reactions.filter((r) => r.user_id === bob.id);
    assert.deepEqual(counted.map((r) => r.type), ['love'], 'bob has exactly one reaction');
    const local = aCh.state.messages.find((m) => m.id === msg.id);
    assert.equal(local.reaction_groups.love.count, 1);
    assert.equal(local.reaction_groups.like.count, 1);

    // Deleting the reaction.
    const removed = waitFor(alice.client, 'reaction.deleted', (e) => e.message?.id === msg.id);
    await bCh.deleteReaction(msg.id, 'love');
    const ev4 = await removed;
    assert.equal(ev4.message.reaction_groups.love, undefined);
    assert.equal(ev4.message.reaction_groups.like.count, 1);
  });

  test('updateMessage and partialUpdateMessage reach the other user as message.updated', async () => {
    const msg = (await aCh.sendMessage({ text: 'first draft', keep: 'yes' })).message;

    const upd = waitFor(bob.client, 'message.updated', (e) => e.message?.id === msg.id && e.message.text === 'second draft');
    const res = await alice.client.updateMessage({ id: msg.id, text: 'second draft', keep: 'yes', color: 'blue' });
    assert.equal(res.message.text, 'second draft');
    const ev = await upd;
    assert.equal(ev.cid, cidOf());
    assert.equal(ev.message.color, 'blue');
    assert.equal(bCh.state.messages.find((m) => m.id === msg.id).text, 'second draft');

    const part = waitFor(bob.client, 'message.updated', (e) => e.message?.id === msg.id && e.message.text === 'third draft');
    const res2 = await alice.client.partialUpdateMessage(msg.id, { set: { text: 'third draft', priority: 3 }, unset: ['color'] });
    assert.equal(res2.message.text, 'third draft');
    assert.equal(res2.message.priority, 3);
    assert.equal(res2.message.color, undefined);
    assert.equal(res2.message.keep, 'yes', 'fields not named are kept');
    const ev2 = await part;
    assert.equal(ev2.message.priority, 3);
    const local = bCh.state.messages.find((m) => m.id === msg.id);
    assert.equal(local.text, 'third draft');
    assert.equal(local.priority, 3);

    // Bob may not edit alice's message.
    await assert.rejects(bob.client.updateMessage({ id: msg.id, text: 'hijack' }), (err) => err.code === 17);
  });

  test('soft delete keeps a deleted message; hard delete removes it', async () => {
    const soft = (await aCh.sendMessage({ text: 'soon soft-deleted' })).message;
    const hard = (await aCh.sendMessage({ text: 'soon hard-deleted' })).message;

    const softEv = waitFor(bob.client, 'message.deleted', (e) => e.message?.id === soft.id);
    const res = await alice.client.deleteMessage(soft.id);
    assert.equal(res.message.type, 'deleted');
    const ev = await softEv;
    assert.ok(!ev.hard_delete, 'a soft delete is not hard');
    assert.equal(ev.message.type, 'deleted');
    assert.ok(ev.message.deleted_at);
    const local = bCh.state.messages.find((m) => m.id === soft.id);
    assert.ok(local, 'a soft-deleted message stays in state');
    assert.equal(local.type, 'deleted');
    assert.equal(local.text, '', 'the text of a deleted message is gone');

    const hardEv = waitFor(bob.client, 'message.deleted', (e) => e.message?.id === hard.id);
    await alice.client.deleteMessage(hard.id, true);
    const ev2 = await hardEv;
    assert.equal(ev2.hard_delete, true);
    assert.equal(bCh.state.messages.find((m) => m.id === hard.id), undefined, 'a hard-deleted message leaves state');
    await assert.rejects(alice.client.getMessage(hard.id), (err) => err.code === 16);

    const fresh = await bob.client.channel('messaging', aCh.id).query({ messages: { limit: 50 } });
    const softInQuery = fresh.messages.find((m) => m.id === soft.id);
    assert.equal(softInQuery?.type, 'deleted', 'soft-deleted messages still show as deleted');
    assert.equal(fresh.messages.find((m) => m.id === hard.id), undefined);
  });

  test('replies: parent_id, getReplies and reply_count on the parent', async () => {
    const parent = (await aCh.sendMessage({ text: 'thread root' })).message;
    assert.equal(parent.reply_count, 0);

    const replyNew = waitFor(alice.client, 'message.new', (e) => e.message?.parent_id === parent.id);
    const r1 = (await bCh.sendMessage({ text: 'first reply', parent_id: parent.id })).message;
    assert.equal(r1.parent_id, parent.id);
    assert.equal(r1.type, 'reply');
    const ev = await replyNew;
    assert.equal(ev.message.id, r1.id);

    await bCh.sendMessage({ text: 'second reply', parent_id: parent.id });
    await aCh.sendMessage({ text: 'visible reply', parent_id: parent.id, show_in_channel: true });

    const { messages } = await aCh.getReplies(parent.id, { limit: 10 });
    assert.deepEqual(messages.map((m) => m.text), ['first reply', 'second reply', 'visible reply']);
    assert.ok(messages.every((m) => m.parent_id === parent.id));

    const page = await aCh.getReplies(parent.id, { limit: 2 });
    assert.deepEqual(page.messages.map((m) => m.text), ['second reply', 'visible reply'], 'a limited page is the latest replies');

    const { message: reloaded } = await alice.client.getMessage(parent.id);
    assert.equal(reloaded.reply_count, 3);

    // Replies stay out of the channel's main list unless show_in_channel.
    const fresh = await alice.client.channel('messaging', aCh.id).query({ messages: { limit: 100 } });
    const texts = fresh.messages.map((m) => m.text);
    assert.ok(!texts.includes('first reply'));
    assert.ok(texts.includes('visible reply'));
    assert.equal(fresh.messages.find((m) => m.id === parent.id).reply_count, 3);

    // No replies to replies.
    await assert.rejects(aCh.sendMessage({ text: 'nested', parent_id: r1.id }), (err) => err.code === 21 || err.code === 4);
  });

  test('a server-side client can send on behalf of a user and it reaches watchers', async () => {
    const server = serverClient(env.srv);
    const ch = server.channel('messaging', aCh.id);
    const got = waitFor(alice.client, 'message.new', (e) => e.message?.text === 'from the backend');
    await ch.sendMessage({ text: 'from the backend', user_id: bob.id });
    const ev = await got;
    assert.equal(ev.message.user.id, bob.id);
  });
});
