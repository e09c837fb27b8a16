//! The one outbound HTTP client: timeouts, a user agent, a guard against private addresses,
//! no redirects to other hosts, and errors that say whether a retry may help.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use url::{Host, Url};

/// How much of a response body is kept for the run log and error messages.
const EXCERPT_CHARS: usize = 300;
/// The most of a response body that is read at all.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// One entry of the outbound allow-list: private addresses it names may be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// An address range, `127.0.0.1/32`, `10.0.0.0/8`, `::1/128`.
    Cidr {
        /// The network address.
        network: IpAddr,
        /// The prefix length.
        prefix: u8,
    },
    /// A host name, matched exactly (case-insensitive): `vault.internal`.
    Host(String),
}

impl AllowRule {
    fn allows_ip(&self, ip: IpAddr) -> bool {
        match *self {
            AllowRule::Cidr { network, prefix } => in_cidr(ip, network, prefix),
            AllowRule::Host(_) => false,
        }
    }
}

impl FromStr for AllowRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((net, prefix)) = s.split_once('/') {
            let network: IpAddr = net
                .parse()
                .map_err(|_| format!("`{s}`: not an IP network"))?;
            let max = if network.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(format!("`{s}`: bad prefix length"))?;
            return Ok(AllowRule::Cidr { network, prefix });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(AllowRule::Cidr {
                network: ip,
                prefix,
            });
        }
        let valid_host = !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if valid_host {
            Ok(AllowRule::Host(s.to_ascii_lowercase()))
        } else {
            Err(format!("`{s}`: not a CIDR, IP or host name"))
        }
    }
}

fn in_cidr(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), canonical(network)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether an address is one that outbound calls must not reach unless allow-listed: loopback,
/// private, link-local (cloud metadata lives there), CGNAT, unique-local, multicast,
/// unspecified, broadcast, documentation and other reserved ranges.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64, may reach private IPv4
        || first == 0x2002 // 6to4, embeds any IPv4
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
}

/// Where outbound calls may go, and how long they may take.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    /// Private addresses and hosts that may be reached anyway (`KEYWIRE_OUTBOUND_ALLOW`).
    pub allow: Vec<AllowRule>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of a whole request, body included.
    pub request_timeout: Duration,
    /// Test hook: requests whose URL starts with the first string go to the second instead
    /// (`https://discord.com` → `http://127.0.0.1:4567`), so tests can put a local fake behind
    /// a provider's fixed host. Empty in production.
    pub origin_overrides: Vec<(String, String)>,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            allow: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            origin_overrides: Vec::new(),
        }
    }
}

impl OutboundPolicy {
    /// Parses a comma-separated allow-list (`127.0.0.1/32, vault.internal`); empty entries are
    /// skipped.
    pub fn parse_allow_list(list: &str) -> Result<Vec<AllowRule>, String> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(AllowRule::from_str)
            .collect()
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow
            .iter()
            .any(|r| matches!(r, AllowRule::Host(h) if *h == host))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        !is_private_ip(ip) || self.allow.iter().any(|r| r.allows_ip(ip))
    }

    /// Whether a connection may reach `ip`, found for `host`: public addresses always, private
    /// and link-local ones only when the allow-list names their range or the host. The rule
    /// of the HTTP client's DNS guard, for integrations that connect without it (SMTP).
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        self.allows_ip(ip) || self.allows_host(host)
    }

    /// Checks a URL before any connection: scheme, credentials in the URL, and IP literals
    /// (which never reach the DNS guard).
    fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::refused(
                "only http and https URLs may be called",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::refused(
                "URLs with a user name or password are not accepted",
            ));
        }
        let ip = match url.host() {
            None => return Err(OutboundError::refused("the URL has no host")),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
        };
        if self.allows_ip(ip) {
            Ok(())
        } else {
            Err(OutboundError::refused(
                "the URL points to a private or reserved address",
            ))
        }
    }
}

/// A DNS resolver that drops private addresses unless the host or address is allow-listed.
struct GuardedResolver {
    policy: Arc<OutboundPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let host_allowed = policy.allows_host(&host);
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| host_allowed || policy.allows_ip(a.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(Box::new(PrivateAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug)]
struct PrivateAddress;

impl fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the host resolves only to private or reserved addresses")
    }
}

impl std::error::Error for PrivateAddress {}

/// The shared outbound client. Cheap to clone.
#[derive(Clone)]
pub struct OutboundClient {
    inner: reqwest::Client,
    policy: Arc<OutboundPolicy>,
}

