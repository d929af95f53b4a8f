//! Kubernetes name syntax: DNS-1123 labels (namespaces) and subdomains (most
//! object names: Leases, RuntimeClasses), exactly as the API server checks them.

/// Longest DNS-1123 label.
const MAX_LABEL: usize = 63;
/// Longest DNS-1123 subdomain.
pub const MAX_SUBDOMAIN: usize = 253;

/// Whether `s` is a run of lowercase letters, digits and `-` that starts and ends
/// with a letter or digit (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`).
fn is_label_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let alphanumeric = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(alphanumeric)
        && b.last().is_some_and(alphanumeric)
        && b.iter().all(|c| alphanumeric(c) || *c == b'-')
}

/// Whether `s` is a DNS-1123 label: lowercase alphanumerics and `-`, alphanumeric at both
/// ends, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= MAX_LABEL && is_label_syntax(s)
}

/// Whether `s` is a DNS-1123 subdomain as Kubernetes checks object names: at most 253
/// characters of dot-separated parts, each matching `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
/// (Kubernetes does not limit the parts to 63 characters). The CEL rule on
/// `scheduling.runtimeClassName` spells the same pattern as
/// [`SUBDOMAIN_PATTERN`].
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= MAX_SUBDOMAIN && s.split('.').all(is_label_syntax)
}

/// [`is_dns1123_subdomain`]'s pattern (without the length), as a regular expression.
pub const SUBDOMAIN_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let long = "a".repeat(64);
        for (name, ok) in [("a-1", true), ("1a", true), ("-a", false), ("a-", false)]
            .into_iter()
            .chain([
                ("A", false),
                ("", false),
                ("a.b", false),
                (long.as_str(), false),
            ])
        {
            assert_eq!(is_dns1123_label(name), ok, "{name:?}");
        }
    }

    #[test]
    fn subdomains() {
        assert!(is_dns1123_subdomain("locust-k8s-operator.locust.io"));
        assert!(is_dns1123_subdomain("gvisor"));
        assert!(is_dns1123_subdomain("kata.fc"));
        // Parts longer than a label are fine, as for the API server.
        assert!(is_dns1123_subdomain(&format!("{}.io", "a".repeat(100))));
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "gVisor",
            "gvisor_sandbox",
            "-a",
            "a-.b",
            "a b",
            "é",
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
    }
}
