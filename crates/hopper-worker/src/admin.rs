//! The administrative calls of [`Client`]: API keys (`/v1/keys`), namespace quotas, the audit
//! log and webhooks. They need an admin key once the server has keys.

use hopper_types::Timestamp;
use hopper_types::api_key::{ApiKey, Role};
use hopper_types::namespace::NamespaceSettings;
use serde::{Deserialize, Serialize};

use crate::{Client, Error};

/// A key to create (`POST /v1/keys`).
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    /// A label for people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The namespaces it sees (`["*"]` for all); the caller's namespace when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// When it stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Requests per second per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
}

/// A created key: its record, and its text (shown only this once).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// `hop_<id>_<secret>`.
    pub token: String,
}

#[derive(Deserialize)]
struct KeysAnswer {
    keys: Vec<ApiKey>,
}

/// Quotas to set on a namespace (`PUT /v1/namespaces/{name}`); `None` means no limit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quotas {
    /// Enqueues are refused while this many jobs wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_waiting_jobs: Option<u64>,
    /// Jobs per second per node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enqueue_per_s: Option<u32>,
}

impl Client {
    /// `POST /v1/keys`: creates a key.
    pub async fn create_key(&self, key: &NewKey) -> Result<CreatedKey, Error> {
        self.post_json(&["v1", "keys"], key).await
    }

    /// `GET /v1/keys`: the keys this admin manages, revoked ones included.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, Error> {
        let answer: KeysAnswer = self
            .call(self.http().get(self.url(&["v1", "keys"])))
            .await?;
        Ok(answer.keys)
    }

    /// `POST /v1/keys/{id}/revoke`: revokes a key.
    pub async fn revoke_key(&self, id: &str) -> Result<ApiKey, Error> {
        self.post_empty(&["v1", "keys", id, "revoke"]).await
    }

    /// `PUT /v1/namespaces/{name}`: sets a namespace's quotas.
    pub async fn set_quotas(
        &self,
        namespace: &str,
        quotas: &Quotas,
    ) -> Result<NamespaceSettings, Error> {
        let body = serde_json::to_vec(quotas).map_err(Error::Encode)?;
        self.call(
            self.http()
                .put(self.url(&["v1", "namespaces", namespace]))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
    }
}
