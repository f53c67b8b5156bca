//! S3 event notifications as they arrive in the uploads queue: the JSON S3 sends to SQS
//! (`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{…},"object":{"key","size"}}}]}`)
//! and the one-off `s3:TestEvent` S3 sends when the notification is configured.
//!
//! The local runner raises the same JSON from the embedded object store ([`s3_object_created`]),
//! so one parser serves both backends.

use aws_lambda_events::event::s3::S3Event;
use chrono::{NaiveDateTime, SecondsFormat};
use serde_json::{Value, json};
use shared::ports::Ticker;
use shared::ports::objects::ObjectCreated;

/// What one notification message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// Objects that were created (only `ObjectCreated:*` records, keys URL-decoded).
    Created(Vec<ObjectCreated>),
    /// S3's configuration probe: acknowledge and ignore.
    Test,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotificationError {
    #[error("notification is not JSON")]
    NotJson,
    #[error("notification is not an S3 event: {0}")]
    NotS3Event(String),
    #[error("object key is not valid URL-encoded UTF-8")]
    BadKey,
}

/// Parses one queue message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let mut value: Value = serde_json::from_str(body).map_err(|_| NotificationError::NotJson)?;
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    fill_fields_emulators_omit(&mut value);
    let event: S3Event = serde_json::from_value(value).map_err(|e| NotificationError::NotS3Event(e.to_string()))?;
    let mut created = Vec::new();
    for record in event.records {
        let is_created = record.event_name.as_deref().is_some_and(|name| name.starts_with("ObjectCreated:"));
        if !is_created {
            continue;
        }
        let Some(raw_key) = record.s3.object.key.as_deref() else {
            return Err(NotificationError::NotS3Event("record without an object key".into()));
        };
        let key = decode_key(raw_key)?;
        let size = record.s3.object.size.and_then(|size| u64::try_from(size).ok()).unwrap_or(0);
        created.push(ObjectCreated { key, size });
    }
    Ok(Notification::Created(created))
}

/// S3 sends `userIdentity`, `requestParameters` and a UTC `eventTime`; emulators (moto) leave
/// the first two out and write the time without an offset. None of them is used here, so they
/// are filled in rather than failing the message.
fn fill_fields_emulators_omit(value: &mut Value) {
    let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) else { return };
    for record in records.iter_mut().filter_map(Value::as_object_mut) {
        record.entry("userIdentity").or_insert_with(|| json!({}));
        record.entry("requestParameters").or_insert_with(|| json!({}));
        let naive_time = record
            .get("eventTime")
            .and_then(Value::as_str)
            .filter(|time| chrono::DateTime::parse_from_rfc3339(time).is_err())
            .and_then(|time| NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S%.f").ok());
        if let Some(time) = naive_time {
            record.insert("eventTime".into(), Value::String(time.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)));
        }
    }
}

/// Keys arrive URL-encoded the way S3 writes them: form encoding, `+` for a space.
pub fn decode_key(raw: &str) -> Result<String, NotificationError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().map(|key| key.into_owned()).map_err(|_| NotificationError::BadKey)
}

/// Characters S3 leaves literal in notification keys (`quote_plus` style).
const KEY_LITERAL: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/').remove(b' ');

/// The notification S3 would send for `created` in `bucket` now (used by the local runner).
pub fn s3_object_created(bucket: &str, created: &ObjectCreated) -> String {
    s3_object_created_by(&Ticker::default(), bucket, created)
}

/// The same, with the time and request id of `ticker`.
pub fn s3_object_created_by(ticker: &Ticker, bucket: &str, created: &ObjectCreated) -> String {
    let now = ticker.now();
    let key = percent_encoding::utf8_percent_encode(&created.key, KEY_LITERAL).to_string().replace(' ', "+");
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "local",
            "eventTime": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "local"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": ticker.id()},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "uploads",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": key, "size": created.size, "sequencer": format!("{:016X}", now.timestamp_micros())}
            }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../events/s3-object-created.json");

    #[test]
    fn fixture_from_s3_yields_the_created_object_with_a_decoded_key() {
        let parsed = parse(FIXTURE).expect("fixture parses");
        assert_eq!(parsed, Notification::Created(vec![ObjectCreated { key: "documents/01JQ3B5N7X9K2M4P6R8T0V1W3Y".into(), size: 48213 }]));
    }

    #[test]
    fn test_event_is_recognised() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2025-03-14T09:30:00.000Z","Bucket":"gosuslugi-documents","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert_eq!(parse(body), Ok(Notification::Test));
    }

    #[test]
    fn url_encoded_keys_are_decoded_like_s3_encodes_them() {
        assert_eq!(decode_key("documents/a+b%2Bc%D0%BF.pdf"), Ok("documents/a b+cп.pdf".to_owned()));
        assert_eq!(decode_key("plain/key"), Ok("plain/key".to_owned()));
        assert_eq!(decode_key("bad%FF%FE"), Err(NotificationError::BadKey));
    }

    #[test]
    fn locally_raised_notification_round_trips_through_the_parser() {
        let created = ObjectCreated { key: "documents/with space+plus/п".into(), size: 7 };
        let body = s3_object_created("local-documents", &created);
        assert!(body.contains("with+space%2Bplus/%D0%BF"), "{body}");
        assert_eq!(parse(&body), Ok(Notification::Created(vec![created])));
    }

    #[test]
    fn emulator_notifications_without_identity_and_offset_are_accepted() {
        // The shape moto 5 sends: no userIdentity/requestParameters, eventTime without "Z".
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2025-03-14T09:30:00.123456","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"b","arn":"arn:aws:s3:::b"},"object":{"key":"documents/01ABC","size":12,"eTag":"x"}}}]}"#;
        assert_eq!(parse(body), Ok(Notification::Created(vec![ObjectCreated { key: "documents/01ABC".into(), size: 12 }])));
    }

    #[test]
    fn other_event_kinds_are_skipped_and_garbage_is_an_error() {
        let removed = FIXTURE.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse(&removed), Ok(Notification::Created(vec![])));
        assert_eq!(parse("not json"), Err(NotificationError::NotJson));
        assert!(matches!(parse(r#"{"Records":"nope"}"#), Err(NotificationError::NotS3Event(_))));
        assert!(matches!(parse(r#"{"hello":"world"}"#), Err(NotificationError::NotS3Event(_))));
    }

    #[test]
    fn sqs_fixture_carries_s3_notifications_in_its_bodies() {
        let fixture: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(include_str!("../../../events/sqs-s3-notification.json")).expect("SQS event");
        let parsed: Vec<Notification> = fixture.records.iter().map(|record| parse(record.body.as_deref().unwrap_or_default()).expect("body parses")).collect();
        assert_eq!(parsed[0], Notification::Test);
        assert!(matches!(&parsed[1], Notification::Created(objects) if objects.len() == 1 && objects[0].key.starts_with("documents/")));
    }
}
