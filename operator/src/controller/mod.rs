//! The reconciler: read (from watch caches), build (pure builders), apply
//! (create missing children), derive status (pure phase machine), write only
//! when something changed.

pub mod pod_health;
pub mod reconcile;
pub mod run;
pub mod state;

pub use reconcile::{Context, Error, error_policy, reconcile};