impl fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allow", &self.policy.allow)
            .finish_non_exhaustive()
    }
}

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' `ring` provider for the process, once; reqwest clients panic without one.
/// [`OutboundClient::new`] calls it; anything else that builds a reqwest client must too.
pub fn ensure_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        // Another part of the process may have installed one already; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OutboundClient {
    /// Builds the client. Installs the `ring` TLS provider once per process (rustls panics
    /// without one).
    pub fn new(policy: OutboundPolicy) -> Result<Self, OutboundError> {
        ensure_crypto_provider();
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let inner = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.request_timeout)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let same_host = attempt.previous().first().map(|first| first.host_str())
                    == Some(attempt.url().host_str());
                if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else if !same_host {
                    attempt.error("redirect to another host refused")
                } else if let Err(e) = redirect_policy.check_url(attempt.url()) {
                    attempt.error(e.to_string())
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| OutboundError::Client(e.without_url().to_string()))?;
        Ok(OutboundClient { inner, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Starts a request after checking the URL (scheme, no userinfo, no private IP literal).
    pub fn request(&self, method: Method, url: &str) -> Result<RequestBuilder, OutboundError> {
        let mut target = url.to_owned();
        for (from, to) in &self.policy.origin_overrides {
            if let Some(rest) = url.strip_prefix(from.as_str()) {
                target = format!("{to}{rest}");
                break;
            }
        }
        let parsed = Url::parse(&target).map_err(|_| OutboundError::refused("not a valid URL"))?;
        self.policy.check_url(&parsed)?;
        Ok(self.inner.request(method, parsed))
    }

    /// Sends a request and reads (at most 256 KiB of) the answer. Any status is returned as a
    /// [`Reply`]; only transport failures are errors. Errors never contain the URL, which may
    /// hold a credential.
    pub async fn send(&self, request: RequestBuilder) -> Result<Reply, OutboundError> {
        let mut response = request.send().await.map_err(OutboundError::from_reqwest)?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(OutboundError::from_reqwest)?
        {
            let room = MAX_BODY_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body (at most 256 KiB).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first few hundred characters of the body, on one line.
    pub fn excerpt(&self) -> String {
        excerpt(&self.text())
    }

    /// The `Retry-After` header, in seconds or as an HTTP date.
    pub fn retry_after(&self) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(secs) = value.parse::<f64>() {
            return (secs.is_finite() && secs >= 0.0)
                .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
        }
        let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
        Some(wait.to_std().unwrap_or(Duration::ZERO))
    }

    /// `Ok` for 2xx; otherwise an error that is retryable for 408, 409, 425, 429 and 5xx, and carries
    /// `Retry-After`.
    pub fn error_for_status(self) -> Result<Reply, OutboundError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let code = self.status.as_u16();
        Err(OutboundError::Status {
            status: code,
            retryable: matches!(code, 408 | 409 | 425 | 429) || self.status.is_server_error(),
            retry_after: self.retry_after(),
            excerpt: self.excerpt(),
        })
    }
}

fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        format!("{one_line}…")
    } else {
        one_line
    }
}

/// Why an outbound call failed. Messages never contain the URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    /// The policy refused the target before connecting.
    #[error("refused: {0}")]
    Refused(String),
    /// The connection or the request timed out.
    #[error("timed out")]
    Timeout,
    /// Connecting failed, or the connection broke.
    #[error("network error: {0}")]
    Network(String),
    /// The provider answered with a non-success status.
    #[error("HTTP {status}: {excerpt}")]
    Status {
        /// The status code.
        status: u16,
        /// Whether a retry may help (408, 409, 425, 429, 5xx).
        retryable: bool,
        /// The provider's `Retry-After`.
        retry_after: Option<Duration>,
        /// The start of the body.
        excerpt: String,
    },
    /// The client could not be built or the request was malformed.
    #[error("client error: {0}")]
    Client(String),
}

impl OutboundError {
    fn refused(why: &str) -> Self {
        OutboundError::Refused(why.to_owned())
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        let timeout = err.is_timeout();
        let connect = err.is_connect() || err.is_request() || err.is_body();
        let redirect = err.is_redirect();
        let err = err.without_url();
        let mut text = err.to_string();
        // Name the innermost cause (a refused private address, a reset), still without the URL.
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            text = s.to_string();
            source = s.source();
        }
        if timeout {
            OutboundError::Timeout
        } else if redirect {
            OutboundError::Refused(text)
        } else if connect {
            OutboundError::Network(text)
        } else {
            OutboundError::Client(text)
        }
    }

    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            OutboundError::Timeout | OutboundError::Network(_) => true,
            OutboundError::Status { retryable, .. } => *retryable,
            OutboundError::Refused(_) | OutboundError::Client(_) => false,
        }
    }

    /// The provider's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OutboundError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status, when the provider answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            OutboundError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
        ] {
            assert!(is_private_ip(ip.parse().unwrap()), "{ip} should be private");
        }
        for ip in ["1.1.1.1", "162.159.135.232", "2606:4700::6810:85e5"] {
            assert!(!is_private_ip(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn allow_rules_parse_and_match() {
        let rules =
            OutboundPolicy::parse_allow_list("127.0.0.1/32, 10.0.0.0/8 ,vault.internal,::1")
                .unwrap();
        let policy = OutboundPolicy {
            allow: rules,
            ..OutboundPolicy::default()
        };
        assert!(policy.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(policy.allows_ip("10.200.0.1".parse().unwrap()));
        assert!(policy.allows_ip("::1".parse().unwrap()));
        assert!(!policy.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(!policy.allows_ip("169.254.169.254".parse().unwrap()));
        assert!(policy.allows_host("Vault.Internal."));
        assert!(OutboundPolicy::parse_allow_list("10.0.0.0/33").is_err());
        assert!(OutboundPolicy::parse_allow_list("no spaces allowed").is_err());
        assert_eq!(OutboundPolicy::parse_allow_list(" , ").unwrap(), vec![]);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut reply = Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: HeaderMap::new(),
            body: b"slow down".to_vec(),
        };
        reply.headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(reply.retry_after(), Some(Duration::from_secs(7)));
        let err = reply.clone().error_for_status().unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        reply.headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(reply.retry_after(), Some(Duration::ZERO));
        reply.status = StatusCode::CONFLICT;
        assert!(
            reply.clone().error_for_status().unwrap_err().is_retryable(),
            "409: the receiver is busy with it"
        );
        reply.status = StatusCode::NOT_FOUND;
        assert!(!reply.error_for_status().unwrap_err().is_retryable());
    }
}
