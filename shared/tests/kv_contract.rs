//! Contract tests for the key-value port (`shared::ports::kv`): every check below runs once
//! against the embedded redb adapter and once against DynamoDB.
//!
//! The DynamoDB run needs an emulator: set `AWS_ENDPOINT_URL` (e.g. a moto server) plus dummy
//! credentials and a region. Without it those tests print that they are skipped, unless
//! `REQUIRE_AWS_EMULATOR=1` makes a missing emulator a failure. Each DynamoDB test creates its
//! own uniquely named table, so tests run in parallel and can be re-run against one emulator.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use shared::adapters::aws::{DynamoKv, sdk_config};
use shared::adapters::embedded::{RedbKv, open_database};
use shared::ports::kv::{Condition, Item, KeyValue, KvError, Page, Query, TxOp};

mod common;
use common::contract_tests;

contract_tests!(
    checks: {
        (store.kv.as_ref()) [
            get_of_a_missing_key_returns_none, put_then_get_returns_the_same_data_and_expiry, every_put_bumps_the_store_managed_version,
            put_if_not_exists_fails_over_a_live_item_and_changes_nothing, put_with_a_stale_version_fails_and_leaves_the_item_unchanged,
            put_requiring_existence_fails_on_a_missing_key, delete_honours_its_condition, transaction_with_one_failing_condition_writes_nothing,
            transaction_reports_the_first_failing_op, transaction_applies_puts_deletes_and_checks_together, check_op_guards_a_transaction_without_writing,
            transaction_limits_are_enforced, malformed_requests_are_rejected_as_invalid, query_returns_one_partition_in_sort_key_order,
            query_with_a_prefix_returns_only_matching_sort_keys, query_pages_through_every_item_without_gaps_or_duplicates,
            cursor_outside_the_prefix_resumes_at_the_right_place, expired_items_are_invisible_to_get_and_query, conditions_treat_an_expired_item_as_absent,
            query_fills_its_limit_past_expired_items, random_operation_sequences_agree_with_a_model,
        ],
        (&store) [concurrent_version_checked_puts_let_exactly_one_win],
    },
    embedded: { store = super::embedded_store() },
    dynamodb: { Some(store) = super::dynamodb_store().await },
);

/// A store under test together with whatever must outlive it.
struct Store {
    kv: Box<dyn KeyValue>,
    /// Whether the backend evaluates a write's condition and applies the write atomically.
    atomic_conditional_writes: bool,
    _dir: Option<tempfile::TempDir>,
}

fn embedded_store() -> Store {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open_database(&dir.path().join("kv.redb")).expect("open redb");
    let kv = RedbKv::new(db).expect("create kv table");
    Store { kv: Box::new(kv), atomic_conditional_writes: true, _dir: Some(dir) }
}

async fn dynamodb_store() -> Option<Store> {
    common::emulator("DynamoDB")?;
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = format!("kv-contract-{}", ulid::Ulid::new().to_string().to_lowercase());
    let kv = DynamoKv::create_table_for_tests(client, &table).await.expect("create DynamoDB table");
    Some(Store { kv: Box::new(kv), atomic_conditional_writes: !endpoint_is_moto().await, _dir: None })
}

/// moto (5.2.1, `update_item`) checks a condition and applies the write without holding a
/// lock, so two racing writers can both pass; DynamoDB, DynamoDB Local and redb cannot.
async fn endpoint_is_moto() -> bool {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        return false;
    };
    let probe = format!("{}/moto-api/", endpoint.trim_end_matches('/'));
    reqwest::get(probe).await.is_ok_and(|response| response.status().is_success())
}

// ---------------------------------------------------------------------------------------------
// Single-item reads and writes
// ---------------------------------------------------------------------------------------------

async fn get_of_a_missing_key_returns_none(kv: &dyn KeyValue) {
    assert_eq!(kv.get("user#1", "profile").await.expect("get"), None);
}

async fn put_then_get_returns_the_same_data_and_expiry(kv: &dyn KeyValue) {
    let later = now() + 3600;
    let binary = Item::new("user#1", "blob", vec![0, 255, 1, 128]).expiring_at(later);
    let json = Item::json("user#1", "profile", &serde_json::json!({"name": "Иван"})).expect("json");
    let empty = Item::new("user#1", "empty", Vec::new());

    for item in [binary, json, empty] {
        let version = kv.put(item.clone(), Condition::None).await.expect("put");
        let stored = kv.get(&item.pk, &item.sk).await.expect("get").expect("item is there");
        assert_eq!(stored, Item { version, ..item });
        assert_eq!(version, 1);
    }
    let profile = kv.get("user#1", "profile").await.expect("get").expect("profile");
    assert_eq!(profile.parse::<serde_json::Value>().expect("parse"), serde_json::json!({"name": "Иван"}));
}

