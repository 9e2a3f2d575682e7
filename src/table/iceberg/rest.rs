//! An Iceberg REST catalog client: the calls a writer needs (config, namespace, load, create,
//! commit), a bearer token or OAuth2 client credentials. The server writes the metadata files;
//! target-s3 writes the data files, manifests and manifest lists into the table's location.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::catalog::Current;

/// How long one catalog request may take.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Rest {
    client: reqwest::Client,
    /// `<uri>/v1/` and the prefix the server's config names.
    base: String,
    token: Option<String>,
}

/// Where the REST catalog is and how to sign in.
pub struct Options<'a> {
    pub uri: &'a str,
    pub warehouse: Option<&'a str>,
    pub token: Option<&'a str>,
    /// `client_id:client_secret`, exchanged for a token at `<uri>/v1/oauth/tokens`.
    pub credential: Option<&'a str>,
    pub scope: &'a str,
}

impl Rest {
    pub async fn open(options: &Options<'_>) -> Result<Rest, String> {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| e.to_string())?;
        let root = options.uri.trim_end_matches('/');
        let mut rest = Rest { client, base: format!("{root}/v1/"), token: options.token.map(str::to_string) };
        if let Some(credential) = options.credential {
            let (id, secret) = credential.split_once(':').unwrap_or(("", credential));
            let form = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", id)
                .append_pair("client_secret", secret)
                .append_pair("scope", options.scope)
                .finish();
            let request = rest
                .client
                .post(format!("{root}/v1/oauth/tokens"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form);
            let answer = rest.send(request, "signing in (iceberg_catalog_credential)").await?;
            rest.token = Some(
                answer["access_token"]
                    .as_str()
                    .ok_or("signing in (iceberg_catalog_credential): the answer has no access_token")?
                    .to_string(),
            );
        }
        let mut config = format!("{root}/v1/config");
        if let Some(warehouse) = options.warehouse {
            config += &format!(
                "?warehouse={}",
                url::form_urlencoded::byte_serialize(warehouse.as_bytes()).collect::<String>()
            );
        }
        let answer = rest.send(rest.client.get(config), "reading the catalog's config").await?;
        if let Some(prefix) = answer["overrides"]["prefix"].as_str().filter(|p| !p.is_empty()) {
            rest.base = format!("{root}/v1/{}/", prefix.trim_matches('/'));
        }
        Ok(rest)
    }

    /// Sends `request` (signed), returning the answer's JSON for a 2xx; other statuses are
    /// an error naming `what`, the status and the server's message.
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
        match self.call(request, what).await? {
            (status, body) if status.is_success() => Ok(body),
            (status, body) => Err(failure(what, status, &body)),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(StatusCode, Value), String> {
        let request = match &self.token {
            Some(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        };
        let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{what}: {e}"))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    fn post(&self, url: String, body: &Value) -> reqwest::RequestBuilder {
        self.client.post(url).header(CONTENT_TYPE, "application/json").body(body.to_string())
    }

    fn namespace_path(namespace: &str) -> String {
        let levels: Vec<&str> = namespace.split('.').collect();
        url::form_urlencoded::byte_serialize(levels.join("\u{1f}").as_bytes()).collect()
    }

    fn table_url(&self, namespace: &str, name: &str) -> String {
        format!("{}namespaces/{}/tables/{name}", self.base, Self::namespace_path(namespace))
    }

    pub async fn load(&self, namespace: &str, name: &str) -> Result<Option<Current>, String> {
        let what = format!("loading the table {namespace}.{name}");
        match self.call(self.client.get(self.table_url(namespace, name)), &what).await? {
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) if status.is_success() => current(&body, &what).map(Some),
            (status, body) => Err(failure(&what, status, &body)),
        }
    }

    /// Creates the table from `metadata`'s schema, location and properties (the server gives
    /// it its ids); `None` when it exists already.
    pub async fn create(&self, namespace: &str, name: &str, metadata: &Value) -> Result<Option<Current>, String> {
        let levels: Vec<&str> = namespace.split('.').collect();
        let what = format!("creating the namespace {namespace}");
        match self.call(self.post(format!("{}namespaces", self.base), &json!({"namespace": levels})), &what).await? {
            (status, _) if status.is_success() || status == StatusCode::CONFLICT => {}
            (status, body) => return Err(failure(&what, status, &body)),
        }
        let schema = metadata["schemas"][0].clone();
        let request = json!({
            "name": name,
            "location": metadata["location"],
            "schema": schema,
            "partition-spec": metadata["partition-specs"][0],
            "properties": metadata["properties"],
            "stage-create": false,
        });
        let what = format!("creating the table {namespace}.{name}");
        let url = format!("{}namespaces/{}/tables", self.base, Self::namespace_path(namespace));
        match self.call(self.post(url, &request), &what).await? {
            (StatusCode::CONFLICT, _) => Ok(None),
            (status, body) if status.is_success() => current(&body, &what).map(Some),
            (status, body) => Err(failure(&what, status, &body)),
        }
    }

    /// Commits `request` (requirements and updates): the new metadata, `None` when a
    /// requirement failed (another writer committed first).
    pub async fn commit(&self, namespace: &str, name: &str, request: &Value) -> Result<Option<Current>, String> {
        let what = format!("committing to the table {namespace}.{name}");
        let mut request = request.clone();
        request["identifier"] = json!({"namespace": namespace.split('.').collect::<Vec<_>>(), "name": name});
        match self.call(self.post(self.table_url(namespace, name), &request), &what).await? {
            (StatusCode::CONFLICT, _) => Ok(None),
            (status, body) if status.is_success() => current(&body, &what).map(Some),
            (status, body) => Err(failure(&what, status, &body)),
        }
    }
}

fn current(body: &Value, what: &str) -> Result<Current, String> {
    let uri =
        body["metadata-location"].as_str().ok_or_else(|| format!("{what}: the answer has no metadata-location"))?;
    Ok((uri.to_string(), body["metadata"].clone()))
}

fn failure(what: &str, status: StatusCode, body: &Value) -> String {
    let message = body["error"]["message"].as_str().map_or_else(|| body.to_string(), str::to_string);
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            " (check iceberg_catalog_token / iceberg_catalog_credential and the principal's grants)"
        }
        _ => "",
    };
    format!("{what}: the catalog answered {status}: {message}{hint}")
}
