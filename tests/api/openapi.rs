//! `GET /openapi.json`: the description of Ward's own endpoints matches the routes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Db, TestApp};

/// The served document lists exactly the Ward-own routes of the route table, each with the
/// method it is served with, so a new route without a description fails here.
#[tokio::test]
async fn openapi_json_describes_exactly_the_ward_own_routes() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let res = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let described: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| m.as_str() != "parameters")
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let routed: BTreeSet<String> = ward::authz::routes::ROUTE_ACTIONS
        .iter()
        .filter(|(_, path, _)| ward::authz::routes::is_ward_own(path))
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    assert!(routed.len() > 30, "the Ward-own routes ({})", routed.len());
    let undescribed: Vec<_> = routed.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routed).collect();
    assert!(
        undescribed.is_empty() && unrouted.is_empty(),
        "routes without a description: {undescribed:?}; descriptions without a Ward-own route: {unrouted:?}"
    );
    // Every operation documents its failures with Stream's error body, and the security
    // schemes it names exist.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for req in op["security"].as_array().into_iter().flatten() {
                for name in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                }
            }
            for (status, reply) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        reply["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

/// A download link whose path is not UTF-8 is refused with Stream's error body, as the
/// description says (it was axum's plain-text rejection).
#[tokio::test]
async fn a_download_path_that_is_not_utf8_gets_the_error_body() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let res = app
        .http
        .get(format!(
            "{}/exports/%FF/file.zip?expires=1&signature=x",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], 4);
    assert_eq!(body["StatusCode"], 400);
}
