//! Statistics parsers

use super::*;

fn check_row(row: &RowStats) -> Result<(), TestCaseError> {
    for x in [
        row.avg_response_time,
        row.min_response_time,
        row.max_response_time,
        row.total_rps,
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(x.is_finite());
    }
    for (q, x) in &row.percentiles {
        prop_assert!(x.is_finite());
        let q: f64 = q
            .parse()
            .map_err(|_| TestCaseError::fail(format!("quantile key {q:?}")))?;
        prop_assert!((0.0..=1.0).contains(&q), "quantile {q}");
    }
    Ok(())
}

fn check_stats(stats: &MasterStats, csv: Option<&RowStats>) -> Result<(), TestCaseError> {
    for x in [stats.total_rps, stats.fail_ratio].into_iter().flatten() {
        prop_assert!(x.is_finite());
    }
    if let Some(row) = &stats.aggregated {
        check_row(row)?;
    }
    if let Some(row) = csv {
        check_row(row)?;
    }
    let live = stats.live();
    prop_assert_eq!(
        live.total_requests,
        stats.aggregated.as_ref().and_then(|a| a.num_requests)
    );
    let result = stats::final_result(stats, csv);
    // The result goes into status: every number must survive JSON.
    let json = serde_json::to_value(&result).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: locust_operator::api::status::TestResult =
        serde_json::from_value(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(back, result);
    Ok(())
}

/// Byte-level edits: overwrite, insert, delete, truncate.
#[derive(Clone, Debug)]
enum ByteEdit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                vec(any::<u8>(), 1..4),
                prop::sample::select(vec![
                    b"\"".to_vec(),
                    b",".to_vec(),
                    b"\n".to_vec(),
                    b"-".to_vec(),
                    b"1e999".to_vec(),
                    b"null".to_vec(),
                    b"NaN".to_vec(),
                    b"[".to_vec(),
                    b"}".to_vec(),
                    b"\xff".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
        any::<usize>().prop_map(ByteEdit::Truncate),
    ]
}

fn apply_bytes(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            ByteEdit::Set(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = *b;
                }
            }
            ByteEdit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            ByteEdit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

static JSON_FIXTURE_VALUES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    JSON_FIXTURES
        .iter()
        .map(|f| serde_json::from_slice(&fixture(f)).unwrap())
        .collect()
});

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stats_parsers_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        if let Ok(stats) = stats::parse_requests_json(&bytes) {
            check_stats(&stats, None)?;
        }
        if let Ok(Some(row)) = stats::parse_requests_csv(&String::from_utf8_lossy(&bytes)) {
            check_row(&row)?;
        }
    }

    /// Real answers of Locust 2.20 and 2.47, damaged byte by byte.
    #[test]
    fn stats_parsers_survive_damaged_fixtures(
        json_i in 0..JSON_FIXTURES.len(),
        csv_i in 0..CSV_FIXTURES.len(),
        edits in vec(byte_edit(), 1..6),
    ) {
        let json = apply_bytes(fixture(JSON_FIXTURES[json_i]), &edits);
        let csv = apply_bytes(fixture(CSV_FIXTURES[csv_i]), &edits);
        let row = stats::parse_requests_csv(&String::from_utf8_lossy(&csv));
        let row = row.ok().flatten();
        if let Some(row) = &row {
            check_row(row)?;
        }
        if let Ok(stats) = stats::parse_requests_json(&json) {
            check_stats(&stats, row.as_ref())?;
        }
    }

    /// Real answers with fields removed, retyped or added: still parsed, with
    /// every number finite.
    #[test]
    fn stats_parser_survives_edited_fixture_json(
        i in 0..JSON_FIXTURES.len(),
        mutations in vec(mutation(), 1..5),
    ) {
        let value = mutate(JSON_FIXTURE_VALUES[i].clone(), &mutations);
        let body = serde_json::to_vec(&value).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match stats::parse_requests_json(&body) {
            Ok(stats) => check_stats(&stats, None)?,
            Err(err) => {
                prop_assert!(!value.is_object(), "an object rejected: {err}");
                prop_assert_eq!(err.reason(), "StatsUndecodable");
            }
        }
    }
}

#[test]
fn unedited_fixtures_parse_with_an_aggregated_row() {
    for f in JSON_FIXTURES {
        let stats = stats::parse_requests_json(&fixture(f)).unwrap();
        assert!(stats.aggregated.is_some(), "{f}");
    }
    for f in CSV_FIXTURES {
        let csv = String::from_utf8(fixture(f)).unwrap();
        assert!(stats::parse_requests_csv(&csv).unwrap().is_some(), "{f}");
    }
}
