//! The status vocabulary, each declared once: condition types, condition
//! reasons and Event reasons, of LocustTest and (the `schedule_*` tables) of
//! LocustSchedule. Every table has an `ALL` list (in declaration
//! order) that the code, the unit tests and the documentation test
//! (`operator/tests/docs.rs`, against docs/status.md) iterate, so a value
//! cannot be added without the others seeing it.

/// Declares a module of `&str` constants and their `ALL` list from one list.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub mod $module:ident {
            $( $(#[$doc:meta])* $name:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub mod $module {
            $( $(#[$doc])* pub const $name: &str = $value; )+
            /// Every value of this table, in declaration order.
            pub const ALL: &[&str] = &[$($name),+];
        }
    };
}

vocabulary! {
    /// Condition types written by the operator, in the order they appear in
    /// `status.conditions`.
    pub mod condition_type {
        READY = "Ready",
        WORKERS_CONNECTED = "WorkersConnected",
        TEST_COMPLETED = "TestCompleted",
        PODS_HEALTHY = "PodsHealthy",
        SPEC_DRIFTED = "SpecDrifted",
        /// Whether the operator could read the master's statistics on its last attempt.
        STATS_AVAILABLE = "StatsAvailable",
    }
}

vocabulary! {
    /// Condition reasons, documented in docs/status.md (section Conditions).
    pub mod condition_reason {
        // Ready
        ALL_RESOURCES_CREATED = "AllResourcesCreated",
        RESOURCES_MISSING = "ResourcesMissing",
        /// Ready and WorkersConnected once the test is over.
        TEST_FINISHED = "TestFinished",
        // WorkersConnected
        ALL_WORKERS_CONNECTED = "AllWorkersConnected",
        WAITING_FOR_WORKERS = "WaitingForWorkers",
        // TestCompleted
        TEST_PENDING = "TestPending",
        TEST_IN_PROGRESS = "TestInProgress",
        TEST_SUCCEEDED = "TestSucceeded",
        TEST_FAILED = "TestFailed",
        PODS_UNHEALTHY = "PodsUnhealthy",
        MASTER_LOST = "MasterLost",
        WORKERS_FAILED = "WorkersFailed",
        /// A threshold of `spec.thresholds` was breached.
        THRESHOLDS_BREACHED = "ThresholdsBreached",
        /// `spec.thresholds` could not be checked.
        RESULTS_UNAVAILABLE = "ResultsUnavailable",
        /// The master pod did not run within `--start-timeout`, and no
        /// Warning Event named a cause (else the cause is the reason).
        START_TIMED_OUT = "StartTimedOut",
        // PodsHealthy (the problems of `controller::pod_health::Problem`)
        ALL_PODS_HEALTHY = "AllPodsHealthy",
        IMAGE_PULL_ERROR = "ImagePullError",
        CONFIG_ERROR = "ConfigError",
        UNSCHEDULABLE = "Unschedulable",
        CRASH_LOOP = "CrashLoop",
        CONTAINER_FAILED = "ContainerFailed",
        // StatsAvailable (the failures of `stats::StatsError`)
        WAITING_FOR_MASTER = "WaitingForMaster",
        STATS_READ = "StatsRead",
        MASTER_UNREACHABLE = "MasterUnreachable",
        MASTER_BAD_RESPONSE = "MasterBadResponse",
        STATS_UNDECODABLE = "StatsUndecodable",
        // SpecDrifted
        NO_DRIFT = "NoDrift",
        SPEC_CHANGED = "SpecChanged",
    }
}

vocabulary! {
    /// Reasons of the Events published on a LocustTest, documented in
    /// docs/status.md (section Events).
    pub mod event_reason {
        /// The Service and both Jobs were created.
        CREATED = "Created",
        /// A child deleted during a non-terminal run was recreated.
        CHILD_RECREATED = "ChildRecreated",
        TEST_STARTED = "TestStarted",
        TEST_SUCCEEDED = "TestSucceeded",
        TEST_FAILED = "TestFailed",
        MASTER_LOST = "MasterLost",
        THRESHOLDS_BREACHED = "ThresholdsBreached",
        RESULTS_UNAVAILABLE = "ResultsUnavailable",
        PODS_UNHEALTHY = "PodsUnhealthy",
        SPEC_DRIFTED = "SpecDrifted",
        // Failed reconciles (`controller::reconcile::Error::reason`), at most
        // once per reason and test every `ERROR_EVENT_INTERVAL`.
        /// The test's children cannot be built from its spec.
        INVALID_SPEC = "InvalidSpec",
        /// The API server refused to create a child.
        CREATE_FAILED = "CreateFailed",
        /// An object not owned by the test has a child's name.
        NAME_CONFLICT = "NameConflict",
        /// The API server refused the status write.
        STATUS_UPDATE_FAILED = "StatusUpdateFailed",
    }
}

vocabulary! {
    /// Condition types of a LocustSchedule (`status.conditions`), in the
    /// order they appear.
    pub mod schedule_condition_type {
        /// Whether `spec.schedule` and `spec.timeZone` can be used.
        SCHEDULE_VALID = "ScheduleValid",
        /// Whether the last due time got its test, on time.
        ON_SCHEDULE = "OnSchedule",
    }
}

vocabulary! {
    /// Condition reasons of a LocustSchedule.
    pub mod schedule_condition_reason {
        // ScheduleValid
        SCHEDULE_PARSED = "ScheduleParsed",
        /// The schedule or time zone cannot be parsed.
        INVALID_SCHEDULE = "InvalidSchedule",
        /// The schedule names no time in the searched years.
        NEVER_DUE = "NeverDue",
        // OnSchedule
        /// Every due time so far got its test (or none was due yet).
        NO_START_MISSED = "NoStartMissed",
        /// A due time passed `startingDeadlineSeconds` before its test could start.
        STARTING_DEADLINE_EXCEEDED = "StartingDeadlineExceeded",
        /// More than 100 due times were missed (the most recent one still runs).
        TOO_MANY_MISSED_STARTS = "TooManyMissedStarts",
        /// `Forbid`: a due time was held back while another test runs.
        CONCURRENT_TEST_RUNNING = "ConcurrentTestRunning",
    }
}

vocabulary! {
    /// Reasons of the Events published on a LocustSchedule.
    pub mod schedule_event_reason {
        /// A LocustTest was created for a due time or on demand.
        TEST_CREATED = "TestCreated",
        /// A LocustTest was deleted (`Replace`, or past a history limit).
        TEST_DELETED = "TestDeleted",
        /// A due time passed `startingDeadlineSeconds` (Warning).
        START_MISSED = "StartMissed",
        /// More than 100 due times were missed (Warning).
        TOO_MANY_MISSED_STARTS = "TooManyMissedStarts",
        /// `Forbid` held a due time back.
        CONCURRENT_TEST_RUNNING = "ConcurrentTestRunning",
        /// The schedule or time zone cannot be used (Warning).
        INVALID_SCHEDULE = "InvalidSchedule",
        // Failed reconciles (`schedule_controller::reconcile::Error::reason`).
        /// The API server refused to create a LocustTest.
        CREATE_FAILED = "CreateFailed",
        /// The API server refused to delete a LocustTest.
        DELETE_FAILED = "DeleteFailed",
        /// A LocustTest not owned by the schedule has the name of one of its tests.
        NAME_CONFLICT = "NameConflict",
        /// The API server refused the status write.
        STATUS_UPDATE_FAILED = "StatusUpdateFailed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_table_lists_each_value_once() {
        for all in [
            condition_type::ALL,
            condition_reason::ALL,
            event_reason::ALL,
            schedule_condition_type::ALL,
            schedule_condition_reason::ALL,
            schedule_event_reason::ALL,
        ] {
            let unique: BTreeSet<_> = all.iter().collect();
            assert_eq!(unique.len(), all.len(), "{all:?}");
            assert!(
                all.iter()
                    .all(|v| v.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                        && v.chars().all(|c| c.is_ascii_alphanumeric())),
                "not CamelCase: {all:?}"
            );
        }
        assert_eq!(condition_type::ALL.len(), 6);
        assert_eq!(condition_type::ALL[0], condition_type::READY);
    }
}
