//! End-to-end harness: runs the `local-runner` binary as a black box on a free loopback port
//! with fresh storage, and gives tests a small HTTP client that speaks the SPEC's API.
//!
//! - `LOCAL_RUNNER_BIN` points at the binary; otherwise the one beside the test executable
//!   (`<target>/<profile>/local-runner`) is used, built once with cargo when it is missing.
//! - `E2E_BACKEND=aws` runs the same journeys against an AWS emulator (`AWS_ENDPOINT_URL`):
//!   every runner gets its own table, queues, bucket and SES sender, created with boto3
//!   (`E2E_PYTHON`, default `python3`).
//! - `E2E_STACK_OUTPUTS=/path/outputs.json` (written by `infra/deploy-local.sh`) implies the AWS
//!   mode and runs every runner against the deployed stack's table, queues, bucket and sender
//!   instead: all runners then share them, as the functions on Lambda do. With
//!   `E2E_RUNNER_PIDS_FILE` set, runners outlive their tests (see `hand_over_to_stack_owner`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use reqwest::Method;
pub use reqwest::StatusCode;
use reqwest::header::{HeaderMap, USER_AGENT};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A desktop browser; the harness sends it unless a test asks for another one.
pub const DESKTOP_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
/// A phone browser, for checks of `device_type` and session user agents.
pub const MOBILE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
     AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
/// `JWT_AUDIENCE` default from the lead's configuration contract.
pub const DEFAULT_AUDIENCE: &str = "gosuslugi-api";

const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// The runner process
// ---------------------------------------------------------------------------------------------

/// One `local-runner` process with its own data; killed when dropped.
pub struct Runner {
    child: Child,
    base: String,
    log_path: PathBuf,
    issued_codes: Arc<Mutex<HashSet<(String, String)>>>,
    /// On a shared stack, the address this runner's clients present (see `client_address`).
    forwarded_for: Option<String>,
    /// The environment it was started with, for `crash_and_restart`.
    launch_env: Vec<(String, String)>,
    // Declared last so the directory outlives the killed child (fields drop after `drop`).
    _scratch: TempDir,
}

impl Runner {
    /// Starts a runner with the default configuration.
    pub async fn start() -> Runner {
        Self::start_with(&[]).await
    }

    /// Starts a runner with extra environment (e.g. `("OTP_RESEND_SECONDS", "1")`), which
    /// overrides anything the harness sets.
    pub async fn start_with(env: &[(&str, &str)]) -> Runner {
        let scratch = tempfile::Builder::new().prefix("e2e-runner-").tempdir().expect("create a scratch directory for the runner");
        let backend = Backend::from_env();
        let mut launch_env: Vec<(String, String)> =
            vec![("DATA_DIR".into(), scratch.path().join("data").display().to_string()), ("DEV_OUTBOX".into(), "1".into())];
        match backend {
            Backend::Embedded => launch_env.push(("BACKEND".into(), "embedded".into())),
            Backend::Aws => {
                launch_env.extend(aws_defaults().into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
                launch_env.extend(AwsResources::create().env.into_iter().map(|(k, v)| (k.to_string(), v.to_string())));
                launch_env.push(("BACKEND".into(), "aws".into()));
                if is_shared_stack() {
                    launch_env.push(("TRUST_FORWARDED_FOR".into(), "1".into()));
                }
            }
        }
        // Demo agencies (issue 9, demo-agencies part): off unless a test asks for them, so
        // journeys that play the agency themselves are not raced by the simulator.
        launch_env.push(("DEMO_AGENCIES".into(), "0".into()));
        launch_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let forwarded_for = is_shared_stack().then(client_address);
        let mut runner = Self::launch(scratch, launch_env, forwarded_for, Arc::default());
        runner.wait_until_healthy().await;
        runner
    }

    /// Kills the process with SIGKILL (no shutdown, nothing flushed) and starts a new one on
    /// the same data and resources, with `env` replacing earlier settings of the same names.
    pub async fn crash_and_restart(mut self, env: &[(&str, &str)]) -> Runner {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut launch_env = std::mem::take(&mut self.launch_env);
        launch_env.retain(|(k, _)| !env.iter().any(|(name, _)| name == k));
        launch_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let scratch = std::mem::replace(&mut self._scratch, tempfile::tempdir().expect("create a placeholder directory"));
        let issued = Arc::clone(&self.issued_codes);
        let forwarded_for = self.forwarded_for.clone();
        drop(self);
        let mut runner = Self::launch(scratch, launch_env, forwarded_for, issued);
        runner.wait_until_healthy().await;
        runner
    }

    fn launch(
        scratch: TempDir,
        launch_env: Vec<(String, String)>,
        forwarded_for: Option<String>,
        issued_codes: Arc<Mutex<HashSet<(String, String)>>>,
    ) -> Runner {
        let binary = runner_binary();
        let log_path = scratch.path().join("runner.log");
        let stdout_log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("open the runner log file");
        let stderr_log = stdout_log.try_clone().expect("share the log file with stderr");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .envs(inherited_env(Backend::from_env()))
            .env("BIND_ADDR", &addr)
            .env("RUST_LOG", std::env::var_os("RUST_LOG").unwrap_or_else(|| "info".into()))
            .envs(launch_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_log))
            .stderr(Stdio::from(stderr_log));
        let child = command.spawn().unwrap_or_else(|error| panic!("start {}: {error}", binary.display()));
        Runner { child, base: format!("http://{addr}"), log_path, issued_codes, forwarded_for, launch_env, _scratch: scratch }
    }

