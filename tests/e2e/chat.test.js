// The browser suite: the stock stream-chat-react app (app/main.jsx) in headless Chromium
// against one `ward serve` (WARD_E2E_DB: sqlite or postgres), one scenario per test, each
// with fresh users and channels and new browser contexts (one per person). Waits are on
// selectors and events only, never on time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';

import { DB_KIND, UI_TIMEOUT_MS, scenario, unknownPending, seedChannel, seedUsers, startSuite, uid } from './harness.js';
import { MAIN, THREAD, channelItem, chooseMenu, message, openChannel, openMessageActions, send } from './ui.js';

let suite;
const get = () => suite;
const it = (name, fn) => scenario(get, name, fn);

/** Two people in one channel, both looking at it. */
async function pair(ctx, { names = ['alice', 'bob'], channel = 'Ward 3 nurses' } = {}) {
  const ids = await seedUsers(suite, names);
  const name = `${channel} ${uid('').slice(1)}`;
  const ch = await seedChannel(suite, { name, members: Object.values(ids), createdBy: ids[names[0]] });
  // Not empty: the stock MessageList shows its typing indicator only under messages.
  await ch.sendMessage({ text: 'Shift starts at 7', user_id: ids[names[0]] });
  const pages = {};
  for (const n of names) {
    pages[n] = await ctx.open(ids[n]);
    await openChannel(pages[n], name);
  }
  return { ids, ch, name, pages };
}

