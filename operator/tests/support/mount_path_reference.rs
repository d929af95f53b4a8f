//! The reference for the mount path conflict rule, shared by the validation
//! tests and the property tests: paths compared by their components.

/// `a` contains `b` when `a`'s path components (one trailing `/` dropped)
/// are a prefix of `b`'s.
pub fn reference_contains(a: &str, b: &str) -> bool {
    fn components(p: &str) -> Vec<&str> {
        p.strip_suffix('/').unwrap_or(p).split('/').collect()
    }
    let (a, b) = (components(a), components(b));
    a.len() <= b.len() && a.iter().zip(&b).all(|(x, y)| x == y)
}

/// Two mount paths conflict when either contains the other.
pub fn reference_conflict(a: &str, b: &str) -> bool {
    reference_contains(a, b) || reference_contains(b, a)
}
