//! No action completes without its record: when the audit record of an action cannot be
//! stored, the action fails with a 500 and leaves nothing behind. The failing sink is the
//! real database refusing inserts into the audit tables (a trigger), on both databases.

use serde_json::json;

use crate::helpers::{Db, TestApp, on_both_databases};

on_both_databases!(
    a_write_whose_record_cannot_be_stored_fails_and_leaves_no_row,
    a_decision_whose_record_cannot_be_stored_is_not_answered
);

/// Makes the database refuse every insert into `table` (`on`), or stop refusing.
async fn refuse_inserts(app: &TestApp, db: Db, table: &str, on: bool) {
    let url = &app.state.config.database_url;
    let name = format!("refuse_{table}");
    let statements: Vec<String> = match (db, on) {
        (Db::Sqlite, true) => vec![format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        (Db::Sqlite, false) => vec![format!("DROP TRIGGER {name}")],
        (Db::Postgres, true) => vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {name}()"
            ),
        ],
        (Db::Postgres, false) => vec![
            format!("DROP TRIGGER {name} ON {table}"),
            format!("DROP FUNCTION {name}()"),
        ],
    };
    for sql in statements {
        execute(db, url, &sql).await;
    }
}

async fn execute(db: Db, url: &str, sql: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }
}

async fn message_exists(db: Db, url: &str, id: &str) -> bool {
    use sqlx::Connection;
    let n: i64 = match db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE id = ?")
                .bind(id)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar("SELECT count(*) FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    };
    n > 0
}

async fn a_write_whose_record_cannot_be_stored_fails_and_leaves_no_row(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "bob"]).await;
    app.channel("durable", "ann", &["ann", "bob"]).await;
    app.send("messaging:durable", "ann", json!({"text": "before"}))
        .await;

    refuse_inserts(&app, db, "audit_outbox", true).await;
    let id = uuid::Uuid::now_v7().to_string();
    let (status, body) = app
        .post(
            "/channels/messaging/durable/message",
            &app.token("ann"),
            json!({"message": {"id": id, "text": "never stored"}}),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["StatusCode"], 500, "a Stream-shaped error: {body}");
    assert!(
        !body.to_string().contains("refused by the test"),
        "the database's words stay in the server: {body}"
    );
    let url = app.state.config.database_url.clone();
    assert!(
        !message_exists(db, &url, &id).await,
        "the message was rolled back with its record"
    );

    refuse_inserts(&app, db, "audit_outbox", false).await;
    let (status, body) = app
        .post(
            "/channels/messaging/durable/message",
            &app.token("ann"),
            json!({"message": {"id": id, "text": "stored now"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(message_exists(db, &url, &id).await);
    let entries = app.audit_entries().await;
    let creates = entries
        .iter()
        .filter(|e| e["event"] == "message.create")
        .count();
    assert_eq!(creates, 2, "one record per stored message");
}

async fn a_decision_whose_record_cannot_be_stored_is_not_answered(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "eve"]).await;
    app.channel("private", "ann", &["ann"]).await;
    let path = "/channels/messaging/private/query";
    let body = json!({"state": true});
    let (status, reply) = app.post(path, &app.token("eve"), body.clone()).await;
    assert_eq!(status, 403, "eve is not a member: {reply}");

    // A denial is recorded through the appender (no write of its own); with the log and
    // the outbox both refusing, the record cannot be made durable and the refusal is not
    // given as an answer.
    app.state.audit.sync().await.unwrap();
    refuse_inserts(&app, db, "audit_log", true).await;
    refuse_inserts(&app, db, "audit_outbox", true).await;
    let (status, reply) = app.post(path, &app.token("eve"), body.clone()).await;
    assert_eq!(status, 500, "{reply}");
    assert_eq!(reply["StatusCode"], 500, "{reply}");

    refuse_inserts(&app, db, "audit_log", false).await;
    refuse_inserts(&app, db, "audit_outbox", false).await;
    let (status, reply) = app.post(path, &app.token("eve"), body).await;
    assert_eq!(
        status, 403,
        "answered again once records can be stored: {reply}"
    );
}
