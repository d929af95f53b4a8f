//! Generates the Locust Kubernetes Operator's OLM bundle (`bundle/`,
//! `bundle.Dockerfile`) and File-Based Catalog (`catalog/`) from the operator's
//! Rust types: the CRD from `locust_operator::api`, RBAC from
//! `locust_operator::rbac`, flags and ports from `locust_operator::config`,
//! examples from `operator/samples/`, and the upgrade graph from the one
//! declared release list in [`releases`].
//!
//! Nothing under `bundle/` or `catalog/` is edited by hand: [`generate`]
//! produces every file in memory, [`write`] puts them on disk (removing stray
//! files there) and [`check`] compares them with what is committed.
//!
//! Output is deterministic: no clock, no environment, sorted keys, and
//! catalog bundle objects encoded exactly as `opm render` encodes them.
//!
//! Catalog entries of *older* releases are frozen: when the output directory
//! already holds a catalog, the `olm.bundle` of every release other than the
//! one being generated is kept as committed (it describes a bundle image that
//! was already published); only missing entries are generated from the
//! current code.

pub mod bundle;
pub mod catalog;
pub mod chart;
pub mod check;
pub mod crd;
pub mod csv;
pub mod deployment;
pub mod description;
pub mod descriptors;
pub mod gojson;
pub mod images;
pub mod monitoring;
pub mod oci;
pub mod releases;
pub mod samples;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use semver::Version;

use crate::releases::{ReleaseSpec, UpgradeGraph};

/// OLM package name.
pub const PACKAGE: &str = "locust-k8s-operator";
pub use releases::{BUNDLE_IMAGE_REPO, CATALOG_IMAGE_REPO, IMAGE_NAMESPACE, OPERATOR_IMAGE_REPO};
/// The Locust image the examples and the description use.
pub const DEFAULT_LOCUST_IMAGE: &str = "locustio/locust:2.43.1";
/// Source repository.
pub const REPOSITORY: &str = "https://github.com/AbdelrhmanHamouda/locust-k8s-operator";
/// Namespace OperatorHub suggests for the installation.
pub const SUGGESTED_NAMESPACE: &str = "locust-operator";
/// Default channel of the package.
pub const DEFAULT_CHANNEL: &str = "stable";

/// Relative path of the CRD manifest.
pub const CRD_PATH: &str = "bundle/manifests/locust.io_locusttests.yaml";
/// Relative path of the LocustSchedule CRD manifest.
pub const SCHEDULE_CRD_PATH: &str = "bundle/manifests/locust.io_locustschedules.yaml";
/// Relative path of the ClusterServiceVersion.
pub const CSV_PATH: &str = "bundle/manifests/locust-k8s-operator.clusterserviceversion.yaml";
/// Relative path of the bundle annotations.
pub const ANNOTATIONS_PATH: &str = "bundle/metadata/annotations.yaml";
/// Relative path of the scorecard configuration.
pub const SCORECARD_PATH: &str = "bundle/tests/scorecard/config.yaml";
/// Relative path of the bundle image's Dockerfile.
pub const DOCKERFILE_PATH: &str = "bundle.Dockerfile";
/// Relative path of the File-Based Catalog.
pub const CATALOG_PATH: &str = "catalog/locust-k8s-operator/catalog.yaml";
/// Directories owned by the generator: every file in them is generated.
pub const OWNED_DIRS: [&str; 3] = ["bundle", "catalog", "charts"];

/// Everything that can go wrong while generating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The release list or an `--extra-release` is inconsistent.
    #[error("invalid release: {0}")]
    InvalidRelease(String),
    /// A command-line option is inconsistent.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input file (sample, committed catalog, go.mod) is malformed.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The CRD from the operator crate does not have what the CSV needs.
    #[error("CRD: {0}")]
    Crd(String),
    /// The description template failed to render.
    #[error("description template: {0}")]
    Template(String),
    /// An image could not be built.
    #[error("image: {0}")]
    Image(String),
    /// A value could not be serialized.
    #[error("serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    /// Short CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidRelease(_) => "InvalidRelease",
            Error::InvalidOption(_) => "InvalidOption",
            Error::Io { .. } => "IoError",
            Error::Input { .. } => "InvalidInput",
            Error::Crd(_) => "InvalidCrd",
            Error::Template(_) => "TemplateError",
            Error::Image(_) => "ImageError",
            Error::Serialize(_) => "SerializeError",
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Workspace root: `operator/samples/` and `olm-tests/tools/operator-sdk/go.mod` are read from here.
    pub root: PathBuf,
    /// Where `bundle/`, `catalog/` and `bundle.Dockerfile` go.
    pub out_dir: PathBuf,
    /// Version of the bundle; default: the highest release.
    pub version: Option<Version>,
    /// Operator image of the bundle; default: `OPERATOR_IMAGE_REPO:<version>`.
    pub image: Option<String>,
    /// Channels of the bundle's release, replacing the declared ones (or
    /// declaring the release when `version` is not in the list).
    pub channels: Option<Vec<String>>,
    /// The package's default channel.
    pub default_channel: String,
    /// Hypothetical releases added to the declared list.
    pub extra_releases: Vec<ReleaseSpec>,
    /// Write catalog bundles without an `image`, so OLM installs them from
    /// the inline `olm.bundle.object`s instead of unpacking a bundle image.
    pub inline_catalog: bool,
    /// Published digests of bundle images, by release: the catalog names
    /// those bundles `BUNDLE_IMAGE_REPO@<digest>` instead of by tag (a
    /// release pins what it just pushed; a commit can only know tags).
    pub bundle_digests: BTreeMap<Version, String>,
}

