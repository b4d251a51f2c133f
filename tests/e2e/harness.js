// Harness of the browser suite: ONE `ward serve` per run (fresh data dir; on PostgreSQL a
// fresh database, dropped afterwards), a tiny static server for the bundled app (dist/), and
// ONE headless Chromium — Debian's package at /usr/bin/chromium driven by playwright-core,
// never a downloaded browser — with a new browser context per user per scenario.
//
// The server spawning is adapted from tests/js/harness.js (same environment, same log files
// for tests/logscan/scan.py); users and channels are seeded through the REST API with the
// server-side stream-chat client; user tokens are minted here with the secret and handed to
// the page in its URL fragment.
//
// Environment:
//   WARD_E2E_DB        sqlite (default) | postgres
//   WARD_BIN           the ward binary (default ../../target/debug/ward, relative to here)
//   WARD_JS_PG         PostgreSQL server URL without database (default postgres://postgres@127.0.0.1:5432)
//   WARD_E2E_CHROMIUM  the browser (default /usr/bin/chromium)
//   WARD_E2E_OUTPUT    where screenshots of failed scenarios go (default ./output)
//   WARD_E2E_PENDING=1 runs the scenarios listed in pending.js too, as `todo`
//   WARD_TEST_LOG_DIR  server logs go there (kept for the log scanner), else into the data dir
//   WARD_JS_KEEP=1     keeps the data dir after the run

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { StreamChat } from 'stream-chat';

import { buildApp } from './build.js';
import { PENDING } from './pending.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const DB_KIND = (process.env.WARD_E2E_DB || process.env.WARD_JS_DB || 'sqlite').toLowerCase();
if (!['sqlite', 'postgres'].includes(DB_KIND)) {
  throw new Error(`WARD_E2E_DB must be sqlite or postgres, got ${JSON.stringify(DB_KIND)}`);
}
const WARD_BIN = path.resolve(HERE, process.env.WARD_BIN || '../../target/debug/ward');
const PG_URL = (process.env.WARD_JS_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const CHROMIUM = process.env.WARD_E2E_CHROMIUM || '/usr/bin/chromium';
export const OUTPUT = path.resolve(HERE, process.env.WARD_E2E_OUTPUT || 'output');
const LOG_DIR = process.env.WARD_TEST_LOG_DIR;
const START_TIMEOUT_MS = 30_000;
/** Default wait for something to show in the page (the machine is shared and slow). */
export const UI_TIMEOUT_MS = 15_000;

const rand = (n = 6) => randomBytes(n).toString('hex');
/** A unique id with a readable prefix. */
export const uid = (prefix = 'id') => `${prefix}-${rand(4)}`;

const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

function knownSecrets(values) {
  if (!LOG_DIR) return;
  const dir = path.join(LOG_DIR, 'known-secrets');
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, `e2e-${process.pid}.txt`), values.map((v) => `${v}\n`).join(''));
}

function dropDatabase(name) {
  const probe = spawnSync('psql', ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) return;
  const url = new URL(PG_URL);
  spawnSync(
    'psql',
    [
      '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username || 'postgres'),
      '-d', 'postgres', '-v', 'ON_ERROR_STOP=0', '-q',
      '-c', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
    ],
    { stdio: 'ignore', timeout: 15_000 },
  );
}

/** Starts `ward serve`; returns `{ baseURL, apiKey, secret, logFile, stop() }`. */
export async function startWard() {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ward-e2e-'));
  let logFile = path.join(dataDir, 'ward.log');
  if (LOG_DIR) {
    mkdirSync(LOG_DIR, { recursive: true });
    logFile = path.join(LOG_DIR, `e2e-${DB_KIND}-ward-${rand(4)}.log`);
  }
  const apiKey = `key${rand(4)}`;
  const secret = `secret-${rand(16)}`;
  knownSecrets([secret]);
  const dbName = DB_KIND === 'postgres' ? `ward_e2e_${rand(6)}` : null;
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('WARD_') || k === 'WARD_LOG'),
  );
  const env = {
    ...inherited,
    WARD_BIND: '127.0.0.1:0',
    WARD_DATA_DIR: dataDir,
    WARD_API_KEY: apiKey,
    WARD_API_SECRET: secret,
    WARD_METRICS_BIND: '127.0.0.1:0',
    WARD_LOG: process.env.WARD_LOG || 'info,sqlx=warn',
  };
  if (dbName) env.WARD_DATABASE_URL = `${PG_URL}/${dbName}`;

  const logFd = openSync(logFile, 'a');
  const child = spawn(WARD_BIN, ['serve'], { env, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  running.add(child);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  const cleanup = () => {
    if (dbName) dropDatabase(dbName);
    if (process.env.WARD_JS_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
  };
  let baseURL;
  try {
    baseURL = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ward did not start within ${START_TIMEOUT_MS} ms\n${tail(logFile)}`)), START_TIMEOUT_MS);
      exited.then(({ code, signal, error }) => {
        clearTimeout(timer);
        reject(new Error(`ward exited before it was ready (${error ? error.message : `code ${code}, signal ${signal}`}; build it with \`cargo build\` or set WARD_BIN)\n${tail(logFile)}`));
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^ward: listening on (http:\/\/\S+)$/.exec(line.trim());
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    cleanup();
    throw err;
  }
  let stopped = false;
  return {
    baseURL,
    apiKey,
    secret,
    logFile,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
      cleanup();
    },
  };
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
};

