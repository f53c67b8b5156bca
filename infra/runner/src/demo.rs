//! Demo agencies (SPEC §7): a simulator, on by default in the local runner (`DEMO_AGENCIES=0`
//! turns it off; the runner never runs on Lambda), that answers for every seed agency without a
//! `delivery_url`, so a newcomer sees an application decided with curl alone.
//!
//! It behaves as an external agency would:
//! - [`prepare`], before the registry is shared, binds the simulator's own loopback listener and
//!   points each such agency's deliveries at `http://127.0.0.1:<port>/dev/demo/agencies/{id}/deliveries`
//!   with a fresh delivery secret;
//! - the receiver verifies every delivery (Standard Webhooks v1, the `standardwebhooks` crate;
//!   401 on a bad signature), ignores a `webhook-id` it has seen, answers 204 at once and
//!   reacts later, after `DEMO_AGENCY_DELAY_MS` per step;
//! - every reaction is a signed inbound webhook (SPEC §4.4) over HTTP to the runner itself,
//!   signed with the agency's inbound `webhook_secret`: `application.submitted` → `accepted` →
//!   `in_progress` → `approved` with a PDF decision uploaded through
//!   `POST /v1/agency/{id}/documents` and a PUT to the presigned URL; the registry agency answers
//!   `identity.verification_requested` with a `verified` verdict.
//!
//! The rule for "services that ask for more" ([`asks_for_more`]): a service whose required
//! documents include `other` (free-form supporting papers, e.g. a tax deduction's receipts)
//! gets one `info_requested` after `in_progress`; the citizen's supplement
//! (`application.supplemented`) is then approved.
//!
//! One shortcut an external agency would not have: to wait until the uploaded decision has
//! been verified (`available`), the simulator reads the document's status from the store
//! (`shared::records`), where a real agency would poll the agency API.
//!
//! Webhook ids are derived from the delivery's id and the step (`demo-<delivery>-accepted`), so
//! a retried reaction is applied once and every reaction has its own id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use standardwebhooks::Webhook;

use shared::agencies::{Capability, Envelope, Registry};
use shared::ports::{KeyValue, Ticker};
use shared::runtime::BoxError;
use shared::vocabulary::DocumentStatus;

/// The font decisions are set in (DejaVu Sans, its license beside it).
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
/// The dev seed the registry falls back to, for the inbound secrets the simulator signs with.
const DEV_SEED: &str = include_str!("../../local/seed/agencies.json");
/// How many delivery ids the receiver remembers for deduplication.
const REMEMBERED_DELIVERIES: usize = 10_000;
/// Attempts of one reaction when the portal is unreachable or answers 5xx/429.
const ATTEMPTS: u32 = 5;
/// How long the simulator waits for its uploaded decision to be verified.
const DOCUMENT_WAIT: Duration = Duration::from_secs(60);

/// The simulator between [`prepare`] and [`Prepared::run`]: its listener is bound and the
/// registry already points at it.
pub struct Prepared {
    listener: std::net::TcpListener,
    agencies: HashMap<String, DemoAgency>,
}

struct DemoAgency {
    id: String,
    name: String,
    capabilities: Vec<Capability>,
    /// Verifies deliveries to it (the delivery secret we generated).
    deliveries: Webhook,
    /// Signs its webhooks to the portal (its inbound `webhook_secret`).
    signer: Webhook,
}

/// What the simulator talks to: the runner's own address and, for the one shortcut, its store.
pub struct Portal {
    /// `http://127.0.0.1:<port>` of the runner.
    pub base_url: String,
    pub kv: Arc<dyn KeyValue>,
    pub catalogue: Arc<applications::Catalogue>,
}

