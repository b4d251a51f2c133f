//! Uploads (`POST/DELETE /channels/{type}/{id}/file|image`, `/uploads/file|image`) and the
//! signed download links: sealed at rest (disk and S3), served only to who may still read,
//! links that expire and cannot be altered, EXIF gone from images, hostile multipart bodies
//! refused with Stream's errors, blobs deleted with their message, on request and by erasure.

use serde_json::{Value, json};

use crate::helpers::{Db, KEY, TestApp, on_both_databases};

on_both_databases!(
    a_file_is_sealed_at_rest_and_served_only_to_who_may_read_it,
    links_expire_and_cannot_be_altered,
    images_lose_their_exif_and_text_metadata,
    hostile_multipart_bodies_get_stream_errors,
    deleting_a_file_or_its_message_deletes_the_blob,
    erasure_deletes_the_uploaders_files,
    get_app_and_capabilities_report_uploads_truthfully,
    a_link_from_one_node_works_on_another_until_access_ends,
);

const MARKER: &str = "okapi-lantern-9902";

/// A multipart/form-data body: (field name, file name, bytes) per part.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----wardtestboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send_form(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}{path}?api_key={KEY}", app.base))
        .header("Authorization", token)
        .header("stream-auth-type", "jwt")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is JSON: {text}")),
    )
}

async fn upload(app: &TestApp, path: &str, user: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    let (ct, body) = form(&[("file", Some(name), bytes)]);
    send_form(app, path, &app.token(user), &ct, body).await
}

/// GET a link as a browser does: no token, no API key.
async fn fetch(app: &TestApp, url: &str) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let res = app.http.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.bytes().await.unwrap().to_vec(), headers)
}

fn id_of(url: &str) -> String {
    ward::chat::upload::link::upload_id(url).expect("a download link")
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn blob_path(app: &TestApp, id: &str) -> std::path::PathBuf {
    app.state.config.data_dir.join("uploads").join(id)
}

async fn a_file_is_sealed_at_rest_and_served_only_to_who_may_read_it(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "ben", "cat"]).await;
    app.channel("ward-1", "ann", &["ann", "ben"]).await;
    app.channel("ward-2", "cat", &["cat"]).await;
    let content = format!("lab result {MARKER}: potassium 5.9");
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "ann",
        &format!("{MARKER}-labs.txt"),
        content.as_bytes(),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let url = body["file"].as_str().unwrap().to_string();
    assert!(body["duration"].is_string(), "{body}");
    assert!(body.get("thumb_url").is_none(), "files have no thumbnail");
    assert!(url.starts_with(&app.base), "{url}");
    let id = id_of(&url);

    // Ciphertext only: the blob on disk and the row's name column.
    let raw = std::fs::read(blob_path(&app, &id)).unwrap();
    assert!(!contains(&raw, MARKER) && !contains(&raw, "potassium"));
    let row = app
        .state
        .store
        .uploads
        .find_upload(&id)
        .await
        .unwrap()
        .unwrap();
    assert!(!row.name.contains(MARKER), "the file name is sealed");
    assert_eq!(row.mime_type, "text/plain");

    // The link works without a token, with safe headers.
    let (s, bytes, headers) = fetch(&app, &url).await;
    assert_eq!(s, 200);
    assert_eq!(bytes, content.as_bytes());
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // Authenticated fetches: a member may, a non-member may not.
    let plain = format!("{}/uploads/blob/{id}?api_key={KEY}", app.base);
    let with = |user: &str| {
        app.http
            .get(&plain)
            .header("Authorization", app.token(user))
            .header("stream-auth-type", "jwt")
            .send()
    };
    assert_eq!(with("ben").await.unwrap().status().as_u16(), 200);
    let refused = with("cat").await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let err: Value = refused.json().await.unwrap();
    assert_eq!(err["code"], 17, "{err}");
    // Without a token or a signature: refused.
    assert_eq!(app.http.get(&plain).send().await.unwrap().status(), 401);

    // A non-member cannot upload into (or delete from) a channel they are not in.
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "cat",
        "x.txt",
        b"hi",
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["code"], 17);

    // Once the uploader is removed from the channel, the links issued to them stop working.
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "ben",
        "b.txt",
        b"ben's",
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let bens = body["file"].as_str().unwrap().to_string();
    assert_eq!(fetch(&app, &bens).await.0, 200);
    let (s, body) = app
        .post(
            "/channels/messaging/ward-1",
            &app.token("ann"),
            json!({"remove_members": ["ben"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, _, _) = fetch(&app, &bens).await;
    assert_eq!(s, 403, "the link's user can no longer read the channel");

    let events: Vec<String> = app
        .audit_entries()
        .await
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert!(events.iter().any(|e| e == "upload.create"), "{events:?}");
    assert!(events.iter().any(|e| e == "upload.read"), "{events:?}");
}

async fn links_expire_and_cannot_be_altered(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "ben"]).await;
    app.channel("ward-1", "ann", &["ann", "ben"]).await;
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "ann",
        "a.pdf",
        b"%PDF-1.7 x",
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let url = body["file"].as_str().unwrap().to_string();
    let id = id_of(&url);
    assert_eq!(fetch(&app, &url).await.0, 200);

    // Expired: a link issued for a time already past.
    let ctx = app.state.uploads();
    let past = chrono::Utc::now().timestamp() - 1;
    let expired = ward::chat::upload::link::issue_until(&ctx, &id, "ann", "a.pdf", past)
        .await
        .unwrap();
    let (s, body, _) = fetch(&app, &expired).await;
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&body));

    // Tampered: another signature, another user, a later expiry, another file.
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut flipped = url.clone();
    let c = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    flipped.replace_range(sig_at..sig_at + 1, c);
    assert_eq!(fetch(&app, &flipped).await.0, 403);
    assert_eq!(
        fetch(&app, &url.replace("user=ann", "user=ben")).await.0,
        403
    );
    let exp_at = url.find("exp=").unwrap() + 4;
    let mut later = url.clone();
    later.insert(exp_at, '9');
    assert_eq!(fetch(&app, &later).await.0, 403);
    let other = uuid::Uuid::now_v7().to_string();
    assert_eq!(fetch(&app, &url.replace(&id, &other)).await.0, 403);
    let no_sig = url.split("&sig=").next().unwrap().to_string() + "&sig=";
    assert_eq!(fetch(&app, &no_sig).await.0, 403);
}

