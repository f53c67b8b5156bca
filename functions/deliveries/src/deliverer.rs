//! The deliverer (SPEC §4.5): reads each agency's due lane, claims each due delivery, POSTs its
//! stored body signed per Standard Webhooks v1, and records the outcome.
//!
//! - **Claim**: a conditional write on the record's version that moves its due pointer to
//!   `now + lease`, so a second worker skips it and a worker that dies mid-attempt leaves it due
//!   again after the lease (nothing is lost; the receiver sees the same `webhook-id` again).
//! - **Record**: record and pointer in one transaction, conditional on the claimed version (a
//!   redeliver in between wins; the attempt's result is then dropped, the delivery goes again).
//! - **Lanes**: every agency runs its own loop, concurrently; inside one agency deliveries go one
//!   at a time in due order. A failed attempt ends the agency's pass (one attempt per pass to an
//!   agency that is down), and a slow or failing agency never holds up another's loop.
//!
//! Logs name agencies, delivery ids, event types and statuses; never bodies (citizen data),
//! URLs or secrets.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::agencies::{Agency, Registry};
use shared::deliveries::{self, Delivery, DeliveryStatus, Due, Endpoint, delivery_pk, due_pk, due_sk, endpoint_key};
use shared::persist::{self, is_conflict};
use shared::ports::{Condition, KeyValue, KvError, Query, Ticker, TxOp};

use crate::domain::{self, Attempt, Decision, Outcome};
use crate::settings::Settings;

/// At most this many attempts per agency per pass, so a pass over a long backlog ends and the
/// lane is read again from its head.
const MAX_ATTEMPTS_PER_PASS: usize = 100;

pub struct Deliverer {
    kv: Arc<dyn KeyValue>,
    agencies: Arc<Registry>,
    http: reqwest::Client,
    settings: Settings,
    ticker: Ticker,
}

/// What one pass over one agency's lane did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneReport {
    pub attempted: usize,
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
    /// The endpoint is disabled (410): nothing attempted.
    pub disabled: bool,
}

/// What a pass over every agency did (the scheduled function's answer).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub agencies: usize,
    pub attempted: usize,
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
    pub errors: usize,
}

impl SweepReport {
    fn add(&mut self, lane: &Result<LaneReport, KvError>) {
        match lane {
            Ok(lane) => {
                self.attempted += lane.attempted;
                self.delivered += lane.delivered;
                self.failed += lane.failed;
                self.dead += lane.dead;
            }
            Err(_) => self.errors += 1,
        }
    }
}

/// How one due pointer was handled.
enum Handled {
    /// Attempted; the delivery's status after it.
    Attempted(DeliveryStatus),
    /// Another worker or a redeliver got there first, or the pointer was stale.
    Skipped,
}

impl Deliverer {
    pub fn new(kv: Arc<dyn KeyValue>, agencies: Arc<Registry>, settings: Settings, ticker: Ticker) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect is an answer that is not 2xx: never follow citizen data elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("gosuslugi-deliveries/1")
            .build()?;
        Ok(Self { kv, agencies, http, settings, ticker })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The agencies that take deliveries: those with a `delivery_url` and a signing secret.
    /// The others' deliveries stay pending in their lanes (visible in the delivery log).
    pub fn receiving_agencies(&self) -> impl Iterator<Item = &Agency> {
        self.agencies.agencies().iter().filter(|a| a.delivery_url.is_some() && a.delivery_secret().is_some())
    }

    /// One pass over every receiving agency's lane, all agencies at once.
    pub async fn sweep(&self) -> SweepReport {
        let lanes = futures::future::join_all(self.receiving_agencies().map(|agency| self.lane(agency))).await;
        let mut report = SweepReport { agencies: lanes.len(), ..SweepReport::default() };
        lanes.iter().for_each(|lane| report.add(lane));
        report
    }

    /// Every agency's lane in its own loop, a pass every `interval`, until `stop` resolves
    /// (the local runner) or, with `window`, until no attempt may start any more (one scheduled
    /// invocation on Lambda). A slow agency only slows its own loop.
    pub async fn run(&self, window: Option<Duration>, stop: impl std::future::Future<Output = ()>) -> SweepReport {
        let deadline = window.map(|w| tokio::time::Instant::now() + w);
        let loops = futures::future::join_all(self.receiving_agencies().map(|agency| self.lane_loop(agency, deadline)));
        tokio::select! {
            reports = loops => {
                let mut total = SweepReport { agencies: reports.len(), ..SweepReport::default() };
                for report in reports {
                    total.attempted += report.attempted;
                    total.delivered += report.delivered;
                    total.failed += report.failed;
                    total.dead += report.dead;
                    total.errors += report.errors;
                }
                total
            }
            () = stop => SweepReport::default(),
        }
    }