    /// A client for this runner (desktop user agent, no bearer token).
    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("build an HTTP client"),
            bearer: None,
            user_agent: DESKTOP_UA.to_owned(),
            issued_codes: Arc::clone(&self.issued_codes),
            forwarded_for: self.forwarded_for.clone(),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Everything the runner wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
    }

    /// Every one-time code the harness has read from the dev outbox of this runner.
    pub fn issued_codes(&self) -> Vec<String> {
        lock(&self.issued_codes).iter().map(|(_, code)| code.clone()).collect()
    }

    async fn wait_until_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the runner process") {
                panic!("local-runner exited ({status}) before answering GET /health");
            }
            let probe = client.get(format!("{}/health", self.base)).timeout(Duration::from_secs(2)).send().await;
            if matches!(&probe, Ok(response) if response.status() == StatusCode::OK) {
                return;
            }
            assert!(Instant::now() < deadline, "local-runner did not answer GET /health within {HEALTH_TIMEOUT:?}");
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !hand_over_to_stack_owner(&mut self.child) {
            // Either may fail only because the child already exited, which is what we want.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- local-runner log (last 80 lines) ----\n{}", tail(&self.log(), 80));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Embedded,
    Aws,
}

impl Backend {
    fn from_env() -> Backend {
        if stack_outputs_path().is_some() {
            assert!(
                std::env::var("E2E_BACKEND").as_deref() != Ok("embedded"),
                "E2E_STACK_OUTPUTS names a deployed stack, which E2E_BACKEND=embedded contradicts"
            );
            return Backend::Aws;
        }
        match std::env::var("E2E_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("embedded") => Backend::Embedded,
            Ok("aws") => Backend::Aws,
            Ok(other) => panic!("E2E_BACKEND must be `embedded` or `aws`, not {other:?}"),
        }
    }
}

/// True when the suite runs against the AWS emulator (slower delivery through SQS).
pub fn is_aws_backend() -> bool {
    Backend::from_env() == Backend::Aws
}

/// True when every runner shares one deployed stack (`E2E_STACK_OUTPUTS`): any runner's
/// consumer may handle any queue message, and once-per-resource events (S3's test
/// notification when the bucket is configured) happened at deploy time, not per runner.
pub fn is_shared_stack() -> bool {
    stack_outputs_path().is_some()
}

