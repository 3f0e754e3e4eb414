//! How much of a service one caller may use, and how much all of them may:
//! a rate quota and a cap on concurrent calls per caller (answered with
//! RESOURCE_EXHAUSTED and a retry hint), and a cap on concurrent calls over
//! all callers beyond which calls are shed at once with UNAVAILABLE rather
//! than queued. Methods open to anyone (health) are never limited, so an
//! orchestrator's probe still gets through a saturated server.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::gate::Caller;

/// The default steady rate of calls per caller and second.
pub const DEFAULT_QUOTA_PER_SEC: u32 = 1_000;
/// The default burst above the steady rate.
pub const DEFAULT_QUOTA_BURST: u32 = 2_000;
/// The default cap on one caller's concurrent calls (open streams included).
pub const DEFAULT_MAX_CALLS_PER_CALLER: u32 = 128;
/// The default cap on concurrent calls over all callers.
pub const DEFAULT_MAX_CALLS: u32 = 1_024;

/// The limits of a server's calls. A limit of 0 is no limit.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CallLimits {
    /// Calls per second one caller (an API key, a token subject) may make,
    /// on average; beyond it calls get RESOURCE_EXHAUSTED with a retry
    /// delay. 0 = no quota.
    #[arg(long, env = "PLAINT_QUOTA_PER_SEC", default_value_t = DEFAULT_QUOTA_PER_SEC)]
    pub quota_per_sec: u32,
    /// Calls one caller may make at once above its steady rate.
    #[arg(long, env = "PLAINT_QUOTA_BURST", default_value_t = DEFAULT_QUOTA_BURST)]
    pub quota_burst: u32,
    /// Calls one caller may have in progress at once, open watch streams
    /// included; beyond it RESOURCE_EXHAUSTED. 0 = no cap.
    #[arg(long, env = "PLAINT_MAX_CALLS_PER_CALLER", default_value_t = DEFAULT_MAX_CALLS_PER_CALLER)]
    pub max_calls_per_caller: u32,
    /// Calls in progress at once over all callers; beyond it calls are
    /// shed with UNAVAILABLE (retry later). 0 = no cap.
    #[arg(long, env = "PLAINT_MAX_CALLS", default_value_t = DEFAULT_MAX_CALLS)]
    pub max_calls: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            quota_per_sec: DEFAULT_QUOTA_PER_SEC,
            quota_burst: DEFAULT_QUOTA_BURST,
            max_calls_per_caller: DEFAULT_MAX_CALLS_PER_CALLER,
            max_calls: DEFAULT_MAX_CALLS,
        }
    }
}

impl CallLimits {
    /// No limits at all.
    pub fn none() -> Self {
        Self {
            quota_per_sec: 0,
            quota_burst: 0,
            max_calls_per_caller: 0,
            max_calls: 0,
        }
    }
}

/// The permits a call holds until its response, streamed or not, is done.
#[derive(Debug, Default)]
pub(crate) struct Held {
    _caller: Option<OwnedSemaphorePermit>,
    _all: Option<OwnedSemaphorePermit>,
}

/// The state behind [`CallLimits`].
#[derive(Debug)]
pub(crate) struct Limiter {
    quota: Option<DefaultKeyedRateLimiter<Caller>>,
    per_caller: u32,
    in_flight: Mutex<HashMap<Caller, Arc<Semaphore>>>,
    all: Option<Arc<Semaphore>>,
    max_calls: u32,
    calls: AtomicU64,
}

/// Every this many calls, the quota state of quiet callers is dropped.
const FORGET_EVERY: u64 = 4_096;

impl Limiter {
    pub(crate) fn new(limits: &CallLimits) -> Self {
        let quota = NonZeroU32::new(limits.quota_per_sec).map(|rate| {
            let burst =
                NonZeroU32::new(limits.quota_burst.max(limits.quota_per_sec)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            quota,
            per_caller: limits.max_calls_per_caller,
            in_flight: Mutex::default(),
            all: (limits.max_calls > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_calls as usize))),
            max_calls: limits.max_calls,
            calls: AtomicU64::new(0),
        }
    }

