//! DynamoDB key-value adapter: one table, partition key `pk` (S) and sort key `sk` (S).
//!
//! Item attributes: `v` (N) is the store-managed version, `d` (B) the payload, and
//! `expires_at` (N, unix seconds) the expiry, which is also the table's TTL attribute so
//! DynamoDB deletes expired items in the background. Until it does, every read and every
//! condition treats an item whose `expires_at` is in the past as absent.
//!
//! Versions are computed by DynamoDB itself (`SET v = if_not_exists(v, 0) + 1`), so a put never
//! needs a read first. A put over an expired item that TTL has not removed yet therefore
//! continues its version sequence; once the item is gone, the next put starts again at 1.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, KeySchemaElement, KeyType, ReturnValue, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, Update,
};

use crate::adapters::embedded::kv::rules::{self, is_live, unix_now};
use crate::ports::kv::{Condition, Item, KeyValue, KvError, Page, Query, TxOp};

const PK: &str = "pk";
const SK: &str = "sk";
const VERSION: &str = "v";
const DATA: &str = "d";
/// Also the table's TTL attribute.
const EXPIRES_AT: &str = "expires_at";

/// An expired item counts as absent even before TTL deletes it.
const LIVE: &str = "attribute_exists(#pk) AND (attribute_not_exists(#e) OR #e >= :now)";
const NOT_LIVE: &str = "attribute_not_exists(#pk) OR #e < :now";

/// Key-value store in one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoKv {
    client: Client,
    table: String,
}

impl DynamoKv {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates an on-demand table with this adapter's key schema and TTL on `expires_at`.
    /// For tests and emulators; deployed tables come from the SAM template.
    pub async fn create_table_for_tests(client: Client, name: &str) -> Result<Self, KvError> {
        let key = |name: &str, key_type| KeySchemaElement::builder().attribute_name(name).key_type(key_type).build();
        let string = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
        client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string(PK).map_err(build_error)?)
            .attribute_definitions(string(SK).map_err(build_error)?)
            .key_schema(key(PK, KeyType::Hash).map_err(build_error)?)
            .key_schema(key(SK, KeyType::Range).map_err(build_error)?)
            .send()
            .await
            .map_err(|e| sdk_error("CreateTable", e))?;
        client
            .wait_until_table_exists()
            .table_name(name)
            .wait(Duration::from_secs(120))
            .await
            .map_err(|e| KvError::Backend(format!("DynamoDB table did not become active: {}", DisplayErrorContext(&e))))?;
        let ttl = TimeToLiveSpecification::builder().enabled(true).attribute_name(EXPIRES_AT).build().map_err(build_error)?;
        client.update_time_to_live().table_name(name).time_to_live_specification(ttl).send().await.map_err(|e| sdk_error("UpdateTimeToLive", e))?;
        Ok(Self::new(client, name))
    }
}