    async fn lane_loop(&self, agency: &Agency, deadline: Option<tokio::time::Instant>) -> SweepReport {
        let mut total = SweepReport { agencies: 1, ..SweepReport::default() };
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return total;
            }
            let lane = self.lane(agency).await;
            if let Err(e) = &lane {
                tracing::warn!(agency_id = %agency.id, error = %e, "delivery lane pass failed");
            }
            total.add(&lane);
        }
    }

    /// One pass over `agency`'s lane: each due delivery in due order until one fails.
    pub async fn lane(&self, agency: &Agency) -> Result<LaneReport, KvError> {
        let mut report = LaneReport::default();
        if self.endpoint(&agency.id).await?.disabled {
            report.disabled = true;
            return Ok(report);
        }
        // Due means a pointer key at or before now's (`~` sorts after every id character).
        let horizon = due_sk(self.ticker.now(), "~");
        let mut after = None;
        loop {
            let page = self.kv.query(Query::partition(due_pk(&agency.id)).limit(25).after(after)).await?;
            for item in &page.items {
                if item.sk > horizon || report.attempted >= MAX_ATTEMPTS_PER_PASS {
                    return Ok(report);
                }
                let due: Due = item.parse()?;
                match self.handle(agency, &item.sk, &due.delivery_id).await? {
                    Handled::Skipped => {}
                    Handled::Attempted(DeliveryStatus::Delivered) => {
                        report.attempted += 1;
                        report.delivered += 1;
                    }
                    Handled::Attempted(status) => {
                        report.attempted += 1;
                        report.failed += 1;
                        report.dead += usize::from(status == DeliveryStatus::Dead);
                        // The agency is failing: its next pass tries again, one attempt at a time.
                        return Ok(report);
                    }
                }
            }
            match page.last_key {
                Some(key) => after = Some(key),
                None => return Ok(report),
            }
        }
    }

    async fn endpoint(&self, agency_id: &str) -> Result<Endpoint, KvError> {
        let (pk, sk) = endpoint_key(agency_id);
        Ok(persist::get::<Endpoint>(self.kv.as_ref(), &pk, sk).await?.map(|e| e.value).unwrap_or_default())
    }

    /// Claims, attempts and records the delivery a due pointer names.
    async fn handle(&self, agency: &Agency, pointer: &str, delivery_id: &str) -> Result<Handled, KvError> {
        let lane = due_pk(&agency.id);
        let Some(read) = deliveries::load(self.kv.as_ref(), &agency.id, delivery_id).await? else {
            self.kv.delete(&lane, pointer, Condition::None).await?;
            return Ok(Handled::Skipped);
        };
        if domain::due_at(&read.value).map(|at| due_sk(at, delivery_id)).as_deref() != Some(pointer) {
            // A stray pointer (its record names another place): removed unless the record moved.
            let (pk, sk) = (delivery_pk(&agency.id), delivery_id.to_owned());
            let ops = vec![TxOp::Check { pk, sk, condition: read.unchanged() }, TxOp::Delete { pk: lane, sk: pointer.to_owned(), condition: Condition::None }];
            match self.kv.transact(ops).await {
                Ok(()) => {}
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
            return Ok(Handled::Skipped);
        }

        let started_at = self.ticker.now();
        let mut claimed = read.value.clone();
        claimed.next_attempt_at = Some(lease_end(started_at, self.settings.lease));
        let lease_key = due_sk(claimed.next_attempt_at.unwrap_or(started_at), delivery_id);
        let claim = vec![
            persist::put_op(delivery_pk(&agency.id), delivery_id, &claimed, read.unchanged(), None)?,
            TxOp::Delete { pk: lane.clone(), sk: pointer.to_owned(), condition: Condition::Exists },
            persist::put_op(lane.clone(), lease_key.clone(), &Due { delivery_id: delivery_id.to_owned() }, Condition::NotExists, None)?,
        ];
        match self.kv.transact(claim).await {
            Ok(()) => {}
            Err(e) if is_conflict(&e) => return Ok(Handled::Skipped),
            Err(e) => return Err(e),
        }

        let outcome = self.post(agency, &claimed, started_at).await;
        let attempt = Attempt { started_at, finished_at: self.ticker.now(), outcome };
        let decision = domain::decide(&claimed, &attempt, &self.settings.schedule);
        let status = decision.delivery.status;
        match self.kv.transact(record_ops(&decision, read.version + 1, &lease_key, started_at)?).await {
            Ok(()) => log_attempt(&decision, &attempt.outcome),
            // A redeliver moved it meanwhile: it is due again and goes once more.
            Err(e) if is_conflict(&e) => tracing::info!(agency_id = %agency.id, delivery_id, "delivery changed during its attempt; result dropped"),
            Err(e) => return Err(e),
        }
        Ok(Handled::Attempted(status))
    }

    /// One signed POST of the stored body (SPEC §4.5).
    async fn post(&self, agency: &Agency, delivery: &Delivery, at: DateTime<Utc>) -> Outcome {
        let (Some(url), Some(secret)) = (agency.delivery_url.as_deref(), agency.delivery_secret()) else {
            return Outcome::NoAnswer;
        };
        let timestamp = at.timestamp();
        let signature = match standardwebhooks::Webhook::new(secret).and_then(|w| w.sign(&delivery.delivery_id, timestamp, delivery.body.as_bytes())) {
            Ok(signature) => signature,
            Err(_) => {
                tracing::error!(agency_id = %agency.id, "the agency's delivery secret cannot sign");
                return Outcome::NoAnswer;
            }
        };
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.delivery_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone());
        match request.send().await {
            Ok(response) => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|raw| domain::parse_retry_after(raw, self.ticker.now()));
                Outcome::Answered { status: response.status().as_u16(), retry_after }
            }
            Err(e) => {
                // reqwest's message names the URL; say only what kind of failure it was.
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                tracing::info!(agency_id = %agency.id, delivery_id = %delivery.delivery_id, kind, "delivery attempt got no answer");
                Outcome::NoAnswer
            }
        }
    }
}