/// Binds the simulator's listener on `127.0.0.1` and, for every agency of `registry` without a
/// `delivery_url`, points its deliveries there with a fresh `whsec_` secret. Agencies whose
/// inbound secret is not in the registry document are left alone.
pub fn prepare(registry: &mut Registry) -> Result<Prepared, BoxError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let receiver = format!("http://{}", listener.local_addr()?);
    let inbound = inbound_secrets(&registry_document()?)?;
    let undelivered: Vec<String> = registry.agencies().iter().filter(|a| a.delivery_url.is_none()).map(|a| a.id.clone()).collect();
    let mut agencies = HashMap::new();
    for id in undelivered {
        let (Some(agency), Some(secret)) = (registry.get_mut(&id), inbound.get(&id)) else { continue };
        let delivery_secret = format!("whsec_{}", shared::keys::IndexKey::generate_base64());
        let demo = DemoAgency {
            id: id.clone(),
            name: agency.name.clone(),
            capabilities: agency.capabilities.clone(),
            deliveries: Webhook::new(&delivery_secret)?,
            signer: Webhook::new(secret)?,
        };
        agency.deliver_to(format!("{receiver}/dev/demo/agencies/{id}/deliveries"), delivery_secret);
        agencies.insert(id, demo);
    }
    tracing::info!(receiver = %receiver, agencies = agencies.len(), "demo agencies answer deliveries");
    Ok(Prepared { listener, agencies })
}

impl Prepared {
    /// Serves the receiver until `shutdown`; reactions run as tasks of their own.
    pub async fn run(self, portal: Portal, delay: Duration, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), BoxError> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let simulator = Arc::new(Simulator {
            agencies: self.agencies,
            portal,
            delay,
            http: reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?,
            ticker: Ticker::default(),
            seen: Mutex::default(),
            known: Mutex::default(),
        });
        axum::serve(listener, receiver(simulator)).with_graceful_shutdown(shutdown).await?;
        Ok(())
    }
}

/// `POST /dev/demo/agencies/{agency_id}/deliveries`: the agencies' end of SPEC §4.5.
fn receiver(simulator: Arc<Simulator>) -> Router {
    Router::new().route("/dev/demo/agencies/{agency_id}/deliveries", post(receive)).with_state(simulator)
}

struct Simulator {
    agencies: HashMap<String, DemoAgency>,
    portal: Portal,
    delay: Duration,
    http: reqwest::Client,
    ticker: Ticker,
    /// Delivery ids already taken, oldest first (bounded).
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    /// What `application.submitted` told of each application, for its later supplement.
    known: Mutex<HashMap<String, Submitted>>,
}

/// The part of `application.submitted` (SPEC §4.5) the simulator uses.
#[derive(Clone, Debug, Deserialize)]
struct Submitted {
    application_id: String,
    #[serde(default)]
    number: Option<String>,
    service_code: String,
    applicant: Applicant,
}

#[derive(Clone, Debug, Deserialize)]
struct Applicant {
    user_id: String,
}

/// Verifies, deduplicates, answers at once; the reaction follows in its own task.
async fn receive(State(sim): State<Arc<Simulator>>, Path(agency_id): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(agency) = sim.agencies.get(&agency_id) else { return StatusCode::NOT_FOUND };
    if shared::agencies::check_timestamp(&headers, sim.ticker.now().timestamp()).is_err() || agency.deliveries.verify(&body, &headers).is_err() {
        tracing::warn!(agency_id = %agency.id, "demo agency refused a delivery with a bad signature");
        return StatusCode::UNAUTHORIZED;
    }
    let Some(delivery_id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()).map(str::to_owned) else { return StatusCode::UNAUTHORIZED };
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else { return StatusCode::BAD_REQUEST };
    if !sim.first_time(&delivery_id) {
        return StatusCode::NO_CONTENT;
    }
    tracing::info!(agency_id = %agency.id, %delivery_id, event = %envelope.kind, "demo agency received a delivery");
    let task = sim.clone();
    let agency_id = agency.id.clone();
    tokio::spawn(async move {
        if let Err(error) = task.react(&agency_id, &delivery_id, &envelope.kind, envelope.data).await {
            tracing::warn!(%agency_id, %delivery_id, %error, "demo agency stopped reacting");
        }
    });
    StatusCode::NO_CONTENT
}

