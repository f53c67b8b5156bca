//! What each citizen wants to hear about, and where: six categories × four channels (SPEC §6).
//!
//! Until the citizen changes something (and after `DELETE`) the defaults apply: applications →
//! SMS + inbox, security → SMS + email + inbox, everything else → email + inbox. Security SMS,
//! email and inbox cannot be switched off: an update that tries is refused as a whole
//! ([`SettingsError::MandatoryChannelOff`]), and stored settings pass [`Preferences::enforced`]
//! on every read, so no path can silence a security warning. `push` is accepted and stored but
//! no push provider exists yet, so nothing is sent through it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::domain::FieldError;
use shared::events::EventPayload;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Applications,
    PersonalData,
    Deadlines,
    Payments,
    Security,
    System,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Email,
    Push,
    Inbox,
}

impl Category {
    pub const ALL: [Category; 6] = [Self::Applications, Self::PersonalData, Self::Deadlines, Self::Payments, Self::Security, Self::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applications => "applications",
            Self::PersonalData => "personal_data",
            Self::Deadlines => "deadlines",
            Self::Payments => "payments",
            Self::Security => "security",
            Self::System => "system",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|category| category.as_str() == name)
    }

    /// The category an event belongs to; `None` for messages that ignore preferences: one-time
    /// codes, and the warning to a contact someone tried to register (it concerns no account).
    pub fn of(payload: &EventPayload) -> Option<Self> {
        match payload {
            EventPayload::OtpIssued { .. } | EventPayload::RegistrationAttempted { .. } | EventPayload::RecoveryUnmatched { .. } => None,
            EventPayload::AccountLocked { .. } | EventPayload::PasswordChanged { .. } | EventPayload::NewLogin { .. } | EventPayload::MfaChanged { .. } => {
                Some(Self::Security)
            }
            EventPayload::ApplicationStatusChanged { .. } | EventPayload::ApplicationMessage { .. } => Some(Self::Applications),
            EventPayload::IdentityVerificationRequested { .. } | EventPayload::IdentityLevelChanged { .. } | EventPayload::DocumentVerdict { .. } => {
                Some(Self::PersonalData)
            }
        }
    }

    /// The channels that stay on whatever the citizen says.
    pub fn mandatory_channels(self) -> &'static [Channel] {
        match self {
            Self::Security => &[Channel::Sms, Channel::Email, Channel::Inbox],
            _ => &[],
        }
    }
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Sms, Self::Email, Self::Push, Self::Inbox];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Push => "push",
            Self::Inbox => "inbox",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|channel| channel.as_str() == name)
    }
}

/// Which channels one category uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChannelSet {
    pub sms: bool,
    pub email: bool,
    pub push: bool,
    pub inbox: bool,
}

impl ChannelSet {
    pub fn get(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms,
            Channel::Email => self.email,
            Channel::Push => self.push,
            Channel::Inbox => self.inbox,
        }
    }

    pub fn set(&mut self, channel: Channel, on: bool) {
        match channel {
            Channel::Sms => self.sms = on,
            Channel::Email => self.email = on,
            Channel::Push => self.push = on,
            Channel::Inbox => self.inbox = on,
        }
    }

    const fn of(sms: bool, email: bool, inbox: bool) -> Self {
        Self { sms, email, push: false, inbox }
    }
}

/// The whole matrix, in SPEC order; the JSON shape of `GET /v1/me/notification-settings`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preferences {
    pub categories: Categories,
}

/// One field per category, so the JSON always lists all six in a stable order. A category
/// missing from a stored item (added after it was written) takes its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Categories {
    pub applications: ChannelSet,
    pub personal_data: ChannelSet,
    pub deadlines: ChannelSet,
    pub payments: ChannelSet,
    pub security: ChannelSet,
    pub system: ChannelSet,
}

impl Default for Categories {
    fn default() -> Self {
        let others = ChannelSet::of(false, true, true);
        Self {
            applications: ChannelSet::of(true, false, true),
            personal_data: others,
            deadlines: others,
            payments: others,
            security: ChannelSet::of(true, true, true),
            system: others,
        }
    }
}

impl Preferences {
    pub fn channels(&self, category: Category) -> ChannelSet {
        let c = &self.categories;
        match category {
            Category::Applications => c.applications,
            Category::PersonalData => c.personal_data,
            Category::Deadlines => c.deadlines,
            Category::Payments => c.payments,
            Category::Security => c.security,
            Category::System => c.system,
        }
    }

    fn channels_mut(&mut self, category: Category) -> &mut ChannelSet {
        let c = &mut self.categories;
        match category {
            Category::Applications => &mut c.applications,
            Category::PersonalData => &mut c.personal_data,
            Category::Deadlines => &mut c.deadlines,
            Category::Payments => &mut c.payments,
            Category::Security => &mut c.security,
            Category::System => &mut c.system,
        }
    }

