//! Configuration from the environment, and the adapters it selects. The only place that
//! decides between embedded and AWS implementations; every function's `main` calls it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::embedded::outbox::{DevOutbox, Tee};
use crate::keys::{IndexKey, KeyRing};
use crate::ports::{EmailSender, KeyValue, ObjectStore, Queue, SmsSender};
use crate::runtime::BoxError;

/// Deliveries before a message is dead-lettered (the template's redrive `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub table_name: Option<String>,
    pub events_queue_url: Option<String>,
    pub events_dlq_url: Option<String>,
    pub bucket_name: Option<String>,
    pub uploads_queue_url: Option<String>,
    pub uploads_dlq_url: Option<String>,
    /// Base of the URLs the local runner hands out (embedded presigned object URLs, share links).
    pub public_base_url: String,
    pub email_from: Option<String>,
    pub sms_sender_id: Option<String>,
    /// Also record SMS and email in the dev outbox (never on Lambda).
    pub dev_outbox: bool,
    /// Serialized key ring (see `crate::keys`); on the embedded default a generated file is used.
    pub jwt_signing_keys: Option<String>,
    /// Base64 key of lookup and backup-code hashes (see `crate::keys::IndexKey`).
    pub index_key: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, BoxError> {
        let env = crate::settings::Env::process();
        let var = |name: &str| env.text(name);
        let backend = match env.choice("BACKEND", &["embedded", "aws"], "embedded")? {
            "aws" => Backend::Aws,
            _ => Backend::Embedded,
        };
        // The dev outbox defaults on for the embedded backend only: beside real AWS senders it
        // would expose codes sent to real people (an emulator run opts in with DEV_OUTBOX=1).
        let dev_outbox = !crate::runtime::on_lambda() && env.flag("DEV_OUTBOX", backend == Backend::Embedded)?;
        Ok(Self {
            backend,
            data_dir: var("DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".data")),
            table_name: var("TABLE_NAME"),
            events_queue_url: var("EVENTS_QUEUE_URL"),
            events_dlq_url: var("EVENTS_DLQ_URL"),
            bucket_name: var("BUCKET_NAME"),
            uploads_queue_url: var("UPLOADS_QUEUE_URL"),
            uploads_dlq_url: var("UPLOADS_DLQ_URL"),
            public_base_url: var("PUBLIC_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:3000".into()).trim_end_matches('/').to_owned(),
            email_from: var("EMAIL_FROM"),
            sms_sender_id: var("SMS_SENDER_ID"),
            dev_outbox,
            jwt_signing_keys: var("JWT_SIGNING_KEYS"),
            index_key: var("INDEX_KEY"),
        })
    }

    fn require(value: &Option<String>, name: &str) -> Result<String, BoxError> {
        value.clone().ok_or_else(|| format!("{name} must be set when BACKEND=aws").into())
    }
}

/// The ports a function needs, built once at start-up.
#[derive(Clone)]
pub struct Adapters {
    pub kv: Arc<dyn KeyValue>,
    pub events_queue: Arc<dyn Queue>,
    /// Object-created notifications for uploaded documents.
    pub uploads_queue: Arc<dyn Queue>,
    pub objects: Arc<dyn ObjectStore>,
    /// The embedded object store, whose presigned URLs the local runner serves.
    pub file_objects: Option<Arc<crate::adapters::embedded::objects::FileObjectStore>>,
    pub sms: Arc<dyn SmsSender>,
    pub email: Arc<dyn EmailSender>,
    /// Access-token keys; absent on Lambda unless `JWT_SIGNING_KEYS` is set (only auth signs,
    /// and only HTTP functions verify).
    pub keys: Option<Arc<KeyRing>>,
    /// The key of login-index and backup-code hashes; absent on Lambda unless `INDEX_KEY` is set
    /// (auth and applications need it).
    pub index_key: Option<Arc<IndexKey>>,
    /// Present when `Config::dev_outbox` is on; serves `GET /dev/outbox`.
    pub dev_outbox: Option<Arc<DevOutbox>>,
    /// The embedded database, for further embedded adapters (e.g. more queues).
    pub database: Option<Arc<redb::Database>>,
    /// The AWS SDK configuration, for further AWS adapters.
    pub aws: Option<aws_config::SdkConfig>,
}

impl Adapters {
    /// The key ring, for functions that cannot run without it.
    pub fn require_keys(&self) -> Result<Arc<KeyRing>, BoxError> {
        self.keys.clone().ok_or_else(|| "JWT_SIGNING_KEYS must be set".into())
    }

    /// The index key, for functions that cannot run without it.
    pub fn require_index_key(&self) -> Result<Arc<IndexKey>, BoxError> {
        self.index_key.clone().ok_or_else(|| "INDEX_KEY must be set".into())
    }