async fn every_put_bumps_the_store_managed_version(kv: &dyn KeyValue) {
    let mut item = item("p", "s", b"one");
    item.version = 77;
    assert_eq!(kv.put(item.clone(), Condition::None).await.expect("first put"), 1);
    assert_eq!(version_of(kv, "p", "s").await, Some(1));
    assert_eq!(kv.put(item.clone(), Condition::Exists).await.expect("second put"), 2);
    assert_eq!(kv.put(item.clone(), Condition::VersionIs(2)).await.expect("third put"), 3);
    assert_eq!(version_of(kv, "p", "s").await, Some(3));
}

async fn put_if_not_exists_fails_over_a_live_item_and_changes_nothing(kv: &dyn KeyValue) {
    kv.put(item("p", "s", b"original"), Condition::NotExists).await.expect("create");
    let outcome = kv.put(item("p", "s", b"intruder"), Condition::NotExists).await;
    assert!(matches!(outcome, Err(KvError::ConditionFailed)), "{outcome:?}");
    let stored = kv.get("p", "s").await.expect("get").expect("item");
    assert_eq!((stored.version, stored.data.as_slice()), (1, b"original".as_slice()));
}

async fn put_with_a_stale_version_fails_and_leaves_the_item_unchanged(kv: &dyn KeyValue) {
    kv.put(item("p", "s", b"v1"), Condition::None).await.expect("v1");
    kv.put(item("p", "s", b"v2"), Condition::VersionIs(1)).await.expect("v2");
    for stale in [0, 1, 3] {
        let outcome = kv.put(item("p", "s", b"stale"), Condition::VersionIs(stale)).await;
        assert!(matches!(outcome, Err(KvError::ConditionFailed)), "VersionIs({stale}): {outcome:?}");
    }
    let stored = kv.get("p", "s").await.expect("get").expect("item");
    assert_eq!((stored.version, stored.data.as_slice()), (2, b"v2".as_slice()));
    let outcome = kv.put(item("p", "missing", b"x"), Condition::VersionIs(1)).await;
    assert!(matches!(outcome, Err(KvError::ConditionFailed)), "{outcome:?}");
    assert_eq!(kv.get("p", "missing").await.expect("get"), None);
}

async fn put_requiring_existence_fails_on_a_missing_key(kv: &dyn KeyValue) {
    let outcome = kv.put(item("p", "s", b"x"), Condition::Exists).await;
    assert!(matches!(outcome, Err(KvError::ConditionFailed)), "{outcome:?}");
    assert_eq!(kv.get("p", "s").await.expect("get"), None);
    kv.put(item("p", "s", b"x"), Condition::None).await.expect("create");
    assert_eq!(kv.put(item("p", "s", b"y"), Condition::Exists).await.expect("update"), 2);
}

