//! The one declared release list, and the upgrade graph derived from it.
//!
//! Rules, per channel: every release `replaces` the highest lower version in
//! that channel (its predecessor) and carries `skipRange: "<version"`, so a
//! cluster on any older version — including the 1.x bundles of the Java
//! operator — reaches the channel head in one step. A release may name an
//! explicit `replaces` (to route around a bad release); the releases it jumps
//! over in that channel are then listed in `skips`, which keeps a single
//! channel head.
//!
//! A release usually enters `alpha` first and is promoted by adding `stable`
//! to its channels in a later commit; nothing else changes.

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use crate::Error;

/// Where the release's images are published: the GitHub Container Registry
/// namespace of the repository's owner, which the release workflow's
/// `GITHUB_TOKEN` can push to (`docs/release.md`).
pub const IMAGE_NAMESPACE: &str = "ghcr.io/abdelrhmanhamouda";
/// Repository of the operator image (multi-arch); the tag is the version.
pub const OPERATOR_IMAGE_REPO: &str = "ghcr.io/abdelrhmanhamouda/locust-k8s-operator";
/// Repository of the bundle image; the tag is `v<version>`.
pub const BUNDLE_IMAGE_REPO: &str = "ghcr.io/abdelrhmanhamouda/locust-k8s-operator-bundle";
/// Repository of the catalog image (the File-Based Catalog served by
/// `opm`); the tag is `v<version>` of the newest release it lists, and
/// `latest`.
pub const CATALOG_IMAGE_REPO: &str = "ghcr.io/abdelrhmanhamouda/locust-k8s-operator-catalog";

/// A release as declared in [`RELEASES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    /// Semantic version, without a leading `v`.
    pub version: &'static str,
    /// OLM channels the release is published in.
    pub channels: &'static [&'static str],
    /// The CSV's `createdAt` (RFC 3339, UTC, whole seconds): when the release was cut.
    pub created_at: &'static str,
}

/// Every release of the operator's OLM bundle, oldest first. Adding a release
/// here (and regenerating) is how a version is published; see `docs/release.md`.
pub const RELEASES: &[Release] = &[Release {
    version: "3.0.0",
    channels: &["alpha", "stable"],
    created_at: "2026-11-21T00:00:00Z",
}];

/// A release in owned form: a declared one or a hypothetical one (tests,
/// `--extra-release`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// Semantic version.
    pub version: Version,
    /// Channels, sorted and unique.
    pub channels: Vec<String>,
    /// The CSV's `createdAt`.
    pub created_at: String,
    /// Explicit predecessor in every one of its channels, instead of the highest lower version.
    pub replaces: Option<Version>,
}

impl ReleaseSpec {
    /// A release with the default edges.
    pub fn new(version: &str, channels: &[&str], created_at: &str) -> Result<Self, Error> {
        Ok(Self {
            version: parse_version(version)?,
            channels: normalize_channels(channels.iter().map(|c| (*c).to_owned()))?,
            created_at: created_at.to_owned(),
            replaces: None,
        })
    }

    /// Whether the release is published in `channel`.
    pub fn in_channel(&self, channel: &str) -> bool {
        self.channels.iter().any(|c| c == channel)
    }
}

/// The declared releases, parsed.
pub fn declared() -> Result<Vec<ReleaseSpec>, Error> {
    RELEASES
        .iter()
        .map(|r| ReleaseSpec::new(r.version, r.channels, r.created_at))
        .collect()
}

/// Parses a version (no leading `v`).
pub fn parse_version(s: &str) -> Result<Version, Error> {
    Version::parse(s).map_err(|e| Error::InvalidRelease(format!("version {s:?}: {e}")))
}

