//! [`Authorized`]: the extractor every API handler takes, and [`Principal`], who the request
//! acts as and in which namespace.
//!
//! Order of the checks, each with its own answer: the key (401 `unauthenticated`: missing,
//! malformed, unknown, wrong secret, revoked, expired), the UI session's CSRF token on a
//! state-changing request (403), the key's rate limit (429 with `Retry-After`), the role against
//! the handler's [`Access`] level (403 `permission_denied`), then the namespace (404
//! `not_found`, the same answer as for a namespace that does not exist: a key learns nothing
//! about namespaces it cannot see).
//!
//! The namespace is the `X-Hopper-Namespace` header or the `namespace` query parameter
//! (browsers cannot set headers on an `EventSource`); without either, a key scoped to exactly
//! one namespace acts in it, any other in `default`.
//!
//! A long-lived answer (the event stream) is authorized when it starts; [`KeyWatch`] checks its
//! key again about every second, so revoking a key also ends its open streams.

use std::marker::PhantomData;
use std::time::Instant;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use hopper_types::DEFAULT_NAMESPACE;
use hopper_types::api_key::{ALL_NAMESPACES, Role, namespaces_include, namespaces_include_all};
use hopper_types::namespace::validate_namespace;

use crate::auth::key_ring::{KeyError, VerifyError};
use crate::auth::session::{SESSION_COOKIE, cookie, csrf_ok};
use crate::error::ApiError;
use crate::state::AppState;

/// The header naming the namespace of a request.
pub const NAMESPACE_HEADER: &str = "x-hopper-namespace";
/// The actor of requests while the server has no keys.
pub const ANONYMOUS: &str = "anonymous";

/// Who a request acts as, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key id, or `anonymous` while the server has no keys: the audit log's actor.
    pub actor: String,
    /// What the key may do.
    pub role: Role,
    /// The namespaces it sees (`*` for all).
    pub namespaces: Vec<String>,
    /// The namespace this request acts in (checked: the key sees it).
    pub namespace: String,
    /// Authenticated by the UI's session cookie rather than a bearer header.
    pub via_session: bool,
    /// The key's text as presented (none while the server has no keys): long-lived answers
    /// such as the event stream check it again as they go.
    pub token: Option<String>,
}

impl Principal {
    /// Whether the key sees `namespace`.
    pub fn sees(&self, namespace: &str) -> bool {
        namespaces_include(&self.namespaces, namespace)
    }

    /// Whether the key sees every namespace.
    pub fn sees_all(&self) -> bool {
        namespaces_include_all(&self.namespaces)
    }

    /// The namespaces a cross-namespace read may show: `None` for all.
    pub fn visible(&self) -> Option<&[String]> {
        (!self.sees_all()).then_some(self.namespaces.as_slice())
    }
}

/// An access level: the roles that may call a handler.
pub trait Access: Send + Sync + 'static {
    /// The roles allowed.
    const ROLES: &'static [Role];
    /// What the level is called in a 403's message.
    const WHAT: &'static str;
    /// Whether the key must see every namespace (for answers that span them, like metrics).
    const ALL_NAMESPACES: bool = false;
}

macro_rules! access {
    ($(#[$doc:meta])* $name:ident, $what:literal, [$($role:ident),+] $(, all = $all:literal)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Access for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),+];
            const WHAT: &'static str = $what;
            $(const ALL_NAMESPACES: bool = $all;)?
        }
    };
}

access!(
    /// Reading: every role.
    Read, "read", [Admin, Producer, Worker, Viewer]);
access!(
    /// Reading what spans every namespace (metrics, node activity): every role, with a key
    /// that sees every namespace.
    ReadAll, "read across namespaces", [Admin, Producer, Worker, Viewer], all = true);
access!(
    /// Enqueueing jobs and starting workflow runs.
    Enqueue, "enqueue", [Admin, Producer]);
access!(
    /// Cancelling a job or run.
    Cancel, "cancel", [Admin, Producer]);
access!(
    /// Leasing, heartbeating and acknowledging jobs.
    Work, "lease and acknowledge jobs", [Admin, Worker]);
access!(
    /// Adding steps to a running workflow (producers, and workers from inside a step).
    Steps, "add workflow steps", [Admin, Producer, Worker]);
access!(
    /// Administration: keys, queue changes, schedules, purges, retries, the audit log.
    Admin, "administer", [Admin]);

/// A request authorized at level `A`: handlers take `Authorized(principal): CanRead` (etc.).
#[derive(Debug, Clone)]
pub struct Authorized<A: Access>(pub Principal, pub PhantomData<A>);

/// Any role.
pub type CanRead = Authorized<Read>;
/// Any role, seeing every namespace.
pub type CanReadAll = Authorized<ReadAll>;
/// Admin or producer.
pub type CanEnqueue = Authorized<Enqueue>;
/// Admin or producer.
pub type CanCancel = Authorized<Cancel>;
/// Admin or worker.
pub type CanWork = Authorized<Work>;
/// Admin, producer or worker.
pub type CanSteps = Authorized<Steps>;
/// Admin only.
pub type CanAdmin = Authorized<Admin>;