/** Serves `dir` read-only on 127.0.0.1 (GET/HEAD of files directly under it). */
export async function startStatic(dir) {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.join(dir, name);
    let ok = (req.method === 'GET' || req.method === 'HEAD') && path.dirname(file) === dir;
    try {
      ok = ok && statSync(file).isFile();
    } catch {
      ok = false;
    }
    if (!ok) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * The whole fixture of one run: ward, the bundled app, its static server, one browser.
 * Returns `{ ward, server (server-side client), appURL, browser, close() }`.
 */
export async function startSuite() {
  mkdirSync(OUTPUT, { recursive: true });
  const dist = await buildApp();
  const ward = await startWard();
  let web;
  let browser;
  try {
    web = await startStatic(dist);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--disable-dev-shm-usage'] });
  } catch (err) {
    await web?.close();
    await ward.stop();
    throw err;
  }
  const server = new StreamChat(ward.apiKey, ward.secret, { baseURL: ward.baseURL });
  return {
    ward,
    server,
    appURL: `${web.url}/index.html`,
    browser,
    async close() {
      await browser.close().catch(() => {});
      await web.close();
      await ward.stop();
    },
  };
}

/** Creates users (id = name + random suffix) through `POST /users`; returns their ids by name. */
export async function seedUsers(suite, names) {
  const ids = Object.fromEntries(names.map((n) => [n, uid(n)]));
  await suite.server.upsertUsers(names.map((n) => ({ id: ids[n], name: `${n[0].toUpperCase()}${n.slice(1)} ${ids[n].slice(-4)}` })));
  return ids;
}

/** Creates a messaging channel through the REST API, as `createdBy`, with `members`. */
export async function seedChannel(suite, { id = uid('ch'), name, members, createdBy }) {
  const ch = suite.server.channel('messaging', id, { name, members, created_by_id: createdBy });
  await ch.create();
  return ch;
}

const safe = (s) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').slice(0, 80);

/**
 * One scenario as a node:test test. `fn({ open, suite })` opens pages with `open(userId)`
 * (a new browser context per call, closed after the scenario). On failure every open page is
 * screenshotted to output/<db>/<scenario>-<n>.png before the error is rethrown.
 * A scenario named in pending.js is skipped (its server feature is not on this branch yet),
 * or run as `todo` with WARD_E2E_PENDING=1.
 */
export function scenario(getSuite, name, fn) {
  SCENARIOS.add(name);
  const pending = PENDING[name];
  const opts = {};
  if (pending) {
    if (process.env.WARD_E2E_PENDING === '1') opts.todo = pending;
    else opts.skip = pending;
  }
  test(name, opts, async () => {
    const suite = getSuite();
    const contexts = [];
    const pages = [];
    const open = async (userId, { permissions = [] } = {}) => {
      const context = await suite.browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, permissions });
      contexts.push(context);
      context.setDefaultTimeout(UI_TIMEOUT_MS);
      const page = await context.newPage();
      pages.push({ userId, page });
      page.on('pageerror', (err) => console.error(`[page ${userId}] ${err.message}`));
      await page.goto(appLink(suite, userId));
      await page.waitForFunction(() => window.wardE2E && (window.wardE2E.ready || window.wardE2E.error));
      const error = await page.evaluate(() => window.wardE2E.error);
      if (error) throw new Error(`the app could not connect as ${userId}: ${error}`);
      return page;
    };
    try {
      await fn({ open, suite });
    } catch (err) {
      const dir = path.join(OUTPUT, DB_KIND);
      mkdirSync(dir, { recursive: true });
      for (const [i, { userId, page }] of pages.entries()) {
        const file = path.join(dir, `${safe(name)}-${i + 1}-${safe(userId)}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.error(`screenshot of the failure: ${file}`);
      }
      throw err;
    } finally {
      await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    }
  });
}

const SCENARIOS = new Set();

/** Names in pending.js that no scenario has (a renamed scenario would silently run). */
export const unknownPending = () => Object.keys(PENDING).filter((name) => !SCENARIOS.has(name));

/** The app's URL for `userId`: credentials in the fragment, never sent to the static server. */
export function appLink(suite, userId) {
  const frag = new URLSearchParams({
    key: suite.ward.apiKey,
    base: suite.ward.baseURL,
    user: userId,
    token: suite.server.createToken(userId),
  });
  return `${suite.appURL}#${frag}`;
}
