//! Authentication and authorization: who is calling, what their role allows, which namespace
//! they act in, and how fast they may go.
//!
//! - [`issue`]: creating keys (random, or installed from a chosen text).
//! - [`key_ring`]: the API keys, cached from the store, and checking a presented key.
//! - [`principal`]: the [`Authorized`] extractor every handler takes: it authenticates the
//!   request (bearer key or UI session cookie), checks the role against the handler's
//!   [`Access`] level, resolves the namespace, enforces the key's rate limit and, for cookie
//!   sessions, the CSRF token.
//! - [`rate_limit`]: token buckets per key and per namespace.
//! - [`session`]: the UI's session and CSRF cookies.
//!
//! While the store holds no key at all, every request acts as `anonymous` with the admin role
//! in any namespace: the loopback-only mode of a fresh install. Once a key exists (even if it
//! was revoked since), every request needs one.

pub mod issue;
pub mod key_ring;
pub mod principal;
pub mod rate_limit;
pub mod session;

pub use key_ring::KeyRing;
pub use principal::{
    Access, Authorized, CanAdmin, CanCancel, CanEnqueue, CanRead, CanReadAll, CanSteps, CanWork,
    Principal,
};
