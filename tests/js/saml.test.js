// SAML 2.0 login and logout against a real IdP on loopback: npm `samlify` acting as the IdP
// (its own XML signature stack, xml-crypto, independent of Ward's samael/xmlsec), with the
// test playing the browser: it follows Ward's redirect to the IdP's SSO URL, reads the
// auto-submitting form the IdP answers with, posts it to Ward's ACS, and keeps cookies.
// Ward has an SP key here, so its AuthnRequest and LogoutRequest are signed and the IdP
// checks them against Ward's SP metadata. A good login provisions the user with the role
// their groups map to; a response changed after signing is refused and audited; logout
// revokes the session, goes through the IdP's SLO endpoint and comes back.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import samlify from 'samlify';
import { JWTServerToken } from 'stream-chat';

import { poll, serverClient, startServer, tokenFor, uid, upsertUsers } from './harness.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name) => readFileSync(path.join(HERE, 'fixtures', 'saml', name), 'utf8');
const { binding } = samlify.Constants.namespace;
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

// The messages here come from Ward or the test itself; samlify's XSD check needs a JVM or
// WASM xmllint that the suite does not ship.
samlify.setSchemaValidator({ validate: async () => 'skipped' });

/** A free loopback port: Ward's entity id and ACS URL (WARD_PUBLIC_URL) are fixed at start. */
async function freePort() {
  const s = createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** A browser: one cookie jar per origin, redirects followed by hand. */
class Browser {
  constructor() {
    this.jars = new Map();
  }

  cookie(url, name) {
    return this.jars.get(new URL(url).origin)?.get(name);
  }

  async request(url, { method = 'GET', form } = {}) {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map();
    this.jars.set(origin, jar);
    const headers = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const gone = attrs.some((a) => /^max-age=0$/i.test(a));
      if (gone) jar.delete(pair.slice(0, eq));
      else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res;
  }
}

/** The hidden fields and action of the IdP's auto-submitting POST form. */
function readForm(html) {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[m[1]] = m[2];
  assert.ok(action && fields.SAMLResponse, `an auto-submitting form: ${html.slice(0, 300)}`);
  return { action, fields };
}

/** The IdP: samlify behind a small HTTP server with SSO and SLO endpoints (HTTP-Redirect). */
async function startIdp() {
  const idp = { next: null, sp: null, sessions: [] };
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url, idp.base);
      const query = Object.fromEntries(url.searchParams);
      // The signed octets of the Redirect binding: the query as received, minus Signature.
      const octetString = url.search
        .slice(1)
        .split('&')
        .filter((p) => !p.startsWith('Signature='))
        .join('&');
      if (url.pathname === '/sso') {
        const request = await idp.entity.parseLoginRequest(idp.sp, 'redirect', { query, octetString });
        const user = idp.next;
        const entity = idp.encrypt ? idp.encrypting : idp.entity;
        const response = await entity.createLoginResponse(idp.sp, request, 'post', user, {
          relayState: query.RelayState,
          customTagReplacement: (template) => loginResponse(idp, template, request, user),
        });
        const { entityEndpoint } = response;
        const context = idp.encrypt ? signResponse(idp, response.context) : response.context;
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(
          `<html><body onload="document.forms[0].submit()"><form method="post" action="${entityEndpoint}">` +
            `<input type="hidden" name="SAMLResponse" value="${context}"/>` +
            `<input type="hidden" name="RelayState" value="${query.RelayState ?? ''}"/></form></body></html>`,
        );
      } else if (url.pathname === '/slo') {
        const request = await idp.entity.parseLogoutRequest(idp.sp, 'redirect', { query, octetString });
        idp.sessions.push(request.extract);
        const { context } = idp.entity.createLogoutResponse(idp.sp, request, 'redirect', query.RelayState ?? '');
        res.writeHead(302, { location: context });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`IdP refused: ${err?.message ?? err}`);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  idp.base = `http://127.0.0.1:${server.address().port}`;
  const settings = {
    entityID: `${idp.base}/metadata`,
    signingCert: fixture('idp-test-only.crt'),
    privateKey: fixture('idp-test-only.key'),
    requestSignatureAlgorithm: RSA_SHA256,
    wantAuthnRequestsSigned: true,
    wantLogoutRequestSigned: true,
    nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
    singleSignOnService: [{ Binding: binding.redirect, Location: `${idp.base}/sso` }],
    singleLogoutService: [{ Binding: binding.redirect, Location: `${idp.base}/slo` }],
  };
  idp.entity = samlify.IdentityProvider(settings);
  idp.encrypting = samlify.IdentityProvider({
    ...settings,
    isAssertionEncrypted: true,
    dataEncryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
    keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  });
  idp.close = () => new Promise((resolve) => server.close(resolve));
  return idp;
}