async fn delete_honours_its_condition(kv: &dyn KeyValue) {
    kv.delete("p", "s", Condition::None).await.expect("deleting an absent key is fine");
    let outcome = kv.delete("p", "s", Condition::Exists).await;
    assert!(matches!(outcome, Err(KvError::ConditionFailed)), "{outcome:?}");

    kv.put(item("p", "s", b"x"), Condition::None).await.expect("create");
    for wrong in [Condition::VersionIs(5), Condition::NotExists] {
        let outcome = kv.delete("p", "s", wrong).await;
        assert!(matches!(outcome, Err(KvError::ConditionFailed)), "{wrong:?}: {outcome:?}");
        assert_eq!(version_of(kv, "p", "s").await, Some(1));
    }
    kv.delete("p", "s", Condition::VersionIs(1)).await.expect("delete");
    assert_eq!(kv.get("p", "s").await.expect("get"), None);
    assert_eq!(kv.put(item("p", "s", b"again"), Condition::NotExists).await.expect("recreate"), 1);
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

async fn transaction_with_one_failing_condition_writes_nothing(kv: &dyn KeyValue) {
    kv.put(item("p", "a", b"a1"), Condition::None).await.expect("a");
    kv.put(item("p", "b", b"b1"), Condition::None).await.expect("b");
    let outcome = kv
        .transact(vec![
            put_op("p", "c", b"c1", Condition::NotExists),
            put_op("p", "a", b"a2", Condition::VersionIs(1)),
            TxOp::Delete { pk: "p".into(), sk: "b".into(), condition: Condition::VersionIs(9) },
            put_op("p", "d", b"d1", Condition::None),
        ])
        .await;
    assert!(matches!(outcome, Err(KvError::TransactionConflict { index: Some(2) })), "{outcome:?}");
    assert_eq!(kv.get("p", "c").await.expect("get c"), None);
    assert_eq!(kv.get("p", "d").await.expect("get d"), None);
    let a = kv.get("p", "a").await.expect("get a").expect("a");
    assert_eq!((a.version, a.data.as_slice()), (1, b"a1".as_slice()));
    assert_eq!(version_of(kv, "p", "b").await, Some(1));
}

async fn transaction_reports_the_first_failing_op(kv: &dyn KeyValue) {
    kv.put(item("p", "taken", b"x"), Condition::None).await.expect("taken");
    let outcome = kv
        .transact(vec![
            put_op("p", "free", b"x", Condition::NotExists),
            TxOp::Check { pk: "p".into(), sk: "absent".into(), condition: Condition::Exists },
            put_op("p", "taken", b"y", Condition::NotExists),
        ])
        .await;
    assert!(matches!(outcome, Err(KvError::TransactionConflict { index: Some(1) })), "{outcome:?}");
    assert_eq!(kv.get("p", "free").await.expect("get"), None);
}

async fn transaction_applies_puts_deletes_and_checks_together(kv: &dyn KeyValue) {
    kv.put(item("p", "a", b"a1"), Condition::None).await.expect("a");
    kv.put(item("p", "b", b"b1"), Condition::None).await.expect("b");
    kv.put(item("p", "guard", b"g"), Condition::None).await.expect("guard");
    kv.transact(vec![
        put_op("p", "a", b"a2", Condition::VersionIs(1)),
        TxOp::Delete { pk: "p".into(), sk: "b".into(), condition: Condition::Exists },
        put_op("p", "c", b"c1", Condition::NotExists),
        TxOp::Check { pk: "p".into(), sk: "guard".into(), condition: Condition::VersionIs(1) },
        put_op("other", "a", b"elsewhere", Condition::None),
    ])
    .await
    .expect("transaction");
    let a = kv.get("p", "a").await.expect("get a").expect("a");
    assert_eq!((a.version, a.data.as_slice()), (2, b"a2".as_slice()));
    assert_eq!(kv.get("p", "b").await.expect("get b"), None);
    assert_eq!(version_of(kv, "p", "c").await, Some(1));
    assert_eq!(version_of(kv, "other", "a").await, Some(1));
    assert_eq!(version_of(kv, "p", "guard").await, Some(1));
}

async fn check_op_guards_a_transaction_without_writing(kv: &dyn KeyValue) {
    kv.put(item("p", "guard", b"g"), Condition::None).await.expect("guard");
    let outcome = kv
        .transact(vec![TxOp::Check { pk: "p".into(), sk: "guard".into(), condition: Condition::VersionIs(2) }, put_op("p", "x", b"x", Condition::None)])
        .await;
    assert!(matches!(outcome, Err(KvError::TransactionConflict { index: Some(0) })), "{outcome:?}");
    assert_eq!(kv.get("p", "x").await.expect("get"), None);

    kv.transact(vec![
        TxOp::Check { pk: "p".into(), sk: "absent".into(), condition: Condition::None },
        TxOp::Check { pk: "p".into(), sk: "guard".into(), condition: Condition::Exists },
        put_op("p", "x", b"x", Condition::None),
    ])
    .await
    .expect("transaction");
    assert_eq!(version_of(kv, "p", "guard").await, Some(1));
    assert_eq!(kv.get("p", "absent").await.expect("get"), None);
    assert_eq!(version_of(kv, "p", "x").await, Some(1));
}

async fn transaction_limits_are_enforced(kv: &dyn KeyValue) {
    kv.transact(Vec::new()).await.expect("an empty transaction is a no-op");

    let ops = |count: usize| (0..count).map(|i| put_op("p", &format!("k{i:02}"), b"x", Condition::None)).collect::<Vec<_>>();
    let outcome = kv.transact(ops(26)).await;
    assert!(matches!(outcome, Err(KvError::Invalid(_))), "{outcome:?}");
    assert_eq!(kv.get("p", "k00").await.expect("get"), None);

    let duplicate = vec![put_op("p", "k00", b"x", Condition::None), TxOp::Check { pk: "p".into(), sk: "k00".into(), condition: Condition::None }];
    let outcome = kv.transact(duplicate).await;
    assert!(matches!(outcome, Err(KvError::Invalid(_))), "{outcome:?}");
    assert_eq!(kv.get("p", "k00").await.expect("get"), None);

    kv.transact(ops(25)).await.expect("25 ops are allowed");
    let page = kv.query(Query::partition("p")).await.expect("query");
    assert_eq!(page.items.len(), 25);
}

async fn malformed_requests_are_rejected_as_invalid(kv: &dyn KeyValue) {
    let long = "k".repeat(1025);
    for (pk, sk) in [("", "s"), ("p", ""), ("p\0q", "s"), ("p", "s\0t"), ("p", long.as_str()), (long.as_str(), "s")] {
        let outcome = kv.put(item(pk, sk, b"x"), Condition::None).await;
        assert!(matches!(outcome, Err(KvError::Invalid(_))), "put {:?}: {outcome:?}", &sk[..sk.len().min(8)]);
        assert!(matches!(kv.get(pk, sk).await, Err(KvError::Invalid(_))));
        assert!(matches!(kv.delete(pk, sk, Condition::None).await, Err(KvError::Invalid(_))));
    }

    let longest = "k".repeat(1024);
    kv.put(item(&longest, &longest, b"x"), Condition::None).await.expect("1024-byte keys fit");
    assert_eq!(version_of(kv, &longest, &longest).await, Some(1));

    let outcome = kv.put(item("p", "big", &vec![7; 350 * 1024 + 1]), Condition::None).await;
    assert!(matches!(outcome, Err(KvError::Invalid(_))), "{outcome:?}");
    kv.put(item("p", "big", &vec![7; 350 * 1024]), Condition::None).await.expect("350 KiB fits");

    let outcome = kv.query(Query::partition("p").limit(0)).await;
    assert!(matches!(outcome, Err(KvError::Invalid(_))), "{outcome:?}");
    let outcome = kv.query(Query::partition("")).await;
    assert!(matches!(outcome, Err(KvError::Invalid(_))), "{outcome:?}");
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

async fn query_returns_one_partition_in_sort_key_order(kv: &dyn KeyValue) {
    let sort_keys = ["b", "a", "é", "c", "a#2", "B", "a#10", "~"];
    for sk in sort_keys {
        kv.put(item("user", sk, sk.as_bytes()), Condition::None).await.expect("put");
    }
    // Neighbouring partitions must not leak into the query.
    for pk in ["use", "user2", "user#x", "usex"] {
        kv.put(item(pk, "a", b"other"), Condition::None).await.expect("put neighbour");
    }

    let mut expected: Vec<&str> = sort_keys.to_vec();
    expected.sort_unstable();
    let page = kv.query(Query::partition("user")).await.expect("ascending");
    assert_eq!(sort_keys_of(&page), expected);
    assert_eq!(page.last_key, None);
    assert!(page.items.iter().all(|item| item.pk == "user" && item.data == item.sk.as_bytes() && item.version == 1));

    expected.reverse();
    let page = kv.query(Query::partition("user").descending()).await.expect("descending");
    assert_eq!(sort_keys_of(&page), expected);

    let page = kv.query(Query::partition("nobody")).await.expect("empty partition");
    assert!(page.items.is_empty() && page.last_key.is_none());
}

async fn query_with_a_prefix_returns_only_matching_sort_keys(kv: &dyn KeyValue) {
    for sk in ["doc#1", "doc#2", "doc#10", "docs", "do", "app#1", "doc"] {
        kv.put(item("p", sk, b"x"), Condition::None).await.expect("put");
    }
    let page = kv.query(Query::partition("p").prefix("doc#")).await.expect("ascending");
    assert_eq!(sort_keys_of(&page), ["doc#1", "doc#10", "doc#2"]);
    let page = kv.query(Query::partition("p").prefix("doc#").descending()).await.expect("descending");
    assert_eq!(sort_keys_of(&page), ["doc#2", "doc#10", "doc#1"]);
    let page = kv.query(Query::partition("p").prefix("doc")).await.expect("prefix equal to a key");
    assert_eq!(sort_keys_of(&page), ["doc", "doc#1", "doc#10", "doc#2", "docs"]);
    let page = kv.query(Query::partition("p").prefix("zzz")).await.expect("no match");
    assert!(page.items.is_empty());
}

async fn query_pages_through_every_item_without_gaps_or_duplicates(kv: &dyn KeyValue) {
    let items: Vec<String> = (0..23).map(|i| format!("item#{i:02}")).collect();
    for sk in items.iter().map(String::as_str).chain(["alpha", "zulu"]) {
        kv.put(item("p", sk, b"x"), Condition::None).await.expect("put");
    }
    let mut descending = items.clone();
    descending.reverse();

    for (query, expected) in
        [(Query::partition("p").prefix("item#").limit(5), &items), (Query::partition("p").prefix("item#").limit(5).descending(), &descending)]
    {
        let pages = all_pages(kv, query.clone()).await;
        let (last, full) = pages.split_last().expect("at least one page");
        assert!(full.iter().all(|page| page.len() == 5), "short page before the end: {pages:?}");
        assert!(last.len() <= 5);
        assert_eq!(&pages.concat(), expected, "descending: {}", query.descending);
    }

    let whole = all_pages(kv, Query::partition("p").limit(7)).await.concat();
    assert_eq!(whole.len(), 25);
    assert_eq!(whole.first().map(String::as_str), Some("alpha"));
    assert_eq!(whole.last().map(String::as_str), Some("zulu"));
}

async fn cursor_outside_the_prefix_resumes_at_the_right_place(kv: &dyn KeyValue) {
    for sk in ["a", "m1", "m2", "z"] {
        kv.put(item("p", sk, b"x"), Condition::None).await.expect("put");
    }
    let cases: [(&str, bool, &[&str]); 7] = [
        ("b", false, &["m1", "m2"]),
        ("n", false, &[]),
        ("n", true, &["m2", "m1"]),
        ("b", true, &[]),
        ("m1", false, &["m2"]),
        ("m2", true, &["m1"]),
        ("m", false, &["m1", "m2"]),
    ];
    for (cursor, descending, expected) in cases {
        let mut query = Query::partition("p").prefix("m").after(Some(cursor.to_owned()));
        query.descending = descending;
        let page = kv.query(query).await.expect("query");
        assert_eq!(sort_keys_of(&page), expected, "after {cursor:?}, descending {descending}");
    }
    let page = kv.query(Query::partition("p").after(Some("b".into()))).await.expect("no prefix");
    assert_eq!(sort_keys_of(&page), ["m1", "m2", "z"]);
}

// ---------------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------------

async fn expired_items_are_invisible_to_get_and_query(kv: &dyn KeyValue) {
    kv.put(item("p", "a", b"expired").expiring_at(now() - 60), Condition::None).await.expect("a");
    kv.put(item("p", "b", b"later").expiring_at(now() + 3600), Condition::None).await.expect("b");
    kv.put(item("p", "c", b"forever"), Condition::None).await.expect("c");
    assert_eq!(kv.get("p", "a").await.expect("get a"), None);
    assert_eq!(version_of(kv, "p", "b").await, Some(1));
    assert_eq!(sort_keys_of(&kv.query(Query::partition("p")).await.expect("query")), ["b", "c"]);
    assert_eq!(sort_keys_of(&kv.query(Query::partition("p").descending()).await.expect("query")), ["c", "b"]);
}

async fn conditions_treat_an_expired_item_as_absent(kv: &dyn KeyValue) {
    let expired = || item("p", "x", b"old").expiring_at(now() - 60);
    kv.put(expired(), Condition::None).await.expect("expired item");
    for condition in [Condition::Exists, Condition::VersionIs(1)] {
        let outcome = kv.put(item("p", "x", b"new"), condition).await;
        assert!(matches!(outcome, Err(KvError::ConditionFailed)), "put {condition:?}: {outcome:?}");
        let outcome = kv.delete("p", "x", condition).await;
        assert!(matches!(outcome, Err(KvError::ConditionFailed)), "delete {condition:?}: {outcome:?}");
    }
    let version = kv.put(item("p", "x", b"new"), Condition::NotExists).await.expect("NotExists holds over expiry");
    assert!(version >= 1);
    let stored = kv.get("p", "x").await.expect("get").expect("live again");
    assert_eq!((stored.version, stored.data.as_slice(), stored.expires_at), (version, b"new".as_slice(), None));

    kv.put(item("p", "y", b"old").expiring_at(now() - 60), Condition::None).await.expect("expired y");
    kv.transact(vec![TxOp::Check { pk: "p".into(), sk: "y".into(), condition: Condition::NotExists }, put_op("p", "z", b"z", Condition::NotExists)])
        .await
        .expect("a check for absence passes over an expired item");
    let outcome = kv.transact(vec![TxOp::Check { pk: "p".into(), sk: "y".into(), condition: Condition::Exists }]).await;
    assert!(matches!(outcome, Err(KvError::TransactionConflict { index: Some(0) })), "{outcome:?}");
}

async fn query_fills_its_limit_past_expired_items(kv: &dyn KeyValue) {
    let mut live = Vec::new();
    for i in 0..30 {
        let sk = format!("k{i:02}");
        let mut item = item("p", &sk, b"x");
        if i % 3 == 0 {
            live.push(sk);
        } else {
            item = item.expiring_at(now() - 60);
        }
        kv.put(item, Condition::None).await.expect("put");
    }
    let pages = all_pages(kv, Query::partition("p").limit(4)).await;
    assert_eq!(pages.concat(), live);
    assert_eq!(pages.first().map(Vec::len), Some(4), "the first page is filled despite expired items");
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

async fn concurrent_version_checked_puts_let_exactly_one_win(store: &Store) {
    let kv = store.kv.as_ref();
    kv.put(item("p", "counter", b"start"), Condition::None).await.expect("create");
    let attempts = (0..50).map(|i| kv.put(item("p", "counter", format!("writer {i}").as_bytes()), Condition::VersionIs(1)));
    let outcomes = futures::future::join_all(attempts).await;

    assert!(outcomes.iter().all(|o| matches!(o, Ok(_) | Err(KvError::ConditionFailed))), "{outcomes:?}");
    let winners: Vec<(usize, u64)> = outcomes.iter().enumerate().filter_map(|(i, o)| o.as_ref().ok().map(|v| (i, *v))).collect();
    let stored = kv.get("p", "counter").await.expect("get").expect("item");
    let last_writer = winners.iter().find(|(_, version)| *version == stored.version);
    let last_writer = last_writer.unwrap_or_else(|| panic!("stored version {} was returned to no writer", stored.version));
    assert_eq!(stored.data, format!("writer {}", last_writer.0).into_bytes());
    if store.atomic_conditional_writes {
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        assert_eq!(winners[0].1, 2);
    } else {
        // Only the race-independent half holds on such an emulator.
        assert!(!winners.is_empty(), "no writer won");
        if winners.len() > 1 {
            eprintln!("the emulator's conditional writes raced: {} of 50 writers won", winners.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Randomised comparison with a model
// ---------------------------------------------------------------------------------------------

/// Sort keys the random operations pick from: shared prefixes make prefix queries interesting.
const SORT_KEYS: [&str; 6] = ["a", "a#1", "a#2", "b", "b#1", "ba"];
const PREFIXES: [&str; 4] = ["a", "a#", "b", "c"];

#[derive(Clone, Copy, Debug)]
enum Expiry {
    Never,
    Past,
    Future,
}

#[derive(Clone, Copy, Debug)]
enum Cond {
    None,
    NotExists,
    Exists,
    VersionIs(u64),
    /// `VersionIs` with the live item's actual version, so version checks succeed often.
    Current,
}

#[derive(Clone, Debug)]
enum TxKind {
    Put { data: Vec<u8>, expiry: Expiry },
    Delete,
    Check,
}

#[derive(Clone, Debug)]
enum Op {
    Put { sk: usize, data: Vec<u8>, expiry: Expiry, condition: Cond },
    Delete { sk: usize, condition: Cond },
    Get { sk: usize },
    Transact(Vec<(usize, TxKind, Cond)>),
    Query { prefix: Option<usize>, descending: bool, limit: usize },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let sk = 0..SORT_KEYS.len();
    let data = prop::collection::vec(any::<u8>(), 0..4);
    let expiry = prop_oneof![4 => Just(Expiry::Never), 1 => Just(Expiry::Past), 1 => Just(Expiry::Future)];
    let condition = prop_oneof![
        1 => Just(Cond::None),
        1 => Just(Cond::NotExists),
        1 => Just(Cond::Exists),
        1 => (0u64..4).prop_map(Cond::VersionIs),
        2 => Just(Cond::Current),
    ];
    let tx_kind =
        prop_oneof![(data.clone(), expiry.clone()).prop_map(|(data, expiry)| TxKind::Put { data, expiry }), Just(TxKind::Delete), Just(TxKind::Check),];
    prop_oneof![
        3 => (sk.clone(), data, expiry, condition.clone())
            .prop_map(|(sk, data, expiry, condition)| Op::Put { sk, data, expiry, condition }),
        1 => (sk.clone(), condition.clone()).prop_map(|(sk, condition)| Op::Delete { sk, condition }),
        1 => sk.clone().prop_map(|sk| Op::Get { sk }),
        2 => prop::collection::vec((sk, tx_kind, condition), 1..5).prop_map(Op::Transact),
        1 => (prop::option::of(0..PREFIXES.len()), any::<bool>(), 1usize..4)
            .prop_map(|(prefix, descending, limit)| Op::Query { prefix, descending, limit }),
    ]
}

async fn random_operation_sequences_agree_with_a_model(kv: &dyn KeyValue) {
    let config = Config { cases: 32, max_shrink_iters: 256, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let case = AtomicUsize::new(0);
    let handle = tokio::runtime::Handle::current();
    let outcome = runner.run(&prop::collection::vec(op_strategy(), 1..30), |ops| {
        // Each case gets a fresh partition, so cases never see each other's items.
        let pk = format!("model-{}", case.fetch_add(1, Ordering::Relaxed));
        tokio::task::block_in_place(|| handle.block_on(run_against_model(kv, &pk, &ops)))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// What the model knows about one stored item (live or expired-but-present).
#[derive(Clone, Debug)]
struct ModelItem {
    version: u64,
    data: Vec<u8>,
    expires_at: Option<i64>,
}

async fn run_against_model(kv: &dyn KeyValue, pk: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let now = now();
    let expiry_at = |expiry: Expiry| match expiry {
        Expiry::Never => None,
        Expiry::Past => Some(now - 3600),
        Expiry::Future => Some(now + 3600),
    };
    let mut model: BTreeMap<String, ModelItem> = BTreeMap::new();
    let live = |model: &BTreeMap<String, ModelItem>, sk: &str| model.get(sk).filter(|item| item.expires_at.is_none_or(|at| at >= now)).cloned();
    let resolve = |model: &BTreeMap<String, ModelItem>, sk: &str, cond: Cond| match cond {
        Cond::None => Condition::None,
        Cond::NotExists => Condition::NotExists,
        Cond::Exists => Condition::Exists,
        Cond::VersionIs(version) => Condition::VersionIs(version),
        Cond::Current => Condition::VersionIs(live(model, sk).map_or(1, |item| item.version)),
    };
    let holds = |model: &BTreeMap<String, ModelItem>, sk: &str, condition: Condition| match condition {
        Condition::None => true,
        Condition::NotExists => live(model, sk).is_none(),
        Condition::Exists => live(model, sk).is_some(),
        Condition::VersionIs(version) => live(model, sk).is_some_and(|item| item.version == version),
    };

    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put { sk, data, expiry, condition } => {
                let sk = SORT_KEYS[*sk];
                let condition = resolve(&model, sk, *condition);
                let item = Item { expires_at: expiry_at(*expiry), ..item(pk, sk, data) };
                let outcome = kv.put(item, condition).await;
                if holds(&model, sk, condition) {
                    let version = outcome.map_err(|e| fail(step, op, e))?;
                    match (live(&model, sk), model.get(sk)) {
                        (Some(previous), _) => prop_assert_eq!(version, previous.version + 1, "step {}: {:?}", step, op),
                        (None, None) => prop_assert_eq!(version, 1, "step {}: {:?}", step, op),
                        // Over an expired-but-stored item either numbering is allowed.
                        (None, Some(_)) => prop_assert!(version >= 1),
                    }
                    model.insert(sk.to_owned(), ModelItem { version, data: data.clone(), expires_at: expiry_at(*expiry) });
                } else {
                    prop_assert!(matches!(outcome, Err(KvError::ConditionFailed)), "step {}: {:?} -> {:?}", step, op, outcome);
                }
            }
            Op::Delete { sk, condition } => {
                let sk = SORT_KEYS[*sk];
                let condition = resolve(&model, sk, *condition);
                let outcome = kv.delete(pk, sk, condition).await;
                if holds(&model, sk, condition) {
                    outcome.map_err(|e| fail(step, op, e))?;
                    model.remove(sk);
                } else {
                    prop_assert!(matches!(outcome, Err(KvError::ConditionFailed)), "step {}: {:?} -> {:?}", step, op, outcome);
                }
            }
            Op::Get { sk } => {
                let sk = SORT_KEYS[*sk];
                let stored = kv.get(pk, sk).await.map_err(|e| fail(step, op, e))?;
                let expected = live(&model, sk).map(|m| Item { pk: pk.into(), sk: sk.into(), version: m.version, data: m.data, expires_at: m.expires_at });
                prop_assert_eq!(stored, expected, "step {}: {:?}", step, op);
            }
            Op::Transact(specs) => {
                let mut tx = Vec::new();
                let mut first_failure = None;
                for (index, (sk, kind, cond)) in specs.iter().enumerate() {
                    let sk = SORT_KEYS[*sk];
                    let condition = resolve(&model, sk, *cond);
                    if first_failure.is_none() && !holds(&model, sk, condition) {
                        first_failure = Some(index);
                    }
                    tx.push(match kind {
                        TxKind::Put { data, expiry } => TxOp::Put { item: Item { expires_at: expiry_at(*expiry), ..item(pk, sk, data) }, condition },
                        TxKind::Delete => TxOp::Delete { pk: pk.into(), sk: sk.into(), condition },
                        TxKind::Check => TxOp::Check { pk: pk.into(), sk: sk.into(), condition },
                    });
                }
                let mut distinct: Vec<usize> = specs.iter().map(|(sk, _, _)| *sk).collect();
                distinct.sort_unstable();
                distinct.dedup();
                let outcome = kv.transact(tx).await;
                if distinct.len() < specs.len() {
                    prop_assert!(matches!(outcome, Err(KvError::Invalid(_))), "step {}: {:?} -> {:?}", step, op, outcome);
                } else if let Some(index) = first_failure {
                    prop_assert!(
                        matches!(outcome, Err(KvError::TransactionConflict { index: Some(i) }) if i == index),
                        "step {}: {:?} -> {:?}",
                        step,
                        op,
                        outcome
                    );
                } else {
                    outcome.map_err(|e| fail(step, op, e))?;
                    for (sk, kind, _) in specs {
                        let sk = SORT_KEYS[*sk];
                        match kind {
                            TxKind::Put { data, expiry } => {
                                let version = match (live(&model, sk), model.get(sk)) {
                                    (Some(previous), _) => previous.version + 1,
                                    (None, None) => 1,
                                    // Either numbering is allowed over an expired item: learn it.
                                    (None, Some(_)) => version_after_write(kv, pk, sk).await,
                                };
                                model.insert(sk.to_owned(), ModelItem { version, data: data.clone(), expires_at: expiry_at(*expiry) });
                            }
                            TxKind::Delete => {
                                model.remove(sk);
                            }
                            TxKind::Check => {}
                        }
                    }
                }
            }
            Op::Query { prefix, descending, limit } => {
                let prefix = prefix.map(|p| PREFIXES[p]);
                let mut query = Query::partition(pk).limit(*limit);
                query.sk_prefix = prefix.map(str::to_owned);
                query.descending = *descending;
                let found: Vec<(String, u64, Vec<u8>)> = all_items(kv, query).await.into_iter().map(|i| (i.sk, i.version, i.data)).collect();
                let mut expected: Vec<(String, u64, Vec<u8>)> = model
                    .keys()
                    .filter(|sk| prefix.is_none_or(|p| sk.starts_with(p)))
                    .filter_map(|sk| live(&model, sk).map(|m| (sk.clone(), m.version, m.data)))
                    .collect();
                if *descending {
                    expected.reverse();
                }
                prop_assert_eq!(found, expected, "step {}: {:?}", step, op);
            }
        }
    }
    Ok(())
}

/// The version a transaction gave an item written over an expired one; 0 if the new item is
/// itself already expired (its version is then unobservable and never compared).
async fn version_after_write(kv: &dyn KeyValue, pk: &str, sk: &str) -> u64 {
    kv.get(pk, sk).await.ok().flatten().map_or(0, |item| item.version)
}

fn fail(step: usize, op: &Op, error: KvError) -> TestCaseError {
    TestCaseError::fail(format!("step {step}: {op:?} failed unexpectedly: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Embedded-only behaviour
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn purge_expired_removes_only_expired_items_from_the_redb_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kv = RedbKv::new(open_database(&dir.path().join("kv.redb")).expect("open")).expect("kv");
    kv.put(item("p", "gone", b"x").expiring_at(now() - 60), Condition::None).await.expect("expired");
    kv.put(item("p", "gone", b"x").expiring_at(now() - 60), Condition::None).await.expect("expired again");
    kv.put(item("p", "kept", b"x").expiring_at(now() + 3600), Condition::None).await.expect("live");
    kv.put(item("p", "forever", b"x"), Condition::None).await.expect("no expiry");

    assert_eq!(kv.purge_expired(now()).await.expect("purge"), 1);
    assert_eq!(kv.purge_expired(now()).await.expect("second purge"), 0);
    assert_eq!(sort_keys_of(&kv.query(Query::partition("p")).await.expect("query")), ["forever", "kept"]);
    // The purged item's version history is gone, so a new item starts over.
    assert_eq!(kv.put(item("p", "gone", b"y"), Condition::NotExists).await.expect("recreate"), 1);
}

#[tokio::test]
async fn embedded_items_survive_reopening_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kv.redb");
    {
        let kv = RedbKv::new(open_database(&path).expect("open")).expect("kv");
        kv.put(item("p", "s", b"durable"), Condition::None).await.expect("put");
    }
    let kv = RedbKv::new(open_database(&path).expect("reopen")).expect("kv");
    let stored = kv.get("p", "s").await.expect("get").expect("item");
    assert_eq!((stored.version, stored.data.as_slice()), (1, b"durable".as_slice()));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn now() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(elapsed.as_secs()).expect("seconds fit in i64")
}

fn item(pk: &str, sk: &str, data: &[u8]) -> Item {
    Item::new(pk, sk, data.to_vec())
}

fn put_op(pk: &str, sk: &str, data: &[u8], condition: Condition) -> TxOp {
    TxOp::Put { item: item(pk, sk, data), condition }
}

async fn version_of(kv: &dyn KeyValue, pk: &str, sk: &str) -> Option<u64> {
    kv.get(pk, sk).await.expect("get").map(|item| item.version)
}

fn sort_keys_of(page: &Page) -> Vec<&str> {
    page.items.iter().map(|item| item.sk.as_str()).collect()
}

/// Follows cursors to the end and returns each page's sort keys.
async fn all_pages(kv: &dyn KeyValue, query: Query) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = kv.query(query.clone().after(cursor)).await.expect("query page");
        assert!(page.items.len() <= query.limit, "page larger than its limit");
        pages.push(page.items.into_iter().map(|item| item.sk).collect());
        match page.last_key {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
    panic!("query did not finish within 100 pages");
}

async fn all_items(kv: &dyn KeyValue, query: Query) -> Vec<Item> {
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = kv.query(query.clone().after(cursor)).await.expect("query page");
        items.extend(page.items);
        match page.last_key {
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("query did not finish within 100 pages");
}