/// A JPEG with an APP1 EXIF segment holding a GPS position, and a COM segment.
fn jpeg_with_gps() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    j.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    j.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let exif = format!("Exif\0\0MM\0*GPSLatitude 52.5200N {MARKER}");
    j.extend_from_slice(&[0xFF, 0xE1]);
    j.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    j.extend_from_slice(exif.as_bytes());
    let com = format!("comment {MARKER}");
    j.extend_from_slice(&[0xFF, 0xFE]);
    j.extend_from_slice(&((com.len() + 2) as u16).to_be_bytes());
    j.extend_from_slice(com.as_bytes());
    j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x00, 0x01]);
    j.extend_from_slice(&[
        0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02, 0x12, 0x34, 0x56, 0xFF, 0xD9,
    ]);
    j
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&[0, 0, 0, 0]);
    c
}

fn png_with_text() -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.extend(png_chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    p.extend(png_chunk(b"tEXt", format!("Author\0{MARKER}").as_bytes()));
    p.extend(png_chunk(b"eXIf", format!("MM\0*GPS {MARKER}").as_bytes()));
    p.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x63, 0, 0, 0, 2, 0, 1]));
    p.extend(png_chunk(b"IEND", &[]));
    p
}

async fn images_lose_their_exif_and_text_metadata(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann"]).await;
    app.channel("ward-1", "ann", &["ann"]).await;
    for (name, bytes, mime) in [
        ("wound.jpg", jpeg_with_gps(), "image/jpeg"),
        ("wound.png", png_with_text(), "image/png"),
    ] {
        let (s, body) = upload(
            &app,
            "/channels/messaging/ward-1/image",
            "ann",
            name,
            &bytes,
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let url = body["file"].as_str().unwrap();
        assert!(body["thumb_url"].is_string(), "{body}");
        let (s, served, headers) = fetch(&app, url).await;
        assert_eq!(s, 200);
        assert_eq!(headers["content-type"], mime);
        assert!(!contains(&served, MARKER), "{name}: metadata stripped");
        assert!(!contains(&served, "GPS"), "{name}: GPS stripped");
        assert!(served.len() < bytes.len());
        assert_eq!(served[..4], bytes[..4], "{name}: still the same format");
    }
    // The JPEG's image data and its table survive.
    let (_, body) = upload(&app, "/uploads/image", "ann", "x.jpg", &jpeg_with_gps()).await;
    let (_, served, _) = fetch(&app, body["file"].as_str().unwrap()).await;
    assert!(served.ends_with(&[0x12, 0x34, 0x56, 0xFF, 0xD9]));
    assert!(contains(&served, "JFIF"));

    // Only real images are images, whatever the name or content type says.
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/image",
        "ann",
        "x.jpg",
        b"%PDF-1.4",
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["code"], 4);
    // A truncated JPEG is refused, not stored.
    let jpeg = jpeg_with_gps();
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/image",
        "ann",
        "t.jpg",
        &jpeg[..10],
    )
    .await;
    assert_eq!(s, 400, "{body}");
}

