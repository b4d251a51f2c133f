// What a person does in the stock UI, as locators and actions on a Playwright page. The
// selectors are the stock components' own classes and data-testids (stream-chat-react 14).

export const MAIN = '.str-chat__main-panel';
export const THREAD = '.str-chat__thread';

/** The channel list item whose title is `name`. */
export const channelItem = (page, name) =>
  page.locator('.str-chat__channel-list-item', { has: page.locator('.str-chat__channel-list-item-data__title', { hasText: name }) });

/** Opens a channel by clicking it in the list; waits for its header. */
export async function openChannel(page, name) {
  await channelItem(page, name).click();
  await page.locator('.str-chat__channel-header', { hasText: name }).waitFor();
}

/** A message bubble of the main list (or of `scope`) that contains `text`. */
export const message = (page, text, scope = MAIN) => page.locator(`${scope} .str-chat__message`, { hasText: text });

/**
 * Types `text` into the composer of `scope` and sends it with Enter; waits until the server
 * has it (the bubble leaves its optimistic "sending" state), so that messages sent one after
 * the other are stored in that order.
 */
export async function send(page, text, scope = MAIN) {
  const input = page.locator(`${scope} [data-testid="message-input"]`);
  await input.fill(text);
  await input.press('Enter');
  await page.locator(`${scope} .str-chat__message.str-chat__message--received`, { hasText: text }).waitFor();
}

/** Opens the actions menu of a message (hover, then the "…" button). */
export async function openMessageActions(page, msg) {
  await msg.hover();
  await msg.locator('[data-testid="message-actions-toggle-button"]').click();
}

/** Clicks an entry of the open context menu by its visible label. */
export async function chooseMenu(page, label) {
  await page.locator('.str-chat__context-menu button, [role="menu"] button', { hasText: label }).first().click();
}
