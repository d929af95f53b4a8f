//! The reconciler: observe (watch caches), ensure the children (pure
//! builders, create the missing ones), read the master's statistics, derive
//! the status (pure phase machine) and write it only when something changed.
//!
//! | module | what | uses |
//! |---|---|---|
//! | [`run`] | the watches, caches and the kube-runtime `Controller` | `reconcile`, `context` |
//! | [`reconcile`] | one reconcile: observe → ensure children → read statistics → check the start deadline → write status; `error_policy` | the steps, `context` |
//! | [`observe`], [`children`], [`stats_read`], [`start_deadline`], [`write`] | the steps | `context`, `memory`, `model`, `state`, `pod_health` |
//! | [`state`], [`conditions`] | the phase machine (pure): one function per condition | `model`, `pod_health` |
//! | [`context`] | shared state (`Context`), `Error` and its Event reasons, publishing Events | `memory` |
//! | [`memory`] | what is remembered per test between reconciles | `cache`, `model` |
//! | [`model`] | the children and what a reconcile observed (data only) | `pod_health` |
//! | [`cache`], [`pod_health`] | a uid-keyed cache; classifying pods (pure) | — |
//!
//! No module uses one that uses it back (`olm-tests/tests/source_layout.rs`).

pub mod cache;
pub mod children;
pub mod conditions;
pub mod context;
pub mod memory;
pub mod model;
pub mod observe;
pub mod pod_health;
pub mod reconcile;
pub mod run;
pub mod start_deadline;
pub mod state;
pub mod stats_read;
pub mod write;

pub use context::{Context, Error};
pub use reconcile::{error_policy, reconcile};
