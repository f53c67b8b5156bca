//! The runner binary as ops start it: the dev outbox only on a loopback address, `?to=`
//! required, and no answer cached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("runner-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn runner(bind: &str, data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_local-runner"));
    command
        .env_remove("DEV_OUTBOX")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("PUBLIC_BASE_URL")
        .env("BACKEND", "embedded")
        .env("BIND_ADDR", bind)
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn the_runner_refuses_to_serve_the_dev_outbox_beyond_loopback() {
    let dir = temp_dir("open");
    let mut child = Running(runner("0.0.0.0:0", &dir).spawn().expect("start the runner"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "started on 0.0.0.0 with the dev outbox on");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.0.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(!status.success(), "exited successfully: {stderr}");
    assert!(stderr.contains("DEV_OUTBOX") && stderr.contains("BIND_ADDR"), "the error names the settings: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn the_dev_outbox_on_loopback_needs_a_recipient() {
    let dir = temp_dir("loopback");
    let mut child = Running(runner("127.0.0.1:0", &dir).spawn().expect("start the runner"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read the ready line");
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("unexpected first line: {line:?}")).to_owned();

    let everyone = get(&addr, "/dev/outbox");
    assert!(everyone.starts_with("HTTP/1.1 400"), "{everyone}");
    assert!(everyone.contains("\"validation_failed\"") && everyone.contains("\"to\""), "{everyone}");
    assert!(everyone.to_ascii_lowercase().contains("cache-control: no-store"), "{everyone}");
    let one = get(&addr, "/dev/outbox?to=%2B79990000001");
    assert!(one.starts_with("HTTP/1.1 200"), "{one}");
    assert!(one.to_ascii_lowercase().contains("cache-control: no-store"), "{one}");
    drop(child);
    let _ = std::fs::remove_dir_all(dir);
}