    /// Takes what a call of `caller` needs, or says why it cannot run now.
    pub(crate) fn admit(&self, caller: &Caller) -> Result<Held, Limited> {
        if self.calls.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.forget_quiet_callers();
        }
        let all = match &self.all {
            Some(all) => Some(
                all.clone()
                    .try_acquire_owned()
                    .map_err(|_| Limited::Overloaded(self.max_calls))?,
            ),
            None => None,
        };
        if let Some(quota) = &self.quota
            && let Err(not_until) = quota.check_key(caller)
        {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Limited::Quota(wait));
        }
        let own = if self.per_caller > 0 {
            Some(self.caller_permit(caller)?)
        } else {
            None
        };
        Ok(Held {
            _caller: own,
            _all: all,
        })
    }

    fn caller_permit(&self, caller: &Caller) -> Result<OwnedSemaphorePermit, Limited> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Callers whose calls all ended are forgotten, so the map holds only
        // callers with calls in progress; the permit is taken under the lock
        // so that no caller's semaphore is forgotten between look-up and use.
        map.retain(|_, s| s.available_permits() < self.per_caller as usize);
        map.entry(caller.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_caller as usize)))
            .clone()
            .try_acquire_owned()
            .map_err(|_| Limited::Concurrency(self.per_caller))
    }

    /// Forgets the quota state of callers that have been quiet, so that it
    /// does not grow with every caller ever seen.
    fn forget_quiet_callers(&self) {
        if let Some(quota) = &self.quota {
            quota.retain_recent();
        }
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Limited {
    /// Over the caller's rate; may retry after this long.
    Quota(Duration),
    /// The caller has this many calls in progress already.
    Concurrency(u32),
    /// The server has this many calls in progress already.
    Overloaded(u32),
}

impl Limited {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Limited::Quota(_) => "quota",
            Limited::Concurrency(_) => "caller_concurrency",
            Limited::Overloaded(_) => "overloaded",
        }
    }

    pub(crate) fn status(&self) -> tonic::Status {
        match self {
            Limited::Quota(wait) => {
                let wait = (*wait).max(Duration::from_millis(1));
                tonic::Status::with_error_details(
                    tonic::Code::ResourceExhausted,
                    format!(
                        "over this caller's quota (PLAINT_QUOTA_PER_SEC); retry in {} ms",
                        wait.as_millis()
                    ),
                    ErrorDetails::with_retry_info(Some(wait)),
                )
            }
            Limited::Concurrency(cap) => tonic::Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "this caller has {cap} calls in progress, the limit (PLAINT_MAX_CALLS_PER_CALLER); retry when one ends"
                ),
                ErrorDetails::with_retry_info(Some(Duration::from_millis(100))),
            ),
            Limited::Overloaded(cap) => tonic::Status::with_error_details(
                tonic::Code::Unavailable,
                format!(
                    "the service has {cap} calls in progress, its limit (PLAINT_MAX_CALLS); retry shortly"
                ),
                ErrorDetails::with_retry_info(Some(Duration::from_millis(100))),
            ),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's permits until it is finished
    /// or dropped: a watch stream counts for as long as it is open.
    pub(crate) struct HoldingBody<B> {
        #[pin]
        inner: B,
        held: Held,
    }
}

impl<B> HoldingBody<B> {
    pub(crate) fn new(inner: B, held: Held) -> Self {
        Self { inner, held }
    }
}

impl<B: http_body::Body> http_body::Body for HoldingBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(quota_per_sec: u32, quota_burst: u32, per_caller: u32, all: u32) -> CallLimits {
        CallLimits {
            quota_per_sec,
            quota_burst,
            max_calls_per_caller: per_caller,
            max_calls: all,
        }
    }

    #[test]
    fn a_caller_over_its_quota_is_told_when_to_retry_and_others_are_not_held() {
        let limiter = Limiter::new(&limits(1, 3, 0, 0));
        let (a, b) = (Caller::new("key:a"), Caller::new("key:b"));
        for _ in 0..3 {
            drop(limiter.admit(&a).unwrap());
        }
        let Err(Limited::Quota(wait)) = limiter.admit(&a) else {
            panic!("the fourth call within the burst passed");
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let status = Limited::Quota(wait).status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.get_details_retry_info().is_some());
        assert!(limiter.admit(&b).is_ok());
    }

    #[test]
    fn a_caller_may_have_only_so_many_calls_in_progress() {
        let limiter = Limiter::new(&limits(0, 0, 2, 0));
        let a = Caller::new("key:a");
        let first = limiter.admit(&a).unwrap();
        let _second = limiter.admit(&a).unwrap();
        assert_eq!(limiter.admit(&a).unwrap_err(), Limited::Concurrency(2));
        assert!(limiter.admit(&Caller::new("key:b")).is_ok());
        drop(first);
        assert!(limiter.admit(&a).is_ok());
    }

    #[test]
    fn over_the_server_cap_calls_are_shed_as_unavailable() {
        let limiter = Limiter::new(&limits(0, 0, 0, 1));
        let held = limiter.admit(&Caller::new("key:a")).unwrap();
        let refused = limiter.admit(&Caller::new("key:b")).unwrap_err();
        assert_eq!(refused, Limited::Overloaded(1));
        assert_eq!(refused.status().code(), tonic::Code::Unavailable);
        drop(held);
        assert!(limiter.admit(&Caller::new("key:b")).is_ok());
    }

    #[test]
    fn callers_without_calls_in_progress_are_forgotten() {
        let limiter = Limiter::new(&limits(0, 0, 4, 0));
        for i in 0..100 {
            drop(limiter.admit(&Caller::new(format!("key:{i}"))).unwrap());
        }
        let _held = limiter.admit(&Caller::new("key:last")).unwrap();
        assert!(limiter.in_flight.lock().unwrap().len() <= 1);
    }
}