    /// Whether messages of `category` go out through `channel`; mandatory channels always do.
    pub fn allows(&self, category: Category, channel: Channel) -> bool {
        category.mandatory_channels().contains(&channel) || self.channels(category).get(channel)
    }

    /// The same settings with every mandatory channel on (a guard on what was read from storage).
    pub fn enforced(mut self) -> Self {
        for category in Category::ALL {
            for &channel in category.mandatory_channels() {
                self.channels_mut(category).set(channel, true);
            }
        }
        self
    }

    /// Applies a `PUT` body to these settings.
    ///
    /// The body has the GET shape, `{"categories": {"<category>": {"<channel>": bool}}}`; it may
    /// name only some categories and channels, the rest keep their current values (so a client
    /// can switch one thing without re-sending the matrix). Nothing is applied unless the whole
    /// body is valid.
    pub fn updated(&self, body: &Value) -> Result<Self, SettingsError> {
        let mut errors = Vec::new();
        let mut next = *self;
        let Some(object) = body.as_object() else {
            return Err(SettingsError::Malformed(vec![FieldError::new("body", "invalid", "Ожидается объект с полем categories")]));
        };
        for key in object.keys().filter(|key| key.as_str() != "categories") {
            errors.push(FieldError::new(echoed(key), "unknown_field", "Неизвестное поле"));
        }
        match object.get("categories") {
            None => errors.push(FieldError::new("categories", "required", "Укажите настройки по категориям")),
            Some(Value::Object(categories)) => {
                for (category_name, channels) in categories {
                    let Some(category) = Category::parse(category_name) else {
                        errors.push(FieldError::new(format!("categories.{}", echoed(category_name)), "unknown_category", "Неизвестная категория уведомлений"));
                        continue;
                    };
                    let Some(channels) = channels.as_object() else {
                        errors.push(FieldError::new(format!("categories.{category_name}"), "invalid", "Ожидается объект с каналами"));
                        continue;
                    };
                    for (channel_name, on) in channels {
                        let field = format!("categories.{category_name}.{}", echoed(channel_name));
                        match (Channel::parse(channel_name), on.as_bool()) {
                            (None, _) => errors.push(FieldError::new(field, "unknown_channel", "Неизвестный канал уведомлений")),
                            (Some(_), None) => errors.push(FieldError::new(field, "invalid", "Ожидается true или false")),
                            (Some(channel), Some(on)) => next.channels_mut(category).set(channel, on),
                        }
                    }
                }
            }
            Some(_) => errors.push(FieldError::new("categories", "invalid", "Ожидается объект с категориями")),
        }
        if !errors.is_empty() {
            errors.truncate(MAX_REPORTED_ERRORS);
            return Err(SettingsError::Malformed(errors));
        }
        let refused: Vec<FieldError> = Category::ALL
            .into_iter()
            .flat_map(|category| category.mandatory_channels().iter().map(move |&channel| (category, channel)))
            .filter(|&(category, channel)| !next.channels(category).get(channel))
            .map(|(category, channel)| {
                FieldError::new(
                    format!("categories.{}.{}", category.as_str(), channel.as_str()),
                    "cannot_disable",
                    "Уведомления о безопасности по этому каналу отключить нельзя",
                )
            })
            .collect();
        if refused.is_empty() { Ok(next) } else { Err(SettingsError::MandatoryChannelOff(refused)) }
    }
}

/// A hostile body may hold thousands of bad keys; the answer lists this many.
const MAX_REPORTED_ERRORS: usize = 20;

/// A client's key as quoted back in `errors[].field`, cut short so the answer stays small.
fn echoed(key: &str) -> String {
    key.chars().take(64).collect()
}