/// A service whose required documents include `other` asks once for more papers.
pub fn asks_for_more(service: &applications::catalogue::Service) -> bool {
    service.required_documents.iter().any(|t| t == "other")
}

/// Why a reaction stopped.
#[derive(Debug, thiserror::Error)]
enum ReactionError {
    #[error("the delivery's data is not what SPEC §4.5 describes: {0}")]
    Malformed(String),
    #[error("the portal refused {step}: {status} {code}")]
    Refused { step: String, status: u16, code: String },
    #[error("the portal did not answer {step}: {detail}")]
    Unreachable { step: String, detail: String },
    #[error("the decision document: {0}")]
    Document(String),
}

impl Simulator {
    fn first_time(&self, delivery_id: &str) -> bool {
        let mut guard = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if !set.insert(delivery_id.to_owned()) {
            return false;
        }
        order.push_back(delivery_id.to_owned());
        if order.len() > REMEMBERED_DELIVERIES
            && let Some(oldest) = order.pop_front()
        {
            set.remove(&oldest);
        }
        true
    }

    async fn react(&self, agency_id: &str, delivery_id: &str, kind: &str, data: Value) -> Result<(), ReactionError> {
        let agency = &self.agencies[agency_id];
        match kind {
            "application.submitted" if agency.capabilities.contains(&Capability::Applications) => {
                let submitted: Submitted = serde_json::from_value(data).map_err(|e| ReactionError::Malformed(e.to_string()))?;
                self.remember(&submitted);
                self.decide(agency, delivery_id, &submitted).await
            }
            "application.supplemented" if agency.capabilities.contains(&Capability::Applications) => {
                let application_id = data["application_id"].as_str().ok_or_else(|| ReactionError::Malformed("no application_id".into()))?;
                let submitted = self.recall(application_id).await?;
                tokio::time::sleep(self.delay).await;
                self.approve(agency, delivery_id, &submitted).await
            }
            "identity.verification_requested" if agency.capabilities.contains(&Capability::IdentityVerification) => {
                let (Some(request_id), Some(user_id)) = (data["request_id"].as_str(), data["user_id"].as_str()) else {
                    return Err(ReactionError::Malformed("request_id and user_id are required".into()));
                };
                tokio::time::sleep(self.delay).await;
                let verdict = json!({"type": "identity.verification_completed", "data": {"request_id": request_id, "user_id": user_id, "result": "verified"}});
                self.webhook(agency, &format!("demo-{delivery_id}-verified"), &verdict).await
            }
            // Withdrawals, messages and the rest need no answer: a lifecycle under way stops at
            // its next step with `invalid_transition`.
            _ => Ok(()),
        }
    }

    /// accepted → in_progress → approved with a decision (or info_requested, see [`asks_for_more`]).
    async fn decide(&self, agency: &DemoAgency, delivery_id: &str, app: &Submitted) -> Result<(), ReactionError> {
        let service = self.portal.catalogue.get(&app.service_code);
        let expected = (self.ticker.now() + chrono::Duration::days(i64::from(service.map_or(5, |s| s.processing_days.max(1))))).format("%Y-%m-%d").to_string();
        let steps = [
            ("accepted", json!({"comment": "Заявление принято к рассмотрению", "expected_completion_date": expected})),
            ("in_progress", json!({"comment": "Заявление рассматривает специалист ведомства"})),
        ];
        for (status, extra) in steps {
            tokio::time::sleep(self.delay).await;
            self.status(agency, delivery_id, app, status, extra).await?;
        }
        tokio::time::sleep(self.delay).await;
        if service.is_some_and(asks_for_more) {
            let comment = "Для завершения рассмотрения приложите, пожалуйста, подтверждающие документы (раздел «Иные документы»)";
            return self.status(agency, delivery_id, app, "info_requested", json!({"comment": comment})).await;
        }
        self.approve(agency, delivery_id, app).await
    }

