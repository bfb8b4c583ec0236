//! Prometheus: an instant query whose first sample is the measured value.
//!
//! A query Prometheus rejects (HTTP 400 or 422) fails: it will not get better by waiting. A
//! Prometheus that cannot answer (unreachable, too slow, HTTP 5xx) or a query without data is
//! inconclusive.

use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{CredentialSet, Credentials};
use super::{Verdict, bounds, excerpt, read_capped, why};
use crate::api::Metric;

/// How long a query may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An answer larger than this cannot be the single sample the metric asks for.
const MAX_ANSWER: usize = 8 << 20;

/// The credential set a Prometheus is queried with.
pub struct Auth<'a> {
    pub credentials: &'a Credentials,
    pub set: &'a CredentialSet,
}

/// A Prometheus server, and how to ask it.
pub struct Source<'a> {
    pub client: &'a reqwest::Client,
    pub address: &'a str,
    pub auth: Option<Auth<'a>>,
}

impl Source<'_> {
    /// Runs `query` (placeholders already replaced) and judges its first sample against
    /// the metric's bounds.
    pub async fn measure(&self, query: &str, metric: &Metric) -> Verdict {
        match self.sample(query, &metric.name).await {
            Ok(value) => bounds::judge(&metric.name, value, metric.min, metric.max),
            Err(verdict) => verdict,
        }
    }

    /// The first sample of `query`'s answer (NaN never: that is no data), or the verdict of
    /// a query that gave none.
    pub async fn sample(&self, query: &str, name: &str) -> Result<f64, Verdict> {
        let url = match query_url(self.address) {
            Ok(url) => url,
            Err(problem) => return Err(Verdict::failed(format!("{name}: {problem}"))),
        };
        let request = self
            .client
            .get(url)
            .query(&[("query", query)])
            .timeout(TIMEOUT);
        let request = match &self.auth {
            Some(Auth { credentials, set }) => {
                match credentials.authorize(self.client, set, request).await {
                    Ok(request) => request,
                    Err(why) => return Err(Verdict::inconclusive(format!("{name}: {why}"))),
                }
            }
            None => request,
        };
        let (status, body) = self.ask(request, name).await?;
        if status == 401 || status == 403 {
            let hint = match &self.auth {
                Some(auth) => format!("credential set {:?} was not accepted", auth.set.name),
                None => "it asks for credentials: name a credential set in prometheus.credentials"
                    .into(),
            };
            let address = self.address;
            return Err(Verdict::inconclusive(format!(
                "{name}: Prometheus at {address} answered {status}: {hint}"
            )));
        }
        match parse_answer(status, &String::from_utf8_lossy(&body)) {
            Answer::Value(value) => Ok(value),
            Answer::NoData => Err(Verdict::inconclusive(format!(
                "{name}: the query returned no data"
            ))),
            Answer::Rejected(why) => Err(Verdict::failed(format!("{name}: bad query: {why}"))),
            Answer::Unavailable(why) => Err(Verdict::inconclusive(format!("{name}: {why}"))),
        }
    }

    /// The status and the body of the answer to `request`.
    async fn ask(
        &self,
        request: reqwest::RequestBuilder,
        name: &str,
    ) -> Result<(u16, Vec<u8>), Verdict> {
        let address = self.address;
        let sent = request.send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                let why = why(&e, TIMEOUT);
                let message = format!("{name}: Prometheus at {address}: {why}");
                return Err(Verdict::inconclusive(message));
            }
        };
        let status = response.status().as_u16();
        match read_capped(response, MAX_ANSWER).await {
            Ok(Some(body)) => Ok((status, body)),
            Ok(None) => Err(Verdict::failed(format!(
                "{name}: the answer is over {} MiB; the query should return one sample",
                MAX_ANSWER >> 20
            ))),
            Err(e) => {
                let why = why(&e, TIMEOUT);
                let message = format!("{name}: reading Prometheus's answer: {why}");
                Err(Verdict::inconclusive(message))
            }
        }
    }
}

/// `<address>/api/v1/query`; an address without a scheme is taken as `http://`.
fn query_url(address: &str) -> Result<reqwest::Url, String> {
    let base = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    match reqwest::Url::parse(&url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url),
        Ok(url) => Err(format!(
            "Prometheus address {address:?} is not http or https but {}",
            url.scheme()
        )),
        Err(e) => Err(format!("invalid Prometheus address {address:?}: {e}")),
    }
}

/// What an answer of the query API says.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// The first sample's value (never NaN).
    Value(f64),
    /// An empty vector, or NaN.
    NoData,
    /// The query is wrong and stays wrong: Prometheus refused it, or it does not return a
    /// number.
    Rejected(String),
    /// Prometheus could not answer this time.
    Unavailable(String),
}

/// The query API's JSON envelope: `{"status", "data": {"resultType", "result"}, "error"}`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar(Point),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

#[derive(Deserialize)]
struct Sample {
    value: Point,
}

/// `[<unix time>, "<value>"]`: Prometheus sends values as strings (`"NaN"`, `"+Inf"`).
type Point = (f64, String);

