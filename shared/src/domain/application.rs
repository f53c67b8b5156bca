//! The application lifecycle (SPEC §4.2): statuses, their Russian titles, and who may move an
//! application from one status to another. Everything else is `invalid_transition`.

use serde::{Deserialize, Serialize};

/// An application's status (SPEC §4.2); `status_title` beside it is its Russian title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    Draft,
    Submitted,
    Accepted,
    InProgress,
    InfoRequested,
    Approved,
    Rejected,
    Withdrawn,
}

/// Who acts on an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Citizen,
    Agency,
    System,
}

/// Whether `actor` may move an application from `from` to `to` (the SPEC §4.2 table).
pub fn can_transition(from: ApplicationStatus, to: ApplicationStatus, actor: ActorKind) -> bool {
    use ActorKind::{Agency, Citizen};
    use ApplicationStatus::*;
    matches!(
        (from, to, actor),
        (Draft, Submitted, Citizen)
            | (Submitted, Accepted | Rejected, Agency)
            | (Accepted, InProgress | Rejected, Agency)
            | (InProgress, InfoRequested | Approved | Rejected, Agency)
            | (InfoRequested, InProgress, Citizen)
            | (Submitted | Accepted | InProgress | InfoRequested, Withdrawn, Citizen)
    )
}

impl ApplicationStatus {
    pub const ALL: [Self; 8] =
        [Self::Draft, Self::Submitted, Self::Accepted, Self::InProgress, Self::InfoRequested, Self::Approved, Self::Rejected, Self::Withdrawn];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::InfoRequested => "info_requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The title citizens see (SPEC §4.2).
    pub fn title(self) -> &'static str {
        match self {
            Self::Draft => "Черновик",
            Self::Submitted => "Отправлено",
            Self::Accepted => "Принято",
            Self::InProgress => "В работе",
            Self::InfoRequested => "Ожидание дополнений",
            Self::Approved => "Одобрено",
            Self::Rejected => "Отклонено",
            Self::Withdrawn => "Отозвано",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected | Self::Withdrawn)
    }

    /// Agencies never see drafts: an application reaches them on submission.
    pub fn visible_to_agency(self) -> bool {
        self != Self::Draft
    }
}

#[cfg(test)]
mod tests {
    use super::ActorKind::*;
    use super::ApplicationStatus::*;
    use super::*;
    use proptest::prelude::*;

    /// The SPEC table written out row by row, independently of `can_transition`'s pattern:
    /// the citizen submits, resumes after a request for information and withdraws before a
    /// decision; the agency accepts, works, asks and decides.
    #[rustfmt::skip]
    const TABLE: &[(ApplicationStatus, ApplicationStatus, ActorKind)] = &[
        (Draft, Submitted, Citizen), (InfoRequested, InProgress, Citizen),
        (Submitted, Withdrawn, Citizen), (Accepted, Withdrawn, Citizen), (InProgress, Withdrawn, Citizen), (InfoRequested, Withdrawn, Citizen),
        (Submitted, Accepted, Agency), (Submitted, Rejected, Agency),
        (Accepted, InProgress, Agency), (Accepted, Rejected, Agency),
        (InProgress, InfoRequested, Agency), (InProgress, Approved, Agency), (InProgress, Rejected, Agency),
    ];

    const ACTORS: [ActorKind; 3] = [Citizen, Agency, System];

    #[test]
    fn exactly_the_spec_table_is_allowed() {
        for from in ApplicationStatus::ALL {
            for to in ApplicationStatus::ALL {
                for actor in ACTORS {
                    assert_eq!(can_transition(from, to, actor), TABLE.contains(&(from, to, actor)), "{from:?} -> {to:?} by {actor:?}");
                }
            }
        }
    }

    #[test]
    fn final_statuses_have_no_way_out() {
        for from in [Approved, Rejected, Withdrawn] {
            assert!(from.is_final());
            assert!(ApplicationStatus::ALL.iter().all(|to| ACTORS.iter().all(|a| !can_transition(from, *to, *a))), "{from:?}");
        }
    }

    #[test]
    fn the_system_actor_moves_nothing_and_nothing_returns_to_draft() {
        for from in ApplicationStatus::ALL {
            for to in ApplicationStatus::ALL {
                assert!(!can_transition(from, to, System));
                assert!(to != Draft || ACTORS.iter().all(|a| !can_transition(from, to, *a)));
            }
        }
    }

    #[test]
    fn titles_are_russian_and_api_values_round_trip() {
        assert_eq!(InfoRequested.title(), "Ожидание дополнений");
        assert_eq!(InProgress.title(), "В работе");
        for status in ApplicationStatus::ALL {
            assert_eq!(ApplicationStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::Value::String(status.as_str().into()));
            assert!(status.title().chars().any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))));
        }
        assert_eq!(ApplicationStatus::parse("APPROVED"), None);
    }

    fn status() -> impl Strategy<Value = ApplicationStatus> {
        proptest::sample::select(ApplicationStatus::ALL.to_vec())
    }

    fn actor() -> impl Strategy<Value = ActorKind> {
        proptest::sample::select(ACTORS.to_vec())
    }

    proptest! {
        /// Any sequence of attempted moves, applied only when allowed, keeps the application on
        /// a path of the table: it leaves draft only by submission and stops at a final status.
        #[test]
        fn random_walks_follow_the_table(attempts in proptest::collection::vec((status(), actor()), 0..64)) {
            let mut current = Draft;
            let mut path = vec![Draft];
            for (to, by) in attempts {
                if can_transition(current, to, by) {
                    prop_assert!(!current.is_final());
                    current = to;
                    path.push(to);
                }
            }
            for pair in path.windows(2) {
                prop_assert!(TABLE.iter().any(|(f, t, _)| *f == pair[0] && *t == pair[1]));
            }
            if path.len() > 1 {
                prop_assert_eq!(path[1], Submitted);
            }
            let finals = path.iter().filter(|s| s.is_final()).count();
            prop_assert!(finals <= 1);
            if finals == 1 {
                prop_assert!(path.last().is_some_and(|s| s.is_final()));
            }
        }

        /// Citizens and agencies never share a move: each edge has exactly one owner.
        #[test]
        fn each_move_has_one_owner(from in status(), to in status()) {
            let owners = ACTORS.iter().filter(|a| can_transition(from, to, **a)).count();
            prop_assert!(owners <= 1);
        }
    }
}
