// Uploads through the real SDK: channel.sendFile / sendImage / deleteFile and
// client.uploadFile / deleteFile, downloads through the returned links, what GET /app and
// own_capabilities say, and that only ciphertext reaches the data directory.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { setup, uid, waitFor } from './harness.js';

const MARKER = 'tapir-violet-5521';

/** A JPEG whose APP1 EXIF segment carries a GPS position and the marker. */
function jpegWithGps() {
  const exif = Buffer.from(`Exif\0\0MM\0*GPSLatitude 52.52N ${MARKER}`);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(exif.length + 2);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
    Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1'),
    Buffer.from([0xff, 0xe1]),
    len,
    exif,
    Buffer.from([0xff, 0xda, 0x00, 0x04, 0x01, 0x02, 0x12, 0x34, 0xff, 0xd9]),
  ]);
}

async function download(url) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

describe('uploads with the stream-chat SDK', () => {
  let env, alice, bob, carol, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
    const id = uid('uploads');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('the channel offers uploads: config.uploads, upload-file, and real limits in GET /app', async () => {
    assert.equal(aCh.data.config.uploads, true);
    assert.ok(aCh.data.own_capabilities.includes('upload-file'), JSON.stringify(aCh.data.own_capabilities));
    const { app } = await alice.client.getAppSettings();
    assert.ok(app.file_upload_config.size_limit > 0, JSON.stringify(app.file_upload_config));
    assert.ok(app.file_upload_config.blocked_file_extensions.includes('exe'));
    assert.ok(app.image_upload_config.size_limit > 0);
  });

  test('sendFile with a Buffer: a link that downloads the file; only ciphertext on disk', async () => {
    const content = `potassium 5.9 mmol/L ${MARKER}`;
    const res = await aCh.sendFile(Buffer.from(content), 'labs.txt', 'text/plain');
    assert.equal(typeof res.file, 'string');
    assert.ok(res.file.startsWith(env.srv.baseURL), res.file);
    assert.equal(res.thumb_url, undefined);
    const got = await download(res.file);
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), content);
    assert.equal(got.type, 'text/plain');

    const dir = path.join(env.srv.dataDir, 'uploads');
    const blobs = readdirSync(dir);
    assert.ok(blobs.length >= 1);
    for (const f of blobs) {
      assert.ok(!readFileSync(path.join(dir, f)).includes(MARKER), 'sealed at rest');
    }

    // Attached to a message, the other member downloads it through the message.
    const seen = waitFor(bCh, 'message.new', (e) => e.message?.text === 'the labs');
    await aCh.sendMessage({ text: 'the labs', attachments: [{ type: 'file', asset_url: res.file, title: 'labs.txt' }] });
    const ev = await seen;
    const link = ev.message.attachments[0].asset_url;
    assert.equal((await download(link)).body.toString(), content);
  });

  test('sendImage with a file stream: EXIF GPS is gone, thumb_url is set', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ward-js-img-'));
    const file = path.join(dir, 'wound.jpg');
    writeFileSync(file, jpegWithGps());
    const res = await aCh.sendImage(createReadStream(file), 'wound.jpg', 'image/jpeg');
    assert.equal(typeof res.thumb_url, 'string');
    const got = await download(res.file);
    assert.equal(got.status, 200);
    assert.equal(got.type, 'image/jpeg');
    assert.ok(!got.body.includes(MARKER) && !got.body.includes('GPS'), 'metadata stripped');
    assert.deepEqual([...got.body.subarray(0, 2)], [0xff, 0xd8]);

    // Not an image: refused with Stream's input error.
    await assert.rejects(aCh.sendImage(Buffer.from('%PDF-1.7'), 'x.jpg', 'image/jpeg'), (err) => {
      assert.equal(err.code, 4, err.message);
      return true;
    });
  });

  test('a non-member can neither upload into the channel nor delete its files', async () => {
    const cCh = carol.client.channel('messaging', aCh.id);
    await assert.rejects(cCh.sendFile(Buffer.from('x'), 'x.txt'), (err) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, 17);
      return true;
    });
    const { file } = await aCh.sendFile(Buffer.from('mine'), 'mine.txt');
    await assert.rejects(cCh.deleteFile(file), (err) => err.status === 403);
    assert.equal((await download(file)).status, 200);
  });

  test('deleteFile removes it: the link answers 404', async () => {
    const { file } = await aCh.sendFile(Buffer.from('short-lived'), 'tmp.txt');
    assert.equal((await download(file)).status, 200);
    await aCh.deleteFile(file);
    assert.equal((await download(file)).status, 404);
    const { file: image } = await aCh.sendFile(jpegWithGps(), 'p.jpg');
    await aCh.deleteImage(image).catch((err) => {
      // A file uploaded through /file is not an /image upload.
      assert.equal(err.status, 404);
    });
  });

  test('client.uploadFile / deleteFile (app-level uploads)', async () => {
    const res = await alice.client.uploadFile(Buffer.from(`app-level ${MARKER}`), 'a.txt', 'text/plain');
    const got = await download(res.file);
    assert.equal(got.body.toString(), `app-level ${MARKER}`);
    await assert.rejects(bob.client.deleteFile(res.file), (err) => err.status === 403);
    await alice.client.deleteFile(res.file);
    assert.equal((await download(res.file)).status, 404);
  });
});
