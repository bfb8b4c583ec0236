//! Credentials for metric sources: configured on the operator (a file mounted from a Secret
//! in its own namespace, `--analysis-credentials`), never in a Microservice, which only names
//! a set. Each set says which namespaces may use it. Weir reads no Secret through the API.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The file: `credentials: [{name, namespaces, bearerToken | basicAuth | oauth2, headers}]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    credentials: Vec<CredentialSet>,
}

/// One named set of credentials.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSet {
    pub name: String,
    /// Namespaces whose Microservices may name this set: exact names, `prefix-*`, or `*`.
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    bearer_token: Option<String>,
    #[serde(default)]
    basic_auth: Option<BasicAuth>,
    #[serde(default)]
    oauth2: Option<OAuth2>,
    /// Headers sent with every request, such as `X-Scope-OrgID` for Mimir or Cortex.
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    username: String,
    password: String,
}

/// OAuth2 client credentials: a token from `tokenURL`, kept until shortly before it expires.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OAuth2 {
    #[serde(rename = "tokenURL")]
    token_url: String,
    #[serde(rename = "clientID")]
    client_id: String,
    client_secret: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// Why the credentials file cannot be used; the start stops with it.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read the analysis credentials {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the analysis credentials {path} do not parse: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("the analysis credentials {path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

/// The operator's credential sets, and the OAuth2 tokens fetched so far.
#[derive(Clone)]
pub struct Credentials {
    path: PathBuf,
    sets: Arc<BTreeMap<String, CredentialSet>>,
    tokens: Arc<tokio::sync::Mutex<HashMap<String, (String, Instant)>>>,
}

/// Names only: a set's secrets never reach a log.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("path", &self.path)
            .field("sets", &self.sets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The name only.
impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSet({:?})", self.name)
    }
}

impl Credentials {
    /// Reads and checks `path` (YAML or JSON).
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Credentials::parse(path, &text)
    }

    /// For clap: `--analysis-credentials FILE`.
    pub fn from_arg(path: &str) -> Result<Credentials, String> {
        Credentials::load(Path::new(path)).map_err(|e| e.to_string())
    }

    fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
        let file: CredentialsFile =
            serde_yaml::from_str(text).map_err(|source| CredentialsError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let invalid = |problem: String| CredentialsError::Invalid {
            path: path.to_path_buf(),
            problem,
        };
        let mut sets = BTreeMap::new();
        for set in file.credentials {
            set.check().map_err(invalid)?;
            let name = set.name.clone();
            if sets.insert(name.clone(), set).is_some() {
                return Err(invalid(format!("two sets are named {name:?}")));
            }
        }
        Ok(Credentials {
            path: path.to_path_buf(),
            sets: Arc::new(sets),
            tokens: Arc::default(),
        })
    }

    /// The set `name`, if Microservices of `namespace` may use it; else why not.
    pub fn permitted(&self, name: &str, namespace: &str) -> Result<&CredentialSet, String> {
        let Some(set) = self.sets.get(name) else {
            return Err(format!(
                "credential set {name:?} is not configured on the operator (--analysis-credentials)"
            ));
        };
        if !set
            .namespaces
            .iter()
            .any(|p| namespace_matches(p, namespace))
        {
            return Err(format!(
                "namespace {namespace} may not use credential set {name:?}: the operator allows it for {}",
                if set.namespaces.is_empty() {
                    "no namespace".to_string()
                } else {
                    set.namespaces.join(", ")
                }
            ));
        }
        Ok(set)
    }

    /// `request` with `set`'s headers and authorization; an OAuth2 set fetches (or reuses)
    /// a token.
    pub async fn authorize(
        &self,
        client: &reqwest::Client,
        set: &CredentialSet,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, String> {
        let request = set.headers.iter().fold(request, |request, (name, value)| {
            request.header(name, value)
        });
        Ok(if let Some(token) = &set.bearer_token {
            request.bearer_auth(token)
        } else if let Some(basic) = &set.basic_auth {
            request.basic_auth(&basic.username, Some(&basic.password))
        } else if let Some(oauth2) = &set.oauth2 {
            request.bearer_auth(self.token(client, &set.name, oauth2).await?)
        } else {
            request
        })
    }

    async fn token(
        &self,
        client: &reqwest::Client,
        set: &str,
        oauth2: &OAuth2,
    ) -> Result<String, String> {
        let mut tokens = self.tokens.lock().await;
        if let Some((token, until)) = tokens.get(set)
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch_token(client, oauth2).await.map_err(|why| {
            format!(
                "credential set {set:?}: no OAuth2 token from {}: {why}",
                oauth2.token_url
            )
        })?;
        // Renewed a little before it expires, so that no query carries a stale one.
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(30));
        tokens.insert(set.to_string(), (token.clone(), until));
        Ok(token)
    }
}