async fn hostile_multipart_bodies_get_stream_errors(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.uploads.max_bytes = 4096).await;
    app.users(&["ann"]).await;
    app.channel("ward-1", "ann", &["ann"]).await;
    let path = "/channels/messaging/ward-1/file";
    let token = app.token("ann");
    let expect = |(s, body): (u16, Value), status: u16, code: i64| {
        assert_eq!(s, status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
    };

    let (ct, body) = form(&[("user", None, br#"{"id":"ann"}"#)]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    let (ct, body) = form(&[
        ("file", Some("a.txt"), b"one"),
        ("file", Some("b.txt"), b"two"),
    ]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    let (ct, body) = form(&[("file", Some("big.txt"), &[b'a'; 5000])]);
    expect(send_form(&app, path, &token, &ct, body).await, 413, 22);
    expect(
        send_form(
            &app,
            path,
            &token,
            "application/json",
            b"{\"file\":1}".to_vec(),
        )
        .await,
        400,
        4,
    );
    expect(
        send_form(
            &app,
            path,
            &token,
            "multipart/form-data",
            b"--x\r\n".to_vec(),
        )
        .await,
        400,
        4,
    );
    let (ct, _) = form(&[]);
    expect(
        send_form(&app, path, &token, &ct, b"--garbage-without-end".to_vec()).await,
        400,
        4,
    );
    let (ct, body) = form(&[("file", Some("empty.txt"), b"")]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    let (ct, body) = form(&[("file", Some("run.exe"), b"MZ\x90\0")]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    let (ct, body) = form(&[("file", Some("a.txt"), b"x"), ("user", None, b"[1,2")]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    // A user may not upload as someone else.
    let (ct, body) = form(&[
        ("file", Some("a.txt"), b"x"),
        ("user", None, br#"{"id":"ben"}"#),
    ]);
    expect(send_form(&app, path, &token, &ct, body).await, 403, 17);

    // Names: the path, control characters and quotes go; Unicode stays.
    for (raw, want) in [
        ("../../etc/passwd", "passwd"),
        ("a;b\\c.txt", "c.txt"),
        (
            "r\u{e9}sum\u{e9}-\u{1F600}.txt",
            "r%C3%A9sum%C3%A9-%F0%9F%98%80.txt",
        ),
    ] {
        let (s, body) = upload(&app, path, "ann", raw, b"plain words").await;
        assert_eq!(s, 201, "{raw:?}: {body}");
        let url = body["file"].as_str().unwrap();
        assert!(url.contains(&format!("/{want}?")), "{raw:?}: {url}");
        let (s, _, headers) = fetch(&app, url).await;
        assert_eq!(s, 200);
        let cd = headers["content-disposition"].to_str().unwrap();
        assert!(!cd.contains("..") && !cd.contains('\u{7}'), "{cd}");
    }
    // Control characters in a part's headers are refused by the multipart parser (a
    // browser percent-encodes them); nothing is stored.
    let (ct, body) = form(&[("file", Some("a\u{7}b\u{1b}[31m.txt"), b"x")]);
    expect(send_form(&app, path, &token, &ct, body).await, 400, 4);
    // Bad delete requests.
    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            "/channels/messaging/ward-1/file",
            &token,
            None,
        )
        .await;
    assert_eq!((s, body["code"].clone()), (400, json!(4)), "{body}");
    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            "/channels/messaging/ward-1/file?url=http%3A%2F%2Fevil%2Fx",
            &token,
            None,
        )
        .await;
    assert_eq!(s, 400, "{body}");
}

async fn delete_file(app: &TestApp, user: &str, url: &str) -> (u16, Value) {
    let q = crate::helpers::url_encode(url);
    app.call(
        reqwest::Method::DELETE,
        &format!("/channels/messaging/ward-1/file?url={q}"),
        &app.token(user),
        None,
    )
    .await
}

async fn deleting_a_file_or_its_message_deletes_the_blob(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "ben"]).await;
    app.channel("ward-1", "ann", &["ann", "ben"]).await;
    let path = "/channels/messaging/ward-1/file";
    let (_, body) = upload(&app, path, "ann", "a.txt", b"first").await;
    let url = body["file"].as_str().unwrap().to_string();
    let id = id_of(&url);
    assert!(blob_path(&app, &id).exists());
    // Another member may not delete it; the uploader may.
    let (s, body) = delete_file(&app, "ben", &url).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = delete_file(&app, "ann", &url).await;
    assert_eq!(s, 200, "{body}");
    assert!(!blob_path(&app, &id).exists());
    assert_eq!(fetch(&app, &url).await.0, 404);
    let (s, _) = delete_file(&app, "ann", &url).await;
    assert_eq!(s, 404, "already gone");

    // A message with the file attached takes the file with it.
    let (_, body) = upload(&app, path, "ann", "b.txt", b"second").await;
    let url = body["file"].as_str().unwrap().to_string();
    let id = id_of(&url);
    let m = app
        .send(
            "messaging:ward-1",
            "ann",
            json!({"text": "see file", "attachments": [{"type": "file", "asset_url": url}]}),
        )
        .await;
    let mid = m["id"].as_str().unwrap();
    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/messages/{mid}"),
            &app.token("ann"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(!blob_path(&app, &id).exists());
    assert_eq!(fetch(&app, &url).await.0, 404);
    let events: Vec<Value> = app.audit_entries().await;
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "upload.delete")
            .count()
            >= 2,
        "deletions are audited"
    );
}

async fn erasure_deletes_the_uploaders_files(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "ben"]).await;
    app.channel("ward-1", "ben", &["ann", "ben"]).await;
    let (_, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "ann",
        "a.txt",
        MARKER.as_bytes(),
    )
    .await;
    let url = body["file"].as_str().unwrap().to_string();
    let id = id_of(&url);
    let sealed = std::fs::read(blob_path(&app, &id)).unwrap();
    let (_, body) = upload(&app, "/uploads/file", "ann", "b.txt", b"app-level").await;
    let app_level = id_of(body["file"].as_str().unwrap());
    let (_, body) = upload(
        &app,
        "/channels/messaging/ward-1/file",
        "ben",
        "c.txt",
        b"kept",
    )
    .await;
    let kept = body["file"].as_str().unwrap().to_string();

    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            "/users/ann?hard_delete=true",
            &app.server_token(),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["erasure"]["uploads_deleted"], 2, "{body}");
    assert!(!blob_path(&app, &id).exists());
    assert!(!blob_path(&app, &app_level).exists());
    assert_ne!(fetch(&app, &url).await.0, 200);
    assert_eq!(fetch(&app, &kept).await.0, 200, "other users' files stay");
    // A copy of the blob (a backup) no longer opens: its key is shredded.
    std::fs::write(blob_path(&app, &id), &sealed).unwrap();
    let blobs = app.state.blobs.as_ref().unwrap();
    assert!(matches!(
        blobs.open(&id).await.unwrap(),
        Some(ward::crypto::fields::Opened::Shredded)
    ));
}

