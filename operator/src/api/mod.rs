//! The API types, and nothing else: `LocustTest` (one module per served
//! version plus the status they share) and `LocustSchedule` ([`schedule`]).
//! Conversion lives in [`crate::conversion`], validation in
//! [`crate::validation`], the CRD assembly in [`crate::crd`].

pub mod schedule;
pub mod status;
pub mod v1;
pub mod v2;
pub mod vocabulary;

pub use schedule::{LocustSchedule, LocustScheduleSpec};
pub use status::{LocustTestStatus, Phase, TestResult};
pub use v2::{LocustTest, LocustTestSpec};
pub use vocabulary::{
    condition_reason, condition_type, event_reason, schedule_condition_reason,
    schedule_condition_type, schedule_event_reason,
};

pub const GROUP: &str = "locust.io";
pub const KIND: &str = "LocustTest";
pub const PLURAL: &str = "locusttests";
pub const CRD_NAME: &str = "locusttests.locust.io";

/// `apiVersion` of `LocustSchedule`.
pub const SCHEDULE_API_VERSION: &str = "locust.io/v1alpha1";
pub const SCHEDULE_KIND: &str = "LocustSchedule";
pub const SCHEDULE_PLURAL: &str = "locustschedules";
pub const SCHEDULE_CRD_NAME: &str = "locustschedules.locust.io";