/// On a shared stack, a killed runner leaves its pending long poll on the queue: the emulator
/// hands the next message to that dead connection and hides it for the visibility timeout,
/// longer than any test waits. So with `E2E_RUNNER_PIDS_FILE` set, runners are not killed but
/// listed there, keep consuming like any other poller, and whoever deployed the stack
/// (infra/test.sh) stops them once the whole run is over. Returns whether it handed over.
fn hand_over_to_stack_owner(child: &mut Child) -> bool {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("E2E_RUNNER_PIDS_FILE").filter(|_| is_shared_stack()) else {
        return false;
    };
    // An exited runner (crashed on purpose, say) has nothing to hand over, and its id may be reused.
    if !matches!(child.try_wait(), Ok(None)) {
        return false;
    }
    let written = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut file| writeln!(file, "{}", child.id()));
    written.is_ok()
}

/// A random address in 198.18.0.0/15 (RFC 2544, benchmarking) for one runner's clients. On a
/// shared stack every runner's per-IP rate limits live in the one table, so all tests calling
/// from 127.0.0.1 would throttle each other; each runner stands for a different client instead,
/// as API Gateway reports each caller's own address. The runner trusts `X-Forwarded-For` then.
fn client_address() -> String {
    let mut rng = rand::thread_rng();
    format!("198.{}.{}.{}", rng.gen_range(18..20u8), rng.gen_range(0..=255u8), rng.gen_range(1..255u8))
}

fn stack_outputs_path() -> Option<PathBuf> {
    std::env::var_os("E2E_STACK_OUTPUTS").filter(|path| !path.is_empty()).map(PathBuf::from)
}

/// Runner variables and the stack outputs (`infra/deploy-local.py`) that hold them.
const STACK_OUTPUT_ENV: [(&str, &str); 7] = [
    ("TABLE_NAME", "TableName"),
    ("EVENTS_QUEUE_URL", "EventsQueueUrl"),
    ("EVENTS_DLQ_URL", "EventsDlqUrl"),
    ("BUCKET_NAME", "BucketName"),
    ("UPLOADS_QUEUE_URL", "UploadsQueueUrl"),
    ("UPLOADS_DLQ_URL", "UploadsDlqUrl"),
    ("EMAIL_FROM", "EmailFrom"),
];

/// The runner gets a clean environment so a developer's shell settings cannot leak in.
fn inherited_env(backend: Backend) -> Vec<(OsString, OsString)> {
    const PASSED: [&str; 6] = ["PATH", "HOME", "TMPDIR", "LANG", "RUST_BACKTRACE", "LOG_FORMAT"];
    std::env::vars_os()
        .filter(|(key, _)| key.to_str().is_some_and(|key| PASSED.contains(&key) || (backend == Backend::Aws && key.starts_with("AWS_"))))
        .collect()
}

/// Region and dummy credentials for the emulator when the caller did not set them.
fn aws_defaults() -> Vec<(&'static str, String)> {
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).unwrap_or_else(|_| "us-east-1".to_owned());
    // boto3 reads only AWS_DEFAULT_REGION, the Rust SDK reads AWS_REGION.
    let mut vars = vec![("AWS_REGION", region.clone()), ("AWS_DEFAULT_REGION", region)];
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if std::env::var_os(key).is_none() {
            vars.push((key, "test".to_owned()));
        }
    }
    vars
}

