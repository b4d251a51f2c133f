//! Message store beyond sending and paging: edits, deletion, pins, authors' ids, and the
//! blind-index tokens of encrypted search.

use super::{channel, member, message, store};
use crate::helpers::{Db, on_both_databases};

async fn messages_are_edited_pinned_and_deleted_with_their_reactions(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:p", 1),
            &[member("messaging:p", "a", 1)],
            &[],
        )
        .await
        .unwrap();
    for (id, t) in [("m1", 10), ("m2", 20), ("m3", 30)] {
        s.messages
            .insert_message(&message(id, "messaging:p", "a", "text", t), false, &[])
            .await
            .unwrap();
    }
    for id in ["m1", "m3"] {
        let mut m = s.messages.find_message(id).await.unwrap().unwrap();
        m.pinned = true;
        m.text = format!("pinned {id}");
        m.updated_at = 40;
        s.messages.update_message(&m, &[]).await.unwrap();
    }
    let m3 = s.messages.find_message("m3").await.unwrap().unwrap();
    assert_eq!(
        (m3.text.as_str(), m3.pinned, m3.updated_at, m3.created_at),
        ("pinned m3", true, 40, 30)
    );
    let pinned =
        |rows: Vec<ward::store::MessageRow>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(
        pinned(
            s.messages
                .find_pinned_messages("messaging:p", None, 10)
                .await
                .unwrap()
        ),
        ["m1", "m3"]
    );
    assert_eq!(
        pinned(
            s.messages
                .find_pinned_messages("messaging:p", None, 1)
                .await
                .unwrap()
        ),
        ["m3"],
        "the newest"
    );
    assert_eq!(
        pinned(
            s.messages
                .find_pinned_messages("messaging:p", Some(10), 10)
                .await
                .unwrap()
        ),
        ["m3"]
    );

    let mut found = pinned(
        s.messages
            .find_messages(&["m2".into(), "m1".into(), "zz".into()])
            .await
            .unwrap(),
    );
    found.sort();
    assert_eq!(found, ["m1", "m2"]);
    s.messages.delete_message("m1", &[]).await.unwrap();
    assert!(s.messages.find_message("m1").await.unwrap().is_none());
    assert_eq!(
        pinned(
            s.messages
                .find_pinned_messages("messaging:p", None, 10)
                .await
                .unwrap()
        ),
        ["m3"]
    );
    assert_eq!(
        s.messages
            .find_message_ids_by_author("a", "", 10)
            .await
            .unwrap(),
        ["m2", "m3"]
    );
    assert_eq!(
        s.messages
            .find_message_ids_by_author("a", "m2", 10)
            .await
            .unwrap(),
        ["m3"],
        "after the cursor"
    );
    assert!(
        s.messages
            .find_message_ids_by_author("b", "", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn token_search_needs_enough_tokens_and_forgets_a_shredded_author(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:t", 1),
            &[member("messaging:t", "a", 1)],
            &[],
        )
        .await
        .unwrap();
    let tokens = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    let m = |id, author, t| message(id, "messaging:t", author, "sealed", t);
    s.messages
        .insert_message_with_tokens(&m("m1", "a", 10), false, &tokens(&["x", "y"]), &[])
        .await
        .unwrap();
    s.messages
        .insert_message_with_tokens(&m("m2", "b", 20), false, &tokens(&["x"]), &[])
        .await
        .unwrap();
    s.messages
        .insert_message_with_tokens(&m("m3", "a", 30), false, &tokens(&["x", "y", "z"]), &[])
        .await
        .unwrap();
    let ids =
        |rows: Vec<ward::store::MessageRow>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let search = |list: Vec<String>, required, limit, offset| {
        let s = s.clone();
        async move {
            ids(s
                .messages
                .search_messages_by_tokens(&list, required, limit, offset)
                .await
                .unwrap())
        }
    };
    assert_eq!(
        search(tokens(&["x"]), 1, 10, 0).await,
        ["m3", "m2", "m1"],
        "newest first"
    );
    assert_eq!(search(tokens(&["x", "y"]), 2, 10, 0).await, ["m3", "m1"]);
    assert_eq!(
        search(tokens(&["x", "y"]), 2, 1, 1).await,
        ["m1"],
        "limit and offset"
    );
    assert!(search(tokens(&["nope"]), 1, 10, 0).await.is_empty());

    s.messages
        .replace_message_tokens("m1", &tokens(&["w"]))
        .await
        .unwrap();
    assert_eq!(search(tokens(&["w"]), 1, 10, 0).await, ["m1"]);
    assert_eq!(
        search(tokens(&["y"]), 1, 10, 0).await,
        ["m3"],
        "the old tokens are gone"
    );

    s.messages.delete_tokens_of_author("a").await.unwrap();
    assert_eq!(
        search(tokens(&["x", "w", "y", "z"]), 1, 10, 0).await,
        ["m2"]
    );
}

on_both_databases!(
    messages_are_edited_pinned_and_deleted_with_their_reactions,
    token_search_needs_enough_tokens_and_forgets_a_shredded_author,
);
