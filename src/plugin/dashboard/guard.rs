//! Who may use the dashboard. It acts with the user's own credentials, so any web page the
//! user opens must be kept from reading it or acting through it:
//! - every request must name the dashboard's own address in `Host` (a DNS-rebinding page
//!   names its own domain);
//! - an action must come from the dashboard's origin (`Origin`, and `Sec-Fetch-Site` when
//!   the browser sends it) and carry the per-session token, which only a page served by the
//!   dashboard can read.

use std::net::SocketAddr;

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

/// Header that carries the session token on actions.
pub const TOKEN_HEADER: &str = "x-weir-token";

/// Why a request was refused, in the words of the answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    ForeignHost,
    ForeignOrigin,
    BadToken,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::ForeignHost => "this dashboard answers only on its own address",
            Refusal::ForeignOrigin => "actions are taken only from the dashboard's own page",
            Refusal::BadToken => "the session token is missing or wrong: reload the page",
        })
    }
}

pub struct Guard {
    hosts: Vec<String>,
    token: String,
}

impl Guard {
    /// For a dashboard listening on `address`, with a fresh random token.
    pub fn new(address: SocketAddr) -> std::io::Result<Guard> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Guard::with_token(address, token))
    }

    pub fn with_token(address: SocketAddr, token: String) -> Guard {
        let port = address.port();
        let mut hosts = vec![address.to_string()];
        if address.ip().is_loopback() {
            hosts.push(format!("localhost:{port}"));
        }
        Guard { hosts, token }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Every request: the `Host` header is one of the dashboard's own names.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        match host {
            Some(host) if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => Ok(()),
            _ => Err(Refusal::ForeignHost),
        }
    }

    /// An action: same origin, and the session's token. (The host of every request, actions
    /// included, is checked before any handler runs.)
    pub fn check_action(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let origin = headers.get(ORIGIN).and_then(|h| h.to_str().ok());
        let own_origin = origin.is_some_and(|origin| {
            self.hosts
                .iter()
                .any(|host| origin.eq_ignore_ascii_case(&format!("http://{host}")))
        });
        let fetch_site = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok());
        if !own_origin || fetch_site.is_some_and(|site| site != "same-origin") {
            return Err(Refusal::ForeignOrigin);
        }
        let token = headers.get(TOKEN_HEADER).and_then(|h| h.to_str().ok());
        if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), self.token.as_bytes())) {
            return Err(Refusal::BadToken);
        }
        Ok(())
    }
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::with_token("127.0.0.1:3100".parse().unwrap(), "secret".into())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    const OWN: [(&str, &str); 4] = [
        ("host", "127.0.0.1:3100"),
        ("origin", "http://127.0.0.1:3100"),
        ("sec-fetch-site", "same-origin"),
        (TOKEN_HEADER, "secret"),
    ];

    #[test]
    fn the_own_page_may_act() {
        assert_eq!(guard().check_action(&headers(&OWN)), Ok(()));
        let by_name = [
            ("host", "localhost:3100"),
            ("origin", "http://localhost:3100"),
            (TOKEN_HEADER, "secret"),
        ];
        assert_eq!(guard().check_action(&headers(&by_name)), Ok(()));
    }

    #[test]
    fn another_host_name_is_refused_even_to_read() {
        let rebound = headers(&[("host", "evil.example:3100")]);
        assert_eq!(guard().check_host(&rebound), Err(Refusal::ForeignHost));
        assert_eq!(
            guard().check_host(&HeaderMap::new()),
            Err(Refusal::ForeignHost)
        );
    }

    #[test]
    fn another_origin_cannot_act_even_with_the_token() {
        let mut foreign = headers(&OWN);
        foreign.insert(ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(guard().check_action(&foreign), Err(Refusal::ForeignOrigin));
        let mut cross_site = headers(&OWN);
        cross_site.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert_eq!(
            guard().check_action(&cross_site),
            Err(Refusal::ForeignOrigin)
        );
        let mut no_origin = headers(&OWN);
        no_origin.remove(ORIGIN);
        assert_eq!(
            guard().check_action(&no_origin),
            Err(Refusal::ForeignOrigin)
        );
    }

    #[test]
    fn an_action_needs_the_session_token() {
        let mut wrong = headers(&OWN);
        wrong.insert(TOKEN_HEADER, "guess".parse().unwrap());
        assert_eq!(guard().check_action(&wrong), Err(Refusal::BadToken));
        let mut missing = headers(&OWN);
        missing.remove(TOKEN_HEADER);
        assert_eq!(guard().check_action(&missing), Err(Refusal::BadToken));
    }

    #[test]
    fn tokens_are_fresh_for_each_session() {
        let address = "127.0.0.1:3100".parse().unwrap();
        let (a, b) = (Guard::new(address).unwrap(), Guard::new(address).unwrap());
        assert_eq!(a.token().len(), 48);
        assert_ne!(a.token(), b.token());
    }
}