/// Creates the table (pk/sk, TTL on `expires_at`), the events and uploads queues with their
/// DLQs, the documents bucket notifying the uploads queue, and a verified SES sender (SES
/// refuses mail from unverified senders).
const CREATE_AWS_RESOURCES_PY: &str = r#"
import json, sys, boto3
prefix = "e2e-" + sys.argv[1]
dynamodb = boto3.client("dynamodb")
dynamodb.create_table(
    TableName=prefix,
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                          {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
               {"AttributeName": "sk", "KeyType": "RANGE"}],
    BillingMode="PAY_PER_REQUEST",
)
dynamodb.get_waiter("table_exists").wait(TableName=prefix)
dynamodb.update_time_to_live(
    TableName=prefix,
    TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
)
sqs = boto3.client("sqs")
def queue_with_dlq(name):
    dlq = sqs.create_queue(QueueName=prefix + "-" + name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    queue = sqs.create_queue(QueueName=prefix + "-" + name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return queue, dlq
events, events_dlq = queue_with_dlq("events")
uploads, uploads_dlq = queue_with_dlq("uploads")
uploads_arn = sqs.get_queue_attributes(QueueUrl=uploads, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3 = boto3.client("s3")
s3.create_bucket(Bucket=prefix)
# As the template configures the documents bucket: private, encrypted at rest.
s3.put_public_access_block(Bucket=prefix, PublicAccessBlockConfiguration={
    "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
s3.put_bucket_encryption(Bucket=prefix, ServerSideEncryptionConfiguration={
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
s3.put_bucket_notification_configuration(
    Bucket=prefix,
    NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": uploads_arn, "Events": ["s3:ObjectCreated:*"]}]},
)
sender = "no-reply-" + sys.argv[1] + "@example.test"
boto3.client("sesv2").create_email_identity(EmailIdentity=sender)
print(json.dumps({
    "TABLE_NAME": prefix, "EVENTS_QUEUE_URL": events, "EVENTS_DLQ_URL": events_dlq,
    "BUCKET_NAME": prefix, "UPLOADS_QUEUE_URL": uploads, "UPLOADS_DLQ_URL": uploads_dlq,
    "EMAIL_FROM": sender,
}))
"#;

/// Runner configuration naming uniquely created emulator resources.
struct AwsResources {
    env: Vec<(String, String)>,
}

impl AwsResources {
    fn create() -> AwsResources {
        assert!(std::env::var_os("AWS_ENDPOINT_URL").is_some(), "E2E_BACKEND=aws needs AWS_ENDPOINT_URL (the emulator); refusing to touch real AWS");
        if let Some(path) = stack_outputs_path() {
            return AwsResources::from_stack_outputs(&path);
        }
        let python = std::env::var_os("E2E_PYTHON").unwrap_or_else(|| "python3".into());
        let output = Command::new(&python)
            .arg("-c")
            .arg(CREATE_AWS_RESOURCES_PY)
            .arg(random_suffix())
            .envs(aws_defaults())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|error| panic!("run {python:?} to create emulator resources: {error}"));
        assert!(output.status.success(), "creating emulator resources failed ({})", output.status);
        let created: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("resource script printed no JSON: {error}"));
        let env = created
            .as_object()
            .unwrap_or_else(|| panic!("resource script printed no object: {created}"))
            .iter()
            .map(|(name, value)| {
                let value = value.as_str().unwrap_or_else(|| panic!("{name} is not text"));
                (name.clone(), value.to_owned())
            })
            .collect();
        AwsResources { env }
    }
}

impl AwsResources {
    /// The deployed stack's resources, from its outputs file (a flat JSON object).
    fn from_stack_outputs(path: &Path) -> AwsResources {
        let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("read E2E_STACK_OUTPUTS={}: {error}", path.display()));
        let outputs: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()));
        let env = STACK_OUTPUT_ENV
            .iter()
            .map(|(variable, output)| {
                let value = outputs[*output].as_str().unwrap_or_else(|| panic!("{} has no text output {output}", path.display()));
                ((*variable).to_owned(), value.to_owned())
            })
            .collect();
        AwsResources { env }
    }
}

/// The runner binary, located (or built) once per test process.
fn runner_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build_runner).clone()
}

fn locate_or_build_runner() -> PathBuf {
    if let Some(path) = std::env::var_os("LOCAL_RUNNER_BIN") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "LOCAL_RUNNER_BIN={} is not a file", path.display());
        return path;
    }
    let test_exe = std::env::current_exe().expect("locate the test executable");
    // Test executables live in <target>/<profile>/deps/.
    let profile_dir = test_exe.parent().and_then(Path::parent).expect("the test executable sits in <target>/<profile>/deps").to_path_buf();
    let binary = profile_dir.join(format!("local-runner{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return binary;
    }
    // nextest runs each test in its own process, so an in-process guard is not enough.
    let lock_file = File::create(profile_dir.join(".e2e-build-local-runner.lock")).expect("create the build lock file");
    lock_file.lock().expect("take the build lock");
    if !binary.is_file() {
        build_runner(&profile_dir);
    }
    drop(lock_file);
    assert!(binary.is_file(), "cargo build did not produce {}", binary.display());
    binary
}