    pub async fn build(config: &Config) -> Result<Self, BoxError> {
        let keys = match &config.jwt_signing_keys {
            Some(json) => Some(Arc::new(KeyRing::from_json(json)?)),
            None if crate::runtime::on_lambda() => None,
            None => Some(Arc::new(KeyRing::load_or_create(&config.data_dir.join("jwt-keys.json"))?)),
        };
        let index_key = match &config.index_key {
            Some(encoded) => Some(Arc::new(IndexKey::from_base64(encoded)?)),
            None if crate::runtime::on_lambda() => None,
            None => Some(Arc::new(IndexKey::load_or_create(&config.data_dir.join("index-key"))?)),
        };
        match config.backend {
            Backend::Embedded => {
                use crate::adapters::embedded::{kv::RedbKv, open_database, queue::RedbQueue};
                let database = open_database(&config.data_dir.join("state.redb"))?;
                let kv: Arc<dyn KeyValue> = Arc::new(RedbKv::new(database.clone())?);
                let events_queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(database.clone(), "events", MAX_RECEIVES).await?);
                let uploads_queue: Arc<dyn Queue> = Arc::new(RedbQueue::open(database.clone(), "uploads", MAX_RECEIVES).await?);
                let secret = load_or_create_secret(&config.data_dir.join("object-url-secret"))?;
                let file_objects = Arc::new(crate::adapters::embedded::objects::FileObjectStore::new(&config.data_dir, &config.public_base_url, secret)?);
                let outbox = Arc::new(DevOutbox::new(kv.clone()));
                Ok(Self {
                    kv,
                    events_queue,
                    uploads_queue,
                    objects: file_objects.clone(),
                    file_objects: Some(file_objects),
                    sms: outbox.clone(),
                    email: outbox.clone(),
                    keys,
                    index_key,
                    dev_outbox: Some(outbox),
                    database: Some(database),
                    aws: None,
                })
            }
            Backend::Aws => {
                use crate::adapters::aws::{dynamodb::DynamoKv, s3::S3ObjectStore, ses::SesEmail, sns::SnsSms, sqs::SqsQueue};
                let sdk = crate::adapters::aws::sdk_config().await;
                let kv: Arc<dyn KeyValue> = Arc::new(DynamoKv::new(aws_sdk_dynamodb::Client::new(&sdk), Config::require(&config.table_name, "TABLE_NAME")?));
                use crate::adapters::unconfigured::Unconfigured;
                let sqs = aws_sdk_sqs::Client::new(&sdk);
                let queue = |url: &Option<String>, dlq: &Option<String>, name: &'static str| -> Arc<dyn Queue> {
                    match (url, dlq) {
                        (Some(url), Some(dlq)) => Arc::new(SqsQueue::new(sqs.clone(), url.clone(), dlq.clone())),
                        _ => Arc::new(Unconfigured(name)),
                    }
                };
                let events_queue = queue(&config.events_queue_url, &config.events_dlq_url, "EVENTS_QUEUE_URL/EVENTS_DLQ_URL");
                let uploads_queue = queue(&config.uploads_queue_url, &config.uploads_dlq_url, "UPLOADS_QUEUE_URL/UPLOADS_DLQ_URL");
                let objects: Arc<dyn ObjectStore> = match &config.bucket_name {
                    Some(bucket) => Arc::new(S3ObjectStore::new(crate::adapters::aws::s3::client_for(&sdk), bucket.clone())),
                    None => Arc::new(Unconfigured("BUCKET_NAME")),
                };
                let sms_real: Arc<dyn SmsSender> = Arc::new(SnsSms::new(aws_sdk_sns::Client::new(&sdk), config.sms_sender_id.clone()));
                let email_real: Arc<dyn EmailSender> = Arc::new(SesEmail::new(
                    aws_sdk_sesv2::Client::new(&sdk),
                    config.email_from.clone().unwrap_or_else(|| "no-reply@gosuslugi.local".into()),
                    None,
                ));
                let dev_outbox = config.dev_outbox.then(|| Arc::new(DevOutbox::new(kv.clone())));
                let (sms, email): (Arc<dyn SmsSender>, Arc<dyn EmailSender>) = match &dev_outbox {
                    Some(outbox) => (Arc::new(Tee::new(sms_real, outbox.clone())), Arc::new(Tee::new(email_real, outbox.clone()))),
                    None => (sms_real, email_real),
                };
                Ok(Self {
                    kv,
                    events_queue,
                    uploads_queue,
                    objects,
                    file_objects: None,
                    sms,
                    email,
                    keys,
                    index_key,
                    dev_outbox,
                    database: None,
                    aws: Some(sdk),
                })
            }
        }
    }
}

/// A random 32-byte secret kept in a private file of the data dir (created on first use).
fn load_or_create_secret(path: &std::path::Path) -> Result<Vec<u8>, BoxError> {
    use rand::RngCore;
    if let Ok(bytes) = std::fs::read(path)
        && bytes.len() >= 32
    {
        return Ok(bytes);
    }
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    std::io::Write::write_all(&mut options.open(path)?, &secret)?;
    Ok(secret)
}
