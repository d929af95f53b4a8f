//! The proptest configuration every property test in this crate uses.

use proptest::prelude::ProptestConfig;

/// `cases` per property unless `PROPTEST_CASES` says otherwise (for a longer
/// search); failing cases are reported in the test output, with no regression
/// files written into the tree.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