fn build_runner(profile_dir: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the e2e crate sits inside the workspace");
    let target_dir = profile_dir.parent().expect("a profile directory has a target parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "-p", "local-runner"]).env("CARGO_TARGET_DIR", target_dir);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    eprintln!("e2e: local-runner binary missing, running {command:?}");
    let status = command.status().expect("run cargo build -p local-runner");
    assert!(status.success(), "cargo build -p local-runner failed ({status})");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("find a free loopback port").port()
}

// ---------------------------------------------------------------------------------------------
// The HTTP client
// ---------------------------------------------------------------------------------------------

/// A client bound to one runner; cheap to clone with another bearer token or user agent.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    bearer: Option<String>,
    user_agent: String,
    issued_codes: Arc<Mutex<HashSet<(String, String)>>>,
    forwarded_for: Option<String>,
}

/// One answer: status, headers and the body as JSON (`Null` when empty, a string when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// Which contact a registration uses.
#[derive(Clone, Copy, Debug)]
pub enum Contact<'a> {
    Phone(&'a str),
    Email(&'a str),
}

/// The SPEC's tokens object.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

impl Api {
    /// The same client sending `Authorization: Bearer <access_token>`.
    pub fn bearer(&self, access_token: &str) -> Api {
        Api { bearer: Some(access_token.to_owned()), ..self.clone() }
    }

    /// The same client sending another `User-Agent`.
    pub fn user_agent(&self, user_agent: &str) -> Api {
        Api { user_agent: user_agent.to_owned(), ..self.clone() }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// A POST without a body (e.g. logout, TOTP enrolment).
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None, &[]).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    /// `PUT /v1/me/profile` with `profile`, expecting 200 (the profile then waits for the registry).
    pub async fn put_profile(&self, profile: &Value) -> Reply {
        let stored = self.put_json("/v1/me/profile", profile).await;
        stored.expect(200);
        stored
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    pub async fn delete_json(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::DELETE, path, Some(body), &[]).await
    }

    /// Any request, with extra headers (e.g. `x-request-id`).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base)).header(USER_AGENT, &self.user_agent);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(address) = &self.forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        Reply::read(response).await
    }

    /// A POST of `body` byte for byte (signed webhooks: the signature covers the exact bytes),
    /// as `application/json`, with extra headers.
    pub async fn post_raw(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(USER_AGENT, &self.user_agent)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(address) = &self.forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|error| panic!("POST {path}: {error}"));
        Reply::read(response).await
    }

    // --- dev outbox ---------------------------------------------------------------------------

    /// `GET /dev/outbox?to=…` items, newest first.
    pub async fn outbox(&self, to: &str) -> Vec<Value> {
        let response =
            self.client.get(format!("{}/dev/outbox", self.base)).query(&[("to", to)]).send().await.unwrap_or_else(|error| panic!("GET /dev/outbox: {error}"));
        let reply = Reply::read(response).await;
        reply.expect(200);
        reply.body["items"].as_array().cloned().unwrap_or_else(|| panic!("GET /dev/outbox has no items array: {reply}"))
    }

    /// The code in the newest code-bearing message to `to`, waiting for one the harness has not
    /// handed out yet (delivery goes through the queue consumer, so it may lag).
    pub async fn outbox_code(&self, to: &str) -> String {
        let deadline = Instant::now() + outbox_wait();
        loop {
            let items = self.outbox(to).await;
            let newest_code = items.iter().find_map(|message| message["body"].as_str().and_then(first_six_digit_number));
            if let Some(code) = newest_code
                && lock(&self.issued_codes).insert((to.to_owned(), code.clone()))
            {
                return code;
            }
            assert!(Instant::now() < deadline, "no new one-time code reached the dev outbox within {:?} ({} messages there)", outbox_wait(), items.len());
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until the outbox for `to` holds at least `count` messages; returns them.
    pub async fn wait_for_outbox(&self, to: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + outbox_wait();
        loop {
            let items = self.outbox(to).await;
            if items.len() >= count {
                return items;
            }
            assert!(Instant::now() < deadline, "expected {count} dev outbox messages within {:?}, found {}", outbox_wait(), items.len());
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The outbox once in-flight deliveries have landed (two equal reads 300 ms apart), so a
    /// later count increase can be attributed to what the test does next.
    pub async fn settled_outbox(&self, to: &str) -> Vec<Value> {
        let deadline = Instant::now() + outbox_wait();
        let mut previous = self.outbox(to).await;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let current = self.outbox(to).await;
            if current.len() == previous.len() || Instant::now() >= deadline {
                return current;
            }
            previous = current;
        }
    }

    // --- journeys -----------------------------------------------------------------------------

    /// `POST /v1/auth/register` with both consents given.
    pub async fn register(&self, contact: Contact<'_>, password: &str) -> Reply {
        self.post_json("/v1/auth/register", &registration_body(contact, password)).await
    }

    /// Registers a phone, confirms it with the code from the outbox; returns the tokens.
    pub async fn register_and_confirm(&self, phone: &str, password: &str) -> Tokens {
        self.register_and_confirm_contact(Contact::Phone(phone), phone, password).await
    }

    /// A new citizen registered by a random phone with a strong password, confirmed.
    pub async fn new_citizen(&self) -> Citizen {
        let (phone, password) = (TestPhone::random(), strong_password());
        let tokens = self.register_and_confirm(&phone.e164, &password).await;
        Citizen { phone, password, tokens }
    }

    /// Registers an email (already normalised), confirms it; returns the tokens.
    pub async fn register_and_confirm_email(&self, email: &str, password: &str) -> Tokens {
        self.register_and_confirm_contact(Contact::Email(email), email, password).await
    }

    async fn register_and_confirm_contact(&self, contact: Contact<'_>, outbox_to: &str, password: &str) -> Tokens {
        let started = self.register(contact, password).await;
        started.expect(202);
        let code = self.outbox_code(outbox_to).await;
        let confirmed = self.post_json("/v1/auth/register/confirm", &json!({"flow_id": started.str_at("/flow_id"), "code": code})).await;
        confirmed.expect(201);
        Tokens::from_json(&confirmed.body["tokens"])
    }

    /// `POST /v1/auth/login`.
    pub async fn login(&self, login: &str, password: &str) -> Reply {
        self.post_json("/v1/auth/login", &json!({"login": login, "password": password})).await
    }

    /// Logs a phone account in through its SMS second factor; returns the tokens.
    pub async fn login_with_sms(&self, phone: &str, password: &str) -> Tokens {
        let login = self.login(phone, password).await;
        login.expect(200);
        assert_eq!(login.body["mfa_required"], true, "phone accounts have SMS 2FA: {login}");
        let code = self.outbox_code(phone).await;
        let finished = self.post_json("/v1/auth/login/mfa", &json!({"flow_id": login.str_at("/flow_id"), "method": "sms", "code": code})).await;
        finished.expect(200);
        Tokens::from_json(&finished.body["tokens"])
    }

    /// Logs in an account that has no second factor on; returns the tokens.
    pub async fn login_without_mfa(&self, login: &str, password: &str) -> Tokens {
        let reply = self.login(login, password).await;
        reply.expect(200);
        assert_eq!(reply.body["mfa_required"], false, "{reply}");
        Tokens::from_json(&reply.body["tokens"])
    }

    /// `POST /v1/auth/token/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json("/v1/auth/token/refresh", &json!({"refresh_token": refresh_token})).await
    }

    /// `GET /v1/me` with the given access token, expecting 200.
    pub async fn me(&self, access_token: &str) -> Value {
        let me = self.bearer(access_token).get("/v1/me").await;
        me.expect(200);
        me.body
    }

    /// PUTs `bytes` to a presigned upload (`{url, headers}` as the documents API answers it)
    /// with exactly the headers it names.
    pub async fn put_presigned(&self, upload: &Value, bytes: &[u8]) -> reqwest::Response {
        let mut request = self.client.put(upload["url"].as_str().expect("upload.url")).body(bytes.to_vec());
        for (name, value) in upload["headers"].as_object().expect("upload.headers") {
            request = request.header(name.as_str(), value.as_str().expect("header values are text"));
        }
        request.send().await.expect("PUT to the upload URL")
    }
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, headers, body }
    }

    /// Panics with the whole reply unless the status matches.
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self}");
        self
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The problem `code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }

    /// A string at a JSON pointer (`/tokens/access_token`), panicking with the reply if absent.
    pub fn str_at(&self, pointer: &str) -> String {
        self.body.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer}: {self}")).to_owned()
    }

    /// `errors[].code` of a problem.
    pub fn error_codes(&self) -> Vec<String> {
        self.errors_field("code")
    }

    /// `errors[].field` of a problem.
    pub fn error_fields(&self) -> Vec<String> {
        self.errors_field("field")
    }

    fn errors_field(&self, key: &str) -> Vec<String> {
        self.body["errors"].as_array().map(|errors| errors.iter().filter_map(|error| error[key].as_str().map(str::to_owned)).collect()).unwrap_or_default()
    }

    /// Asserts an RFC 9457 problem with the SPEC's fields, this status and this code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "expected {status} `{code}`, got {self}");
        assert_eq!(self.code(), Some(code), "expected code `{code}`: {self}");
        self.assert_problem_shape();
    }

    /// Asserts the problem+json media type and the fields every problem carries.
    pub fn assert_problem_shape(&self) {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with("application/problem+json"), "errors are application/problem+json, got {content_type:?}: {self}");
        assert_eq!(self.body["status"], self.status.as_u16(), "problem status field: {self}");
        assert!(self.body["title"].is_string(), "problem title: {self}");
        assert!(self.body["type"].is_string(), "problem type: {self}");
        assert!(self.body["code"].is_string(), "problem code: {self}");
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.body)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Contact<'_> {
    fn field(&self) -> (&'static str, &str) {
        match self {
            Contact::Phone(phone) => ("phone", phone),
            Contact::Email(email) => ("email", email),
        }
    }
}

impl Tokens {
    /// Parses and checks the SPEC's tokens object.
    pub fn from_json(tokens: &Value) -> Tokens {
        let text = |key: &str| tokens[key].as_str().filter(|value| !value.is_empty()).unwrap_or_else(|| panic!("tokens.{key} missing: {tokens}")).to_owned();
        assert_eq!(tokens["token_type"], "Bearer", "tokens.token_type: {tokens}");
        let expires_in =
            tokens["expires_in"].as_i64().filter(|seconds| *seconds > 0).unwrap_or_else(|| panic!("tokens.expires_in must be positive seconds: {tokens}"));
        Tokens { access_token: text("access_token"), refresh_token: text("refresh_token"), expires_in }
    }

    /// The access token's claims, not verified (use the JWKS for that).
    pub fn claims(&self) -> Value {
        unverified_claims(&self.access_token)
    }

    /// The `sid` claim.
    pub fn session_id(&self) -> String {
        self.claims()["sid"].as_str().unwrap_or_else(|| panic!("access token has no sid claim")).to_owned()
    }
}

/// The payload of a JWT without checking its signature.
pub fn unverified_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_else(|| panic!("not a JWT"));
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("JWT payload is base64url");
    serde_json::from_slice(&bytes).expect("JWT payload is JSON")
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

/// A random Russian mobile number, unique enough for parallel tests sharing nothing.
/// A registered citizen: the phone they registered, their password and their first tokens.
pub struct Citizen {
    pub phone: TestPhone,
    pub password: String,
    pub tokens: Tokens,
}

#[derive(Clone, Debug)]
pub struct TestPhone {
    /// `+79XXXXXXXXX`
    pub e164: String,
}

impl TestPhone {
    pub fn random() -> TestPhone {
        let mut rng = rand::thread_rng();
        let rest: String = (0..9).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
        TestPhone { e164: format!("+79{rest}") }
    }

    /// The ten national digits, `9XXXXXXXXX`.
    pub fn national_digits(&self) -> &str {
        &self.e164[2..]
    }

    /// `+7 (9XX) XXX-XX-XX`
    pub fn pretty(&self) -> String {
        let d = self.national_digits();
        format!("+7 ({}) {}-{}-{}", &d[..3], &d[3..6], &d[6..8], &d[8..])
    }

    /// `8 9XX XXX-XX-XX`, the domestic trunk format.
    pub fn trunk(&self) -> String {
        let d = self.national_digits();
        format!("8 {} {}-{}-{}", &d[..3], &d[3..6], &d[6..8], &d[8..])
    }
}

/// A random, already normalised email address.
pub fn random_email() -> String {
    format!("e2e.{}@example.test", random_suffix())
}

/// A random password that satisfies SPEC §3.2: classes alternate (upper, lower, digit,
/// special), so no four characters can form a keyboard or digit sequence.
pub fn strong_password() -> String {
    const UPPER: &[u8] = b"BCDFGHJKLMNPRSTVWXZ";
    const LOWER: &[u8] = b"bcdfghjkmnprstvwxz";
    const DIGIT: &[u8] = b"23456789";
    const SPECIAL: &[u8] = b"!#%&*?@^";
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|i| {
            let class = [UPPER, LOWER, DIGIT, SPECIAL][i % 4];
            char::from(class[rng.gen_range(0..class.len())])
        })
        .collect()
}

/// The registration body with both consents given.
pub fn registration_body(contact: Contact<'_>, password: &str) -> Value {
    let (field, value) = contact.field();
    json!({
        field: value,
        "password": password,
        "consents": {"terms": true, "personal_data": true},
    })
}

/// A six-digit code guaranteed to differ from `code`.
pub fn different_code(code: &str) -> String {
    let value: u32 = code.parse().expect("codes are six digits");
    format!("{:06}", (value + 1) % 1_000_000)
}

/// Every run of exactly six ASCII digits in `text`.
pub fn six_digit_numbers(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() == 6).map(str::to_owned).collect()
}

fn first_six_digit_number(text: &str) -> Option<String> {
    six_digit_numbers(text).into_iter().next()
}

/// A PDF file of `objects` (numbered from 1, the catalog first) after `header` (the `%PDF-1.4`
/// line and any binary-marker comment), with a correct cross-reference table and trailer.
pub fn pdf_file(header: &[u8], objects: &[String]) -> Vec<u8> {
    let mut out = header.to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes());
    out
}

/// A one-page PDF 1.4 after `header` whose page draws the content stream `content`; with
/// `helvetica`, the page's resources name Helvetica as `/F1` (a fifth object).
pub fn one_page_pdf(header: &[u8], content: &str, helvetica: bool) -> Vec<u8> {
    let resources = if helvetica { " /Resources << /Font << /F1 5 0 R >> >>" } else { "" };
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R{resources} >>"),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
    ];
    if helvetica {
        objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    }
    pdf_file(header, &objects)
}

/// Anna Petrova's profile (SNILS and passport) as a citizen submits it for verification.
pub fn example_profile() -> Value {
    json!({
        "last_name": "Петрова", "first_name": "Анна", "middle_name": "Сергеевна", "birth_date": "1988-05-17", "gender": "female",
        "snils": "112-233-445 95",
        "passport": {"series": "4506", "number": "123456", "issued_at": "2015-03-20", "issued_by": "ОВД Тверского района г. Москвы", "division_code": "772-001"}
    })
}

/// Parses an RFC 3339 time and checks it is UTC, as SPEC §2 requires.
pub fn parse_utc(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    let parsed = DateTime::parse_from_rfc3339(text).unwrap_or_else(|error| panic!("{text:?} is not RFC 3339: {error}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{text:?} is not UTC");
    parsed.with_timezone(&Utc)
}

/// How long a message may take through the queue consumer.
pub fn outbox_wait() -> Duration {
    if is_aws_backend() { Duration::from_secs(15) } else { Duration::from_secs(5) }
}

fn random_suffix() -> String {
    let mut rng = rand::thread_rng();
    (0..12).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)])).collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
