//! Conditions, typed until they are written: a resource's status step gives a `Verdict` per
//! condition type; this turns them into the API's `Condition`s (keeping each one's
//! `lastTransitionTime` while its status holds, as the API conventions ask) and says which are news
//! worth a Warning event.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::reason::Reason;

/// One condition's verdict: true or not, why, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn ok(reason: Reason, message: impl Into<String>) -> Self {
        Verdict {
            ok: true,
            reason,
            message: message.into(),
        }
    }

    pub fn not(reason: Reason, message: impl Into<String>) -> Self {
        Verdict {
            ok: false,
            reason,
            message: message.into(),
        }
    }
}

/// The verdicts of one status, by condition type, in the order the conditions are written.
pub type Verdicts = Vec<(&'static str, Verdict)>;

/// The conditions the verdicts make, with the transition times of `previous` kept where a
/// condition's status held.
pub fn conditions(
    verdicts: &Verdicts,
    generation: Option<i64>,
    now: &Time,
    previous: &[Condition],
) -> Vec<Condition> {
    verdicts
        .iter()
        .map(|(type_, v)| {
            let status = if v.ok { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|p| p.type_ == *type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: type_.to_string(),
                status: status.into(),
                reason: v.reason.as_str().into(),
                message: v.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// The verdicts worth a Warning event: of a type in `announced`, false for a reason that is not
/// mere progress, and new since `previous` (so each is told once, not on every resync).
pub fn news<'a>(
    verdicts: &'a Verdicts,
    previous: &[Condition],
    announced: &[&str],
) -> Vec<(&'static str, &'a Verdict)> {
    verdicts
        .iter()
        .filter(|(type_, v)| !v.ok && !v.reason.is_progress() && announced.contains(type_))
        .filter(|(type_, v)| {
            !previous.iter().any(|p| {
                p.type_ == *type_
                    && p.status == "False"
                    && p.reason == v.reason.as_str()
                    && p.message == v.message
            })
        })
        .map(|(type_, v)| (*type_, v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000 + s).unwrap())
    }

    #[test]
    fn transition_times_move_only_when_a_condition_flips() {
        let first = conditions(
            &vec![
                ("Ready", Verdict::ok(Reason::PodReady, "up")),
                ("Configured", Verdict::ok(Reason::Valid, "fine")),
            ],
            Some(2),
            &at(0),
            &[],
        );
        let second = conditions(
            &vec![
                ("Ready", Verdict::not(Reason::PodMissing, "gone")),
                ("Configured", Verdict::ok(Reason::Valid, "fine")),
            ],
            Some(3),
            &at(10),
            &first,
        );
        assert_eq!(second[0].last_transition_time, at(10), "Ready flipped");
        assert_eq!(second[1].last_transition_time, at(0), "Configured held");
        assert_eq!(
            (second[0].reason.as_str(), second[0].observed_generation),
            ("PodMissing", Some(3))
        );
    }

    #[test]
    fn news_is_a_new_failure_of_an_announced_type() {
        let verdicts = vec![
            ("Database", Verdict::not(Reason::Creating, "on its way")),
            (
                "Metastore",
                Verdict::not(Reason::SchemaInitFailed, "exit 1"),
            ),
            ("Trino", Verdict::ok(Reason::Ready, "up")),
            ("Other", Verdict::not(Reason::Unreachable, "not announced")),
        ];
        let all = ["Database", "Metastore", "Trino"];
        let told = news(&verdicts, &[], &all);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].0, "Metastore");
        let before = conditions(&verdicts, None, &at(0), &[]);
        assert!(news(&verdicts, &before, &all).is_empty(), "told once");
    }
}