impl DynamoKv {
    async fn put_whole(&self, item: Item, condition: Condition, version: u64) -> Result<u64, KvError> {
        let WriteExpressions { condition, names, values } = Placeholders::default().with_condition(condition);
        let mut attributes = key(&item.pk, &item.sk);
        attributes.insert(VERSION.to_owned(), AttributeValue::N(version.to_string()));
        attributes.insert(DATA.to_owned(), AttributeValue::B(Blob::new(item.data)));
        if let Some(at) = item.expires_at {
            attributes.insert(EXPIRES_AT.to_owned(), AttributeValue::N(at.to_string()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await
            .map_err(|e| write_error("PutItem", e))?;
        Ok(version)
    }
}

#[async_trait]
impl KeyValue for DynamoKv {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, KvError> {
        rules::check_key(pk, sk)?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(attributes) = output.item else {
            return Ok(None);
        };
        let item = parse_item(attributes)?;
        Ok(is_live(item.expires_at, unix_now()).then_some(item))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<u64, KvError> {
        rules::check_item(&item)?;
        // When the condition fixes the new version, a whole-item PutItem writes it in one step
        // (also on emulators that apply UpdateItem piecemeal); otherwise UpdateItem counts.
        let known_version = match condition {
            Condition::NotExists => Some(1),
            Condition::VersionIs(n) => Some(n + 1),
            Condition::None | Condition::Exists => None,
        };
        if let Some(version) = known_version {
            return self.put_whole(item, condition, version).await;
        }
        let (update, expressions) = put_expressions(item.data, item.expires_at, condition);
        let output = keyed_write!(self.client.update_item(), &self.table, key(&item.pk, &item.sk), expressions)
            .update_expression(update)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| write_error("UpdateItem", e))?;
        output
            .attributes()
            .and_then(|attributes| attributes.get(VERSION))
            .ok_or_else(|| KvError::Backend("DynamoDB UpdateItem returned no version".into()))
            .and_then(|version| number(version, VERSION))
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), KvError> {
        rules::check_key(pk, sk)?;
        keyed_write!(self.client.delete_item(), &self.table, key(pk, sk), Placeholders::default().with_condition(condition))
            .send()
            .await
            .map_err(|e| write_error("DeleteItem", e))?;
        Ok(())
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), KvError> {
        rules::check_transaction(&ops)?;
        // A check without a condition asserts nothing and DynamoDB would reject it, so it is
        // left out; `sent` maps DynamoDB's positions back to the caller's op indices.
        let mut sent = Vec::with_capacity(ops.len());
        let mut items = Vec::with_capacity(ops.len());
        for (index, op) in ops.into_iter().enumerate() {
            if let Some(item) = self.transact_item(op)? {
                sent.push(index);
                items.push(item);
            }
        }
        if items.is_empty() {
            return Ok(());
        }
        let outcome = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            // Makes the SDK's automatic retries idempotent, so a retried success is not
            // reported as a failed condition.
            .client_request_token(ulid::Ulid::new().to_string())
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => Err(cancellation_error(cancelled.cancellation_reasons(), &sent)),
                _ => Err(sdk_error("TransactWriteItems", error)),
            },
        }
    }

    async fn query(&self, query: Query) -> Result<Page, KvError> {
        let limit = rules::check_query(&query)?;
        let mut exclusive_start = match resume_point(&query) {
            ResumePoint::Beginning => None,
            ResumePoint::After(sk) => Some(key(&query.pk, sk)),
            ResumePoint::PastTheEnd => return Ok(Page::default()),
        };
        let mut page = Page::default();
        // DynamoDB applies `Limit` before the expiry filter, so a request may come back short;
        // later requests ask for more to cross runs of expired items in fewer round trips.
        let mut request_limit = limit;
        loop {
            let output = self.query_once(&query, request_limit, exclusive_start.take()).await?;
            for attributes in output.items.unwrap_or_default() {
                if page.items.len() == limit {
                    page.last_key = page.items.last().map(|item| item.sk.clone());
                    return Ok(page);
                }
                page.items.push(parse_item(attributes)?);
            }
            match output.last_evaluated_key {
                None => return Ok(page),
                Some(_) if page.items.len() == limit => {
                    page.last_key = page.items.last().map(|item| item.sk.clone());
                    return Ok(page);
                }
                Some(last_evaluated) => {
                    exclusive_start = Some(last_evaluated);
                    request_limit = (request_limit * 2).clamp(limit - page.items.len(), rules::MAX_QUERY_LIMIT);
                }
            }
        }
    }
}

impl DynamoKv {
    fn transact_item(&self, op: TxOp) -> Result<Option<TransactWriteItem>, KvError> {
        let item = match op {
            TxOp::Put { item, condition } => {
                let (update, expressions) = put_expressions(item.data, item.expires_at, condition);
                let update = keyed_write!(Update::builder(), &self.table, key(&item.pk, &item.sk), expressions)
                    .update_expression(update)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update).build()
            }
            TxOp::Delete { pk, sk, condition } => {
                let expressions = Placeholders::default().with_condition(condition);
                let delete = keyed_write!(Delete::builder(), &self.table, key(&pk, &sk), expressions).build().map_err(build_error)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            TxOp::Check { pk, sk, condition } => {
                let expressions = Placeholders::default().with_condition(condition);
                if expressions.condition.is_none() {
                    return Ok(None);
                }
                let check = keyed_write!(ConditionCheck::builder(), &self.table, key(&pk, &sk), expressions).build().map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(Some(item))
    }

    async fn query_once(
        &self,
        query: &Query,
        limit: usize,
        exclusive_start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, KvError> {
        let mut placeholders = Placeholders::default();
        placeholders.name("#pk", PK);
        placeholders.value(":pk", AttributeValue::S(query.pk.clone()));
        let key_condition = match &query.sk_prefix {
            Some(prefix) if !prefix.is_empty() => {
                placeholders.name("#sk", SK);
                placeholders.value(":prefix", AttributeValue::S(prefix.clone()));
                "#pk = :pk AND begins_with(#sk, :prefix)"
            }
            _ => "#pk = :pk",
        };
        placeholders.name("#e", EXPIRES_AT);
        placeholders.value(":now", AttributeValue::N(unix_now().to_string()));
        let (names, values) = placeholders.into_parts();
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_condition)
            .filter_expression("attribute_not_exists(#e) OR #e >= :now")
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .scan_index_forward(!query.descending)
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(exclusive_start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))
    }
}

/// Where a query resumes, given its prefix and exclusive cursor.
enum ResumePoint<'a> {
    Beginning,
    After(&'a str),
    /// The cursor lies beyond every matching sort key in the query's direction.
    PastTheEnd,
}

/// DynamoDB rejects an `ExclusiveStartKey` that fails the `begins_with` predicate, so a cursor
/// outside the prefix is resolved here: sort keys with a prefix form one contiguous range.
fn resume_point(query: &Query) -> ResumePoint<'_> {
    let Some(cursor) = query.start_after.as_deref() else {
        return ResumePoint::Beginning;
    };
    let prefix = query.sk_prefix.as_deref().unwrap_or("");
    if cursor.starts_with(prefix) {
        return ResumePoint::After(cursor);
    }
    let cursor_before_range = cursor < prefix;
    if cursor_before_range == query.descending { ResumePoint::PastTheEnd } else { ResumePoint::Beginning }
}

/// Expression attribute names and values, holding exactly those an expression uses:
/// DynamoDB rejects unused or empty placeholder maps.
#[derive(Default)]
struct Placeholders {
    names: AttributeNames,
    values: AttributeValues,
}

type AttributeNames = HashMap<String, String>;
type AttributeValues = HashMap<String, AttributeValue>;

impl Placeholders {
    fn name(&mut self, placeholder: &str, attribute: &str) {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
    }

