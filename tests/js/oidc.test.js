// OpenID Connect login against real providers on loopback: npm `oidc-provider` as a
// well-behaved OP (the test plays the browser: cookies, redirects, and the login and consent
// interactions through oidc-provider's interaction API, no HTML), and a rogue OP (node http +
// jose) whose token endpoint answers ID tokens signed with its real key but wrong in one way
// each. A good login provisions the user with the role its groups map to, sets the session
// cookie, and the session mints a Stream token the real SDK connects with. Every refusal is a
// 401 without a session, and an `auth.login_failed` audit entry with its reason code.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';
import { SignJWT, UnsecuredJWT, exportJWK, importJWK } from 'jose';
import { JWTServerToken } from 'stream-chat';

import { disconnectAll, newClient, poll, serverClient, startServer, tokenFor, uid, upsertUsers } from './harness.js';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (s) => createHash('sha256').update(s).digest();

/** A free loopback port: Ward's redirect URI (WARD_PUBLIC_URL) must be known before it starts. */
async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function listen(server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return `http://127.0.0.1:${server.address().port}`;
}

/**
 * A minimal browser: a cookie jar (per host, as browsers do: ports share cookies; Path and
 * Max-Age/Expires honoured) and manual redirects.
 */
class Browser {
  constructor() {
    this.cookies = new Map(); // `${host}\t${name}` -> { name, value, path }
  }