/// Sorts, de-duplicates and checks channel names (lowercase DNS-label-like).
pub fn normalize_channels(
    channels: impl IntoIterator<Item = String>,
) -> Result<Vec<String>, Error> {
    let set: BTreeSet<String> = channels.into_iter().map(|c| c.trim().to_owned()).collect();
    if set.is_empty() {
        return Err(Error::InvalidRelease(
            "a release needs at least one channel".to_owned(),
        ));
    }
    for c in &set {
        let ok = !c.is_empty()
            && c.len() <= 63
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(Error::InvalidRelease(format!(
                "channel name {c:?} is not a lowercase DNS label"
            )));
        }
    }
    Ok(set.into_iter().collect())
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as OLM and OperatorHub show it.
fn valid_created_at(s: &str) -> bool {
    // `0` stands for any digit; every other byte is itself.
    const FORM: &[u8] = b"0000-00-00T00:00:00Z";
    s.len() == FORM.len()
        && s.bytes().zip(FORM).all(|(b, &f)| match f {
            b'0' => b.is_ascii_digit(),
            _ => b == f,
        })
}

/// One entry of an OLM channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEntry {
    /// The release.
    pub version: Version,
    /// Its predecessor in this channel.
    pub replaces: Option<Version>,
    /// Releases of this channel it jumps over (only with an explicit `replaces`).
    pub skips: Vec<Version>,
    /// `<version`: every older version upgrades straight to this one.
    pub skip_range: String,
}

/// The upgrade edges of a CSV: what OLM reads from `spec.replaces`,
/// `spec.skips` and the `olm.skipRange` annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvEdges {
    /// `spec.replaces`: the predecessor in the release's primary channel.
    pub replaces: Option<Version>,
    /// `spec.skips`: every other predecessor or skipped release in any of its channels.
    pub skips: Vec<Version>,
    /// The `olm.skipRange` annotation.
    pub skip_range: String,
}

/// Channels and their entries, derived from a release list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeGraph {
    releases: Vec<ReleaseSpec>,
    channels: BTreeMap<String, Vec<ChannelEntry>>,
}

impl UpgradeGraph {
    /// Builds the graph; rejects duplicate versions, bad channel names or
    /// dates, and explicit `replaces` that are not lower releases of every
    /// channel of the release.
    pub fn build(releases: &[ReleaseSpec]) -> Result<Self, Error> {
        let mut sorted: Vec<ReleaseSpec> = releases.to_vec();
        sorted.sort_by(|a, b| a.version.cmp(&b.version));
        for pair in sorted.windows(2) {
            if pair[0].version == pair[1].version {
                return Err(Error::InvalidRelease(format!(
                    "version {} is declared twice",
                    pair[0].version
                )));
            }
        }
        let mut channels: BTreeMap<String, Vec<ChannelEntry>> = BTreeMap::new();
        for r in &sorted {
            if normalize_channels(r.channels.iter().cloned())? != r.channels {
                return Err(Error::InvalidRelease(format!(
                    "channels of {} must be sorted and unique",
                    r.version
                )));
            }
            if !valid_created_at(&r.created_at) {
                return Err(Error::InvalidRelease(format!(
                    "createdAt {:?} of {} is not YYYY-MM-DDTHH:MM:SSZ",
                    r.created_at, r.version
                )));
            }
            for channel in &r.channels {
                let members: Vec<&Version> = sorted
                    .iter()
                    .filter(|o| o.in_channel(channel) && o.version < r.version)
                    .map(|o| &o.version)
                    .collect();
                let (replaces, skips) = match &r.replaces {
                    None => (members.last().map(|v| (*v).clone()), Vec::new()),
                    Some(target) => {
                        if !members.contains(&target) {
                            return Err(Error::InvalidRelease(format!(
                                "{} replaces {target}, which is not a lower release in channel {channel}",
                                r.version
                            )));
                        }
                        let skipped = members
                            .iter()
                            .filter(|v| **v > target)
                            .map(|v| (*v).clone())
                            .collect();
                        (Some(target.clone()), skipped)
                    }
                };
                channels
                    .entry(channel.clone())
                    .or_default()
                    .push(ChannelEntry {
                        version: r.version.clone(),
                        replaces,
                        skips,
                        skip_range: format!("<{}", r.version),
                    });
            }
        }
        Ok(Self {
            releases: sorted,
            channels,
        })
    }

