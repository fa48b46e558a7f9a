//! The one retrying layer between the engine and the API server. Every request a run makes (create,
//! get, list, patch, delete, watch start and restart, the inventory proxy, the source adapters) passes
//! through it: transient answers (429 honouring `Retry-After`, 500, 502, 503, 504) are retried a
//! bounded number of times with exponential backoff and jitter; transport failures (refused, reset,
//! timed out) are retried while the server has been silent for less than `api_unreachable_timeout`.
//! [`ApiHealth`] notices a silent server within seconds, tells the run what is waiting on it, and,
//! once the bound has passed, makes every request fail at once with [`ApiUnreachable`] so the run and
//! its teardown end.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use kube::client::Body;
use tokio::time::Instant;
use tower::BoxError;

use crate::events::{Event, EventSink};

/// How hard the layer tries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of a transient answer (429, 5xx) before the answer is returned as it is.
    pub answered_retries: u32,
    /// The first pause; it doubles per retry up to `max_pause`, each drawn with jitter.
    pub first_pause: Duration,
    pub max_pause: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// How long one attempt may wait for the response head before it counts as unanswered.
    pub attempt_timeout: Duration,
    /// How long the server may be silent before the run is told.
    pub notice_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            answered_retries: 6,
            first_pause: Duration::from_millis(200),
            max_pause: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(30),
            // Heads come at once from a live API server, watches included (events follow in the body).
            attempt_timeout: Duration::from_secs(20),
            notice_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `retry` (0-based): exponential, capped, with "equal jitter" (half
    /// fixed, half random) so that many clients retrying together spread out.
    pub fn pause(&self, retry: u32) -> Duration {
        let exponential = self
            .first_pause
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_pause);
        let half = exponential / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The pause before retrying a transient answer: the server's `Retry-After` when it gave one
    /// (never beyond `max_retry_after`), else [`RetryPolicy::pause`].
    pub fn pause_after_answer(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.max_retry_after),
            None => self.pause(retry),
        }
    }
}

/// Answers worth retrying: throttled (429), or the server failed in a way that may pass (500, 502,
/// 503, 504). Everything else (400, 403, 404, 409, 410, 422, ...) is the server's final word.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` in seconds, as Kubernetes sends it (HTTP dates are not used by API servers).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A transport failure that may pass: the connection was refused, reset, closed early or timed
/// out. Certificate, DNS and authentication failures are not: retrying them only hides the cause.
pub fn is_transport_blip(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<ApiUnreachable>().is_some() {
            return false;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::TimedOut
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::NotConnected
            )
        {
            return true;
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message()
                || hyper.is_canceled()
                || hyper.is_closed()
                || hyper.is_timeout())
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// An error with its causes, `outer: inner: root` (a level its outer one already quotes is left
/// out), so that "client error (Connect)" says what failed underneath.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        current = cause.source();
    }
    text
}

/// The [`ApiUnreachable`] inside an error's chain, if the layer gave up on the server.
pub fn unreachable_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ApiUnreachable> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<ApiUnreachable>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// The layer gave up: the server has not answered for longer than `api_unreachable_timeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the API server {server} has not answered for {}s (last: {last_error}); gave up after api_unreachable_timeout ({}s)",
    silent_for.as_secs(),
    bound.as_secs()
)]
pub struct ApiUnreachable {
    pub server: String,
    pub silent_for: Duration,
    pub bound: Duration,
    pub last_error: String,
}

/// Whether the API server answers, shared by every request of a cluster connection: when it went
/// silent, whether the run was told, what is waiting on it, and how long to keep trying.
pub struct ApiHealth {
    server: Mutex<Option<String>>,
    bound_ms: AtomicU64,
    events: Option<Arc<dyn EventSink>>,
    outage: Mutex<Outage>,
    waiting: Mutex<BTreeMap<u64, String>>,
    next_waiting: AtomicU64,
}