    /// Generates the decision, uploads it as the agency does, waits until it is verified, and
    /// approves the application naming it.
    async fn approve(&self, agency: &DemoAgency, delivery_id: &str, app: &Submitted) -> Result<(), ReactionError> {
        let number = app.number.clone().unwrap_or_else(|| app.application_id.clone());
        let title = self.portal.catalogue.get(&app.service_code).map_or_else(|| app.service_code.clone(), |s| s.title.clone());
        let pdf = decision_pdf(&number, &title, &agency.name, self.ticker.now().date_naive()).map_err(|e| ReactionError::Document(e.to_string()))?;
        let slot = json!({"application_id": app.application_id, "file_name": format!("Решение-{number}.pdf"), "content_type": "application/pdf", "size_bytes": pdf.len()});
        let step = format!("demo-{delivery_id}-decision");
        let created = self.signed_post(agency, &format!("/v1/agency/{}/documents", agency.id), &step, &slot).await?;
        let document_id = created["document_id"].as_str().ok_or_else(|| ReactionError::Document("no document_id in the answer".into()))?.to_owned();
        self.upload(&created["upload"], pdf).await?;
        self.wait_until_available(&app.applicant.user_id, &document_id).await?;
        let extra = json!({"comment": "Решение по заявлению приложено", "result_document_ids": [document_id]});
        self.status(agency, delivery_id, app, "approved", extra).await?;
        tracing::info!(agency_id = %agency.id, application_id = %app.application_id, "demo agency approved an application");
        Ok(())
    }

    async fn status(&self, agency: &DemoAgency, delivery_id: &str, app: &Submitted, status: &str, extra: Value) -> Result<(), ReactionError> {
        let mut data =
            json!({"application_id": app.application_id, "status": status, "employee": {"name": "Иванова Мария Петровна", "position": "Ведущий специалист"}});
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        self.webhook(agency, &format!("demo-{delivery_id}-{status}"), &json!({"type": "application.status_changed", "data": data})).await
    }

    async fn webhook(&self, agency: &DemoAgency, webhook_id: &str, body: &Value) -> Result<(), ReactionError> {
        self.signed_post(agency, &format!("/v1/webhooks/agencies/{}", agency.id), webhook_id, body).await.map(|_| ())
    }