impl<A: Access> FromRequestParts<AppState> for Authorized<A> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let mut principal = authenticate(parts, st).await?;
        if !A::ROLES.contains(&principal.role) {
            return Err(ApiError::forbidden(format!(
                "a {} key may not {}",
                principal.role.as_str(),
                A::WHAT
            )));
        }
        if A::ALL_NAMESPACES && !principal.sees_all() {
            return Err(ApiError::forbidden(format!(
                "to {} the key must see every namespace",
                A::WHAT
            )));
        }
        principal.namespace = resolve_namespace(parts, &principal)?;
        Ok(Authorized(principal, PhantomData))
    }
}

/// Who the request is from: see the module doc for the checks. The namespace is left empty.
pub async fn authenticate(parts: &Parts, st: &AppState) -> Result<Principal, ApiError> {
    let ring = st.key_ring();
    if !ring.enabled().await? {
        return Ok(Principal {
            actor: ANONYMOUS.to_string(),
            role: Role::Admin,
            namespaces: vec![ALL_NAMESPACES.to_string()],
            namespace: String::new(),
            via_session: false,
            token: None,
        });
    }
    let (token, via_session) = match bearer(&parts.headers) {
        Some(t) => (t, false),
        None => match cookie(&parts.headers, SESSION_COOKIE) {
            Some(t) if !t.is_empty() => (t, true),
            _ => {
                return Err(ApiError::unauthenticated(
                    "an API key is required: send `Authorization: Bearer <key>`",
                ));
            }
        },
    };
    let now = st.store().clock().now();
    let key = ring.verify(token, now).await.map_err(|e| match e {
        VerifyError::Key(k @ (KeyError::Invalid | KeyError::Revoked | KeyError::Expired)) => {
            ApiError::unauthenticated(k.to_string())
        }
        VerifyError::Store(s) => ApiError::from(s),
    })?;
    if via_session && !parts.method.is_safe() && !csrf_ok(&parts.headers) {
        return Err(ApiError::forbidden(
            "missing or wrong CSRF token: send the hopper_csrf cookie's value as X-CSRF-Token",
        ));
    }
    if let Some(rate) = key.rate_limit_per_s
        && let Err(wait) = st.key_limits().take(&key.id, rate, 1, Instant::now())
    {
        return Err(ApiError::rate_limited(
            format!("this key may make {rate} requests per second"),
            wait,
        ));
    }
    Ok(Principal {
        actor: key.id,
        role: key.role,
        namespaces: key.namespaces,
        namespace: String::new(),
        via_session,
        token: Some(token.to_string()),
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn resolve_namespace(parts: &Parts, p: &Principal) -> Result<String, ApiError> {
    let from_header = match parts.headers.get(NAMESPACE_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("namespace", "namespace must be ASCII"))?
                .to_string(),
        ),
        None => None,
    };
    // Most requests have no `namespace` parameter: parse the query only when it may.
    let from_query = parts
        .uri
        .query()
        .filter(|q| q.contains("namespace"))
        .and_then(|_| Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).ok())
        .and_then(|Query(pairs)| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "namespace")
                .map(|(_, v)| v)
        });
    let asked = match (from_header, from_query) {
        (Some(h), Some(q)) if h != q => {
            return Err(ApiError::invalid(
                "namespace",
                "the X-Hopper-Namespace header and the namespace parameter differ",
            ));
        }
        (Some(h), _) => Some(h),
        (None, q) => q,
    };
    let ns = match asked {
        Some(ns) => {
            validate_namespace("namespace", &ns)?;
            ns
        }
        None => match p.namespaces.as_slice() {
            [only] if only != ALL_NAMESPACES => only.clone(),
            _ => DEFAULT_NAMESPACE.to_string(),
        },
    };
    if !p.sees(&ns) {
        return Err(ApiError::not_found("no such namespace"));
    }
    Ok(ns)
}

/// How often a long-lived answer checks that its key still holds.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Watches the key of a long-lived answer (the event stream): revoking or expiring the key, or
/// creating the first key under an anonymous stream, ends it within about a second.
pub struct KeyWatch {
    state: AppState,
    token: Option<String>,
    checked: Instant,
}

impl KeyWatch {
    /// Watches `p`'s key.
    pub fn new(state: AppState, p: &Principal) -> KeyWatch {
        KeyWatch {
            state,
            token: p.token.clone(),
            checked: Instant::now(),
        }
    }

    /// False once the key no longer authenticates. Checked at most every second; a store
    /// that cannot be read keeps the answer going (it is retried next time).
    pub async fn still_valid(&mut self) -> bool {
        if self.checked.elapsed() < RECHECK {
            return true;
        }
        self.checked = Instant::now();
        let ring = self.state.key_ring();
        match &self.token {
            None => !matches!(ring.enabled().await, Ok(true)),
            Some(t) => {
                let now = self.state.store().clock().now();
                !matches!(ring.verify(t, now).await, Err(VerifyError::Key(_)))
            }
        }
    }
}