#[derive(Default)]
struct Outage {
    /// When the first unanswered attempt since the last answer was sent.
    since: Option<Instant>,
    noticed: bool,
}

/// The default of the `api_unreachable_timeout` setting.
pub const DEFAULT_UNREACHABLE_BOUND: Duration = Duration::from_secs(180);

impl ApiHealth {
    /// Health for one connection; notices go to `events` (none: they only reach the log).
    pub fn new(events: Option<Arc<dyn EventSink>>) -> Self {
        ApiHealth {
            server: Mutex::new(None),
            bound_ms: AtomicU64::new(DEFAULT_UNREACHABLE_BOUND.as_millis() as u64),
            events,
            outage: Mutex::new(Outage::default()),
            waiting: Mutex::new(BTreeMap::new()),
            next_waiting: AtomicU64::new(0),
        }
    }

    /// The server's URL, for messages; the first one known stays.
    pub fn learn_server(&self, server: Option<&str>) {
        if let (Some(server), Ok(mut known)) = (server, self.server.lock())
            && known.is_none()
        {
            *known = Some(server.to_string());
        }
    }

    pub fn server(&self) -> Option<String> {
        self.server.lock().ok().and_then(|s| s.clone())
    }

    fn server_shown(&self) -> String {
        self.server().unwrap_or_else(|| "(URL not known)".into())
    }

    /// How long the run keeps trying while the server is silent (`api_unreachable_timeout`).
    pub fn set_unreachable_bound(&self, bound: Duration) {
        self.bound_ms
            .store(bound.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn unreachable_bound(&self) -> Duration {
        Duration::from_millis(self.bound_ms.load(Ordering::Relaxed))
    }

    /// Marks `what` as waiting on the server until the guard drops (named in the notice).
    pub fn waiting_for(self: &Arc<Self>, what: impl Into<String>) -> WaitingGuard {
        let key = self.next_waiting.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.insert(key, what.into());
        }
        WaitingGuard {
            health: self.clone(),
            key,
        }
    }

    /// The server answered (any status): an outage, if any, is over.
    pub fn answered(&self) {
        let Ok(mut outage) = self.outage.lock() else {
            return;
        };
        if let Some(since) = outage.since.take()
            && std::mem::take(&mut outage.noticed)
        {
            self.emit(Event::ApiAnswering {
                server: self.server_shown(),
                silent_for: since.elapsed(),
            });
        }
    }

    /// An attempt sent at `sent` got no answer; returns how long the server has been silent, and
    /// tells the run once per outage when that passes `notice_after`.
    pub fn unanswered(
        &self,
        sent: Instant,
        request: &str,
        error: &str,
        notice_after: Duration,
    ) -> Duration {
        let Ok(mut outage) = self.outage.lock() else {
            return Duration::ZERO;
        };
        let since = *outage.since.get_or_insert(sent);
        let silent_for = since.elapsed();
        // A short bound is noticed before it is reached.
        let notice_after = notice_after.min(self.unreachable_bound() / 2);
        if silent_for >= notice_after && !outage.noticed {
            outage.noticed = true;
            let mut waiting: Vec<String> = self
                .waiting
                .lock()
                .map(|w| w.values().cloned().collect())
                .unwrap_or_default();
            waiting.dedup();
            if waiting.is_empty() {
                waiting.push(request.to_string());
            }
            self.emit(Event::ApiNotAnswering {
                server: self.server_shown(),
                silent_for,
                last_error: error.to_string(),
                waiting_for: waiting,
                giving_up_after: self.unreachable_bound(),
            });
        }
        silent_for
    }

    fn emit(&self, event: Event) {
        tracing::warn!(?event, "API server health");
        if let Some(events) = &self.events {
            events.emit(event);
        }
    }
}

/// Keeps one entry in [`ApiHealth`]'s list of what waits on the server.
pub struct WaitingGuard {
    health: Arc<ApiHealth>,
    key: u64,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.health.waiting.lock() {
            waiting.remove(&self.key);
        }
    }
}