  keep(url, res) {
    const host = new URL(url).hostname;
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = '/';
      let gone = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v;
        if (key === 'max-age' && Number(v) <= 0) gone = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) gone = true;
      }
      const id = `${host}\t${name}`;
      if (gone) this.cookies.delete(id);
      else this.cookies.set(id, { host, name, value, path });
    }
  }

  cookieHeader(url) {
    const u = new URL(url);
    return [...this.cookies.values()]
      .filter((c) => c.host === u.hostname && u.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  cookie(url, name) {
    return this.cookies.get(`${new URL(url).hostname}\t${name}`)?.value;
  }

  async request(url, { method = 'GET', headers = {}, body } = {}) {
    const cookie = this.cookieHeader(url);
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...headers },
      body,
    });
    this.keep(url, res);
    return res;
  }

  /** Follows redirects from `url` and stops (without requesting it) at the first URL for which `stop` holds. */
  async followUntil(url, stop) {
    for (let hops = 0; hops < 20; hops++) {
      if (stop(url)) return url;
      const res = await this.request(url);
      const text = await res.text();
      if (res.status < 300 || res.status >= 400) {
        throw new Error(`stopped at ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
      }
      url = new URL(res.headers.get('location'), url).href;
    }
    throw new Error('too many redirects');
  }
}

/** npm oidc-provider with one client (Ward), accounts by id, and interactions finished by code. */
async function startGoodOp({ redirectUri, clientId, clientSecret }) {
  const accounts = new Map();
  let provider;
  const server = createServer(async (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      provider.callback()(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      const { prompt, params, session } = details;
      let result;
      if (prompt.name === 'login') {
        const accountId = String(params.login_hint);
        result = accounts.get(accountId)?.deny
          ? { error: 'access_denied', error_description: 'the user said no' }
          : { login: { accountId } };
      } else {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
        if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
        for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
        result = { consent: { grantId: await grant.save() } };
      }
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: prompt.name !== 'login' });
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err));
    }
  });
  const issuer = await listen(server);
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'good-1', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    findAccount: async (_ctx, id) => {
      const a = accounts.get(id);
      return a && { accountId: id, claims: async () => ({ sub: id, ...a.claims }) };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: 600, Grant: 600, IdToken: 600, Interaction: 600, Session: 600 },
    features: { devInteractions: { enabled: false } },
  });
  // oidc-provider logs server errors it answers with; they are expected in the error tests.
  provider.on('server_error', () => {});
  return {
    issuer,
    accounts,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * A rogue OP: real discovery, JWKS and signature, and an authorization endpoint that answers
 * at once; `mode` decides what its next ID token gets wrong. It checks Ward's PKCE (S256)
 * and redirect URI like a real OP would.
 */
async function startRogueOp({ redirectUri, clientId, clientSecret }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { privateKey: strangerKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'rogue-1', use: 'sig', alg: 'RS256' };
  const key = await importJWK({ ...privateKey.export({ format: 'jwk' }), alg: 'RS256' }, 'RS256');
  const stranger = await importJWK({ ...strangerKey.export({ format: 'jwk' }), alg: 'RS256' }, 'RS256');
  const codes = new Map();
  const op = { mode: 'ok', sub: 'mallory', pkceSeen: [] };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, op.issuer);
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: op.issuer,
        authorization_endpoint: `${op.issuer}/authorize`,
        token_endpoint: `${op.issuer}/token`,
        jwks_uri: `${op.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('redirect_uri') !== redirectUri || q.get('client_id') !== clientId) {
        return json(400, { error: 'invalid_request' });
      }
      op.pkceSeen.push(q.get('code_challenge_method'));
      const code = b64url(randomBytes(16));
      codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge') });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      res.writeHead(303, { location: back.href });
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
      if (req.headers.authorization !== basic) return json(401, { error: 'invalid_client' });
      const grant = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      if (!grant || b64url(sha256(form.get('code_verifier') || '')) !== grant.challenge) {
        return json(400, { error: 'invalid_grant' });
      }
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        sub: op.sub,
        name: 'Mallory',
        nonce: grant.nonce,
        ...(op.mode === 'wrong_nonce' ? { nonce: b64url(randomBytes(16)) } : {}),
      };
      const aud = { wrong_aud: 'someone-else', extra_aud: [clientId, 'someone-else'] }[op.mode] ?? clientId;
      const [iat, exp] = op.mode === 'expired' ? [now - 600, now - 300] : [now, now + 300];
      let idToken;
      if (op.mode === 'alg_none') {
        idToken = new UnsecuredJWT(claims).setIssuer(op.issuer).setAudience(aud).setIssuedAt(iat).setExpirationTime(exp).encode();
      } else {
        const [alg, kid, signer] = {
          hs256: ['HS256', undefined, new TextEncoder().encode(clientSecret)],
          stranger: ['RS256', 'rogue-2', stranger],
        }[op.mode] ?? ['RS256', 'rogue-1', key];
        idToken = await new SignJWT(claims)
          .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
          .setIssuer(op.issuer)
          .setAudience(aud)
          .setIssuedAt(iat)
          .setExpirationTime(exp)
          .sign(signer);
      }
      return json(200, { access_token: b64url(randomBytes(16)), token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    return json(404, { error: 'not_found' });
  });
  op.issuer = await listen(server);
  op.close = () => new Promise((resolve) => server.close(resolve));
  return op;
}

describe('OpenID Connect login', () => {
  let srv;
  let good;
  let rogue;
  let auditorToken;
  const clients = [];
  const secret = `oidc-secret-${randomBytes(8).toString('hex')}`;
  const callback = (id) => `${srv.baseURL}/auth/oidc/${id}/callback`;

  async function putProvider(id, body) {
    const res = await fetch(`${srv.baseURL}/admin/sso/providers/${id}?api_key=${srv.apiKey}`, {
      method: 'PUT',
      headers: { Authorization: JWTServerToken(srv.secret), 'stream-auth-type': 'jwt', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `PUT /admin/sso/providers/${id}: ${text}`);
  }

  before(async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    srv = await startServer({ env: { WARD_BIND: `127.0.0.1:${port}`, WARD_PUBLIC_URL: publicUrl } });
    good = await startGoodOp({ redirectUri: callback('corp'), clientId: 'ward-corp', clientSecret: secret });
    rogue = await startRogueOp({ redirectUri: callback('rogue'), clientId: 'ward-rogue', clientSecret: secret });
    await putProvider('corp', {
      kind: 'oidc',
      name: 'Corp IdP',
      enabled: true,
      secret,
      config: {
        issuer: good.issuer,
        client_id: 'ward-corp',
        scopes: ['openid', 'email', 'profile', 'groups'],
        user_id_claim: 'email',
        role_claim: 'groups',
        role_map: { 'chat-mods': 'moderator', 'chat-admins': 'admin' },
        default_role: 'user',
      },
    });
    await putProvider('rogue', {
      kind: 'oidc',
      name: 'Rogue IdP',
      enabled: true,
      secret,
      config: { issuer: rogue.issuer, client_id: 'ward-rogue', user_id_prefix: 'rogue-' },
    });
    await putProvider('off', {
      kind: 'oidc',
      name: 'Disabled IdP',
      enabled: false,
      config: { issuer: good.issuer, client_id: 'ward-corp' },
    });
    const auditor = uid('auditor');
    await upsertUsers(srv, [{ id: auditor, role: 'auditor' }]);
    auditorToken = tokenFor(srv, auditor);
  });

  after(async () => {
    await disconnectAll(clients);
    await srv?.stop();
    await good?.close();
    await rogue?.close();
  });

  /** A fresh account at the good OP; `login_hint` tells the test's interaction who logs in. */
  function account({ groups = [], deny = false } = {}) {
    const id = uid('acct');
    const email = `${id}.Smith+chat@Example.com`;
    good.accounts.set(id, { deny, claims: { email, email_verified: true, name: `Name ${id}`, groups } });
    return { id, email, wardId: `${id}.smith_chat@example.com` };
  }

  /** Starts a login at Ward and plays the browser through the OP up to Ward's callback URL. */
  async function toCallback(browser, providerId, { hint, returnTo } = {}) {
    const start = new URL(`${srv.baseURL}/auth/oidc/${providerId}/login`);
    if (returnTo) start.searchParams.set('return_to', returnTo);
    const first = await browser.request(start.href);
    assert.equal(first.status, 303, await first.text());
    assert.ok(browser.cookie(srv.baseURL, 'ward_oidc_state'), 'the flow cookie is set');
    const authorize = new URL(first.headers.get('location'));
    if (hint) authorize.searchParams.set('login_hint', hint);
    return browser.followUntil(authorize.href, (u) => u.startsWith(callback(providerId)));
  }

  async function chatToken(browser) {
    const res = await browser.request(`${srv.baseURL}/auth/chat-token`, { method: 'POST' });
    return { status: res.status, body: await res.json() };
  }

  /** The `auth.login_failed` entries of the audit log, read as an auditor. */
  async function loginFailures() {
    const res = await fetch(`${srv.baseURL}/audit/entries?api_key=${srv.apiKey}&action=auth.login_failed&limit=1000`, {
      headers: { Authorization: auditorToken, 'stream-auth-type': 'jwt' },
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.entries;
  }

  /**
   * Sends a callback that must be refused: 401 with the reason, no session cookie, no usable
   * session, and a new `auth.login_failed` entry carrying the reason code and nothing else.
   */
  async function assertRefused(browser, send, providerId, reason) {
    const mark = Math.max(0, ...(await loginFailures()).map((e) => e.seq));
    const res = await send();
    const body = await res.json();
    assert.equal(res.status, 401, JSON.stringify(body));
    assert.equal(body.StatusCode, 401);
    assert.ok(body.message.includes(reason), `reason ${reason} in ${body.message}`);
    assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('ward_session=')), 'no session cookie');
    assert.equal(browser.cookie(srv.baseURL, 'ward_session'), undefined);
    assert.equal((await chatToken(browser)).status, 401, 'no session');
    const [entry] = await poll(
      `a new auth.login_failed entry for ${providerId} (${reason})`,
      async () => (await loginFailures()).filter((e) => e.seq > mark),
      (found) => found.length > 0,
    );
    assert.equal(entry.outcome, 'failed');
    assert.deepEqual(entry.meta, { method: 'oidc', outcome: 'failed', provider: providerId, reason });
  }

  test('full login: JIT user with the mapped role, session cookie, chat token, SDK connects', async () => {
    const acct = account({ groups: ['staff', 'chat-mods'] });
    const browser = new Browser();
    const back = await toCallback(browser, 'corp', { hint: acct.id, returnTo: '/app/home?tab=1' });
    assert.ok(new URL(back).searchParams.get('code'), 'the OP answered with a code');
    assert.equal(new URL(back).searchParams.get('iss'), good.issuer, 'RFC 9207 iss is present');

    const res = await browser.request(back);
    assert.equal(res.status, 303, await res.text());
    assert.equal(res.headers.get('location'), '/app/home?tab=1');
    const session = browser.cookie(srv.baseURL, 'ward_session');
    assert.ok(session, 'ward_session is set');
    assert.ok(res.headers.getSetCookie().some((c) => c.startsWith('ward_session=') && /HttpOnly/i.test(c)));
    assert.equal(browser.cookie(srv.baseURL, 'ward_oidc_state'), undefined, 'the flow cookie is cleared');

    const { users } = await serverClient(srv).queryUsers({ id: { $eq: acct.wardId } });
    assert.equal(users.length, 1, `user ${acct.wardId} was provisioned`);
    assert.equal(users[0].role, 'moderator', 'chat-mods maps to moderator');
    assert.equal(users[0].name, `Name ${acct.id}`);

    const minted = await chatToken(browser);
    assert.equal(minted.status, 201, JSON.stringify(minted.body));
    assert.equal(minted.body.user_id, acct.wardId);
    const client = newClient(srv);
    clients.push(client);
    const hello = await client.connectUser({ id: acct.wardId }, minted.body.token);
    assert.equal(hello.me.id, acct.wardId);
    assert.equal(hello.me.role, 'moderator');
  });

  test('without return_to the callback answers JSON; the IdP dropping a group demotes at the next login', async () => {
    const acct = account({ groups: ['chat-admins', 'chat-mods'] });
    let browser = new Browser();
    let res = await browser.request(await toCallback(browser, 'corp', { hint: acct.id }));
    let body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.user, { id: acct.wardId, role: 'admin' });
    assert.equal(body.mfa_required, true, 'admins must verify a second factor');

    good.accounts.get(acct.id).claims.groups = ['staff'];
    browser = new Browser();
    res = await browser.request(await toCallback(browser, 'corp', { hint: acct.id }));
    body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.user, { id: acct.wardId, role: 'user' }, 'no mapped group: default_role');
    assert.equal((await chatToken(browser)).status, 201);
  });

  test('a tampered state is refused', async () => {
    const acct = account({ groups: ['chat-mods'] });
    const browser = new Browser();
    const back = new URL(await toCallback(browser, 'corp', { hint: acct.id }));
    back.searchParams.set('state', b64url(randomBytes(16)));
    await assertRefused(browser, () => browser.request(back.href), 'corp', 'state_mismatch');
  });

  test('a callback from another browser (no flow cookie: login CSRF) is refused', async () => {
    const acct = account({ groups: ['chat-mods'] });
    const attacker = new Browser();
    const back = await toCallback(attacker, 'corp', { hint: acct.id });
    const victim = new Browser();
    await assertRefused(victim, () => victim.request(back), 'corp', 'state_mismatch');
  });

  test('a callback is good once: replaying it is refused', async () => {
    const acct = account({ groups: ['chat-mods'] });
    const browser = new Browser();
    const back = await toCallback(browser, 'corp', { hint: acct.id });
    const state = browser.cookie(srv.baseURL, 'ward_oidc_state');
    assert.equal((await browser.request(back)).status, 200);
    const replay = new Browser();
    const again = () => replay.request(back, { headers: { cookie: `ward_oidc_state=${state}` } });
    await assertRefused(replay, again, 'corp', 'state_unknown');
  });

  test('an IdP error (the user denies) is a 401 and is audited', async () => {
    const acct = account({ deny: true });
    const browser = new Browser();
    const back = new URL(await toCallback(browser, 'corp', { hint: acct.id }));
    assert.equal(back.searchParams.get('error'), 'access_denied');
    await assertRefused(browser, () => browser.request(back.href), 'corp', 'idp_error');
  });

  test('the rogue OP answering a well-formed token logs in (control for the cases below)', async () => {
    rogue.mode = 'ok';
    const browser = new Browser();
    const res = await browser.request(await toCallback(browser, 'rogue'));
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.deepEqual(body.user, { id: 'rogue-mallory', role: 'user' });
    assert.ok(rogue.pkceSeen.length > 0 && rogue.pkceSeen.every((m) => m === 'S256'), 'PKCE S256 is always sent');
  });

  for (const [mode, reason, what] of [
    ['wrong_nonce', 'nonce_mismatch', 'an ID token with another nonce'],
    ['expired', 'id_token_expired', 'an expired ID token'],
    ['wrong_aud', 'audience_mismatch', 'an ID token for another audience'],
    ['extra_aud', 'audience_mismatch', 'an ID token with an untrusted extra audience'],
    ['alg_none', 'signature_invalid', 'an unsigned (alg none) ID token'],
    ['hs256', 'signature_invalid', 'an HS256 ID token the provider does not list'],
    ['stranger', 'signature_invalid', 'an ID token signed by a key not in the JWKS'],
  ]) {
    test(`${what} is refused (${reason})`, async () => {
      rogue.mode = mode;
      const browser = new Browser();
      const back = await toCallback(browser, 'rogue');
      await assertRefused(browser, () => browser.request(back), 'rogue', reason);
    });
  }

  test('unknown and disabled providers are 404; return_to must be local', async () => {
    for (const id of ['nope', 'off']) {
      for (const path of ['login', 'callback?code=x&state=y']) {
        const res = await fetch(`${srv.baseURL}/auth/oidc/${id}/${path}`, { redirect: 'manual' });
        const body = await res.json();
        assert.equal(res.status, 404, `${id}/${path}: ${JSON.stringify(body)}`);
        assert.equal(body.code, 16);
      }
    }
    for (const target of ['https://evil.example/', '//evil.example/x', '/\\evil.example']) {
      const res = await fetch(`${srv.baseURL}/auth/oidc/corp/login?return_to=${encodeURIComponent(target)}`, { redirect: 'manual' });
      assert.equal(res.status, 400, target);
    }
  });
});