    fn value(&mut self, placeholder: &str, value: AttributeValue) {
        self.values.insert(placeholder.to_owned(), value);
    }

    /// The maps as the SDK builders take them: absent rather than empty.
    fn into_parts(self) -> (Option<AttributeNames>, Option<AttributeValues>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }

    /// Adds the condition's placeholders and closes the set: what a conditional write sends.
    fn with_condition(mut self, condition: Condition) -> WriteExpressions {
        let condition = condition_expression(condition, &mut self);
        let (names, values) = self.into_parts();
        WriteExpressions { condition, names, values }
    }
}

/// A write's condition (none for an unconditional one) and the placeholders of all its expressions.
struct WriteExpressions {
    condition: Option<String>,
    names: Option<AttributeNames>,
    values: Option<AttributeValues>,
}

/// Table, key, condition and placeholders on an SDK write builder: UpdateItem, DeleteItem and
/// their transaction forms share these setters but no trait.
macro_rules! keyed_write {
    ($builder:expr, $table:expr, $key:expr, $expressions:expr) => {{
        let WriteExpressions { condition, names, values } = $expressions;
        $builder
            .table_name($table)
            .set_key(Some($key))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }};
}
use keyed_write;

fn condition_expression(condition: Condition, placeholders: &mut Placeholders) -> Option<String> {
    let expression = match condition {
        Condition::None => return None,
        Condition::NotExists => NOT_LIVE.to_owned(),
        Condition::Exists => LIVE.to_owned(),
        Condition::VersionIs(version) => {
            placeholders.name("#v", VERSION);
            placeholders.value(":expected", AttributeValue::N(version.to_string()));
            format!("{LIVE} AND #v = :expected")
        }
    };
    placeholders.name("#pk", PK);
    placeholders.name("#e", EXPIRES_AT);
    placeholders.value(":now", AttributeValue::N(unix_now().to_string()));
    Some(expression)
}

/// The update that writes an item's data and expiry and bumps its version in place, under
/// `condition`.
fn put_expressions(data: Vec<u8>, expires_at: Option<i64>, condition: Condition) -> (String, WriteExpressions) {
    let mut placeholders = Placeholders::default();
    let update = put_expression(data, expires_at, &mut placeholders);
    (update, placeholders.with_condition(condition))
}

fn put_expression(data: Vec<u8>, expires_at: Option<i64>, placeholders: &mut Placeholders) -> String {
    placeholders.name("#v", VERSION);
    placeholders.name("#d", DATA);
    placeholders.name("#e", EXPIRES_AT);
    placeholders.value(":zero", AttributeValue::N("0".into()));
    placeholders.value(":one", AttributeValue::N("1".into()));
    placeholders.value(":d", AttributeValue::B(Blob::new(data)));
    let set = "SET #v = if_not_exists(#v, :zero) + :one, #d = :d";
    match expires_at {
        Some(at) => {
            placeholders.value(":e", AttributeValue::N(at.to_string()));
            format!("{set}, #e = :e")
        }
        None => format!("{set} REMOVE #e"),
    }
}

fn cancellation_error(reasons: &[aws_sdk_dynamodb::types::CancellationReason], sent: &[usize]) -> KvError {
    let code_at = |code: &str| reasons.iter().position(|reason| reason.code() == Some(code));
    if let Some(position) = code_at("ConditionalCheckFailed") {
        return KvError::TransactionConflict { index: sent.get(position).copied() };
    }
    if code_at("TransactionConflict").is_some() {
        return KvError::TransactionConflict { index: None };
    }
    let codes: Vec<&str> = reasons.iter().filter_map(|reason| reason.code()).filter(|code| *code != "None").collect();
    if codes.contains(&"ValidationError") {
        return KvError::Invalid(format!("DynamoDB rejected a transaction op ({})", codes.join(", ")));
    }
    KvError::Backend(format!("DynamoDB cancelled the transaction ({})", codes.join(", ")))
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), AttributeValue::S(pk.to_owned())), (SK.to_owned(), AttributeValue::S(sk.to_owned()))])
}

