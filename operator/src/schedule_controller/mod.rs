//! The LocustSchedule controller (issue #16): creates a LocustTest per due
//! time of a schedule, like Kubernetes' CronJob controller creates Jobs.
//! Kept apart from the LocustTest reconciler ([`crate::controller`]), which
//! starts it next to its own ([`run::run`]) under the same leadership.
//!
//! | module | what | uses |
//! |---|---|---|
//! | [`decide`] | the decision, pure: schedule + owned tests + now → plan (creates, deletes, status, Events, requeue) | `crate::schedule` |
//! | [`reconcile`] | one reconcile: read the caches, decide, apply the plan (write status only on change); `Error` and `error_policy` | `decide`, `context` |
//! | [`context`] | shared state: client, caches, recorder, clock, what this process wrote and is waiting to see | `decide` |
//! | [`run`] | the watches (schedules; their tests, label-selected and trimmed), the CRD check, the `Controller` | `reconcile`, `context` |

pub mod context;
pub mod decide;
pub mod reconcile;
pub mod run;

pub use decide::{Plan, decide};
