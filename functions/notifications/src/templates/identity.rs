//! Identity events: the profile sent to the registry for verification, and a level change.

use shared::vocabulary::{Level, LevelChangeReason};

use super::{Context, MIN_SMS_TAIL, Messages, entry, fit_sms, letter, with_tail};

/// Cabinet path of the profile.
const PROFILE_LINK: &str = "/profile";

/// An inbox note only: the verdict comes later, as a level change.
pub(super) fn verification_requested() -> Messages {
    Messages {
        inbox: entry(
            "Данные отправлены на проверку",
            "Мы отправили данные вашего профиля на проверку в ведомство. Когда проверка завершится, мы сообщим о результате.",
            Some(PROFILE_LINK.to_owned()),
        ),
        ..Messages::default()
    }
}

pub(super) fn level_changed(context: &Context, level: Level, previous_level: Level, reason: LevelChangeReason) -> Messages {
    let heading = format!("Уровень учётной записи: {}", level.title());
    let email_text = format!(
        "{} изменился уровень вашей учётной записи на Госуслугах: был «{}», теперь «{}».\n\n{}\n\n{}",
        context.when(),
        previous_level.title(),
        level.title(),
        reason.title(),
        context.open_in_cabinet(Some(PROFILE_LINK.to_owned()), "«Профиль»"),
    );
    Messages {
        sms: Some(fit_sms(reason.title(), MIN_SMS_TAIL, |reason| with_tail(&format!("Госуслуги. {heading}"), reason))),
        email: letter(heading.clone(), &email_text),
        inbox: entry(heading, reason.title(), Some(PROFILE_LINK.to_owned())),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use shared::events::EventPayload;

    use super::super::render;
    use super::super::testing::{event, inbox, mail, sms};
    use super::*;

    pub fn verification_requested() -> EventPayload {
        EventPayload::IdentityVerificationRequested {
            registry_agency_id: "mvd".to_owned(),
            request_id: "01JREQUEST".to_owned(),
            profile: Box::new(shared::identity::Profile::example()),
        }
    }

    #[test]
    fn verification_request_is_an_inbox_note_only() {
        let requested = render(&event(verification_requested()), None);
        assert_eq!((&requested.sms, &requested.email), (&None, &None));
        assert_eq!(requested.inbox.unwrap().title, "Данные отправлены на проверку");
    }

    #[test]
    fn level_change_names_the_new_level_in_russian() {
        let changed = event(EventPayload::IdentityLevelChanged {
            level: Level::Standard,
            previous_level: Level::Simplified,
            reason: LevelChangeReason::RegistryVerified,
        });
        assert_eq!(sms(&changed), "Госуслуги. Уровень учётной записи: Стандартная. Ведомство подтвердило данные профиля.");
        assert_eq!(mail(&changed).subject, "Уровень учётной записи: Стандартная");
        assert!(mail(&changed).body.contains("был «Упрощённая», теперь «Стандартная»"));
        let dropped =
            event(EventPayload::IdentityLevelChanged { level: Level::Simplified, previous_level: Level::Confirmed, reason: LevelChangeReason::ProfileChanged });
        let entry = inbox(&dropped);
        assert_eq!(entry.title, "Уровень учётной записи: Упрощённая");
        assert_eq!(entry.body, "Данные профиля изменились, поэтому их нужно проверить заново.");
    }
}
