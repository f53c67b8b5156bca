#[tokio::test]
async fn probe() {
    let runner = e2e::Runner::start_with(&[("OTP_RESEND_SECONDS", "1")]).await;
    let api = runner.api();
    let code = api.outbox_code("+79990001122").await;
    assert_eq!(code, "123456");
    println!("LOG:\n{}", runner.log());
    let again = tokio::time::timeout(std::time::Duration::from_secs(8), api.outbox_code("+79990001122")).await;
    println!("second call timed out or panicked as expected: {}", again.is_err());
}
