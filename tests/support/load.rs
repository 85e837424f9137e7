//! The tests' own bounded load on a fleet, through nginx: `GET /` and `POST /`
//! with `Host: <tenant>` to port 80 of every host of every given tenant, each
//! (method, target) a stream at a steady rate on its own thread. It stops by
//! itself at its deadline, or when asked ([`Load::stop`], or dropped).
//!
//! Every request is counted, and every failed one: an answer that is not 2xx, a
//! connection error or a timeout, and a 2xx that is not the agent's
//! (`agent <version> ...`; a POST's answer must also say it received the whole
//! body). Per stream it keeps the longest time without a successful answer and
//! the versions that answered over time, so a test can say "0 failed GET
//! requests", "at most N failed requests to the canary's tenant", or "every
//! target answered both versions".

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::fleet::Fleet;
use super::http::{self, Response};
use super::tenants::{Tenant, targets};

/// How many failures of a stream are kept word for word.
const ERRORS_KEPT: usize = 5;
/// The longest a stream sleeps before it looks at its stop flag again.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// The HTTP method of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Method {
    Get,
    Post,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
        })
    }
}

/// What the load sends to each target (a tenant on one host).
#[derive(Debug, Clone)]
pub(crate) struct LoadPlan {
    /// `GET /` requests per second to each target (0: none).
    pub(crate) gets_per_second: u32,
    /// `POST /` requests per second to each target (0: none).
    pub(crate) posts_per_second: u32,
    /// The size of a POST body, in bytes.
    pub(crate) post_bytes: usize,
    /// How long one request may take before it counts as failed.
    pub(crate) request_timeout: Duration,
    /// When the load stops by itself, counted from its start.
    pub(crate) deadline: Duration,
}

impl LoadPlan {
    /// 50 GET and 10 POST (64-byte body) requests a second to each target, 5 s
    /// per request at most, stopping by itself after `deadline`.
    pub(crate) fn steady(deadline: Duration) -> LoadPlan {
        LoadPlan {
            gets_per_second: 50,
            posts_per_second: 10,
            post_bytes: 64,
            request_timeout: Duration::from_secs(5),
            deadline,
        }
    }
}

/// A time span in which one version answered a stream.
#[derive(Debug, Clone)]
pub(crate) struct VersionSpan {
    pub(crate) version: String,
    /// First and last answer of the span, since the load started.
    pub(crate) from: Duration,
    pub(crate) to: Duration,
    pub(crate) answers: u64,
}

/// What one stream (one method to one target) saw.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) tenant: String,
    pub(crate) host: String,
    pub(crate) method: Method,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    /// Failed requests by kind: `HTTP 502`, `timeout`, `connect`, `not the agent`...
    pub(crate) failed_by_kind: BTreeMap<String, u64>,
    /// The first failures, each with when it happened (seconds into the load).
    pub(crate) first_errors: Vec<String>,
    /// The longest time without a successful answer: from the start to the first,
    /// between two, and from the last to the end.
    pub(crate) longest_gap: Duration,
    /// The versions that answered, in order: a new span each time it changed.
    pub(crate) versions: Vec<VersionSpan>,
}

impl Stream {
    fn new(tenant: &str, host: &str, method: Method) -> Stream {
        Stream {
            tenant: tenant.to_owned(),
            host: host.to_owned(),
            method,
            requests: 0,
            failed: 0,
            failed_by_kind: BTreeMap::new(),
            first_errors: Vec::new(),
            longest_gap: Duration::ZERO,
            versions: Vec::new(),
        }
    }

    /// `tenant@host`.
    pub(crate) fn target(&self) -> String {
        format!("{}@{}", self.tenant, self.host)
    }

    /// Whether `version` answered this stream at all.
    pub(crate) fn saw(&self, version: &str) -> bool {
        self.versions.iter().any(|s| s.version == version)
    }

    fn answered(&mut self, version: String, at: Duration) {
        match self.versions.last_mut() {
            Some(span) if span.version == version => {
                span.to = at;
                span.answers += 1;
            }
            _ => self.versions.push(VersionSpan {
                version,
                from: at,
                to: at,
                answers: 1,
            }),
        }
    }

    fn failed(&mut self, kind: String, error: String, at: Duration) {
        self.failed += 1;
        *self.failed_by_kind.entry(kind).or_default() += 1;
        if self.first_errors.len() < ERRORS_KEPT {
            self.first_errors
                .push(format!("{:.3}s: {error}", at.as_secs_f64()));
        }
    }