/**
 * Encrypted assertions: samlify has signed the assertion and encrypted it for Ward's SP
 * certificate; the Response is then signed over the ciphertext (Ward requires that of
 * encrypted assertions). samael 0.0.22 only parses an EncryptedData whose KeyInfo declares
 * the `ds` prefix, as Shibboleth and Okta write it; xml-encryption uses a default namespace
 * there, so the declaration is added before the Response is signed.
 */
function signResponse(idp, base64) {
  const xml = Buffer.from(base64, 'base64')
    .toString('utf8')
    .replace(
      '<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#">',
      '<KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">',
    );
  return samlify.SamlLib.constructSAMLSignature({
    rawSamlMessage: xml,
    privateKey: fixture('idp-test-only.key'),
    signatureAlgorithm: RSA_SHA256,
    signingCert: idp.entity.entityMeta.getX509Certificate('signing'),
    isMessageSigned: true,
    signatureConfig: {
      prefix: 'ds',
      location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Issuer']", action: 'after' },
    },
  });
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** samlify's default Response template with an AuthnStatement (SessionIndex) and attributes. */
function loginResponse(idp, template, request, user) {
  const sp = idp.sp.entityMeta;
  const now = new Date();
  const later = new Date(now.getTime() + 5 * 60_000).toISOString();
  const id = `_${uid('r')}`;
  const acs = sp.getAssertionConsumerService('post');
  const values = (vs) =>
    vs.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('');
  const attributes =
    '<saml:AttributeStatement>' +
    `<saml:Attribute Name="groups">${values(user.groups)}</saml:Attribute>` +
    `<saml:Attribute Name="displayName">${values([user.name])}</saml:Attribute>` +
    '</saml:AttributeStatement>';
  const authn =
    `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="_${uid('s')}">` +
    '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport' +
    '</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>';
  const context = samlify.SamlLib.replaceTagsByValue(
    template.replace('{AuthnStatement}', authn).replace('{AttributeStatement}', attributes),
    {
      ID: id,
      AssertionID: `_${uid('a')}`,
      Destination: acs,
      Audience: sp.getEntityID(),
      SubjectRecipient: acs,
      Issuer: idp.entity.entityMeta.getEntityID(),
      IssueInstant: now.toISOString(),
      StatusCode: 'urn:oasis:names:tc:SAML:2.0:status:Success',
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later,
      SubjectConfirmationDataNotOnOrAfter: later,
      NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      NameID: user.email,
      InResponseTo: request.extract.request.id,
    },
  );
  return { id, context };
}

describe('SAML 2.0 login against a samlify IdP', () => {
  let srv;
  let idp;
  let auditorToken;

  before(async () => {
    const port = await freePort();
    srv = await startServer({
      env: { WARD_BIND: `127.0.0.1:${port}`, WARD_PUBLIC_URL: `http://127.0.0.1:${port}` },
    });
    idp = await startIdp();
    const res = await fetch(`${srv.baseURL}/admin/sso/providers/corp?api_key=${srv.apiKey}`, {
      method: 'PUT',
      headers: { Authorization: JWTServerToken(srv.secret), 'stream-auth-type': 'jwt', 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'saml',
        name: 'Corp IdP',
        enabled: true,
        secret: fixture('sp-test-only.key'),
        config: {
          idp_metadata_xml: idp.entity.getMetadata(),
          allow_idp_initiated: false,
          user_id_attribute: null,
          role_attribute: 'groups',
          role_map: { 'chat-mods': 'moderator', 'chat-admins': 'admin' },
          default_role: 'user',
          name_attribute: 'displayName',
          sp_certificate: fixture('sp-test-only.crt'),
        },
      }),
    });
    assert.equal(res.status, 200, await res.text());
    // The IdP knows Ward from Ward's own SP metadata (entity id, ACS, SLO, signing cert).
    const metadata = await fetch(`${srv.baseURL}/auth/saml/corp/metadata`);
    assert.equal(metadata.status, 200);
    const spMetadata = await metadata.text();
    idp.sp = samlify.ServiceProvider({ metadata: spMetadata });
    // The same SP as the IdP sees it when sending a LogoutRequest: Ward wants them signed.
    idp.spWantsSignedLogout = samlify.ServiceProvider({ metadata: spMetadata, wantLogoutRequestSigned: true });
    const auditor = uid('auditor');
    await upsertUsers(srv, [{ id: auditor, role: 'auditor' }]);
    auditorToken = tokenFor(srv, auditor);
  });

  after(async () => {
    await srv?.stop();
    await idp?.close();
  });

  async function loginFailures() {
    const res = await fetch(`${srv.baseURL}/audit/entries?api_key=${srv.apiKey}&action=auth.login_failed&limit=1000`, {
      headers: { Authorization: auditorToken, 'stream-auth-type': 'jwt' },
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.entries;
  }

  /** Ward's login redirect, the IdP's SSO page, and the form the IdP answers with. */
  async function throughIdp(browser, user, returnTo) {
    idp.next = user;
    const start = await browser.request(`${srv.baseURL}/auth/saml/corp/login?return_to=${encodeURIComponent(returnTo)}`);
    assert.equal(start.status, 303, await start.text());
    const toIdp = new URL(start.headers.get('location'));
    assert.equal(toIdp.origin + toIdp.pathname, `${idp.base}/sso`);
    assert.ok(toIdp.searchParams.get('Signature'), 'the AuthnRequest is signed');
    const page = await browser.request(toIdp.href);
    const html = await page.text();
    assert.equal(page.status, 200, html);
    return readForm(html);
  }

  test('login through the IdP: user provisioned with the mapped role, then logout through the IdP', async () => {
    const email = `${uid('alice')}@example.com`;
    const browser = new Browser();
    const { action, fields } = await throughIdp(
      browser,
      { email, name: 'Alice Example', groups: ['staff', 'chat-mods'] },
      '/app/home',
    );
    assert.equal(action, `${srv.baseURL}/auth/saml/corp/acs`);
    const done = await browser.request(action, { method: 'POST', form: fields });
    assert.equal(done.status, 303, await done.text());
    assert.equal(done.headers.get('location'), '/app/home');
    assert.ok(browser.cookie(srv.baseURL, 'ward_session'), 'ward_session is set');

    const { users } = await serverClient(srv).queryUsers({ id: { $eq: email } });
    assert.equal(users.length, 1, `user ${email} was provisioned`);
    assert.equal(users[0].role, 'moderator', 'chat-mods maps to moderator');
    assert.equal(users[0].name, 'Alice Example');
    const me = await browser.request(`${srv.baseURL}/auth/session`);
    assert.equal(me.status, 200, await me.clone().text());

    // The same form again: a replay.
    const replay = await new Browser().request(action, { method: 'POST', form: fields });
    assert.equal(replay.status, 401, await replay.text());

    const sessionCookie = browser.cookie(srv.baseURL, 'ward_session');
    // Logout: the session ends at once, the IdP gets a signed LogoutRequest for this NameID
    // and SessionIndex, and its LogoutResponse brings the browser back.
    const out = await browser.request(`${srv.baseURL}/auth/saml/corp/logout?return_to=/bye`);
    assert.equal(out.status, 303, await out.text());
    assert.equal(browser.cookie(srv.baseURL, 'ward_session'), undefined, 'the cookie is cleared');
    const toSlo = new URL(out.headers.get('location'));
    assert.equal(toSlo.origin + toSlo.pathname, `${idp.base}/slo`);
    const back = await browser.request(toSlo.href);
    assert.equal(back.status, 302, await back.text());
    const last = idp.sessions.at(-1);
    assert.equal(last.nameID, email);
    const returned = await browser.request(back.headers.get('location'));
    assert.equal(returned.status, 303, await returned.text());
    assert.equal(returned.headers.get('location'), '/bye');

    const stale = await fetch(`${srv.baseURL}/auth/session`, { headers: { cookie: `ward_session=${sessionCookie}` } });
    assert.equal(stale.status, 401, 'the old session cookie no longer works');
  });

  test('an encrypted assertion in a signed Response logs in', async () => {
    const email = `${uid('carol')}@example.com`;
    const browser = new Browser();
    idp.encrypt = true;
    let form;
    try {
      form = await throughIdp(browser, { email, name: 'Carol', groups: ['chat-admins'] }, '/enc');
    } finally {
      idp.encrypt = false;
    }
    const xml = Buffer.from(form.fields.SAMLResponse, 'base64').toString('utf8');
    assert.ok(xml.includes('EncryptedAssertion') && !xml.includes(email), 'the assertion is encrypted');
    const done = await browser.request(form.action, { method: 'POST', form: form.fields });
    assert.equal(done.status, 303, await done.text());
    assert.equal(done.headers.get('location'), '/enc');
    const { users } = await serverClient(srv).queryUsers({ id: { $eq: email } });
    assert.equal(users[0]?.role, 'admin', 'chat-admins maps to admin');
  });

  test('an IdP-initiated logout must be signed and ends the session', async () => {
    const email = `${uid('dave')}@example.com`;
    const browser = new Browser();
    const { action, fields } = await throughIdp(browser, { email, name: 'Dave', groups: [] }, '/');
    assert.equal((await browser.request(action, { method: 'POST', form: fields })).status, 303);
    const me = () => browser.request(`${srv.baseURL}/auth/session`);
    assert.equal((await me()).status, 200);

    const unsigned = idp.entity.createLogoutRequest(idp.sp, 'redirect', { logoutNameID: email }, 'rs-0');
    assert.ok(!new URL(unsigned.context).searchParams.get('Signature'));
    const refused = await browser.request(unsigned.context);
    assert.equal(refused.status, 401, await refused.text());
    assert.equal((await me()).status, 200, 'an unsigned LogoutRequest ends nothing');

    const signed = idp.entity.createLogoutRequest(idp.spWantsSignedLogout, 'redirect', { logoutNameID: email }, 'rs-1');
    const url = new URL(signed.context);
    assert.equal(url.origin + url.pathname, `${srv.baseURL}/auth/saml/corp/logout`);
    assert.ok(url.searchParams.get('Signature'), 'the IdP signed the query');
    const res = await browser.request(signed.context);
    assert.equal(res.status, 303, await res.text());
    const back = new URL(res.headers.get('location'));
    assert.equal(back.origin + back.pathname, `${idp.base}/slo`);
    assert.equal(back.searchParams.get('RelayState'), 'rs-1');
    assert.ok(back.searchParams.get('SAMLResponse'), 'Ward answers with a LogoutResponse');
    assert.equal((await me()).status, 401, 'the session is revoked');
  });

  test('a response changed after the IdP signed it is refused and audited', async () => {
    const email = `${uid('bob')}@example.com`;
    const browser = new Browser();
    const { action, fields } = await throughIdp(browser, { email, name: 'Bob', groups: ['chat-admins'] }, '/');
    const xml = Buffer.from(fields.SAMLResponse, 'base64').toString('utf8');
    assert.ok(xml.includes(email));
    const forged = Buffer.from(xml.replace(email, `admin-${email}`)).toString('base64');
    const res = await browser.request(action, { method: 'POST', form: { ...fields, SAMLResponse: forged } });
    const body = await res.json();
    assert.equal(res.status, 401, JSON.stringify(body));
    assert.equal(body.message, 'SAML message refused', 'the answer never names the failed check');
    assert.equal(browser.cookie(srv.baseURL, 'ward_session'), undefined);
    const { users } = await serverClient(srv).queryUsers({ id: { $in: [email, `admin-${email}`] } });
    assert.equal(users.length, 0, 'nobody was provisioned');
    const [entry] = await poll(
      'an auth.login_failed entry for corp (bad_signature)',
      async () => (await loginFailures()).filter((e) => e.meta?.reason === 'bad_signature'),
      (found) => found.length > 0,
    );
    assert.deepEqual(entry.meta, { method: 'saml', outcome: 'failed', provider: 'corp', reason: 'bad_signature' });
  });
});