fn parse_item(mut attributes: HashMap<String, AttributeValue>) -> Result<Item, KvError> {
    let mut string = |name: &str| match attributes.remove(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(name)),
    };
    let (pk, sk) = (string(PK)?, string(SK)?);
    let version = attributes.get(VERSION).ok_or_else(|| corrupt(VERSION)).and_then(|v| number(v, VERSION))?;
    let expires_at = attributes.get(EXPIRES_AT).map(|at| number(at, EXPIRES_AT)).transpose()?;
    let data = match attributes.remove(DATA) {
        Some(AttributeValue::B(blob)) => blob.into_inner(),
        _ => return Err(corrupt(DATA)),
    };
    Ok(Item { pk, sk, version, data, expires_at })
}

fn number<T: std::str::FromStr>(value: &AttributeValue, name: &str) -> Result<T, KvError> {
    value.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| corrupt(name))
}

fn corrupt(attribute: &str) -> KvError {
    KvError::Backend(format!("DynamoDB item has a missing or malformed `{attribute}` attribute"))
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> KvError {
    KvError::Backend(format!("DynamoDB request: {error}"))
}

/// Maps an SDK error without echoing request contents (keys may hold personal data).
/// A single-item write's failure: a failed condition is the caller's business, anything else
/// is mapped like every other SDK error.
fn write_error<E, R>(operation: &str, error: SdkError<E, R>) -> KvError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if error.code() == Some("ConditionalCheckFailedException") {
        return KvError::ConditionFailed;
    }
    sdk_error(operation, error)
}

fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> KvError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if error.code() == Some("ValidationException") {
        return KvError::Invalid(format!("DynamoDB {operation}: {}", error.message().unwrap_or("validation failed")));
    }
    KvError::Backend(format!("DynamoDB {operation}: {}", DisplayErrorContext(&error)))
}
