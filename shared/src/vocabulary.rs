//! The portal's one vocabulary: every status, level, type and reason that crosses a function
//! boundary (HTTP bodies, stored records, events) is typed here once and used everywhere.
//! Each has its SPEC wire form (`snake_case`), `as_str`, and where citizens see it, a Russian title.

use serde::{Deserialize, Serialize};

pub use crate::domain::application::{ActorKind, ApplicationStatus};
pub use crate::identity::Level;

/// Declares a wire-form enum: each variant's wire form (`snake_case` words or dotted event
/// names) for serde, OpenAPI, `as_str` and `parse`, and `ALL`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] #[schema(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// Coarse device class of a login (SPEC §3.7), from the `User-Agent`.
    DeviceType {
        Desktop => "desktop",
        Mobile => "mobile",
        Tablet => "tablet",
        Other => "other",
    }
);

impl DeviceType {
    /// Classifies a `User-Agent` string.
    pub fn of_user_agent(user_agent: &str) -> Self {
        let ua = user_agent.to_ascii_lowercase();
        if ua.is_empty() {
            Self::Other
        } else if ua.contains("ipad") || ua.contains("tablet") || (ua.contains("android") && !ua.contains("mobile")) {
            Self::Tablet
        } else if ua.contains("mobile") || ua.contains("iphone") || ua.contains("android") {
            Self::Mobile
        } else if ua.contains("windows") || ua.contains("macintosh") || ua.contains("x11") || ua.contains("linux") || ua.contains("cros") {
            Self::Desktop
        } else {
            Self::Other
        }
    }

    /// How citizens call it («Вход с нового устройства: телефон»).
    pub fn title(self) -> &'static str {
        match self {
            Self::Desktop => "компьютер",
            Self::Mobile => "телефон",
            Self::Tablet => "планшет",
            Self::Other => "другое устройство",
        }
    }
}

vocabulary!(
    /// A second factor (SPEC §3.5).
    MfaMethod {
        Sms => "sms",
        Totp => "totp",
        BackupCode => "backup_code",
    }
);

vocabulary!(
    /// Where a document of the vault stands (SPEC §5).
    DocumentStatus {
        PendingUpload => "pending_upload",
        Available => "available",
        Rejected => "rejected",
        Deleted => "deleted",
    }
);

vocabulary!(
    /// Why document verification refused an uploaded file (SPEC §5).
    RejectionReason {
        /// The bytes are not what the declared content type says.
        ContentMismatch => "content_mismatch",
        TooLarge => "too_large",
        Empty => "empty",
    }
);

impl RejectionReason {
    /// The reason as citizens read it («документ отклонён — …»).
    pub fn title(self) -> &'static str {
        match self {
            Self::ContentMismatch => "формат файла не соответствует заявленному",
            Self::TooLarge => "файл слишком большой",
            Self::Empty => "файл пустой",
        }
    }
}

vocabulary!(
    /// What the portal delivers to agencies (SPEC §4.5).
    DeliveryType {
        ApplicationSubmitted => "application.submitted",
        ApplicationWithdrawn => "application.withdrawn",
        ApplicationSupplemented => "application.supplemented",
        ApplicationMessage => "application.message",
        IdentityVerificationRequested => "identity.verification_requested",
        PaymentSucceeded => "payment.succeeded",
        PaymentRefunded => "payment.refunded",
        AppointmentBooked => "appointment.booked",
        AppointmentCancelled => "appointment.cancelled",
        AppointmentRescheduled => "appointment.rescheduled",
    }
);

vocabulary!(
    /// Why an account's level changed (SPEC §3.8).
    LevelChangeReason {
        /// Core profile data changed and must be verified again.
        ProfileChanged => "profile_changed",
        /// The registry agency verified the profile.
        RegistryVerified => "registry_verified",
        /// The registry agency refused the profile.
        RegistryRejected => "registry_rejected",
        /// Identity confirmed in person, by bank, post or signature.
        IdentityConfirmed => "identity_confirmed",
    }
);

impl LevelChangeReason {
    /// The explanation citizens read.
    pub fn title(self) -> &'static str {
        match self {
            Self::ProfileChanged => "Данные профиля изменились, поэтому их нужно проверить заново.",
            Self::RegistryVerified => "Ведомство подтвердило данные профиля.",
            Self::RegistryRejected => "Ведомство не подтвердило данные профиля. Проверьте их и отправьте заново.",
            Self::IdentityConfirmed => "Личность подтверждена.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_round_trip_through_serde_and_parse() {
        for device in DeviceType::ALL {
            assert_eq!(serde_json::to_value(device).unwrap(), device.as_str());
            assert_eq!(DeviceType::parse(device.as_str()), Some(*device));
        }
        for method in MfaMethod::ALL {
            assert_eq!(serde_json::from_value::<MfaMethod>(serde_json::json!(method.as_str())).unwrap(), *method);
        }
        for reason in RejectionReason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        for reason in LevelChangeReason::ALL {
            assert_eq!(LevelChangeReason::parse(&reason.to_string()), Some(*reason));
        }
        assert_eq!(MfaMethod::parse("password"), None);
        for kind in DeliveryType::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(DeliveryType::parse(kind.as_str()), Some(*kind));
        }
    }

    #[test]
    fn device_type_classifies_common_agents() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", DeviceType::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", DeviceType::Mobile),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari", DeviceType::Mobile),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", DeviceType::Tablet),
            ("Mozilla/5.0 (Linux; Android 13; SM-X200)", DeviceType::Tablet),
            ("curl/8.5.0", DeviceType::Other),
            ("", DeviceType::Other),
        ];
        for (ua, expected) in cases {
            assert_eq!(DeviceType::of_user_agent(ua), expected, "{ua}");
        }
    }
}