    fn versions_line(&self) -> String {
        self.versions
            .iter()
            .map(|s| {
                format!(
                    "{} {:.1}-{:.1}s ({})",
                    s.version,
                    s.from.as_secs_f64(),
                    s.to.as_secs_f64(),
                    s.answers
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which requests a count or an assertion is about: all, or those of one tenant,
/// one host and/or one method.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Requests<'a> {
    pub(crate) tenant: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) method: Option<Method>,
}

impl<'a> Requests<'a> {
    /// Every request.
    pub(crate) const ALL: Requests<'static> = Requests {
        tenant: None,
        host: None,
        method: None,
    };

    /// The requests of one method, to every tenant.
    pub(crate) fn of(method: Method) -> Requests<'a> {
        Requests {
            method: Some(method),
            ..Requests::ALL
        }
    }

    /// The requests to one tenant (on all its hosts).
    pub(crate) fn to(tenant: &'a str) -> Requests<'a> {
        Requests {
            tenant: Some(tenant),
            ..Requests::ALL
        }
    }

    /// Only those sent to `host`'s nginx.
    pub(crate) fn at(self, host: &'a str) -> Requests<'a> {
        Requests {
            host: Some(host),
            ..self
        }
    }

    /// Only those of `method`.
    pub(crate) fn using(self, method: Method) -> Requests<'a> {
        Requests {
            method: Some(method),
            ..self
        }
    }

    fn take(&self, s: &Stream) -> bool {
        self.tenant.is_none_or(|t| t == s.tenant)
            && self.host.is_none_or(|h| h == s.host)
            && self.method.is_none_or(|m| m == s.method)
    }
}

impl fmt::Display for Requests<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = self.method {
            write!(f, "{m} ")?;
        }
        f.write_str("requests")?;
        match (self.tenant, self.host) {
            (Some(t), Some(h)) => write!(f, " to {t}@{h}"),
            (Some(t), None) => write!(f, " to {t}"),
            (None, Some(h)) => write!(f, " to {h}"),
            (None, None) => Ok(()),
        }
    }
}

/// A running load; see the module doc.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Stream>>,
    started: Instant,
}

impl Load {
    /// Starts a stream per method of `plan` to every target of `tenants`.
    pub(crate) fn start(fleet: &Fleet, tenants: &[Tenant], plan: &LoadPlan) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut threads = Vec::new();
        for (tenant, host) in targets(tenants) {
            for (method, rate) in [
                (Method::Get, plan.gets_per_second),
                (Method::Post, plan.posts_per_second),
            ] {
                if rate == 0 {
                    continue;
                }
                let stream = Stream::new(&tenant, &host, method);
                let addr = http::nginx_of(fleet, &host);
                let (plan, stop) = (plan.clone(), Arc::clone(&stop));
                threads.push(std::thread::spawn(move || {
                    send_steadily(stream, addr, rate, &plan, started, &stop)
                }));
            }
        }
        Load {
            stop,
            threads,
            started,
        }
    }

    /// Stops every stream (each finishes the request it is in) and reports.
    pub(crate) fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let streams = std::mem::take(&mut self.threads)
            .into_iter()
            .map(|t| t.join().expect("load thread"))
            .collect();
        LoadReport {
            streams,
            ran: self.started.elapsed(),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One stream: `rate` requests a second to `addr` until stopped or past the plan's
/// deadline. A request that runs late delays the next; missed slots are not made
/// up in a burst.
fn send_steadily(
    mut s: Stream,
    addr: std::net::SocketAddr,
    rate: u32,
    plan: &LoadPlan,
    started: Instant,
    stop: &AtomicBool,
) -> Stream {
    let interval = Duration::from_secs(1) / rate;
    let body = vec![b'x'; plan.post_bytes];
    let mut next = Instant::now();
    let mut last_ok = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < plan.deadline {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(STOP_CHECK));
            continue;
        }
        next = (next + interval).max(now);
        s.requests += 1;
        let answer = match s.method {
            Method::Get => http::get(addr, &s.tenant, "/", plan.request_timeout),
            Method::Post => {
                http::request(addr, "POST", &s.tenant, "/", &body, plan.request_timeout)
            }
        };
        let done = Instant::now();
        let at = started.elapsed();
        match served_version(s.method, answer, body.len()) {
            Ok(version) => {
                s.longest_gap = s.longest_gap.max(done - last_ok);
                last_ok = done;
                s.answered(version, at);
            }
            Err((kind, error)) => s.failed(kind, error, at),
        }
    }
    s.longest_gap = s.longest_gap.max(last_ok.elapsed());
    s
}

/// The version in a successful answer of the agent, or (kind, error).
fn served_version(
    method: Method,
    answer: Result<Response, http::HttpError>,
    sent: usize,
) -> Result<String, (String, String)> {
    let Response { status, body } = answer.map_err(|e| (e.kind().to_owned(), e.to_string()))?;
    let said = || format!("HTTP {status}: {}", gist(&body));
    if !(200..300).contains(&status) {
        return Err((format!("HTTP {status}"), said()));
    }
    let mut words = body.split_whitespace();
    let (Some("agent"), Some(version)) = (words.next(), words.next()) else {
        return Err(("not the agent".to_owned(), said()));
    };
    if method == Method::Post && !body.trim_end().ends_with(&format!("received {sent} bytes")) {
        return Err(("body lost".to_owned(), said()));
    }
    Ok(version.to_owned())
}