impl CredentialSet {
    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() {
            return Err("a set has an empty name".into());
        }
        let kinds = [
            self.bearer_token.is_some(),
            self.basic_auth.is_some(),
            self.oauth2.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(format!(
                "set {name:?} sets more than one of bearerToken, basicAuth and oauth2"
            ));
        }
        for (header, value) in &self.headers {
            let valid = reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !valid || header.eq_ignore_ascii_case("authorization") {
                return Err(format!("set {name:?}: header {header:?} cannot be sent"));
            }
        }
        Ok(())
    }
}

/// `pattern` is a namespace, `prefix*`, or `*`.
pub fn namespace_matches(pattern: &str, namespace: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => namespace.starts_with(prefix),
        None => pattern == namespace,
    }
}

/// The client-credentials grant (RFC 6749 §4.4), the client authenticated with HTTP Basic.
async fn fetch_token(
    client: &reqwest::Client,
    oauth2: &OAuth2,
) -> Result<(String, Duration), String> {
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: String,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let mut form = vec![("grant_type", "client_credentials".to_string())];
    if !oauth2.scopes.is_empty() {
        form.push(("scope", oauth2.scopes.join(" ")));
    }
    let response = client
        .post(&oauth2.token_url)
        .basic_auth(&oauth2.client_id, Some(&oauth2.client_secret))
        .form(&form)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| super::why(&e, Duration::from_secs(10)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the token endpoint answered {status}"));
    }
    let answer: TokenAnswer = response
        .json()
        .await
        .map_err(|e| format!("the token endpoint's answer is not a token: {e}"))?;
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
    Ok((answer.access_token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Credentials, CredentialsError> {
        Credentials::parse(Path::new("/etc/weir/credentials.yaml"), text)
    }

    const FILE: &str = r#"
credentials:
  - name: mimir
    namespaces: [shop, "team-*"]
    basicAuth: {username: weir, password: s3cret}
    headers: {X-Scope-OrgID: tenant-a}
  - name: grafana-cloud
    namespaces: ["*"]
    bearerToken: glc_token
"#;

    #[test]
    fn a_set_is_permitted_only_in_the_namespaces_it_names() {
        let credentials = parsed(FILE).unwrap();
        assert!(credentials.permitted("mimir", "shop").is_ok());
        assert!(credentials.permitted("mimir", "team-a").is_ok());
        let refused = credentials.permitted("mimir", "other").unwrap_err();
        assert_eq!(
            refused,
            "namespace other may not use credential set \"mimir\": the operator allows it for shop, team-*"
        );
        assert!(credentials.permitted("grafana-cloud", "anything").is_ok());
        let unknown = credentials.permitted("nope", "shop").unwrap_err();
        assert!(unknown.contains("not configured"), "{unknown}");
    }

    #[tokio::test]
    async fn requests_carry_the_authorization_and_the_static_headers() {
        let credentials = parsed(FILE).unwrap();
        let client = reqwest::Client::new();
        let sent = |set: &'static str| {
            let credentials = credentials.clone();
            let client = client.clone();
            async move {
                let set = credentials.permitted(set, "shop").unwrap();
                let request = client.get("http://prometheus.monitoring.svc/api/v1/query");
                let request = credentials.authorize(&client, set, request).await.unwrap();
                request.build().unwrap().headers().clone()
            }
        };
        let mimir = sent("mimir").await;
        assert_eq!(mimir["X-Scope-OrgID"], "tenant-a");
        assert_eq!(mimir["Authorization"], "Basic d2VpcjpzM2NyZXQ=");
        let cloud = sent("grafana-cloud").await;
        assert_eq!(cloud["Authorization"], "Bearer glc_token");
    }

    #[test]
    fn a_file_weir_cannot_use_stops_the_start_with_the_reason() {
        let two_kinds =
            "credentials: [{name: a, bearerToken: t, basicAuth: {username: u, password: p}}]";
        let error = parsed(two_kinds).err().unwrap().to_string();
        assert!(error.contains("more than one of bearerToken"), "{error}");
        let twice = "credentials: [{name: a}, {name: a}]";
        assert!(
            parsed(twice)
                .err()
                .unwrap()
                .to_string()
                .contains("two sets")
        );
        let typo = "credentials: [{name: a, bearer: t}]";
        assert!(
            parsed(typo)
                .err()
                .unwrap()
                .to_string()
                .contains("unknown field")
        );
        let header = "credentials: [{name: a, headers: {Authorization: x}}]";
        assert!(
            parsed(header)
                .err()
                .unwrap()
                .to_string()
                .contains("cannot be sent")
        );
    }

    #[test]
    fn debug_output_shows_names_not_secrets() {
        let shown = format!("{:?}", parsed(FILE).unwrap());
        assert!(shown.contains("mimir") && !shown.contains("s3cret") && !shown.contains("glc_"));
    }
}
