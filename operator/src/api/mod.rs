//! The `LocustTest` API types, and nothing else: one module per served version
//! plus the status they share. Conversion lives in [`crate::conversion`],
//! validation in [`crate::validation`], the CRD assembly in [`crate::crd`].

pub mod status;
pub mod v1;
pub mod v2;
pub mod vocabulary;

pub use status::{LocustTestStatus, Phase, TestResult};
pub use v2::{LocustTest, LocustTestSpec};
pub use vocabulary::{condition_reason, condition_type, event_reason};

pub const GROUP: &str = "locust.io";
pub const KIND: &str = "LocustTest";
pub const PLURAL: &str = "locusttests";
pub const CRD_NAME: &str = "locusttests.locust.io";