impl Options {
    /// Defaults: output into `root`, the declared releases, default channel `stable`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            out_dir: root.clone(),
            root,
            version: None,
            image: None,
            channels: None,
            default_channel: DEFAULT_CHANNEL.to_owned(),
            extra_releases: Vec::new(),
            inline_catalog: false,
            bundle_digests: BTreeMap::new(),
        }
    }
}

/// The workspace root, from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent().unwrap_or(dir).to_owned()
}

/// Parses `VERSION:CHANNEL[,CHANNEL...][:REPLACES]` (e.g. `2.1.0:alpha`,
/// `2.2.0:alpha,stable:2.0.0`). The release gets the `createdAt` of the newest
/// declared release: it is hypothetical, and the output stays deterministic.
/// Parses `--bundle-digest VERSION=sha256:<64 hex digits>`.
pub fn parse_bundle_digest(spec: &str) -> Result<(Version, String), Error> {
    let bad = || {
        Error::InvalidOption(format!(
            "--bundle-digest {spec:?}: expected VERSION=sha256:<64 lowercase hex digits>"
        ))
    };
    let (version, digest) = spec.split_once('=').ok_or_else(bad)?;
    let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    Ok((releases::parse_version(version)?, digest.to_owned()))
}

pub fn parse_extra_release(spec: &str) -> Result<ReleaseSpec, Error> {
    let mut parts = spec.split(':');
    let (Some(version), Some(channels)) = (parts.next(), parts.next()) else {
        return Err(Error::InvalidOption(format!(
            "--extra-release {spec:?}: expected VERSION:CHANNEL[,CHANNEL...][:REPLACES]"
        )));
    };
    let replaces = parts.next().map(releases::parse_version).transpose()?;
    if parts.next().is_some() {
        return Err(Error::InvalidOption(format!(
            "--extra-release {spec:?}: too many ':'"
        )));
    }
    let created_at = releases::RELEASES
        .iter()
        .filter_map(|r| Version::parse(r.version).ok().map(|v| (v, r.created_at)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, c)| c.to_owned())
        .ok_or_else(|| Error::InvalidRelease("releases.rs declares no release".to_owned()))?;
    Ok(ReleaseSpec {
        version: releases::parse_version(version)?,
        channels: releases::normalize_channels(channels.split(',').map(str::to_owned))?,
        created_at,
        replaces,
    })
}

/// The release list and the bundle version the options describe.
pub fn resolve_releases(opts: &Options) -> Result<(UpgradeGraph, Version), Error> {
    let mut list = releases::declared()?;
    list.extend(opts.extra_releases.iter().cloned());
    let version = match &opts.version {
        Some(v) => v.clone(),
        None => list
            .iter()
            .map(|r| r.version.clone())
            .max()
            .ok_or_else(|| Error::InvalidRelease("no release declared".to_owned()))?,
    };
    let position = list.iter().position(|r| r.version == version);
    match (&opts.channels, position) {
        (Some(channels), Some(i)) => {
            list[i].channels = releases::normalize_channels(channels.iter().cloned())?
        }
        (Some(channels), None) => {
            let mut spec = parse_extra_release(&format!("{version}:alpha"))?;
            spec.channels = releases::normalize_channels(channels.iter().cloned())?;
            list.push(spec);
        }
        (None, Some(_)) => {}
        (None, None) => {
            return Err(Error::InvalidOption(format!(
                "version {version} is not in releases.rs: declare it, or pass --channels or --extra-release"
            )));
        }
    }
    let graph = UpgradeGraph::build(&list)?;
    if !graph.channels().contains_key(&opts.default_channel) {
        return Err(Error::InvalidOption(format!(
            "default channel {:?} has no release (channels: {})",
            opts.default_channel,
            graph
                .channels()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((graph, version))
}

/// The generated files, keyed by path relative to the output directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generated {
    /// Relative path → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Generated {
    /// Content of `path`, if generated.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Content of `path` as text, if generated.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// Generates every file in memory.
pub fn generate(opts: &Options) -> Result<Generated, Error> {
    let (graph, version) = resolve_releases(opts)?;
    let inputs = bundle::Inputs::load(&opts.root)?;
    let current = bundle::render(&inputs, &graph, &version, opts)?;
    let frozen = catalog::read_frozen(&opts.out_dir.join(CATALOG_PATH))?;
    let catalog = catalog::render(&inputs, &graph, &version, &current, &frozen, opts)?;

    let mut files = BTreeMap::new();
    for (path, content) in current.files {
        files.insert(path, content.into_bytes());
    }
    files.insert(CATALOG_PATH.to_owned(), catalog.into_bytes());
    files.insert(
        monitoring::SERVICE_MONITOR_PATH.to_owned(),
        yaml::to_yaml(&monitoring::service_monitor()).into_bytes(),
    );
    for (path, content) in chart::render(&version)? {
        files.insert(path, content.into_bytes());
    }
    Ok(Generated { files })
}

/// Regular files under the owned directories of `out_dir`, relative, sorted.
pub fn existing_owned_files(out_dir: &Path) -> Result<Vec<String>, Error> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if kind.is_dir() {
                walk(base, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for dir in OWNED_DIRS {
        walk(out_dir, &out_dir.join(dir), &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// Writes the files under `out_dir` and removes any other file in the owned
/// directories (`bundle/`, `catalog/`). Unchanged files are not rewritten.
pub fn write(generated: &Generated, out_dir: &Path) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for stray in existing_owned_files(out_dir)? {
        if !generated.files.contains_key(&stray) {
            let path = out_dir.join(&stray);
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            removed.push(stray);
        }
    }
    for (rel, content) in &generated.files {
        let path = out_dir.join(rel);
        if std::fs::read(&path).ok().as_deref() == Some(content.as_slice()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, content).map_err(|e| Error::io(&path, e))?;
    }
    Ok(removed)
}

pub use check::{CheckReport, check};
