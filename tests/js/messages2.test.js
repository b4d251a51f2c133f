// Messages and reactions beyond send and edit (issue 16, items 5 and 6), through the real
// SDK: who reacted, pinned messages, messages by id, pinning by a non-author member,
// delete for me, and search as the stock UI sends it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { barrier, collect, randomUUID, setup, uid, waitFor } from './harness.js';

describe('messages and reactions beyond send and edit', () => {
  let env, alice, bob, carol, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
    const id = uid('m2');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('queryReactions and getReactions list who reacted, to readers only', async () => {
    const { message } = await aCh.sendMessage({ id: randomUUID(), text: 'who reacted?' });
    await bCh.sendReaction(message.id, { type: 'like' });
    await aCh.sendReaction(message.id, { type: 'love' });
    await aCh.sendReaction(message.id, { type: 'like' });

    const all = await bCh.getReactions(message.id, { limit: 10 });
    assert.equal(all.reactions.length, 3);
    assert.deepEqual(all.reactions.map((r) => r.user.id), [bob.id, alice.id, alice.id]);
    const paged = await bCh.getReactions(message.id, { limit: 1, offset: 1 });
    assert.deepEqual(paged.reactions.map((r) => r.type), ['love']);

    const likes = await bob.client.queryReactions(message.id, { type: 'like' }, { created_at: 1 });
    assert.deepEqual(likes.reactions.map((r) => r.user_id), [bob.id, alice.id]);
    const mine = await bob.client.queryReactions(message.id, { user_id: { $in: [alice.id] } }, { created_at: -1 });
    assert.deepEqual(mine.reactions.map((r) => r.type), ['like', 'love']);
    const first = await bob.client.queryReactions(message.id, {}, {}, { limit: 2 });
    assert.equal(first.reactions.length, 2);
    assert.ok(first.next, 'a next cursor');
    const rest = await bob.client.queryReactions(message.id, {}, {}, { limit: 2, next: first.next });
    assert.equal(rest.reactions.length, 1);
    assert.equal(rest.next, undefined);

    await assert.rejects(carol.client.queryReactions(message.id, {}), (e) => e.response?.status === 403);
  });

  test('a member pins another member\'s message; getPinnedMessages lists it; an expired pin is gone', async () => {
    const { message } = await aCh.sendMessage({ id: randomUUID(), text: 'pin me' });
    const updated = waitFor(aCh, 'message.updated', (e) => e.message?.id === message.id && e.message.pinned);
    const res = await bob.client.pinMessage(message.id);
    assert.equal(res.message.pinned, true);
    assert.equal(res.message.pinned_by.id, bob.id);
    await updated;

    const pinned = await bCh.getPinnedMessages({ limit: 10 });
    assert.ok(pinned.messages.some((m) => m.id === message.id));
    const asc = await bCh.getPinnedMessages({ limit: 10 }, { pinned_at: 1 });
    assert.equal(asc.messages.at(-1).id, message.id, 'the newest pin last when ascending');

    // Pinning is not editing.
    await assert.rejects(bob.client.updateMessage({ id: message.id, text: 'edited by bob' }), (e) => e.response?.status === 403);

    const { message: brief } = await aCh.sendMessage({ id: randomUUID(), text: 'pinned in the past' });
    const expired = await bob.client.pinMessage(brief.id, '2001-01-01T00:00:00.000Z');
    assert.equal(expired.message.pinned, false, 'an expired pin reads as none');
    const after = await bCh.getPinnedMessages({ limit: 10 });
    assert.ok(!after.messages.some((m) => m.id === brief.id));
    const state = await bCh.query({ state: true });
    assert.ok(!state.pinned_messages.some((m) => m.id === brief.id));

    const unpinned = await bob.client.unpinMessage(message.id);
    assert.equal(unpinned.message.pinned, false);
  });

  test('getMessagesById returns the channel\'s messages asked for', async () => {
    const a = await aCh.sendMessage({ id: randomUUID(), text: 'one' });
    const b = await aCh.sendMessage({ id: randomUUID(), text: 'two' });
    const res = await bCh.getMessagesById([b.message.id, a.message.id, 'missing-id']);
    assert.deepEqual(res.messages.map((m) => m.text), ['two', 'one']);
  });

  test('deleteMessage with deleteForMe hides it for the caller only', async () => {
    const { message } = await aCh.sendMessage({ id: randomUUID(), text: 'alice keeps this' });
    const bobsOwn = waitFor(bob.client, 'message.deleted', (e) => e.message?.id === message.id);
    const aliceHears = collect(alice.client, 'message.deleted', (e) => e.message?.id === message.id);
    const res = await bob.client.deleteMessage(message.id, { deleteForMe: true });
    assert.equal(res.message.type, 'deleted');
    const ev = await bobsOwn;
    assert.equal(ev.deleted_for_me, true);
    await barrier(alice.client);
    assert.equal(aliceHears.stop().length, 0, 'alice is not told');

    const forAlice = await alice.client.getMessage(message.id);
    assert.equal(forAlice.message.text, 'alice keeps this');
    const forBob = await bob.client.getMessage(message.id);
    assert.equal(forBob.message.type, 'deleted');
    assert.equal(forBob.message.deleted_for_me, true);
  });

  test('search finds a word anywhere, and words by prefix, as the stock search box sends it', async () => {
    const { message } = await aCh.sendMessage({ id: randomUUID(), text: 'Warfarin stock is low' });
    const filters = { members: { $in: [bob.id] } };
    const bare = await bob.client.search(filters, { type: 'regular', text: 'warfarin' });
    assert.deepEqual(bare.results.map((r) => r.message.id), [message.id]);
    const prefix = await bob.client.search(filters, { text: { $autocomplete: 'warf' } });
    assert.deepEqual(prefix.results.map((r) => r.message.id), [message.id]);
    const q = await bob.client.search(filters, { text: { $q: 'LOW' } }, { sort: [{ created_at: -1 }] });
    assert.deepEqual(q.results.map((r) => r.message.id), [message.id]);
    const none = await carol.client.search({ members: { $in: [carol.id] } }, { text: 'warfarin' });
    assert.equal(none.results.length, 0, 'carol is not in the channel');
  });

  test('enrichURL is refused with Stream\'s input error while link previews are off (the default)', async () => {
    await assert.rejects(alice.client.enrichURL('https://example.com/'), (e) => e.response?.status === 400 && e.response.data.code === 4);
  });

  test('config.commands is empty and sendAction is refused with Stream\'s input error', async () => {
    assert.deepEqual(aCh.data.config.commands, []);
    const { message } = await aCh.sendMessage({ id: randomUUID(), text: 'no commands here' });
    await assert.rejects(aCh.sendAction(message.id, { image_action: 'shuffle' }), (e) => e.response?.status === 400 && e.response.data.code === 4);
  });
});