async fn get_app_and_capabilities_report_uploads_truthfully(db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.uploads.max_bytes = 12345;
        c.uploads.image.allowed_mime_types = vec!["image/png".into()];
    })
    .await;
    app.users(&["ann"]).await;
    let (s, body) = app.get("/app", &app.token("ann")).await;
    assert_eq!(s, 200, "{body}");
    let file = &body["app"]["file_upload_config"];
    assert_eq!(file["size_limit"], 12345);
    assert!(
        file["blocked_file_extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("exe"))
    );
    assert_eq!(
        body["app"]["image_upload_config"]["allowed_mime_types"],
        json!(["image/png"])
    );
    let ch = app.channel("ward-1", "ann", &["ann"]).await;
    assert_eq!(ch["channel"]["config"]["uploads"], true, "{ch}");
    assert!(
        ch["channel"]["own_capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("upload-file")),
        "{ch}"
    );
    // The rule is enforced as reported: a JPEG is not an allowed image type here.
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/image",
        "ann",
        "a.jpg",
        &jpeg_with_gps(),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = upload(
        &app,
        "/channels/messaging/ward-1/image",
        "ann",
        "a.png",
        &png_with_text(),
    )
    .await;
    assert_eq!(s, 201, "{body}");
}

#[cfg(feature = "s3-checkpoints")]
mod s3 {
    use reqwest::{Method, Url};
    use ward::crypto::aws::{AwsClient, CredentialSource};

    use super::*;
    use crate::moto::{Moto, credentials};

    on_both_databases!(uploads_in_s3_are_ciphertext_and_deleted_with_the_file);

    const BUCKET: &str = "ward-uploads-test";

    fn client() -> AwsClient {
        AwsClient::new(
            "s3",
            "us-east-1",
            CredentialSource::Static(credentials()),
            std::time::Duration::from_secs(10),
        )
        .unwrap()
    }

    async fn object(moto: &Moto, key: &str) -> (u16, Vec<u8>) {
        let res = client()
            .send(
                Method::GET,
                Url::parse(&format!("{}/{BUCKET}/{key}", moto.url)).unwrap(),
                &[],
                Vec::new(),
            )
            .await
            .unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    async fn uploads_in_s3_are_ciphertext_and_deleted_with_the_file(db: Db) {
        let moto = Moto::start().await;
        let res = client()
            .send(
                Method::PUT,
                Url::parse(&format!("{}/{BUCKET}", moto.url)).unwrap(),
                &[],
                Vec::new(),
            )
            .await
            .unwrap();
        assert!(res.status().is_success());
        let endpoint = moto.url.clone();
        let app = TestApp::spawn_with(db, |c| {
            c.uploads.s3 = Some(ward::config::UploadS3Config {
                bucket: BUCKET.into(),
                prefix: "files/".into(),
                region: "us-east-1".into(),
                endpoint: Some(endpoint),
                credentials: ward::config::KmsCredentials::Static {
                    access_key_id: "testing".into(),
                    secret_access_key: secrecy::SecretString::from("testing"),
                    session_token: None,
                },
            });
        })
        .await;
        // `Config.uploads.s3` is read when the state is built.
        app.users(&["ann"]).await;
        app.channel("ward-1", "ann", &["ann"]).await;
        let content = format!("discharge letter {MARKER}");
        let (s, body) = upload(
            &app,
            "/channels/messaging/ward-1/file",
            "ann",
            "l.txt",
            content.as_bytes(),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        let url = body["file"].as_str().unwrap().to_string();
        let id = id_of(&url);
        let (s, raw) = object(&moto, &format!("files/{id}")).await;
        assert_eq!(s, 200);
        assert!(!contains(&raw, MARKER), "only ciphertext in the bucket");
        assert!(!blob_path(&app, &id).exists(), "nothing on the local disk");
        let (s, served, _) = fetch(&app, &url).await;
        assert_eq!((s, served), (200, content.into_bytes()));
        let q = crate::helpers::url_encode(&url);
        let (s, body) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/channels/messaging/ward-1/file?url={q}"),
                &app.token("ann"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(object(&moto, &format!("files/{id}")).await.0, 404);
    }
}

async fn a_link_from_one_node_works_on_another_until_access_ends(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &crate::helpers::redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    a.users(&["ann", "ben"]).await;
    a.channel("ward-1", "ann", &["ann", "ben"]).await;
    let (s, body) = upload(
        a,
        "/channels/messaging/ward-1/file",
        "ben",
        "b.txt",
        b"shared",
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let on_a = body["file"].as_str().unwrap().to_string();
    let on_b = on_a.replace(&a.base, &b.base);
    let (s, bytes, _) = fetch(b, &on_b).await;
    assert_eq!(
        (s, bytes),
        (200, b"shared".to_vec()),
        "one signing key and one bucket/dir"
    );
    let (s, body) = b
        .post(
            "/channels/messaging/ward-1",
            &b.token("ann"),
            json!({"remove_members": ["ben"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        fetch(a, &on_a).await.0,
        403,
        "refused on the other node too"
    );
}