/// A body shortened for a report line: whitespace folded, at most 80 characters.
fn gist(body: &str) -> String {
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &folded[..cut]),
        None => folded,
    }
}

/// What a stopped [`Load`] saw.
#[derive(Debug, Clone)]
pub(crate) struct LoadReport {
    pub(crate) streams: Vec<Stream>,
    /// How long the load ran.
    pub(crate) ran: Duration,
}

impl LoadReport {
    fn of<'s>(&'s self, which: Requests<'s>) -> impl Iterator<Item = &'s Stream> + 's {
        self.streams.iter().filter(move |s| which.take(s))
    }

    /// How many of `which` were sent.
    pub(crate) fn requests(&self, which: Requests<'_>) -> u64 {
        self.of(which).map(|s| s.requests).sum()
    }

    /// How many of `which` failed.
    pub(crate) fn failed(&self, which: Requests<'_>) -> u64 {
        self.of(which).map(|s| s.failed).sum()
    }

    /// The longest time any stream of `which` went without a successful answer.
    pub(crate) fn longest_gap(&self, which: Requests<'_>) -> Duration {
        self.of(which)
            .map(|s| s.longest_gap)
            .max()
            .unwrap_or_default()
    }

    /// Prints what the load saw (`LOAD <phase>: ...` lines on stderr): the totals,
    /// per tenant and method, and per stream with its versions over time.
    pub(crate) fn print(&self, phase: &str) {
        let (requests, failed) = (self.requests(Requests::ALL), self.failed(Requests::ALL));
        let secs = self.ran.as_secs_f64();
        let targets = self
            .streams
            .iter()
            .map(Stream::target)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        eprintln!(
            "LOAD {phase}: {requests} requests in {secs:.1}s ({:.0}/s) to {targets} targets, {failed} failed, longest gap between successes {} ms",
            requests as f64 / secs,
            self.longest_gap(Requests::ALL).as_millis()
        );
        let mut per_tenant: BTreeMap<(&str, Method), (u64, u64)> = BTreeMap::new();
        for s in &self.streams {
            let e = per_tenant.entry((&s.tenant, s.method)).or_default();
            e.0 += s.requests;
            e.1 += s.failed;
        }
        for ((tenant, method), (requests, failed)) in per_tenant {
            eprintln!(
                "LOAD {phase}:   {tenant:<10} {method:<4} {requests:>6} requests, {failed} failed"
            );
        }
        for s in &self.streams {
            eprintln!(
                "LOAD {phase}:   {:<18} {:<4} {:>6} requests, {} failed{}, longest gap {:>4} ms, versions {}{}",
                s.target(),
                s.method,
                s.requests,
                s.failed,
                if s.failed_by_kind.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", s.failed_by_kind)
                },
                s.longest_gap.as_millis(),
                s.versions_line(),
                if s.first_errors.is_empty() {
                    String::new()
                } else {
                    format!(", first errors: {:?}", s.first_errors)
                }
            );
        }
    }

    /// Every stream sent requests, and each of `versions` answered every stream
    /// (so the load spanned the switch between them).
    #[track_caller]
    pub(crate) fn assert_every_target_answered(&self, phase: &str, versions: &[&str]) {
        for s in &self.streams {
            assert!(
                s.requests > 0,
                "{phase}: no {} request sent to {}",
                s.method,
                s.target()
            );
            for v in versions {
                assert!(
                    s.saw(v),
                    "{phase}: {} never answered {v} to {} (so the load did not span the switch): {}",
                    s.target(),
                    s.method,
                    s.versions_line()
                );
            }
        }
    }

    /// Not one of `which` failed.
    #[track_caller]
    pub(crate) fn assert_none_failed(&self, phase: &str, which: Requests<'_>) {
        self.assert_failed_at_most(phase, which, 0);
    }

    /// At most `bound` of `which` failed.
    #[track_caller]
    pub(crate) fn assert_failed_at_most(&self, phase: &str, which: Requests<'_>, bound: u64) {
        let failed = self.failed(which);
        assert!(
            failed <= bound,
            "{phase}: {failed} {which} failed (at most {bound} may), of {}: {:#?}",
            self.requests(which),
            self.of(which)
                .filter(|s| s.failed > 0)
                .map(|s| (
                    s.target(),
                    s.method,
                    s.failed,
                    &s.failed_by_kind,
                    &s.first_errors
                ))
                .collect::<Vec<_>>()
        );
    }
}