/// The ops that record an attempt's decision over the claimed record (version `claimed`):
/// the record, its pointer moved from the lease to the next attempt (or removed), and the
/// endpoint switched off after a 410.
fn record_ops(decision: &Decision, claimed: u64, lease_key: &str, at: DateTime<Utc>) -> Result<Vec<TxOp>, KvError> {
    let delivery = &decision.delivery;
    let lane = due_pk(&delivery.agency_id);
    let mut ops = vec![persist::put_op(delivery_pk(&delivery.agency_id), delivery.delivery_id.clone(), delivery, Condition::VersionIs(claimed), None)?];
    let next_key = domain::due_at(delivery).map(|next| due_sk(next, &delivery.delivery_id));
    if next_key.as_deref() != Some(lease_key) {
        ops.push(TxOp::Delete { pk: lane.clone(), sk: lease_key.to_owned(), condition: Condition::None });
        if let Some(next_key) = next_key {
            ops.push(persist::put_op(lane, next_key, &Due { delivery_id: delivery.delivery_id.clone() }, Condition::None, None)?);
        }
    }
    if decision.disable_endpoint {
        let (pk, sk) = endpoint_key(&delivery.agency_id);
        ops.push(persist::put_op(pk, sk, &Endpoint { disabled: true, disabled_at: Some(at) }, Condition::None, None)?);
    }
    Ok(ops)
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(20))
}

fn log_attempt(decision: &Decision, outcome: &Outcome) {
    let d = &decision.delivery;
    let status = match outcome {
        Outcome::Answered { status, .. } => Some(*status),
        Outcome::NoAnswer => None,
    };
    match d.status {
        DeliveryStatus::Delivered => {
            tracing::info!(agency_id = %d.agency_id, delivery_id = %d.delivery_id, event_type = %d.event_type, attempts = d.attempts, outcome = "delivered", "delivery delivered")
        }
        DeliveryStatus::Dead => tracing::error!(
            agency_id = %d.agency_id, delivery_id = %d.delivery_id, event_type = %d.event_type, attempts = d.attempts, response_status = ?status, outcome = "dead",
            "delivery dead after its last attempt"
        ),
        _ if decision.disable_endpoint => tracing::warn!(
            agency_id = %d.agency_id, delivery_id = %d.delivery_id, attempts = d.attempts, outcome = "gone",
            "agency answered 410 Gone: its endpoint is disabled until a redeliver or ops enable it"
        ),
        _ => tracing::info!(
            agency_id = %d.agency_id, delivery_id = %d.delivery_id, attempts = d.attempts, response_status = ?status, next_attempt_at = ?d.next_attempt_at,
            outcome = "failed", "delivery attempt failed; retry scheduled"
        ),
    }
}
