//! The reconciler: observe (watch caches), ensure the children (pure
//! builders, create the missing ones), read the master's statistics, derive
//! the status (pure phase machine) and write it only when something changed.

pub mod cache;
pub mod children;
pub mod conditions;
pub mod observe;
pub mod pod_health;
pub mod reconcile;
pub mod run;
pub mod state;
pub mod stats_read;
pub mod write;

pub use reconcile::{Context, Error, error_policy, reconcile};
