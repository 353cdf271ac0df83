//! The live event stream: every job transition of the event log, fanned out to subscribers.
//!
//! ```text
//!   store (job_events) ──tail──▶ EventTailer ──publish──▶ EventHub ──▶ subscribers (SSE, WS)
//!                                                        (history ring + broadcast)
//! ```
//!
//! One [`EventTailer`] per server reads new rows of the store's event log once, renders each
//! as a [`Frame`] once, and hands them to the [`EventHub`], whatever the number of
//! subscribers. Because it tails the shared log, a node shows the transitions made by every
//! node. The hub keeps a bounded history (what `Last-Event-ID` resumes from) and broadcasts
//! batches on a bounded channel: publishing never waits for anybody. A subscriber that falls
//! behind the channel catches up from the history, and one that falls behind the history too
//! is told so with a `gap` and skipped ahead; either way, nobody else notices.
//!
//! - [`frame`]: one event rendered for the wire, and the subscription [`EventFilter`].
//! - [`hub`]: the history ring and the broadcast.
//! - [`tailer`]: the task that reads the log, waiting briefly on gaps that may still fill.
//! - [`subscription`]: one subscriber's position, filter and catching up.

pub mod frame;
pub mod hub;
pub mod subscription;
pub mod tailer;

pub use frame::{EventFilter, Frame};
pub use hub::EventHub;
pub use subscription::{Delivery, Subscription};
pub use tailer::{EventTailer, EventsConfig};
