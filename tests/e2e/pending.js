// Scenarios whose server feature is not on main yet (issue 16, built on other branches).
// Each is skipped here with the reason below, so main stays green; `WARD_E2E_PENDING=1`
// runs them anyway as `todo` (failures reported, not fatal). When a feature lands, delete
// its line: the scenario then runs and must pass.
export const PENDING = {
  'who reacted: the reactions list names the reactors': 'needs POST /messages/{id}/reactions (issue 16 item 5)',
  'a thread reply updates the reply count live for the other user': 'needs message.updated for the parent with reply_count (issue 16 item 2)',
  'message search from the stock search box finds a word': 'needs search by word in message_filter_conditions.text (issue 16 item 6)',
  'file and image upload, then download': 'needs uploads and the upload-file capability (issue 16 item 1)',
  // Found by this suite, outside issue 16's list (see the report of the e2e branch):
  "the reactor's own count includes their reaction":
    'needs the message in reaction.new and the reaction reply to carry a new updated_at (stream-chat-react keeps a Message whose updated_at and reaction list lengths did not change)',
  'an edited message is labelled "Edited" for the other person': 'needs message_text_updated_at on edited messages',
  'pin and archive a channel from the channel list': 'needs PATCH /channels/{type}/{id}/member/{user_id} (issue 16 item 4)',
};
