// The browser app of the e2e suite: the stock stream-chat-react components, no
// customisation, wired to a `ward serve` whose address and credentials come in the page's
// fragment (never sent to the static server):
//   index.html#key=<api key>&base=<ward base URL>&user=<user id>&token=<user token>
// `window.wardE2E` exposes the client and a ready flag so the tests can tell "connected"
// from "still loading"; everything the tests check, they check in the DOM.
import React from 'react';
import { createRoot } from 'react-dom/client';
import { StreamChat } from 'stream-chat';
import {
  Channel,
  ChannelHeader,
  ChannelList,
  Chat,
  MessageComposer,
  MessageList,
  Thread,
  Window,
} from 'stream-chat-react';
import 'stream-chat-react/css/index.css';

const params = new URLSearchParams(window.location.hash.slice(1));
const apiKey = params.get('key');
const baseURL = params.get('base');
const userId = params.get('user');
const token = params.get('token');

const client = new StreamChat(apiKey, { baseURL });
window.wardE2E = { client, ready: false, error: null };

const filters = { type: 'messaging', members: { $in: [userId] } };
const sort = { last_message_at: -1 };

function App() {
  return (
    <Chat client={client}>
      <div className='app'>
        <ChannelList filters={filters} sort={sort} showChannelSearch />
        <Channel>
          <Window>
            <ChannelHeader />
            <MessageList />
            <MessageComposer />
          </Window>
          <Thread />
        </Channel>
      </div>
    </Chat>
  );
}

client
  .connectUser({ id: userId }, token)
  .then(() => {
    window.wardE2E.ready = true;
    createRoot(document.getElementById('root')).render(<App />);
  })
  .catch((err) => {
    window.wardE2E.error = String(err?.message || err);
  });