/** A 2x2 red PNG, made here (no binary fixture in the repository). */
function png() {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(2, 0);
  ihdr.writeUInt32BE(2, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const row = Buffer.from([0, 255, 0, 0, 255, 0, 0]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat([row, row]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe(`stock stream-chat-react in Chromium against ward (${DB_KIND})`, () => {
  before(async () => {
    suite = await startSuite();
  });
  after(async () => {
    await suite?.close();
  });

  it('the channel list shows previews and unread counts, live', async (ctx) => {
    const ids = await seedUsers(suite, ['alice', 'bob']);
    const busy = `Ward 3 nurses ${uid('').slice(1)}`;
    const quiet = `Pharmacy ${uid('').slice(1)}`;
    const ward = await seedChannel(suite, { name: busy, members: [ids.alice, ids.bob], createdBy: ids.bob });
    const pharmacy = await seedChannel(suite, { name: quiet, members: [ids.alice, ids.bob], createdBy: ids.alice });
    for (const text of ['Bed 4 needs a review', 'Bed 7 is asking for you', 'Handover at 7']) {
      await ward.sendMessage({ text, user_id: ids.bob });
    }
    // Sent last, so the pharmacy channel is on top and opens first: Ward 3 stays unread.
    await pharmacy.sendMessage({ text: 'Order placed', user_id: ids.alice });

    const page = await ctx.open(ids.alice);
    const wardItem = channelItem(page, busy);
    await wardItem.locator('.str-chat__channel-list-item-data', { hasText: 'Handover at 7' }).waitFor();
    assert.equal((await wardItem.locator('[data-testid="unread-badge"]').innerText()).trim(), '3');
    await channelItem(page, quiet).locator('.str-chat__channel-list-item-data', { hasText: 'Order placed' }).waitFor();
    assert.equal(await channelItem(page, quiet).locator('[data-testid="unread-badge"]').count(), 0);
    const titles = () => page.locator('.str-chat__channel-list-item-data__title').allInnerTexts();
    assert.deepEqual((await titles()).map((t) => t.trim()), [quiet, busy]);

    // A new message elsewhere: the preview, the count and the order follow without a reload.
    await ward.sendMessage({ text: 'Bed 4 is stable now', user_id: ids.bob });
    await wardItem.locator('.str-chat__channel-list-item-data', { hasText: 'Bed 4 is stable now' }).waitFor();
    await wardItem.locator('[data-testid="unread-badge"]', { hasText: /^\s*4\s*$/ }).waitFor();
    await page.waitForFunction(
      (name) => document.querySelector('.str-chat__channel-list-item-data__title')?.textContent.trim() === name,
      busy,
    );
  });

  it('a message sent by one person appears live for the other', async (ctx) => {
    const { pages } = await pair(ctx);
    await send(pages.alice, 'Blood pressure 120/80 at 14:00');
    await message(pages.bob, 'Blood pressure 120/80 at 14:00').waitFor();
    await send(pages.bob, 'Thanks, noted');
    await message(pages.alice, 'Thanks, noted').waitFor();
    // Each sees the other's message as received, their own as sent by them.
    assert.match(await message(pages.bob, 'Blood pressure').getAttribute('class'), /str-chat__message--other/);
    assert.match(await message(pages.alice, 'Blood pressure').getAttribute('class'), /str-chat__message--me/);
  });

  it('the typing indicator shows while the other person types', async (ctx) => {
    const { pages } = await pair(ctx);
    const indicator = pages.bob.locator(`${MAIN} [data-testid="typing-indicator"].str-chat__typing-indicator--typing`);
    await pages.alice.locator(`${MAIN} [data-testid="message-input"]`).pressSequentially('Is the drug ch', { delay: 20 });
    await indicator.waitFor();
    // Sending stops typing (typing.stop), and the indicator goes away.
    await pages.alice.locator(`${MAIN} [data-testid="message-input"]`).press('Enter');
    await message(pages.bob, 'Is the drug ch').waitFor();
    await indicator.waitFor({ state: 'detached' });
  });

  it('a reaction shows for both people, with its count', async (ctx) => {
    const { pages } = await pair(ctx);
    await send(pages.bob, 'Discharge summary is ready');
    const mine = message(pages.alice, 'Discharge summary is ready');
    await mine.hover();
    await mine.locator('[data-testid="message-reaction-action"]').click();
    await pages.alice.locator('[data-testid="reaction-selector"] [data-text="like"]').click();
    for (const page of [pages.alice, pages.bob]) {
      const reactions = message(page, 'Discharge summary is ready').locator('.str-chat__message-reactions');
      await reactions.locator('[data-testid="message-reactions-list-item-icon"]', { hasText: '👍' }).waitFor();
    }
    // Bob adds the same reaction: Alice's count turns 2.
    const theirs = message(pages.bob, 'Discharge summary is ready');
    await theirs.hover();
    await theirs.locator('[data-testid="message-reaction-action"]').click();
    await pages.bob.locator('[data-testid="reaction-selector"] [data-text="like"]').click();
    await message(pages.alice, 'Discharge summary is ready')
      .locator('[data-testid="message-reactions-total-count"]', { hasText: /^\s*2\s*$/ })
      .waitFor();
  });

  it("the reactor's own count includes their reaction", async (ctx) => {
    const { pages, ids, ch } = await pair(ctx);
    const { message: m } = await ch.sendMessage({ text: 'Bloods are back', user_id: ids.alice });
    await ch.sendReaction(m.id, { type: 'like', user_id: ids.alice });
    const theirs = message(pages.bob, 'Bloods are back');
    await theirs.locator('[data-testid="message-reactions-total-count"]', { hasText: /^\s*1\s*$/ }).waitFor();
    await theirs.hover();
    await theirs.locator('[data-testid="message-reaction-action"]').click();
    await pages.bob.locator('[data-testid="reaction-selector"] [data-text="like"]').click();
    await theirs.locator('[data-testid="message-reactions-total-count"]', { hasText: /^\s*2\s*$/ }).waitFor();
  });

  it('who reacted: the reactions list names the reactors', async (ctx) => {
    const { ids, ch, pages } = await pair(ctx, { names: ['alice', 'bob', 'carol'] });
    const { message: m } = await ch.sendMessage({ text: 'Theatre list for Monday', user_id: ids.alice });
    for (const who of ['bob', 'carol']) {
      await ch.sendReaction(m.id, { type: 'love', user_id: ids[who] });
    }
    const msg = message(pages.alice, 'Theatre list for Monday');
    await msg.locator('[data-testid="message-reactions-list-button"]').click();
    // The detail dialog loads the reactors with queryReactions (POST /messages/{id}/reactions).
    const names = pages.alice.locator('[data-testid="reaction-user-username"]');
    await names.filter({ hasText: 'Bob' }).first().waitFor();
    await names.filter({ hasText: 'Carol' }).first().waitFor();
  });

  it('a thread reply shows in the thread, live for the other person', async (ctx) => {
    const { pages } = await pair(ctx);
    await send(pages.alice, 'Who covers bay 2 tonight?');
    // Bob opens the thread first; Alice then replies in it.
    for (const page of [pages.bob, pages.alice]) {
      const parent = message(page, 'Who covers bay 2 tonight?');
      await parent.hover();
      await parent.locator('[data-testid="thread-action"]').click();
      await page.locator(THREAD).waitFor();
      await message(page, 'Who covers bay 2 tonight?', THREAD).waitFor();
    }
    await send(pages.alice, 'I will, until 2am', THREAD);
    await message(pages.bob, 'I will, until 2am', THREAD).waitFor();
    // A reply stays in the thread: it is not in the channel's main list.
    assert.equal(await message(pages.bob, 'I will, until 2am').count(), 0);
  });

  it('a thread reply updates the reply count live for the other user', async (ctx) => {
    const { pages } = await pair(ctx);
    await send(pages.alice, 'Any news from radiology?');
    await message(pages.bob, 'Any news from radiology?').waitFor();
    const parent = message(pages.alice, 'Any news from radiology?');
    await parent.hover();
    await parent.locator('[data-testid="thread-action"]').click();
    await send(pages.alice, 'CT is booked for 3pm', THREAD);
    // Bob has no thread open: the parent's "1 reply" appears from message.updated.
    const replies = message(pages.bob, 'Any news from radiology?').locator('[data-testid="replies-count-button"]');
    await replies.filter({ hasText: /1/ }).waitFor();
    await replies.click();
    await message(pages.bob, 'CT is booked for 3pm', THREAD).waitFor();
  });

  it('message search from the stock search box finds a word', async (ctx) => {
    const ids = await seedUsers(suite, ['alice', 'bob']);
    const pharmacy = `Pharmacy ${uid('').slice(1)}`;
    const theatre = `Theatre ${uid('').slice(1)}`;
    const a = await seedChannel(suite, { name: pharmacy, members: [ids.alice, ids.bob], createdBy: ids.bob });
    const b = await seedChannel(suite, { name: theatre, members: [ids.alice, ids.bob], createdBy: ids.bob });
    await a.sendMessage({ text: 'Warfarin stock is low', user_id: ids.bob });
    await a.sendMessage({ text: 'Order placed', user_id: ids.bob });
    await b.sendMessage({ text: 'Heparin arrived', user_id: ids.bob });
    const page = await ctx.open(ids.alice);
    await channelItem(page, theatre).waitFor();
    await page.locator('[data-testid="search-input"]').fill('warfarin');
    // The stock search box searches channels first; the person picks the "messages" source.
    await page.locator('[data-testid="filter-source-buttons"] button[aria-label$=": messages"]').click();
    await page.locator('[data-testid="search-footer"]', { hasText: 'All results loaded' }).waitFor();
    // stream-chat-react 14 shows a message hit as its channel (title and latest message), so
    // the hit is told by its channel: one result, in the pharmacy channel.
    const results = page.locator('.str-chat__search-result');
    assert.deepEqual(
      (await results.locator('.str-chat__channel-list-item-data__title').allInnerTexts()).map((t) => t.trim()),
      [pharmacy],
    );
    await results.first().click();
    await page.locator('.str-chat__channel-header', { hasText: pharmacy }).waitFor();
    await message(page, 'Warfarin stock is low').waitFor();
  });

  it('a message is edited, then deleted, and the other person sees both', async (ctx) => {
    const { pages } = await pair(ctx);
    await send(pages.alice, 'Give 5mg at 18:00');
    await message(pages.bob, 'Give 5mg at 18:00').waitFor();

    await openMessageActions(pages.alice, message(pages.alice, 'Give 5mg at 18:00'));
    await chooseMenu(pages.alice, 'Edit Message');
    const input = pages.alice.locator(`${MAIN} [data-testid="message-input"]`);
    await pages.alice.waitForFunction((sel) => document.querySelector(sel)?.value === 'Give 5mg at 18:00', `${MAIN} [data-testid="message-input"]`);
    await input.fill('Give 2.5mg at 18:00');
    await input.press('Enter');
    for (const page of [pages.alice, pages.bob]) {
      await message(page, 'Give 2.5mg at 18:00').waitFor();
    }
    assert.equal(await message(pages.bob, 'Give 5mg at 18:00').count(), 0);

    await openMessageActions(pages.alice, message(pages.alice, 'Give 2.5mg at 18:00'));
    await chooseMenu(pages.alice, 'Delete message');
    await pages.alice.locator('[data-testid="delete-message-alert-delete-button"]').click();
    for (const page of [pages.alice, pages.bob]) {
      await page.locator(`${MAIN} [data-testid="message-deleted-bubble"]`).waitFor();
      await message(page, 'Give 2.5mg at 18:00').waitFor({ state: 'detached' });
    }
  });

  it('an edited message is labelled "Edited" for the other person', async (ctx) => {
    const { pages, ids, ch } = await pair(ctx);
    const { message: m } = await ch.sendMessage({ text: 'Ward round at 9', user_id: ids.alice });
    await message(pages.bob, 'Ward round at 9').waitFor();
    await ch.getClient().updateMessage({ id: m.id, text: 'Ward round at 10' }, ids.alice);
    await message(pages.bob, 'Ward round at 10').locator('[data-testid="message-edited-indicator"]').waitFor();
  });

  it('file and image upload, then download', async (ctx) => {
    const { pages, ids } = await pair(ctx);
    const image = png();
    const pdf = Buffer.from(`%PDF-1.4\n% ward e2e ${ids.alice}\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n`);
    await pages.alice.locator(`${MAIN} [data-testid="file-input"]`).setInputFiles([
      { name: 'wound.png', mimeType: 'image/png', buffer: image },
      { name: 'labs.pdf', mimeType: 'application/pdf', buffer: pdf },
    ]);
    // Both previews show and their uploads finish (no progress indicator left, the send
    // button enabled), then the message is sent.
    await pages.alice.locator(`${MAIN} [data-testid="attachment-preview-list"]`).waitFor();
    const input = pages.alice.locator(`${MAIN} [data-testid="message-input"]`);
    await input.fill('Wound photo and labs');
    await pages.alice.waitForFunction((main) => {
      const button = document.querySelector(`${main} [data-testid="send-button"]`);
      return button && !button.disabled && !document.querySelector(`${main} [data-testid="attachment-upload-progress"]`);
    }, MAIN);
    await input.press('Enter');

    const msg = message(pages.bob, 'Wound photo and labs');
    await msg.waitFor();
    const img = msg.locator('img[data-testid="image-test"], .str-chat__message-attachment img').first();
    await img.waitFor();
    await pages.bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    const file = msg.locator('[data-testid="attachment-file"]');
    await file.locator('[data-testid="file-title"]', { hasText: 'labs.pdf' }).waitFor();
    const href = await file.locator('a[href]').first().getAttribute('href');
    const res = await fetch(href);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), pdf);
  });

  it('opening a channel marks it read, for the reader and for the sender', async (ctx) => {
    const ids = await seedUsers(suite, ['alice', 'bob']);
    const unread = `Ward 3 nurses ${uid('').slice(1)}`;
    const other = `Pharmacy ${uid('').slice(1)}`;
    const ch = await seedChannel(suite, { name: unread, members: [ids.alice, ids.bob], createdBy: ids.bob });
    const top = await seedChannel(suite, { name: other, members: [ids.alice, ids.bob], createdBy: ids.alice });
    await top.sendMessage({ text: 'Order placed', user_id: ids.alice });

    const alice = await ctx.open(ids.alice);
    const bob = await ctx.open(ids.bob);
    await openChannel(bob, unread);
    await send(bob, 'Please check the fridge log');
    await send(bob, 'Temperature was 9 degrees');
    const item = channelItem(alice, unread);
    await item.locator('[data-testid="unread-badge"]', { hasText: /^\s*2\s*$/ }).waitFor();

    // Alice opens it: her badge goes, and Bob's last message turns "read".
    await openChannel(alice, unread);
    await message(alice, 'Temperature was 9 degrees').waitFor();
    await item.locator('[data-testid="unread-badge"]').waitFor({ state: 'detached' });
    await message(bob, 'Temperature was 9 degrees').locator('[data-testid="message-status-read-by"]').waitFor();

    // It holds after a reload (the read state is stored).
    await alice.reload();
    await channelItem(alice, unread).waitFor();
    assert.equal(await channelItem(alice, unread).locator('[data-testid="unread-badge"]').count(), 0);
    const read = await ch.query({ state: true });
    assert.ok(read.read.some((r) => r.user.id === ids.alice && r.unread_messages === 0));
  });

  it('pin and archive a channel from the channel list', async (ctx) => {
    const ids = await seedUsers(suite, ['alice', 'bob']);
    const first = `Ward 3 nurses ${uid('').slice(1)}`;
    const second = `Pharmacy ${uid('').slice(1)}`;
    await seedChannel(suite, { name: first, members: [ids.alice, ids.bob], createdBy: ids.bob });
    await seedChannel(suite, { name: second, members: [ids.alice, ids.bob], createdBy: ids.bob });
    const page = await ctx.open(ids.alice);

    const action = async (name, testid) => {
      const item = page.locator('.str-chat__channel-list-item-container', { has: channelItem(page, name) });
      await item.hover();
      await item.locator('[data-testid="channel-list-item-dropdown-toggle"]').click();
      // The stock menu overflows the list and the channel panel covers its right part (the
      // list's transform makes the fixed menu stack under it): click the visible left part.
      await page.locator(`[data-testid="${testid}"]`).click({ position: { x: 24, y: 12 } });
    };
    await action(first, 'dropdown-action-pin');
    await page.locator('[data-testid="notification"]', { hasText: 'Channel pinned' }).waitFor();
    await page.locator('.str-chat__channel-list-item--pinned', { hasText: first }).waitFor();

    await action(second, 'dropdown-action-archive');
    await page.locator('[data-testid="notification"]', { hasText: 'Channel archived' }).waitFor();

    // Both are stored on the membership: after a reload the pin shows, and the archived
    // channel offers "Unarchive".
    await page.reload();
    await page.locator('.str-chat__channel-list-item--pinned', { hasText: first }).waitFor();
    const item = page.locator('.str-chat__channel-list-item-container', { has: channelItem(page, second) });
    await item.hover();
    await item.locator('[data-testid="channel-list-item-dropdown-toggle"]').click();
    await page.locator('[data-testid="dropdown-action-archive"]', { hasText: 'Unarchive' }).waitFor();
  });

  it('after a reload and after going offline and online, nothing is missed', async (ctx) => {
    const { pages, name, ids, ch } = await pair(ctx);
    await send(pages.alice, 'Before the reload');
    await pages.bob.reload();
    await openChannel(pages.bob, name);
    await message(pages.bob, 'Before the reload').waitFor();

    // Bob's network goes away (the SDK sees the browser go offline); Alice writes meanwhile;
    // once online, the SDK reconnects and recovers its channels (connection.recovered).
    await pages.bob.evaluate(() => {
      const e2e = window.wardE2E;
      e2e.changes = [];
      e2e.client.on('connection.changed', (e) => e2e.changes.push(e.online ? 'online' : 'offline'));
      e2e.client.on('connection.recovered', () => e2e.changes.push('recovered'));
    });
    await pages.bob.context().setOffline(true);
    await pages.bob.waitForFunction(() => window.wardE2E.changes.includes('offline'));
    await send(pages.alice, 'Sent while Bob was offline');
    await pages.bob.context().setOffline(false);
    await pages.bob.waitForFunction(() => window.wardE2E.changes.includes('recovered'), null, { timeout: UI_TIMEOUT_MS * 2 });
    await message(pages.bob, 'Sent while Bob was offline').waitFor();
    // And live delivery works again on the new connection.
    await ch.sendMessage({ text: 'After the recovery', user_id: ids.alice });
    await message(pages.bob, 'After the recovery').waitFor();
  });

  test('every entry of pending.js names a scenario of this file', () => {
    assert.deepEqual(unknownPending(), []);
  });
});
