//! API key administration: create (the key's text is answered once), list, read, revoke.
//!
//! An admin key hands out only what it holds: the namespaces of a new key must be among its
//! own (`*` only from a key that sees every namespace), and it lists, reads and revokes only
//! keys whose namespaces it sees entirely; other keys answer 404 like unknown ones.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use hopper_types::Timestamp;
use hopper_types::api_key::{ALL_NAMESPACES, ApiKey, Role};
use hopper_types::namespace::validate_namespace;
use serde::{Deserialize, Serialize};

use crate::auth::issue::{KeySpec, issue};
use crate::auth::{Authorized, CanAdmin, Principal};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::error::{ApiError, ErrorBody, json_response};
use crate::routes::audit;
use crate::routes::jobs::EmptyBody;
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 128;
const MAX_NAMESPACES: usize = 100;

/// The body of `POST /v1/keys`. Unknown fields are refused.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// A label for people, 1..128 characters.
    pub name: String,
    /// `admin`, `producer`, `worker` or `viewer`.
    pub role: Role,
    /// The namespaces it sees (`["*"]` for all); the request's namespace when absent.
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// When it stops working; never when absent.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Requests per second per node; unlimited when absent.
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
}

/// `POST /v1/keys` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// Its text, `hop_<id>_<secret>`: shown only now, stored nowhere.
    pub token: String,
}

/// `GET /v1/keys` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeysAnswer {
    /// By creation time.
    pub keys: Vec<ApiKey>,
}

/// The `{id}` of a key route.
#[derive(Debug, Clone)]
pub struct KeyIdPath(pub String);

impl FromRequestParts<AppState> for KeyIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("id", e.body_text()))?;
        if raw.len() != 16 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid("id", "a key id is 16 hex digits"));
        }
        Ok(KeyIdPath(raw))
    }
}

fn check(req: KeyRequest, p: &Principal, now: Timestamp) -> Result<KeySpec, ApiError> {
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let namespaces = req.namespaces.unwrap_or_else(|| vec![p.namespace.clone()]);
    if namespaces.is_empty() || namespaces.len() > MAX_NAMESPACES {
        return Err(ApiError::invalid(
            "namespaces",
            format!("give 1 to {MAX_NAMESPACES} namespaces"),
        ));
    }
    for (i, ns) in namespaces.iter().enumerate() {
        let field = format!("namespaces[{i}]");
        if ns == ALL_NAMESPACES {
            if !p.sees_all() {
                return Err(ApiError::forbidden(
                    "only a key that sees every namespace may create one that does",
                )
                .with_field(field));
            }
            continue;
        }
        validate_namespace(&field, ns)?;
        if !p.sees(ns) {
            return Err(ApiError::forbidden(format!(
                "a key may only grant namespaces it sees itself; `{ns}` is not among them"
            ))
            .with_field(field));
        }
    }
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    if req.rate_limit_per_s == Some(0) {
        return Err(ApiError::invalid(
            "rate_limit_per_s",
            "rate_limit_per_s must be at least 1 (leave it out for no limit)",
        ));
    }
    Ok(KeySpec {
        name,
        role: req.role,
        namespaces,
        expires_at: req.expires_at,
        rate_limit_per_s: req.rate_limit_per_s,
    })
}

/// Whether `p` may see (and manage) `key`: it sees all the key's namespaces.
fn manages(p: &Principal, key: &ApiKey) -> bool {
    p.sees_all()
        || key
            .namespaces
            .iter()
            .all(|n| n != ALL_NAMESPACES && p.sees(n))
}

/// Create a key. The answer's `token` is the only time its text is shown.
#[utoipa::path(post, path = "/v1/keys", tag = "security",
    request_body = KeyRequest,
    responses(
        (status = 201, body = CreatedKey),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn create_key(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    JsonBody(req): JsonBody<KeyRequest>,
) -> Result<Response, ApiError> {
    let spec = check(req, &p, st.store().clock().now())?;
    let (key, token) = issue(st.store().as_ref(), spec, &p.actor).await?;
    st.key_ring().invalidate();
    Ok(json_response(
        StatusCode::CREATED,
        &CreatedKey { key, token },
    ))
}

/// Every key this admin manages, revoked ones included.
#[utoipa::path(get, path = "/v1/keys", tag = "security",
    responses(
        (status = 200, body = KeysAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
) -> Result<Response, ApiError> {
    let keys = st
        .store()
        .api_key_list()
        .await?
        .into_iter()
        .map(|k| k.key)
        .filter(|k| manages(&p, k))
        .collect();
    Ok(json_response(StatusCode::OK, &KeysAnswer { keys }))
}

/// One key.
#[utoipa::path(get, path = "/v1/keys/{id}", tag = "security",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_key(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    KeyIdPath(id): KeyIdPath,
) -> Result<Response, ApiError> {
    let key = find(&st, &p, &id).await?;
    Ok(json_response(StatusCode::OK, &key))
}

/// Revoke a key: refused from now on (within a second on other nodes). Revoking twice keeps
/// the first time.
#[utoipa::path(post, path = "/v1/keys/{id}/revoke", tag = "security",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, body = ApiKey),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(st): State<AppState>,
    Authorized(p, _): CanAdmin,
    KeyIdPath(id): KeyIdPath,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<Response, ApiError> {
    find(&st, &p, &id).await?;
    let mut entry = audit::entry(&st, &p, "key.revoke", &id, serde_json::json!({}));
    entry.namespace = String::new();
    let key = st
        .store()
        .api_key_revoke(&id, st.store().clock().now(), entry)
        .await
        .map_err(not_found_as_key)?;
    st.key_ring().invalidate();
    Ok(json_response(StatusCode::OK, &key))
}

async fn find(st: &AppState, p: &Principal, id: &str) -> Result<ApiKey, ApiError> {
    st.store()
        .api_key_list()
        .await?
        .into_iter()
        .map(|k| k.key)
        .find(|k| k.id == id && manages(p, k))
        .ok_or_else(|| ApiError::not_found("no such key"))
}

fn not_found_as_key(e: hopper_store::StoreError) -> ApiError {
    match e {
        hopper_store::StoreError::NotFound => ApiError::not_found("no such key"),
        other => other.into(),
    }
}
