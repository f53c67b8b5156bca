//! The High finding of the security review (issue 15) at the store, on both key-value adapters:
//! a registry verdict counts only for the citizen's latest pending request, and a verified
//! SNILS login never moves between accounts. The DynamoDB variant needs an emulator
//! (`AWS_ENDPOINT_URL`, e.g. moto) and says it is skipped without one unless
//! `REQUIRE_AWS_EMULATOR=1`.

mod common;

use serde_json::json;

use common::Harness;
use shared::identity::{Level, LoginIndex, VerificationStatus};
use shared::ports::{Condition, Item};

#[tokio::test]
async fn embedded_outdated_verdicts_change_nothing_and_snils_logins_stay() {
    outdated_verdicts_change_nothing_and_snils_logins_stay(Harness::embedded().await).await;
}

#[tokio::test]
async fn dynamodb_outdated_verdicts_change_nothing_and_snils_logins_stay() {
    let Some(harness) = Harness::dynamodb().await else { return };
    outdated_verdicts_change_nothing_and_snils_logins_stay(harness).await;
}

async fn outdated_verdicts_change_nothing_and_snils_logins_stay(h: Harness) {
    let victim = h.citizen_with_profile("standard").await;
    let (victim_account, _) = shared::identity::load(h.kv.as_ref(), &victim.user_id).await.unwrap().unwrap();
    let snils = victim_account.profile.expect("profile").snils;
    let login_key = shared::identity::login_pk(&h.state.index_key, &shared::identity::snils_login(&snils));
    h.kv.put(Item::json(login_key.clone(), shared::identity::LOGIN_SK, &LoginIndex { user_id: victim.user_id.clone() }).unwrap(), Condition::NotExists)
        .await
        .unwrap();

    // The attacker's own data is awaiting a verdict (request 1); then he swaps in the victim's
    // SNILS, which (as PUT /v1/me/profile does) is a new request.
    let attacker = h.citizen_with_profile("simplified").await;
    let first_request = h.verification_request(&attacker.user_id).await;
    let (mut account, version) = shared::identity::load(h.kv.as_ref(), &attacker.user_id).await.unwrap().unwrap();
    let profile = account.profile.as_mut().unwrap();
    profile.snils = snils.clone();
    profile.verification = shared::identity::Verification::requested(ulid::Ulid::new().to_string());
    let second_request = profile.verification.request_id.clone();
    h.kv.put(Item::json(shared::identity::user_pk(&attacker.user_id), shared::identity::ACCOUNT_SK, &account).unwrap(), Condition::VersionIs(version))
        .await
        .unwrap();

    let verdict = |request_id: &str| json!({"type": "identity.verification_completed", "data": {"user_id": attacker.user_id, "request_id": request_id, "result": "verified"}});
    h.webhook("sfr", "outdated-1", &verdict(&first_request)).await.problem(409, "verification_outdated");
    let (after, after_version) = shared::identity::load(h.kv.as_ref(), &attacker.user_id).await.unwrap().unwrap();
    assert_eq!(
        (after.level, after.profile.as_ref().unwrap().verification.status, after_version),
        (Level::Simplified, VerificationStatus::Pending, version + 1),
        "nothing changed"
    );
    // The dedupe record keeps the answer: the same delivery again is the same 409.
    h.webhook("sfr", "outdated-1", &verdict(&first_request)).await.problem(409, "verification_outdated");

    // A verdict on the latest request applies, but the SNILS login stays with the victim.
    h.webhook("sfr", "latest-1", &verdict(&second_request)).await.expect(200);
    assert_eq!(h.level_of(&attacker.user_id).await, "standard");
    let index: LoginIndex = h.kv.get(&login_key, shared::identity::LOGIN_SK).await.unwrap().unwrap().parse().unwrap();
    assert_eq!(index.user_id, victim.user_id, "a SNILS login never moves between accounts");
}
