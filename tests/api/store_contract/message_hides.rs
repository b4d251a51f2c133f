//! Messages hidden for one user (`delete_for_me`): kept once, found per user, forgotten with
//! the user and with the message.

use super::{channel, member, message, store};
use crate::helpers::{Db, on_both_databases};

async fn a_hidden_message_is_found_for_its_user_only_and_forgotten_with_them(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:h", 1),
            &[member("messaging:h", "a", 1)],
            &[],
        )
        .await
        .unwrap();
    for id in ["h1", "h2"] {
        s.messages
            .insert_message(&message(id, "messaging:h", "a", "text", 10), false, &[])
            .await
            .unwrap();
    }
    let hides = &s.message_hides;
    hides
        .insert_message_hide("h1", "u", 100, &[])
        .await
        .unwrap();
    hides
        .insert_message_hide("h1", "u", 200, &[])
        .await
        .unwrap();
    hides
        .insert_message_hide("h2", "v", 300, &[])
        .await
        .unwrap();
    let ids = vec!["h1".to_string(), "h2".to_string(), "nope".to_string()];
    assert_eq!(
        hides.find_message_hides("u", &ids).await.unwrap(),
        [("h1".to_string(), 100)],
        "the first hiding is kept"
    );
    assert!(hides.find_message_hides("u", &[]).await.unwrap().is_empty());
    hides.delete_message_hides_of_user("u").await.unwrap();
    assert!(
        hides
            .find_message_hides("u", &ids)
            .await
            .unwrap()
            .is_empty()
    );
    s.messages.delete_message("h2", &[]).await.unwrap();
    assert!(
        hides
            .find_message_hides("v", &ids)
            .await
            .unwrap()
            .is_empty(),
        "a hard-deleted message takes its hidings along"
    );
}

on_both_databases!(a_hidden_message_is_found_for_its_user_only_and_forgotten_with_them);
