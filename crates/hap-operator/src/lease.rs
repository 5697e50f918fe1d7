//! Leader election over a `coordination.k8s.io` Lease, the way client-go's leader election does it:
//! try to take or renew the Lease every retry period, and lead only while the last successful renewal
//! began less than the renew deadline ago (two thirds of the Lease's duration). A leader cut off from
//! the API server therefore stops acting before any other instance may take the Lease; once the API
//! server answers again, the next try (at most a retry period later) renews it and the leader carries
//! on. The periods are client-go's proportions of the Lease's duration: for 15 s, a renew deadline of
//! 10 s, a try every 2 s, and 2 s for the controller's reconciles in flight to stop, so that a leader
//! cut off has stopped acting (deadline and grace) before the duration has passed.
//!
//! Written here rather than taken from kube-lease-manager, which the operator used before: that
//! crate keeps reporting leadership while its renewals fail (a leader cut off went on acting past its
//! lease), and backs off for up to 30 s after an error (a leader whose API server came back sat idle
//! that long). Taking over a Lease held by another goes by when this instance last saw the Lease
//! change, on its own clock, never by the holder's timestamps, so clock skew between nodes does not
//! matter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::freshness::Freshness;

/// The name under which the tries of the Lease are followed in [`Freshness`].
const FOLLOWED_AS: &str = "leases";

/// How long a leader may act after a renewal that began at some instant: two thirds of the
/// duration, leaving the rest for the renewal's own time and a late stop.
pub fn renew_deadline(duration: Duration) -> Duration {
    duration * 2 / 3
}

/// How often the Lease is tried (renewed while leading, read while standing by): 2 s of 15 s.
pub fn retry_period(duration: Duration) -> Duration {
    duration * 2 / 15
}

/// How long reconciles in flight may run on once leading ended, before they are dropped: 2 s of
/// 15 s, which with the renew deadline (10 s) leaves 3 s of the duration for the last try.
pub fn stop_grace(duration: Duration) -> Duration {
    duration * 2 / 15
}

/// A try of the Lease that takes longer than this is given up and made afresh: on an API server
/// that has just come back, a request sent while it could not answer may hang where a new one
/// would not.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// What one look at the Lease decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// It is this instance's, or free (released, or not renewed for its duration): write it.
    Take,
    /// Another instance holds it.
    Leave,
}

/// Whether this instance may write the Lease: it holds it, or nobody does, or its holder has not
/// renewed it for its whole duration since this instance last saw it change.
pub fn decide(spec: &LeaseSpec, me: &str, unchanged_for: Duration) -> Decision {
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    match holder {
        None => Decision::Take,
        Some(h) if h == me => Decision::Take,
        Some(_) if unchanged_for > duration => Decision::Take,
        Some(_) => Decision::Leave,
    }
}

/// The Lease's spec once this instance has taken or renewed it at `now`.
pub fn taken(spec: &LeaseSpec, me: &str, duration: Duration, now: jiff::Timestamp) -> LeaseSpec {
    let renewing = spec.holder_identity.as_deref() == Some(me);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration.as_secs().try_into().unwrap_or(i32::MAX)),
        acquire_time: if renewing {
            spec.acquire_time.clone()
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: if renewing {
            spec.lease_transitions
        } else {
            Some(spec.lease_transitions.unwrap_or(0) + 1)
        },
        ..spec.clone()
    }
}

