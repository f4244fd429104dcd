//! The one retry policy of pystore's HTTP clients: how many attempts, how long to wait between
//! them (exponential backoff with jitter, or what the server asks for in `Retry-After`, within a
//! cap), and the deadline for the whole exchange. The index and download client
//! ([`super::http`]), the GitHub releases client and the OCI registry client all retry by it;
//! each adds only what is its own (the GitHub client reads rate-limit headers into a wait).

use std::time::{Duration, Instant};

use super::http::HttpConfig;

/// Longest exponential backoff step.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Longest server-requested wait (`Retry-After`) honoured; longer requests are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The share of a backoff step taken off at random, so parallel clients spread out.
pub const JITTER: f64 = 0.5;

/// How many times to try, how long to wait in between, and for how long in all.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff step; doubled on each retry.
    pub backoff: Duration,
    /// Longest backoff step.
    pub max_backoff: Duration,
    /// The share of each step taken off at random (0 waits the whole step; 0.5 waits between
    /// half and the whole step).
    pub jitter: f64,
    /// Longest [`Wait::RetryAfter`] honoured; longer ones are cut to this.
    pub max_retry_after: Duration,
    /// The longest the whole exchange may take, attempts and waits included; `None` for none.
    pub deadline: Option<Duration>,
}

/// How long to wait before the next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The policy's exponential backoff.
    Backoff,
    /// What the server asked for (`Retry-After`), cut to the policy's cap.
    RetryAfter(Duration),
    /// A wait the caller has decided on (a GitHub rate limit until its reset), not cut.
    Exactly(Duration),
}

impl Wait {
    /// [`Wait::RetryAfter`] when the server gave a hint, else [`Wait::Backoff`].
    pub fn after(hint: Option<Duration>) -> Wait {
        hint.map_or(Wait::Backoff, Wait::RetryAfter)
    }
}

/// One attempt's outcome.
pub enum Attempt<T> {
    /// Finished (successfully or not, as the caller sees it).
    Done(T),
    /// Failed in a way worth retrying.
    Retry {
        /// Why, for logs and the final error.
        reason: String,
        /// How long to wait first.
        wait: Wait,
    },
}

/// Why [`RetryPolicy::run`] stopped retrying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every attempt failed; the last one for `last`.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure's reason.
        last: String,
    },
    /// The deadline (this long) passed, or the next wait would pass it.
    Deadline(Duration),
}

impl RetryPolicy {
    /// The policy of `config` (`PYSTORE_HTTP_RETRIES`, `PYSTORE_HTTP_BACKOFF_MS`,
    /// `PYSTORE_HTTP_DEADLINE`).
    pub fn from_http(config: &HttpConfig) -> RetryPolicy {
        RetryPolicy {
            retries: config.retries,
            backoff: config.backoff,
            max_backoff: MAX_BACKOFF,
            jitter: JITTER,
            max_retry_after: MAX_RETRY_AFTER,
            deadline: Some(config.deadline),
        }
    }

    /// The same policy without an overall deadline.
    pub fn without_deadline(self) -> RetryPolicy {
        RetryPolicy {
            deadline: None,
            ..self
        }
    }

    /// How long to wait before retry `attempt` (0-based).
    pub fn delay(&self, attempt: u32, wait: Wait) -> Duration {
        match wait {
            Wait::Exactly(wait) => wait,
            Wait::RetryAfter(wait) => wait.min(self.max_retry_after),
            Wait::Backoff => {
                let step = self
                    .backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(self.max_backoff);
                step.mul_f64((1.0 - self.jitter) + fastrand::f64() * self.jitter)
            }
        }
    }

    /// Runs `once` (given the 0-based attempt number) until it is done, fails for good, or
    /// retries or the deadline run out. Before each wait, `before_wait` is told the reason, the
    /// wait asked for and the delay chosen; an error from it ends the exchange. `stop` makes
    /// the error for running out.
    pub fn run<T, E>(
        &self,
        mut once: impl FnMut(u32) -> Result<Attempt<T>, E>,
        mut before_wait: impl FnMut(&str, Wait, Duration) -> Result<(), E>,
        stop: impl FnOnce(Stop) -> E,
    ) -> Result<T, E> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            if let Some(deadline) = self.deadline.filter(|&d| started.elapsed() > d) {
                return Err(stop(Stop::Deadline(deadline)));
            }
            match once(attempt)? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Retry { reason, wait } => {
                    if attempt >= self.retries {
                        return Err(stop(Stop::GaveUp {
                            attempts: attempt + 1,
                            last: reason,
                        }));
                    }
                    let delay = self.delay(attempt, wait);
                    if let Some(deadline) = self.deadline.filter(|&d| started.elapsed() + delay > d)
                    {
                        return Err(stop(Stop::Deadline(deadline)));
                    }
                    before_wait(&reason, wait, delay)?;
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }
    }
}

/// How long to wait before retry `attempt` (0-based) by the policy of `config`: the server's
/// `Retry-After` when it gave one (capped), else exponential backoff with jitter.
pub fn backoff_delay(config: &HttpConfig, attempt: u32, after: Option<Duration>) -> Duration {
    RetryPolicy::from_http(config).delay(attempt, Wait::after(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, deadline: Option<Duration>) -> RetryPolicy {
        RetryPolicy {
            retries,
            backoff: Duration::from_millis(1),
            deadline,
            ..RetryPolicy::from_http(&HttpConfig::default())
        }
    }

    #[test]
    fn delays_grow_to_the_cap_and_honour_the_server_within_its_cap() {
        let policy = RetryPolicy::from_http(&HttpConfig::default());
        for attempt in 0..20 {
            let step = (Duration::from_millis(500) * (1 << attempt.min(16))).min(MAX_BACKOFF);
            let delay = policy.delay(attempt, Wait::Backoff);
            assert!(delay >= step / 2 && delay <= step, "{attempt}: {delay:?}");
        }
        let long = Duration::from_secs(3600);
        assert_eq!(policy.delay(0, Wait::RetryAfter(long)), MAX_RETRY_AFTER);
        let short = Duration::from_secs(7);
        assert_eq!(policy.delay(3, Wait::RetryAfter(short)), short);
        assert_eq!(policy.delay(0, Wait::Exactly(long)), long);
        assert_eq!(Wait::after(None), Wait::Backoff);
    }

    #[test]
    fn gives_up_after_the_retries() {
        let mut calls = 0;
        let result: Result<(), Stop> = policy(2, None).run(
            |attempt| {
                assert_eq!(attempt, calls);
                calls += 1;
                Ok(Attempt::Retry {
                    reason: format!("failure {attempt}"),
                    wait: Wait::Backoff,
                })
            },
            |_, _, _| Ok(()),
            |stop| stop,
        );
        assert_eq!(
            result,
            Err(Stop::GaveUp {
                attempts: 3,
                last: "failure 2".into()
            })
        );
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_wait_past_the_deadline_stops_at_once() {
        let deadline = Duration::from_secs(5);
        let result: Result<(), Stop> = policy(4, Some(deadline)).run(
            |_| {
                Ok(Attempt::Retry {
                    reason: "busy".into(),
                    wait: Wait::Exactly(Duration::from_secs(10)),
                })
            },
            |_, _, _| panic!("no wait past the deadline"),
            |stop| stop,
        );
        assert_eq!(result, Err(Stop::Deadline(deadline)));
        let done: Result<u8, Stop> =
            policy(0, Some(deadline)).run(|_| Ok(Attempt::Done(7)), |_, _, _| Ok(()), |stop| stop);
        assert_eq!(done, Ok(7));
    }
}