/// Reads the HTTP status and body of a query answer. Pure, so every shape is tested here.
pub fn parse_answer(status: u16, body: &str) -> Answer {
    let envelope = serde_json::from_str::<Envelope>(body);
    let error_text = |envelope: Result<Envelope, _>| match envelope {
        Ok(Envelope { error: Some(e), .. }) => excerpt(&e),
        _ if body.trim().is_empty() => format!("Prometheus answered {status}"),
        _ => excerpt(body),
    };
    match status {
        200..=299 => {}
        400 | 422 => return Answer::Rejected(error_text(envelope)),
        _ => {
            let text = error_text(envelope);
            return Answer::Unavailable(if text.starts_with("Prometheus answered") {
                text
            } else {
                format!("Prometheus answered {status}: {text}")
            });
        }
    }
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(e) => return Answer::Unavailable(format!("unreadable Prometheus answer: {e}")),
    };
    let (_, value) = match envelope.data {
        Some(Data::Scalar(point)) => point,
        Some(Data::Vector(samples)) => match samples.into_iter().next() {
            Some(sample) => sample.value,
            None => return Answer::NoData,
        },
        Some(Data::Matrix(_)) => {
            return Answer::Rejected(
                "the query returns a range vector; it should return an instant vector or a scalar"
                    .into(),
            );
        }
        Some(Data::String(_)) => {
            return Answer::Rejected("the query returns a string, not a number".into());
        }
        None => {
            let why = envelope
                .error
                .map_or("no data field".into(), |e| excerpt(&e));
            return Answer::Unavailable(format!("Prometheus answered without a result: {why}"));
        }
    };
    match value.parse::<f64>() {
        Ok(number) if number.is_nan() => Answer::NoData,
        Ok(number) => Answer::Value(number),
        Err(_) => Answer::Unavailable(format!("Prometheus sent {value:?}, not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(values: &[&str]) -> String {
        let samples: Vec<_> = values
            .iter()
            .map(|v| serde_json::json!({"metric": {"code": "500"}, "value": [1700000000.123, v]}))
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": samples}})
            .to_string()
    }

    #[test]
    fn a_vector_gives_its_first_sample() {
        assert_eq!(
            parse_answer(200, &vector(&["0.25", "0.75"])),
            Answer::Value(0.25)
        );
    }

    #[test]
    fn a_scalar_gives_its_value() {
        let body =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}"#;
        assert_eq!(parse_answer(200, body), Answer::Value(42.0));
    }

    #[test]
    fn an_empty_vector_or_nan_is_no_data() {
        assert_eq!(parse_answer(200, &vector(&[])), Answer::NoData);
        assert_eq!(parse_answer(200, &vector(&["NaN"])), Answer::NoData);
    }

    #[test]
    fn infinities_are_values() {
        assert_eq!(
            parse_answer(200, &vector(&["+Inf"])),
            Answer::Value(f64::INFINITY)
        );
    }

    #[test]
    fn a_bad_query_is_rejected_with_prometheus_s_words() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected \")\""}"#;
        assert_eq!(
            parse_answer(400, body),
            Answer::Rejected(
                r#"invalid parameter "query": 1:5: parse error: unexpected ")""#.into()
            )
        );
        let body = r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#;
        assert_eq!(
            parse_answer(422, body),
            Answer::Rejected("many-to-many matching not allowed".into())
        );
        assert_eq!(
            parse_answer(400, "bad request from a proxy\nmore"),
            Answer::Rejected("bad request from a proxy".into())
        );
    }

    #[test]
    fn server_errors_are_unavailable() {
        let body = r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#;
        assert_eq!(
            parse_answer(503, body),
            Answer::Unavailable(
                "Prometheus answered 503: query timed out in expression evaluation".into()
            )
        );
        assert_eq!(
            parse_answer(502, ""),
            Answer::Unavailable("Prometheus answered 502".into())
        );
    }

    #[test]
    fn results_that_are_not_numbers_are_rejected() {
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
        assert!(matches!(parse_answer(200, matrix), Answer::Rejected(_)));
        let string = r#"{"status":"success","data":{"resultType":"string","result":[1,"hello"]}}"#;
        assert!(matches!(parse_answer(200, string), Answer::Rejected(_)));
    }

    #[test]
    fn unreadable_answers_are_unavailable() {
        assert!(matches!(
            parse_answer(200, "<html>login</html>"),
            Answer::Unavailable(_)
        ));
        assert!(matches!(
            parse_answer(200, &vector(&["fast"])),
            Answer::Unavailable(_)
        ));
        assert!(matches!(
            parse_answer(200, r#"{"status":"success"}"#),
            Answer::Unavailable(_)
        ));
    }

    #[test]
    fn addresses_get_the_query_path() {
        let url = |a| query_url(a).map(|u| u.to_string());
        assert_eq!(
            url("http://prometheus:9090"),
            Ok("http://prometheus:9090/api/v1/query".into())
        );
        assert_eq!(
            url("https://metrics.example/prom/"),
            Ok("https://metrics.example/prom/api/v1/query".into())
        );
        assert_eq!(
            url("127.0.0.1:9090"),
            Ok("http://127.0.0.1:9090/api/v1/query".into())
        );
        assert!(url("ftp://prometheus").is_err());
        assert!(url("http://bad host:9090").is_err());
    }
}