    /// Releases, lowest version first.
    pub fn releases(&self) -> &[ReleaseSpec] {
        &self.releases
    }

    /// The release `version`, if declared.
    pub fn release(&self, version: &Version) -> Option<&ReleaseSpec> {
        self.releases.iter().find(|r| &r.version == version)
    }

    /// Channel name → entries, lowest version first.
    pub fn channels(&self) -> &BTreeMap<String, Vec<ChannelEntry>> {
        &self.channels
    }

    /// The entry of `version` in `channel`.
    pub fn entry(&self, channel: &str, version: &Version) -> Option<&ChannelEntry> {
        self.channels
            .get(channel)?
            .iter()
            .find(|e| &e.version == version)
    }

    /// The newest release of `channel`: the one nothing replaces or skips.
    pub fn head(&self, channel: &str) -> Option<&Version> {
        self.channels.get(channel)?.last().map(|e| &e.version)
    }

    /// The CSV edges of `version`: `replaces` is its predecessor in the
    /// default channel if it is published there, else in its first channel;
    /// predecessors in its other channels go to `skips`, so that a graph built
    /// from CSVs alone (community-operators' replaces mode) has the same heads.
    pub fn csv_edges(&self, version: &Version, default_channel: &str) -> Option<CsvEdges> {
        let release = self.release(version)?;
        let primary = if release.in_channel(default_channel) {
            default_channel
        } else {
            release.channels.first()?.as_str()
        };
        let replaces = self.entry(primary, version)?.replaces.clone();
        let mut skips = BTreeSet::new();
        for channel in &release.channels {
            let entry = self.entry(channel, version)?;
            skips.extend(entry.skips.iter().cloned());
            skips.extend(entry.replaces.iter().cloned());
        }
        if let Some(r) = &replaces {
            skips.remove(r);
        }
        Some(CsvEdges {
            replaces,
            skips: skips.into_iter().collect(),
            skip_range: format!("<{version}"),
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_image_repository_is_in_the_project_namespace() {
        for repo in [OPERATOR_IMAGE_REPO, BUNDLE_IMAGE_REPO, CATALOG_IMAGE_REPO] {
            let rest = repo
                .strip_prefix(IMAGE_NAMESPACE)
                .and_then(|r| r.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{repo} is not under {IMAGE_NAMESPACE}"));
            assert!(rest.starts_with(crate::PACKAGE), "{repo}");
            assert!(!rest.contains('/') && !rest.contains(':'), "{repo}");
        }
    }

    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn rel(version: &str, channels: &[&str]) -> ReleaseSpec {
        ReleaseSpec::new(version, channels, "2026-01-01T00:00:00Z").unwrap()
    }

    /// The version `version`'s entry in `channel` replaces.
    fn replaces(g: &UpgradeGraph, channel: &str, version: &str) -> Option<Version> {
        g.entry(channel, &v(version)).unwrap().replaces.clone()
    }

    /// `(replaces, skips)` of `version`'s CSV, with `stable` the default channel.
    fn stable_csv_edges(g: &UpgradeGraph, version: &str) -> (Option<Version>, Vec<Version>) {
        let csv = g.csv_edges(&v(version), "stable").unwrap();
        (csv.replaces, csv.skips)
    }

    fn edges(g: &UpgradeGraph, channel: &str) -> Vec<(String, Option<String>, Vec<String>)> {
        g.channels()[channel]
            .iter()
            .map(|e| {
                (
                    e.version.to_string(),
                    e.replaces.as_ref().map(Version::to_string),
                    e.skips.iter().map(Version::to_string).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn declared_list_is_valid_and_today_has_one_release() {
        let g = UpgradeGraph::build(&declared().unwrap()).unwrap();
        assert_eq!(g.releases().len(), RELEASES.len());
        assert_eq!(g.head("stable"), Some(&v("3.0.0")));
        assert_eq!(g.head("alpha"), Some(&v("3.0.0")));
        let e = g.entry("stable", &v("3.0.0")).unwrap();
        assert_eq!(e.replaces, None);
        assert_eq!(e.skip_range, "<3.0.0");
    }

    /// Cutting a release bumps the workspace version and declares it here together.
    #[test]
    fn newest_release_is_the_workspace_version() {
        let newest = declared()
            .unwrap()
            .into_iter()
            .map(|r| r.version)
            .max()
            .unwrap();
        assert_eq!(newest, v(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn linear_history() {
        let g = UpgradeGraph::build(&[
            rel("2.1.0", &["alpha", "stable"]),
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.2.0", &["alpha", "stable"]),
        ])
        .unwrap();
        let expected = vec![
            ("2.0.0".to_owned(), None, vec![]),
            ("2.1.0".to_owned(), Some("2.0.0".to_owned()), vec![]),
            ("2.2.0".to_owned(), Some("2.1.0".to_owned()), vec![]),
        ];
        assert_eq!(edges(&g, "stable"), expected);
        assert_eq!(edges(&g, "alpha"), expected);
        assert_eq!(g.entry("stable", &v("2.2.0")).unwrap().skip_range, "<2.2.0");
        let csv = g.csv_edges(&v("2.2.0"), "stable").unwrap();
        assert_eq!(csv.replaces, Some(v("2.1.0")));
        assert!(csv.skips.is_empty());
        assert_eq!(csv.skip_range, "<2.2.0");
    }

    #[test]
    fn prerelease_in_alpha_then_promoted() {
        // 2.1.0-rc.1 only in alpha; 2.1.0 then released to both channels.
        let before = UpgradeGraph::build(&[
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.1.0-rc.1", &["alpha"]),
        ])
        .unwrap();
        assert_eq!(before.head("alpha"), Some(&v("2.1.0-rc.1")));
        assert_eq!(before.head("stable"), Some(&v("2.0.0")));
        // An alpha-only release's CSV replaces its alpha predecessor.
        assert_eq!(
            before
                .csv_edges(&v("2.1.0-rc.1"), "stable")
                .unwrap()
                .replaces,
            Some(v("2.0.0"))
        );

        let after = UpgradeGraph::build(&[
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.1.0-rc.1", &["alpha"]),
            rel("2.1.0", &["alpha", "stable"]),
        ])
        .unwrap();
        assert_eq!(
            edges(&after, "alpha"),
            vec![
                ("2.0.0".to_owned(), None, vec![]),
                ("2.1.0-rc.1".to_owned(), Some("2.0.0".to_owned()), vec![]),
                ("2.1.0".to_owned(), Some("2.1.0-rc.1".to_owned()), vec![]),
            ]
        );
        assert_eq!(
            edges(&after, "stable"),
            vec![
                ("2.0.0".to_owned(), None, vec![]),
                ("2.1.0".to_owned(), Some("2.0.0".to_owned()), vec![])
            ]
        );
        // The CSV replaces the stable predecessor and skips the alpha one.
        let csv = after.csv_edges(&v("2.1.0"), "stable").unwrap();
        assert_eq!(csv.replaces, Some(v("2.0.0")));
        assert_eq!(csv.skips, vec![v("2.1.0-rc.1")]);
        // The prerelease has lower precedence than the release, so OLM's `<2.1.0` covers it.
        assert!(v("2.1.0-rc.1") < v("2.1.0"));
        assert_eq!(
            after.entry("alpha", &v("2.1.0")).unwrap().skip_range,
            "<2.1.0"
        );
    }

    #[test]
    fn promotion_of_the_same_version_only_adds_a_channel() {
        let alpha_only =
            UpgradeGraph::build(&[rel("2.0.0", &["alpha", "stable"]), rel("2.1.0", &["alpha"])])
                .unwrap();
        let promoted = UpgradeGraph::build(&[
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.1.0", &["alpha", "stable"]),
        ])
        .unwrap();
        assert_eq!(alpha_only.channels()["alpha"], promoted.channels()["alpha"]);
        assert_eq!(alpha_only.head("stable"), Some(&v("2.0.0")));
        assert_eq!(promoted.head("stable"), Some(&v("2.1.0")));
        assert_eq!(replaces(&promoted, "stable", "2.1.0"), Some(v("2.0.0")));
    }

    #[test]
    fn release_only_in_alpha_is_skipped_by_the_next_stable_release() {
        let g = UpgradeGraph::build(&[
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.1.0", &["alpha"]),
            rel("2.2.0", &["alpha", "stable"]),
        ])
        .unwrap();
        assert_eq!(replaces(&g, "alpha", "2.2.0"), Some(v("2.1.0")));
        assert_eq!(replaces(&g, "stable", "2.2.0"), Some(v("2.0.0")));
        assert!(g.entry("stable", &v("2.1.0")).is_none());
        assert_eq!(
            stable_csv_edges(&g, "2.2.0"),
            (Some(v("2.0.0")), vec![v("2.1.0")])
        );
    }

    #[test]
    fn skipping_versions_with_an_explicit_replaces() {
        let mut bad_skipper = rel("2.3.0", &["alpha", "stable"]);
        bad_skipper.replaces = Some(v("2.1.0"));
        let g = UpgradeGraph::build(&[
            rel("2.0.0", &["alpha", "stable"]),
            rel("2.1.0", &["alpha", "stable"]),
            rel("2.2.0", &["alpha", "stable"]), // broken: users must not be routed through it
            bad_skipper,
            rel("2.4.0", &["alpha", "stable"]),
        ])
        .unwrap();
        let e = g.entry("stable", &v("2.3.0")).unwrap();
        assert_eq!(e.replaces, Some(v("2.1.0")));
        assert_eq!(e.skips, vec![v("2.2.0")]);
        assert_eq!(replaces(&g, "stable", "2.4.0"), Some(v("2.3.0")));
        assert_eq!(g.head("stable"), Some(&v("2.4.0")));
        assert_eq!(
            stable_csv_edges(&g, "2.3.0"),
            (Some(v("2.1.0")), vec![v("2.2.0")])
        );
    }

    #[test]
    fn gaps_in_version_numbers_need_no_special_handling() {
        let g = UpgradeGraph::build(&[
            rel("2.0.0", &["stable"]),
            rel("2.5.3", &["stable"]),
            rel("3.0.0", &["stable"]),
        ])
        .unwrap();
        assert_eq!(replaces(&g, "stable", "3.0.0"), Some(v("2.5.3")));
        assert_eq!(g.entry("stable", &v("3.0.0")).unwrap().skip_range, "<3.0.0");
    }

    #[test]
    fn invalid_histories_are_rejected() {
        assert!(
            UpgradeGraph::build(&[rel("2.0.0", &["stable"]), rel("2.0.0", &["alpha"])]).is_err()
        );
        let mut upward = rel("2.0.0", &["stable"]);
        upward.replaces = Some(v("2.1.0"));
        assert!(UpgradeGraph::build(&[upward, rel("2.1.0", &["stable"])]).is_err());
        let mut other_channel = rel("2.1.0", &["stable"]);
        other_channel.replaces = Some(v("2.0.0"));
        assert!(UpgradeGraph::build(&[rel("2.0.0", &["alpha"]), other_channel]).is_err());
        let mut bad_date = rel("2.0.0", &["stable"]);
        bad_date.created_at = "yesterday".to_owned();
        assert!(UpgradeGraph::build(&[bad_date]).is_err());
        assert!(ReleaseSpec::new("2.0.0", &["Stable"], "2026-01-01T00:00:00Z").is_err());
        assert!(ReleaseSpec::new("2.0.0", &[], "2026-01-01T00:00:00Z").is_err());
        assert!(ReleaseSpec::new("v2.0.0", &["stable"], "2026-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn created_at_is_a_utc_second() {
        assert!(valid_created_at("2026-01-01T00:00:00Z"));
        for bad in [
            "",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00.5Z",
            "2026-1-01T00:00:00Z",
            "2026-01-01T0a:00:00Z",
            "2026-01-01T00:00:00Z ",
            "\u{0662}026-01-01T00:00:00Z",
        ] {
            assert!(!valid_created_at(bad), "{bad:?}");
        }
    }
}