/// The mark of the layer that retries a request. A client wrapped twice (a `Cluster` made from
/// another's client) must not retry twice over: inner layers see the mark and pass the request on,
/// telling the owner the server URL they know.
#[derive(Clone)]
struct RetriedBy(Arc<ApiHealth>);

/// `client` with the retrying layer in front, reporting to `health`.
pub fn resilient_client(
    client: kube::Client,
    health: Arc<ApiHealth>,
    policy: RetryPolicy,
) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    kube::Client::new(
        Retrying {
            inner: client,
            health,
            policy: Arc::new(policy),
        },
        namespace,
    )
}

/// `client` with the retrying layer in front, for a few requests made before the run's
/// [`crate::cluster::Cluster`] exists (the MTV version, whether the target is the lab).
pub fn standalone_client(client: kube::Client) -> kube::Client {
    resilient_client(
        client,
        Arc::new(ApiHealth::new(None)),
        RetryPolicy::default(),
    )
}

#[derive(Clone)]
struct Retrying {
    inner: kube::Client,
    health: Arc<ApiHealth>,
    policy: Arc<RetryPolicy>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

impl tower::Service<Request<Body>> for Retrying {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> ResponseFuture {
        let layer = self.clone();
        Box::pin(async move { layer.send(request).await })
    }
}

impl Retrying {
    async fn send(self, request: Request<Body>) -> Result<Response<Body>, BoxError> {
        if let Some(RetriedBy(owner)) = request.extensions().get::<RetriedBy>() {
            owner.learn_server(self.health.server().as_deref());
            return Ok(self.inner.send(request).await?);
        }
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(RetriedBy(self.health.clone()));
        let shown = format!("{} {}", parts.method, parts.uri.path());
        let mut answered_retries = 0;
        let mut silent_retries = 0;
        let mut body = Some(body);
        loop {
            // A streamed body cannot be sent twice: such a request gets one attempt.
            let (this_body, retryable) = match body.as_ref().and_then(Body::try_clone) {
                Some(copy) => (copy, true),
                None => (body.take().unwrap_or_else(Body::empty), false),
            };
            let sent = Instant::now();
            let attempt = tokio::time::timeout(
                self.policy.attempt_timeout,
                self.inner
                    .send(Request::from_parts(parts.clone(), this_body)),
            )
            .await;
            let failure = match attempt {
                Ok(Ok(response)) => {
                    self.health.answered();
                    let status = response.status().as_u16();
                    if !(retryable
                        && is_transient_status(status)
                        && answered_retries < self.policy.answered_retries)
                    {
                        return Ok(response);
                    }
                    let pause = self
                        .policy
                        .pause_after_answer(answered_retries, retry_after(response.headers()));
                    tracing::debug!(request = %shown, status, ?pause, "transient answer; retrying");
                    answered_retries += 1;
                    tokio::time::sleep(pause).await;
                    continue;
                }
                Ok(Err(error)) if retryable && is_transport_blip(&error) => causes(&error),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) if retryable => format!(
                    "no answer within {}s",
                    self.policy.attempt_timeout.as_secs()
                ),
                Err(_) => {
                    return Err(format!(
                        "{shown}: no answer within {}s",
                        self.policy.attempt_timeout.as_secs()
                    )
                    .into());
                }
            };
            let silent_for =
                self.health
                    .unanswered(sent, &shown, &failure, self.policy.notice_after);
            let bound = self.health.unreachable_bound();
            if silent_for >= bound {
                return Err(Box::new(ApiUnreachable {
                    server: self.health.server_shown(),
                    silent_for,
                    bound,
                    last_error: failure,
                }));
            }
            tracing::debug!(request = %shown, %failure, "no answer; retrying");
            let pause = self.policy.pause(silent_retries).min(bound - silent_for);
            silent_retries += 1;
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses_are_throttling_and_passing_server_failures() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 201, 400, 401, 403, 404, 405, 409, 410, 422, 501] {
            assert!(!is_transient_status(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.pause_after_answer(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            policy.pause_after_answer(0, Some(Duration::from_secs(3600))),
            policy.max_retry_after
        );
        headers.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn pauses_grow_exponentially_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy::default();
        for retry in 0..20 {
            let ceiling = policy
                .first_pause
                .saturating_mul(2u32.saturating_pow(retry))
                .min(policy.max_pause);
            for _ in 0..20 {
                let pause = policy.pause(retry);
                assert!(
                    pause >= ceiling / 2 && pause <= ceiling,
                    "{retry}: {pause:?}"
                );
            }
        }
    }

    /// A client over a scripted server: each request gets the next status of `script` (the last one
    /// repeats), with `Retry-After` when given; returns the client and the request count.
    fn scripted(
        script: Vec<(u16, Option<&'static str>)>,
    ) -> (kube::Client, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        let server = tower::service_fn(move |_request: Request<Body>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let (status, retry_after) = script[n.min(script.len() - 1)];
            let mut response = Response::builder().status(status);
            if let Some(seconds) = retry_after {
                response = response.header(http::header::RETRY_AFTER, seconds);
            }
            let body = format!(
                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"scripted {status}","reason":"Scripted","code":{status}}}"#
            );
            let answer = if status == 200 {
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"ns"}}"#
                    .to_string()
            } else {
                body
            };
            std::future::ready(Ok::<_, std::convert::Infallible>(
                response.body(Body::from(answer.into_bytes())).unwrap(),
            ))
        });
        let plain = kube::Client::new(server, "ns");
        let client = resilient_client(
            plain,
            Arc::new(ApiHealth::new(None)),
            RetryPolicy::default(),
        );
        (client, count)
    }

    async fn get_config_map(client: kube::Client) -> Result<(), kube::Error> {
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "ns");
        api.get("x").await.map(|_| ())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_answers_are_retried_until_one_succeeds() {
        for status in [429, 500, 502, 503, 504] {
            let (client, count) = scripted(vec![(status, None), (status, None), (200, None)]);
            get_config_map(client).await.unwrap();
            assert_eq!(count.load(Ordering::SeqCst), 3, "{status}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn final_answers_are_returned_at_once_with_the_servers_message() {
        for status in [400, 403, 404, 409, 422] {
            let (client, count) = scripted(vec![(status, None), (200, None)]);
            match get_config_map(client).await {
                Err(kube::Error::Api(answer)) => {
                    assert_eq!(answer.code, status);
                    assert_eq!(answer.message, format!("scripted {status}"));
                }
                other => panic!("{status}: {other:?}"),
            }
            assert_eq!(count.load(Ordering::SeqCst), 1, "{status}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_the_last_answer_is_reported() {
        let (client, count) = scripted(vec![(503, None)]);
        match get_config_map(client).await {
            Err(kube::Error::Api(answer)) => assert_eq!(answer.message, "scripted 503"),
            other => panic!("{other:?}"),
        }
        let policy = RetryPolicy::default();
        assert_eq!(
            count.load(Ordering::SeqCst),
            1 + policy.answered_retries as usize
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        // The paused clock advances only by the layer's sleeps: the pause is what the server asked.
        let (client, count) = scripted(vec![(429, Some("7")), (200, None)]);
        let started = Instant::now();
        get_config_map(client).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(started.elapsed().as_secs(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_retried_by_one_layer_only() {
        let (client, count) = scripted(vec![(503, None)]);
        let twice = resilient_client(
            client,
            Arc::new(ApiHealth::new(None)),
            RetryPolicy::default(),
        );
        assert!(get_config_map(twice).await.is_err());
        assert_eq!(
            count.load(Ordering::SeqCst),
            1 + RetryPolicy::default().answered_retries as usize
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_noticed_then_given_up_on() {
        #[derive(Default)]
        struct Seen(Mutex<Vec<Event>>);
        impl EventSink for Seen {
            fn emit(&self, event: Event) {
                self.0.lock().unwrap().push(event);
            }
        }
        // A port nobody listens on: every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let config = kube::Config::new(server.parse().unwrap());
        let plain = kube::Client::try_from(config).unwrap();
        let seen = Arc::new(Seen::default());
        let health = Arc::new(ApiHealth::new(Some(seen.clone())));
        health.learn_server(Some(&server));
        health.set_unreachable_bound(Duration::from_secs(2));
        let policy = RetryPolicy {
            first_pause: Duration::from_millis(20),
            max_pause: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let client = resilient_client(plain, health.clone(), policy);
        let _waiting = health.waiting_for("Plan ns/p to be Ready");
        let error = get_config_map(client.clone()).await.unwrap_err();
        let cause = unreachable_cause(&error).expect("the layer gave up");
        assert_eq!(cause.server, server);
        assert!(cause.last_error.contains("Connection refused"), "{cause}");
        let events = seen.0.lock().unwrap().clone();
        match events.as_slice() {
            [
                Event::ApiNotAnswering {
                    server: noticed,
                    waiting_for,
                    giving_up_after,
                    ..
                },
            ] => {
                assert_eq!(noticed, &server);
                assert_eq!(waiting_for, &["Plan ns/p to be Ready"]);
                assert_eq!(giving_up_after, &Duration::from_secs(2));
            }
            other => panic!("one notice expected: {other:?}"),
        }
        // Past the bound, a request fails after one attempt.
        let again = get_config_map(client).await.unwrap_err();
        assert!(unreachable_cause(&again).is_some());
    }

    #[test]
    fn an_outage_is_told_once_and_its_end_too() {
        #[derive(Default)]
        struct Seen(Mutex<Vec<Event>>);
        impl EventSink for Seen {
            fn emit(&self, event: Event) {
                self.0.lock().unwrap().push(event);
            }
        }
        let seen = Arc::new(Seen::default());
        let health = ApiHealth::new(Some(seen.clone()));
        let long_ago = Instant::now() - Duration::from_secs(30);
        // Before the notice time: nothing said; after it: one notice, however many failures follow.
        assert!(
            health.unanswered(Instant::now(), "GET /a", "refused", Duration::from_secs(10))
                < Duration::from_secs(10)
        );
        health.answered();
        for _ in 0..3 {
            health.unanswered(
                long_ago,
                "GET /api/v1/namespaces",
                "refused",
                Duration::from_secs(10),
            );
        }
        health.answered();
        health.answered();
        let events = seen.0.lock().unwrap().clone();
        assert!(
            matches!(events.as_slice(), [
                Event::ApiNotAnswering { waiting_for, .. },
                Event::ApiAnswering { .. },
            ] if waiting_for == &["GET /api/v1/namespaces"]),
            "{events:?}"
        );
    }

    #[test]
    fn only_passing_transport_failures_are_blips() {
        use std::io::{Error, ErrorKind};
        assert!(is_transport_blip(&Error::from(
            ErrorKind::ConnectionRefused
        )));
        assert!(is_transport_blip(&Error::from(ErrorKind::ConnectionReset)));
        assert!(is_transport_blip(&Error::from(ErrorKind::TimedOut)));
        assert!(!is_transport_blip(&Error::new(
            ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer"
        )));
        // Found through the chain, as kube wraps them.
        let wrapped = kube::Error::Service(Box::new(Error::from(ErrorKind::ConnectionReset)));
        assert!(is_transport_blip(&wrapped));
        // Giving up is final.
        let gave_up = kube::Error::Service(Box::new(ApiUnreachable {
            server: "https://api.example:6443".into(),
            silent_for: Duration::from_secs(61),
            bound: Duration::from_secs(60),
            last_error: "connection refused".into(),
        }));
        assert!(!is_transport_blip(&gave_up));
        assert!(unreachable_cause(&gave_up).is_some());
    }
}
