//! Names of a test's children, and the FNV-1a hashes that keep them distinct.

use super::Role;

/// Longest DNS-1035 label (Service names) and longest label value.
pub const MAX_LABEL_LEN: usize = 63;

/// Longest suffix [`child_name`] keeps; longer suffixes are cut.
const MAX_SUFFIX_LEN: usize = 40;

/// Prefix given to names that do not start with a letter.
const LETTER_PREFIX: &str = "lt-";

/// 32-bit FNV-1a of `bytes`.
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// 64-bit FNV-1a, fed incrementally (also usable as an [`std::io::Write`] sink).
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    /// Adds `bytes` to the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything added so far.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl std::io::Write for Fnv1a64 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// 8 lowercase hex digits of the 32-bit FNV-1a of `s`.
pub fn short_hash(s: &str) -> String {
    format!("{:08x}", fnv1a_32(s.as_bytes()))
}

/// Whether `s` is a DNS-1035 label: lowercase alphanumerics and `-`, starts with a letter,
/// ends with an alphanumeric, at most 63 characters.
pub fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= MAX_LABEL_LEN
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Lowercases and turns every character that is not `[a-z0-9]` into `-`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Name of a child object of the test `test_name`, a valid DNS-1035 label for any input.
///
/// When `<test_name>-<suffix>` already is a DNS-1035 label of at most 63 characters it is
/// used as is. Otherwise dots (and any other invalid character) become `-`, a name that does
/// not start with a letter gets an `lt-` prefix, the result is cut to fit, and an 8-hex-digit
/// FNV-1a hash of the full test name is always added before the suffix
/// (`<base>-<hash>-<suffix>`). The hash is added even when the cleaned name would fit,
/// because cleaning alone is not injective (`a.b` and `a-b` would both give `a-b-master`,
/// `1x` and `lt-1x` would both give `lt-1x-master`), so distinct tests keep distinct children.
///
/// `suffix` is an operator constant such as `master`; it is cleaned the same way and cut to
/// 40 characters.
pub fn child_name(test_name: &str, suffix: &str) -> String {
    let plain = format!("{test_name}-{suffix}");
    if is_dns1035_label(&plain) {
        return plain;
    }
    let mut suffix = sanitize(suffix);
    suffix.truncate(MAX_SUFFIX_LEN);
    let tail = if suffix.is_empty() {
        format!("-{}", short_hash(test_name))
    } else {
        format!("-{}-{suffix}", short_hash(test_name))
    };
    let mut base = sanitize(test_name);
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert_str(0, LETTER_PREFIX);
    }
    // `base` is ASCII, so byte truncation is character truncation; the budget is at least
    // 63 - 1 - 8 - 1 - 40 = 13 and the base starts with a letter, so it is never empty.
    base.truncate(MAX_LABEL_LEN.saturating_sub(tail.len()));
    let name = format!("{base}{tail}");
    // A suffix ending in '-' (only possible for odd caller input) would end the label badly.
    let trimmed = name.trim_end_matches('-');
    trimmed.to_owned()
}

/// Name of the master Job (and of its pods' prefix).
pub fn master_job_name(test_name: &str) -> String {
    child_name(test_name, Role::Master.as_str())
}

/// Name of the worker Job.
pub fn worker_job_name(test_name: &str) -> String {
    child_name(test_name, Role::Worker.as_str())
}

/// Name of the Service in front of the master, also the workers' `--master-host`.
pub fn service_name(test_name: &str) -> String {
    child_name(test_name, Role::Master.as_str())
}

/// Name of a role's Job.
pub fn job_name(test_name: &str, role: Role) -> String {
    child_name(test_name, role.as_str())
}