/// One instance's side of the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The Lease as this instance last wrote it, so that a renewal needs one request, not two.
    current: Option<Lease>,
    /// The Lease's resourceVersion when last seen, and when it was first seen so.
    observed: Option<(String, Instant)>,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Elector {
            api,
            name: name.into(),
            identity: identity.into(),
            duration,
            current: None,
            observed: None,
        }
    }

    fn observe(&mut self, lease: &Lease) -> Duration {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        match &self.observed {
            Some((v, since)) if *v == version => since.elapsed(),
            _ => {
                self.observed = Some((version, Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// Takes or renews the Lease if this instance may; whether it now holds it. A write that
    /// conflicts (the Lease changed since it was read: another instance took it, or this one's own
    /// owner reference was added) is tried once more on the Lease as it is now.
    pub async fn try_take(&mut self) -> kube::Result<bool> {
        match self.try_once().await? {
            Some(held) => Ok(held),
            // Twice changed under this instance: no answer either way; the deadline decides.
            None => self.try_once().await?.ok_or_else(|| {
                kube::Error::Service("the lease changed twice while being written".into())
            }),
        }
    }

    /// One look and write: whether this instance holds the Lease, or None on a conflict.
    async fn try_once(&mut self) -> kube::Result<Option<bool>> {
        let lease = match self.current.take() {
            Some(l) => l,
            None => match self.api.get_opt(&self.name).await? {
                Some(l) => l,
                None => return self.create().await,
            },
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let unchanged_for = self.observe(&lease);
        // Another's Lease is read afresh at every try (as client-go does): kept, it would hide the
        // holder's renewals, and so its release and its end, until a write failed.
        if decide(&spec, &self.identity, unchanged_for) == Decision::Leave {
            return Ok(Some(false));
        }
        let mut next = lease;
        next.spec = Some(taken(
            &spec,
            &self.identity,
            self.duration,
            jiff::Timestamp::now(),
        ));
        next.metadata.managed_fields = None;
        self.write(
            self.api
                .replace(&self.name, &PostParams::default(), &next)
                .await,
        )
    }

    async fn create(&mut self) -> kube::Result<Option<bool>> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(taken(
                &LeaseSpec::default(),
                &self.identity,
                self.duration,
                jiff::Timestamp::now(),
            )),
        };
        self.write(self.api.create(&PostParams::default(), &lease).await)
    }

    /// The answer to a write: held, a conflict (None: read the Lease again), or failed.
    fn write(&mut self, answer: kube::Result<Lease>) -> kube::Result<Option<bool>> {
        match answer {
            Ok(lease) => {
                self.observe(&lease);
                self.current = Some(lease);
                Ok(Some(true))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up, so that a standby takes it at its next try rather than after the
    /// duration.
    pub async fn release(&mut self) -> kube::Result<()> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            ..spec
        });
        lease.metadata.managed_fields = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// Tries the Lease every retry period until `stop` turns true, telling `leading` whether this
    /// instance may act now, and `freshness` whether the tries are answered; then releases the
    /// Lease if held.
    pub async fn run(
        mut self,
        leading: watch::Sender<bool>,
        mut stop: watch::Receiver<bool>,
        freshness: Arc<Freshness>,
    ) {
        freshness.started(FOLLOWED_AS, Instant::now());
        freshness.listed(FOLLOWED_AS, Instant::now());
        let mut renewed: Option<Instant> = None;
        let mut failing = false;
        let deadline = renew_deadline(self.duration);
        let retry = retry_period(self.duration);
        loop {
            let began = Instant::now();
            if renewed.is_some_and(|r| began - r >= deadline) {
                leading.send_if_modified(|l| std::mem::replace(l, false));
            }
            // A try that hangs (a dead connection) ends when leading would, at the renew deadline,
            // and after TRY_TIMEOUT in any case. One that does not lead may take that long (a
            // connection to an API server that has just started, on a busy machine, can take
            // seconds to open).
            let budget = match renewed.filter(|r| began - *r < deadline) {
                Some(r) => (r + deadline).saturating_duration_since(began),
                None => deadline,
            };
            let budget = budget.min(TRY_TIMEOUT).max(retry / 4);
            let tried = tokio::time::timeout(budget, self.try_take()).await;
            let tried = tried.unwrap_or_else(|_| {
                Err(kube::Error::Service(
                    format!("no answer in {} ms", budget.as_millis()).into(),
                ))
            });
            match &tried {
                Ok(_) => freshness.heard(FOLLOWED_AS, Instant::now()),
                Err(_) => freshness.failed(FOLLOWED_AS, Instant::now()),
            }
            if tried.is_ok() && std::mem::replace(&mut failing, false) {
                tracing::info!(lease = %self.name, "the lease answers again");
            }
            match tried {
                Ok(true) => renewed = Some(began),
                Ok(false) => renewed = None,
                Err(e) => {
                    // Logged once per spell, not every try.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, lease = %self.name, "cannot renew or read the lease; retrying");
                    }
                    self.current = None;
                }
            }
            let leads = renewed.is_some_and(|r| r.elapsed() < deadline);
            leading.send_if_modified(|l| std::mem::replace(l, leads) != leads);
            // Stop acting at the renew deadline even while a try hangs on a dead connection.
            let next = match renewed.filter(|_| leads) {
                Some(r) => retry.min((r + deadline).saturating_duration_since(Instant::now())),
                None => retry,
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        leading.send_replace(false);
        freshness.stopped(FOLLOWED_AS);
        if renewed.is_some()
            && let Err(e) = self.release().await
        {
            tracing::warn!(error = %e, "could not release the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: Option<&str>, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: by.map(str::to_string),
            lease_duration_seconds: Some(secs),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_held_by_another_is_left_until_it_has_not_changed_for_its_duration() {
        let other = held(Some("b"), 15);
        assert_eq!(
            decide(&other, "a", Duration::from_secs(14)),
            Decision::Leave
        );
        assert_eq!(decide(&other, "a", Duration::from_secs(16)), Decision::Take);
    }

    #[test]
    fn a_leader_cut_off_has_stopped_before_its_lease_could_pass_on() {
        for secs in [2, 3, 15, 60] {
            let duration = Duration::from_secs(secs);
            let stopped_by = renew_deadline(duration) + stop_grace(duration);
            assert!(stopped_by < duration, "{secs} s: stopped by {stopped_by:?}");
            let tries = renew_deadline(duration).as_millis() / retry_period(duration).as_millis();
            assert!(tries >= 4, "{secs} s: {tries} tries before the deadline");
        }
        assert_eq!(
            retry_period(Duration::from_secs(15)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn a_free_or_own_lease_is_taken_at_once() {
        let zero = Duration::ZERO;
        assert_eq!(decide(&held(None, 15), "a", zero), Decision::Take);
        assert_eq!(decide(&held(Some(""), 1), "a", zero), Decision::Take);
        assert_eq!(decide(&held(Some("a"), 15), "a", zero), Decision::Take);
    }

    #[test]
    fn taking_counts_a_transition_and_renewing_does_not() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let d = Duration::from_secs(15);
        let took = taken(&held(Some("b"), 15), "a", d, now);
        assert_eq!(took.holder_identity.as_deref(), Some("a"));
        assert_eq!(took.lease_transitions, Some(4));
        assert_eq!(took.acquire_time, Some(MicroTime(now)));
        let later = jiff::Timestamp::from_second(1_800_000_010).unwrap();
        let renewed = taken(&took, "a", d, later);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(now)));
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
        assert_eq!(renewed.lease_duration_seconds, Some(15));
    }
}
