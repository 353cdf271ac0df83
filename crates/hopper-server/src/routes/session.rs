//! The web UI's login: `POST /v1/session` exchanges a key for the session and CSRF cookies
//! (see [`crate::auth::session`]), `GET /v1/session` says who the caller is and whether the
//! server needs a key at all, `DELETE /v1/session` logs out.

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use hopper_types::api_key::Role;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::auth::principal::authenticate;
use crate::auth::session::{end_cookies, start_cookies};
use crate::body::JsonBody;
use crate::error::{ApiError, ErrorBody, json_response};
use crate::state::AppState;

/// The body of `POST /v1/session`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The key's text, `hop_<id>_<secret>`.
    pub key: String,
}

/// Who the caller is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionAnswer {
    /// Whether the server needs a key (false until the first key is created).
    pub auth_enabled: bool,
    /// Whether the request carried a usable key (always true while no key is needed).
    pub authenticated: bool,
    /// The key id, or `anonymous`; absent when not authenticated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Its role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The namespaces it sees (`*` for all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
}

/// Who the caller is, by bearer key, session cookie, or anonymous while the server has no
/// keys. Answers 200 either way (`authenticated` says which), so a page can ask before it
/// has logged in.
#[utoipa::path(get, path = "/v1/session", tag = "security",
    responses((status = 200, body = SessionAnswer)))]
pub async fn whoami(State(st): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    let auth_enabled = st.key_ring().enabled().await?;
    let answer = match authenticate(&parts, &st).await {
        Ok(p) => SessionAnswer {
            auth_enabled,
            authenticated: true,
            actor: Some(p.actor),
            role: Some(p.role),
            namespaces: Some(p.namespaces),
        },
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => SessionAnswer {
            auth_enabled,
            authenticated: false,
            actor: None,
            role: None,
            namespaces: None,
        },
        Err(e) => return Err(e),
    };
    Ok(json_response(StatusCode::OK, &answer))
}

/// Log in with a key: sets the session cookie (HttpOnly, SameSite=Strict, Secure over TLS)
/// and the CSRF cookie whose value state-changing calls echo in `X-CSRF-Token`.
#[utoipa::path(post, path = "/v1/session", tag = "security",
    request_body = LoginRequest,
    responses((status = 200, body = SessionAnswer), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let key = st
        .key_ring()
        .verify(req.key.trim(), st.store().clock().now())
        .await
        .map_err(|e| match e {
            crate::auth::key_ring::VerifyError::Key(k) => ApiError::unauthenticated(k.to_string()),
            crate::auth::key_ring::VerifyError::Store(s) => ApiError::from(s),
        })?;
    let mut csrf = [0u8; 32];
    rand::rng().fill_bytes(&mut csrf);
    let csrf = hopper_types::api_key::hex(&csrf);
    let auth = &st.config().auth;
    let mut resp = json_response(
        StatusCode::OK,
        &SessionAnswer {
            auth_enabled: true,
            authenticated: true,
            actor: Some(key.id),
            role: Some(key.role),
            namespaces: Some(key.namespaces),
        },
    );
    for c in start_cookies(req.key.trim(), &csrf, auth.session_ttl_s, auth.tls) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// Log out: clears the cookies.
#[utoipa::path(delete, path = "/v1/session", tag = "security",
    responses((status = 204, description = "Logged out")))]
pub async fn logout(State(st): State<AppState>) -> Response {
    let mut resp = axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT);
    for c in end_cookies(st.config().auth.tls) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}