    /// A request signed as the agency signs it (Standard Webhooks v1, its inbound secret),
    /// retried with the same `webhook-id` while the portal is unreachable or answers 5xx/429.
    async fn signed_post(&self, agency: &DemoAgency, path: &str, webhook_id: &str, body: &Value) -> Result<Value, ReactionError> {
        let body = body.to_string();
        let url = format!("{}{path}", self.portal.base_url);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let timestamp = self.ticker.now().timestamp();
            let signature = agency.signer.sign(webhook_id, timestamp, body.as_bytes()).map_err(|e| ReactionError::Malformed(e.to_string()))?;
            let sent = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", webhook_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(response.json().await.unwrap_or(Value::Null)),
                Ok(response) if response.status().is_server_error() || response.status() == StatusCode::TOO_MANY_REQUESTS => {
                    last = response.status().to_string();
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    let code = answer["code"].as_str().unwrap_or_default().to_owned();
                    return Err(ReactionError::Refused { step: webhook_id.to_owned(), status, code });
                }
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250) * attempt).await;
        }
        Err(ReactionError::Unreachable { step: webhook_id.to_owned(), detail: last })
    }

    /// PUTs the bytes to the presigned URL with the headers the slot names.
    async fn upload(&self, upload: &Value, bytes: Vec<u8>) -> Result<(), ReactionError> {
        let url = upload["url"].as_str().ok_or_else(|| ReactionError::Document("no upload URL".into()))?;
        let mut request = self.http.put(url).body(bytes);
        for (name, value) in upload["headers"].as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                request = request.header(name.as_str(), value);
            }
        }
        let response = request.send().await.map_err(|e| ReactionError::Document(e.to_string()))?;
        if !response.status().is_success() {
            return Err(ReactionError::Document(format!("the upload answered {}", response.status())));
        }
        Ok(())
    }

    /// Verification runs asynchronously; the decision is named only once it is `available`.
    async fn wait_until_available(&self, user_id: &str, document_id: &str) -> Result<(), ReactionError> {
        let deadline = tokio::time::Instant::now() + DOCUMENT_WAIT;
        loop {
            let document =
                shared::records::load_document(self.portal.kv.as_ref(), user_id, document_id).await.map_err(|e| ReactionError::Document(e.to_string()))?;
            match document.map(|d| d.status) {
                Some(DocumentStatus::Available) => return Ok(()),
                Some(DocumentStatus::Rejected | DocumentStatus::Deleted) => return Err(ReactionError::Document("refused by verification".into())),
                _ if tokio::time::Instant::now() > deadline => return Err(ReactionError::Document("not verified in time".into())),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn remember(&self, submitted: &Submitted) {
        self.known.lock().unwrap_or_else(PoisonError::into_inner).insert(submitted.application_id.clone(), submitted.clone());
    }

    /// What was submitted; after a restart of the runner, the application's record tells it.
    async fn recall(&self, application_id: &str) -> Result<Submitted, ReactionError> {
        if let Some(known) = self.known.lock().unwrap_or_else(PoisonError::into_inner).get(application_id).cloned() {
            return Ok(known);
        }
        let stored = shared::records::load_application(self.portal.kv.as_ref(), application_id)
            .await
            .map_err(|e| ReactionError::Malformed(e.to_string()))?
            .ok_or_else(|| ReactionError::Malformed("an application the portal does not know".into()))?;
        Ok(Submitted {
            application_id: stored.application_id,
            number: stored.number,
            service_code: stored.service_code,
            applicant: Applicant { user_id: stored.user_id },
        })
    }
}

/// «Решение по заявлению № …»: the demo agency's decision, one A4 page.
pub fn decision_pdf(number: &str, service_title: &str, agency_name: &str, date: chrono::NaiveDate) -> Result<Vec<u8>, shared::pdf::PdfError> {
    use shared::pdf::Line;
    let date = date.format("%d.%m.%Y").to_string();
    shared::pdf::render(
        FONT,
        &format!("Решение по заявлению № {number}"),
        &[
            Line::text(agency_name.to_owned()),
            Line::heading(format!("Решение по заявлению № {number}")),
            Line::text(format!("Услуга: {service_title}")),
            Line::text(format!("Дата решения: {date}")),
            Line::text("Заявление рассмотрено. Принято решение предоставить услугу."),
            Line::text("Ведущий специалист: Иванова Мария Петровна"),
            Line::small("Документ сформирован демонстрационным ведомством локального стенда и не имеет юридической силы."),
        ],
    )
}

/// The registry document, from where `Registry::load` takes it: `AGENCIES_JSON`, else the file
/// `AGENCIES_FILE`, else the dev seed.
fn registry_document() -> Result<String, BoxError> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(json) = var("AGENCIES_JSON") {
        return Ok(json);
    }
    if let Some(path) = var("AGENCIES_FILE") {
        return std::fs::read_to_string(&path).map_err(|e| format!("AGENCIES_FILE {path}: {e}").into());
    }
    Ok(DEV_SEED.to_owned())
}

/// Each agency's current inbound secret (`webhook_secret`), by id.
fn inbound_secrets(document: &str) -> Result<HashMap<String, String>, BoxError> {
    #[derive(Deserialize)]
    struct Document {
        agencies: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        webhook_secret: Option<String>,
        #[serde(default)]
        webhook_secrets: Vec<String>,
    }
    let document: Document = serde_json::from_str(document)?;
    Ok(document.agencies.into_iter().filter_map(|a| a.webhook_secret.or_else(|| a.webhook_secrets.into_iter().next()).map(|s| (a.id, s))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("a date")
    }

    #[test]
    fn the_decision_is_a_pdf_the_documents_function_accepts() {
        let pdf = decision_pdf("2026-000042", "Запись на приём в МФЦ", "МФЦ «Мои документы»", date()).expect("rendered");
        assert_eq!(documents::sniff::sniff_head(&pdf[..pdf.len().min(8192)]), documents::sniff::Sniffed::Format(documents::policy::FileFormat::Pdf));
        assert!(documents::sniff::has_end_marker(documents::policy::FileFormat::Pdf, &pdf[pdf.len().saturating_sub(1024)..]));
        let mut scan = documents::sniff::ContentScan::new(documents::sniff::ScanFor::PdfPolyglot);
        scan.feed(&pdf);
        assert!(!scan.finish(), "no archive or markup inside");
        let document = lopdf::Document::load_mem(&pdf).expect("lopdf reads it");
        let text = document.extract_text(&[1]).expect("text");
        for expected in ["Решение по заявлению № 2026-000042", "Запись на приём в МФЦ", "02.12.2026", "МФЦ «Мои документы»"]
        {
            assert!(text.contains(expected), "{expected:?} in {text:?}");
        }
    }

    #[test]
    fn agencies_without_a_delivery_url_are_pointed_at_the_simulator_and_others_kept() {
        let mut registry = Registry::from_json(
            &serde_json::json!({"agencies": [
                {"id": "mvd", "name": "МВД России", "webhook_secret": "whsec_4yfK5COdeB1U32Y6EdMEAq+W57coihQLYRR/mOzBorQ=", "capabilities": ["applications"]},
                {"id": "fns", "name": "ФНС России", "webhook_secret": "whsec_2NHSev+Uspje00NmbiQo6G2SZe3gSRYwuRDl8NuHX6k=", "capabilities": ["applications"],
                 "delivery_url": "https://fns.example/hooks", "delivery_secrets": ["whsec_2NHSev+Uspje00NmbiQo6G2SZe3gSRYwuRDl8NuHX6k="]},
            ]})
            .to_string(),
        )
        .expect("registry");
        // The dev seed names both agencies, so their inbound secrets are known.
        let prepared = prepare(&mut registry).expect("prepared");
        let port = prepared.listener.local_addr().expect("bound").port();
        let mvd = registry.get("mvd").expect("mvd");
        assert_eq!(mvd.delivery_url.as_deref(), Some(format!("http://127.0.0.1:{port}/dev/demo/agencies/mvd/deliveries").as_str()));
        assert!(mvd.delivery_secret().is_some_and(|s| s.starts_with("whsec_") && s.len() > 40));
        assert_eq!(registry.get("fns").and_then(|a| a.delivery_url.as_deref()), Some("https://fns.example/hooks"));
        assert_eq!(prepared.agencies.keys().collect::<Vec<_>>(), ["mvd"]);
    }

    #[test]
    fn services_asking_for_other_papers_ask_for_more() {
        let catalogue = applications::Catalogue::seed(&Registry::dev_seed().expect("seed")).expect("catalogue");
        let asking: Vec<&str> = catalogue.services().iter().filter(|s| asks_for_more(s)).map(|s| s.code.as_str()).collect();
        assert!(asking.contains(&"tax-deduction-3ndfl"), "{asking:?}");
        assert!(!asking.contains(&"mfc-appointment") && !asking.contains(&"income-certificate-2ndfl"), "{asking:?}");
    }

    /// A stand-in for the portal's inbound webhook endpoint: it checks signatures with the seed
    /// registry, as the portal does, and records what it applied.
    async fn fake_portal() -> (String, Arc<Mutex<Vec<(String, String, Value)>>>) {
        let received: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
        let registry = Arc::new(Registry::dev_seed().expect("seed"));
        let log = received.clone();
        let app = Router::new().route(
            "/v1/webhooks/agencies/{agency_id}",
            post(move |Path(agency_id): Path<String>, headers: HeaderMap, body: Bytes| {
                let (registry, log) = (registry.clone(), log.clone());
                async move {
                    if registry.verify(&agency_id, &headers, &body, chrono::Utc::now()).is_err() {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": "signature_invalid"})));
                    }
                    let id = headers["webhook-id"].to_str().expect("id").to_owned();
                    log.lock().expect("log").push((agency_id, id, serde_json::from_slice(&body).expect("json")));
                    (StatusCode::OK, axum::Json(json!({"result": "applied"})))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, received)
    }

    fn kv(dir: &std::path::Path) -> Arc<dyn KeyValue> {
        let db = shared::adapters::embedded::open_database(&dir.join("data.redb")).expect("open redb");
        Arc::new(shared::adapters::embedded::RedbKv::new(db).expect("kv"))
    }

    fn signed(secret: &str, id: &str, body: &str) -> reqwest::header::HeaderMap {
        let at = chrono::Utc::now().timestamp();
        let signature = Webhook::new(secret).expect("secret").sign(id, at, body.as_bytes()).expect("signed");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("webhook-id", id.parse().expect("id"));
        headers.insert("webhook-timestamp", at.to_string().parse().expect("ts"));
        headers.insert("webhook-signature", signature.parse().expect("sig"));
        headers.insert("content-type", "application/json".parse().expect("ct"));
        headers
    }

    #[tokio::test]
    async fn the_registry_agency_verifies_once_per_delivery_and_refuses_bad_signatures() {
        let dir = tempfile::tempdir().expect("dir");
        let (portal_url, received) = fake_portal().await;
        let mut registry = Registry::dev_seed().expect("seed");
        let prepared = prepare(&mut registry).expect("prepared");
        let sfr = registry.get("sfr").expect("the registry agency");
        let (url, secret) = (sfr.delivery_url.clone().expect("pointed"), sfr.delivery_secret().expect("secret").to_owned());
        let catalogue = Arc::new(applications::Catalogue::seed(&registry).expect("catalogue"));
        let portal = Portal { base_url: portal_url, kv: kv(dir.path()), catalogue };
        tokio::spawn(prepared.run(portal, Duration::from_millis(10), std::future::pending()));

        let body = json!({"type": "identity.verification_requested", "timestamp": "2026-12-02T10:00:00.000Z",
            "data": {"request_id": "01REQ", "user_id": "01USER", "profile": {}}})
        .to_string();
        let client = reqwest::Client::new();
        let send = |headers: reqwest::header::HeaderMap| client.post(&url).headers(headers).body(body.clone()).send();
        let forged = send(signed("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "01DELIVERY", &body)).await.expect("answered");
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        for _ in 0..2 {
            assert_eq!(send(signed(&secret, "01DELIVERY", &body)).await.expect("answered").status(), StatusCode::NO_CONTENT);
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while received.lock().expect("log").is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let received = received.lock().expect("log").clone();
        assert_eq!(received.len(), 1, "one verdict for one delivery, sent twice: {received:?}");
        let (agency, webhook_id, verdict) = &received[0];
        assert_eq!((agency.as_str(), webhook_id.as_str()), ("sfr", "demo-01DELIVERY-verified"));
        assert_eq!(verdict, &json!({"type": "identity.verification_completed", "data": {"request_id": "01REQ", "user_id": "01USER", "result": "verified"}}));
    }

    #[test]
    fn timestamps_out_of_tolerance_or_unreadable_are_refused_without_overflow() {
        let now = 1_790_000_000;
        let at = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("webhook-timestamp", v.parse().expect("header"));
            shared::agencies::check_timestamp(&h, now).is_ok()
        };
        assert!(at(&now.to_string()) && at(&(now - 299).to_string()));
        for bad in [i64::MIN.to_string(), i64::MAX.to_string(), (now + 301).to_string(), "soon".to_owned()] {
            assert!(!at(&bad), "{bad}");
        }
        assert!(shared::agencies::check_timestamp(&HeaderMap::new(), now).is_err());
    }
}