/// A valid label value for `s`: `s` itself when it is one (at most 63 characters of
/// `[A-Za-z0-9._-]`, alphanumeric at both ends, or empty), else a cut, cleaned form followed
/// by `-` and the 8-hex-digit hash of `s`. Test names (at most 56 characters) are kept as is.
pub fn label_value(s: &str) -> String {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    let b = s.as_bytes();
    let valid = b.is_empty()
        || (b.len() <= MAX_LABEL_LEN
            && b.iter().all(|c| allowed(*c))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric));
    if valid {
        return s.to_owned();
    }
    let hash = short_hash(s);
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii() && allowed(c as u8) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut head = cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    head.truncate(MAX_LABEL_LEN - 1 - hash.len());
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if head.is_empty() {
        hash
    } else {
        format!("{head}-{hash}")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a test vectors.
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
        let mut h = Fnv1a64::default();
        h.update(b"foobar");
        assert_eq!(h.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn plain_names_are_kept() {
        assert_eq!(child_name("demo", "master"), "demo-master");
        assert_eq!(child_name("a", "worker"), "a-worker");
        let n56 = format!("a{}", "b".repeat(55));
        assert_eq!(child_name(&n56, "master"), format!("{n56}-master"));
    }

    #[test]
    fn dotted_names_are_cleaned_and_hashed() {
        let n = child_name("team.load-test", "master");
        assert_eq!(
            n,
            format!("team-load-test-{}-master", short_hash("team.load-test"))
        );
        assert!(is_dns1035_label(&n));
        assert_ne!(child_name("a.b", "master"), child_name("a-b", "master"));
    }

    #[test]
    fn leading_digits_get_a_prefix() {
        let n = child_name("1st-test", "worker");
        assert_eq!(n, format!("lt-1st-test-{}-worker", short_hash("1st-test")));
        assert_ne!(child_name("1x", "master"), child_name("lt-1x", "master"));
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = "x".repeat(200);
        let n = child_name(&long, "master");
        assert_eq!(n.len(), 63);
        assert!(n.ends_with(&format!("-{}-master", short_hash(&long))));
        let other = format!("{}y", "x".repeat(199));
        assert_ne!(n, child_name(&other, "master"));
        // 58 characters: plain form would be 65.
        let n58 = "d".repeat(58);
        let n = child_name(&n58, "master");
        assert!(is_dns1035_label(&n), "{n}");
    }

    #[test]
    fn odd_input_stays_valid() {
        for (name, suffix) in [
            ("", "master"),
            ("UPPER", "master"),
            ("a_b", "worker"),
            ("...", "master"),
            ("demo", ""),
            ("demo", "-"),
            ("démo", "master"),
            ("demo", &"s".repeat(80)),
        ] {
            let n = child_name(name, suffix);
            assert!(is_dns1035_label(&n), "{name:?}/{suffix:?} -> {n:?}");
        }
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value("my.test-1"), "my.test-1");
        assert_eq!(label_value(""), "");
        let long = format!("a.{}", "b".repeat(100));
        let v = label_value(&long);
        assert!(v.len() <= 63);
        assert!(v.ends_with(&short_hash(&long)));
        assert_eq!(label_value("-x-"), format!("x-{}", short_hash("-x-")));
    }

    fn dns_label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
    }

    fn dns_subdomain() -> impl Strategy<Value = String> {
        proptest::collection::vec(dns_label(), 1..6).prop_map(|parts| parts.join("."))
    }

    proptest! {
        #[test]
        fn child_names_are_dns1035_labels(name in dns_subdomain(), worker in any::<bool>()) {
            let suffix = if worker { "worker" } else { "master" };
            let n = child_name(&name, suffix);
            prop_assert!(is_dns1035_label(&n), "{} -> {}", name, n);
            prop_assert!(n.ends_with(suffix));
            prop_assert_eq!(&n, &child_name(&name, suffix));
            let plain = format!("{name}-{suffix}");
            if is_dns1035_label(&plain) {
                prop_assert_eq!(n, plain);
            }
        }

        #[test]
        fn distinct_names_give_distinct_children(a in dns_subdomain(), b in dns_subdomain()) {
            prop_assume!(a != b);
            prop_assert_ne!(child_name(&a, "master"), child_name(&b, "master"));
        }

        #[test]
        fn label_values_are_valid(name in dns_subdomain()) {
            let v = label_value(&name);
            prop_assert!(v.len() <= 63);
            prop_assert!(v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')));
            if name.len() <= 63 {
                prop_assert_eq!(v, name);
            }
        }
    }
}