/// Why a `PUT` body was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// Not the settings shape: unknown category or channel, not a boolean (400).
    #[error("the settings body is malformed")]
    Malformed(Vec<FieldError>),
    /// Well-formed, but it switches a mandatory (security) channel off (422).
    #[error("a security channel cannot be switched off")]
    MandatoryChannelOff(Vec<FieldError>),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let defaults = Preferences::default();
        assert_eq!(defaults.channels(Category::Applications), ChannelSet { sms: true, email: false, push: false, inbox: true });
        assert_eq!(defaults.channels(Category::Security), ChannelSet { sms: true, email: true, push: false, inbox: true });
        for category in [Category::PersonalData, Category::Deadlines, Category::Payments, Category::System] {
            assert_eq!(defaults.channels(category), ChannelSet { sms: false, email: true, push: false, inbox: true }, "{category:?}");
        }
    }

    #[test]
    fn settings_serialise_to_the_spec_shape_with_every_category_and_channel() {
        let text = serde_json::to_string(&Preferences::default()).unwrap();
        let positions: Vec<usize> = Category::ALL.iter().map(|c| text.find(&format!("\"{}\"", c.as_str())).unwrap()).collect();
        assert!(positions.is_sorted(), "categories in SPEC order: {text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        let categories = value["categories"].as_object().unwrap();
        assert_eq!(categories.len(), 6);
        for channels in categories.values() {
            assert_eq!(channels.as_object().unwrap().len(), 4);
        }
        assert_eq!(value["categories"]["applications"], json!({"sms": true, "email": false, "push": false, "inbox": true}));
    }

    #[test]
    fn an_update_changes_only_what_it_names() {
        let updated = Preferences::default().updated(&json!({"categories": {"applications": {"sms": false, "push": true}}})).unwrap();
        assert_eq!(updated.channels(Category::Applications), ChannelSet { sms: false, email: false, push: true, inbox: true });
        assert_eq!(updated.channels(Category::Payments), Preferences::default().channels(Category::Payments));
    }

    #[test]
    fn switching_a_security_channel_off_is_refused_naming_each_channel() {
        let refused = Preferences::default().updated(&json!({"categories": {"security": {"sms": false, "email": false, "push": true}}}));
        let Err(SettingsError::MandatoryChannelOff(errors)) = refused else { panic!("{refused:?}") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["categories.security.sms", "categories.security.email"]);
        assert!(errors.iter().all(|e| e.code == "cannot_disable"));
    }

    #[test]
    fn security_push_may_be_switched_on_and_off() {
        let on = Preferences::default().updated(&json!({"categories": {"security": {"push": true}}})).unwrap();
        assert!(on.channels(Category::Security).push);
        let off = on.updated(&json!({"categories": {"security": {"push": false, "sms": true}}})).unwrap();
        assert!(!off.channels(Category::Security).push);
    }

    #[test]
    fn unknown_categories_channels_and_values_are_malformed() {
        let body = json!({"categories": {"weather": {"sms": true}, "payments": {"fax": true, "email": "yes"}}, "extra": 1});
        let Err(SettingsError::Malformed(errors)) = Preferences::default().updated(&body) else { panic!() };
        let mut found: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("categories.payments.email", "invalid"),
                ("categories.payments.fax", "unknown_channel"),
                ("categories.weather", "unknown_category"),
                ("extra", "unknown_field"),
            ]
        );
    }

    #[test]
    fn a_body_without_categories_is_malformed() {
        for body in [json!({}), json!([]), json!({"categories": []}), json!({"categories": {"system": true}})] {
            assert!(matches!(Preferences::default().updated(&body), Err(SettingsError::Malformed(_))), "{body}");
        }
    }

    #[test]
    fn security_channels_are_enforced_on_whatever_was_stored() {
        let mut tampered = Preferences::default();
        tampered.categories.security = ChannelSet { sms: false, email: false, push: false, inbox: false };
        let read = tampered.enforced();
        assert_eq!(read.channels(Category::Security), ChannelSet { sms: true, email: true, push: false, inbox: true });
        assert!(tampered.allows(Category::Security, Channel::Sms));
        assert!(!tampered.allows(Category::Security, Channel::Push));
    }

    #[test]
    fn events_map_to_their_categories_and_codes_ignore_preferences() {
        use shared::domain::Phone;
        use shared::events::{Destination, OtpPurpose};
        use shared::vocabulary::{DocumentStatus, Level, LevelChangeReason};
        let otp = EventPayload::OtpIssued {
            destination: Destination::Sms(Phone::parse("+79990000000").unwrap()),
            code: "123456".into(),
            purpose: OtpPurpose::Login,
            expires_at: chrono::DateTime::UNIX_EPOCH,
        };
        assert_eq!(Category::of(&otp), None);
        assert_eq!(Category::of(&EventPayload::PasswordChanged { destinations: vec![] }), Some(Category::Security));
        assert_eq!(
            Category::of(&EventPayload::IdentityLevelChanged {
                level: Level::Standard,
                previous_level: Level::Simplified,
                reason: LevelChangeReason::RegistryVerified
            }),
            Some(Category::PersonalData)
        );
        assert_eq!(
            Category::of(&EventPayload::DocumentVerdict {
                document_id: "d".into(),
                file_name: "f".into(),
                status: DocumentStatus::Available,
                rejection_reason: None
            }),
            Some(Category::PersonalData)
        );
        assert_eq!(
            Category::of(&EventPayload::ApplicationMessage {
                application_id: "a".into(),
                number: None,
                service_title: "s".into(),
                from_agency: true,
                preview: "p".into()
            }),
            Some(Category::Applications)
        );
    }
}
