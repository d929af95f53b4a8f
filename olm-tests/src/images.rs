//! The container images of the real-node tests, built by
//! `olm-tests/images/build.sh` as OCI image archives for
//! `ctr -n k8s.io images import` (no Docker daemon, no registry).
//!
//! | [`Image`] | reference | content |
//! | --- | --- | --- |
//! | `Pause` | [`PAUSE_IMAGE`] | `/pause`: holds a pod sandbox, reaps zombies (user 65535) |
//! | `Target` | [`TARGET_IMAGE`] | `/target`: the HTTP server load tests aim at, port [`TARGET_PORT`] (user 65532) |
//! | `Locust` | [`locust_image`] | Debian bookworm minbase + a venv with the pinned Locust (user 1000) |
//! | `Operator` | [`operator_image`] | the static (musl) `/locust-k8s-operator` (user 65532) |
//!
//! The three local references are defined here and nowhere else: `build.sh`
//! reads the `pub const`s below from this file (keep them one line each), the
//! Locust tag from `olm-tests/locust-requirements.txt`, and the operator
//! image from the generated CSV, which is `manifests-gen`'s
//! `OPERATOR_IMAGE_REPO:<release>` — what [`operator_image`] computes.
//!
//! Lookup order of an image set:
//! 1. `LOCUST_IMAGES_DIR`: a directory as `build.sh` prints it;
//! 2. `bash olm-tests/images/build.sh --print-dir`, which prints the
//!    content-keyed cache directory only when it is complete (and the static
//!    operator binary is not older than its sources).
//!
//! Neither builds anything; [`Images::build`] does. [`verify_archive`]
//! checks an archive (module `archive`, with the tar reader of module `tar`).

mod archive;
mod tar;

pub use archive::{ArchiveSummary, LayerSummary, verify_archive};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::tools::{
    REQUIRE_TOOLS_ENV, Tools, build_with, locate_built, tools_or_skip, tools_required,
};

/// The sandbox (pause) image: `olm-tests/images/pause/main.go`. Its tag is
/// the upstream `registry.k8s.io/pause` release whose behaviour it copies.
pub const PAUSE_IMAGE: &str = "localhost/locust-k8s-operator/pause:3.10";

/// The HTTP target image: `olm-tests/images/target/main.go`. The tag versions
/// its interface (flags and endpoints, see that file).
pub const TARGET_IMAGE: &str = "localhost/locust-k8s-operator/http-target:v1";

/// Repository of the Locust image; the tag is the pinned Locust version.
pub const LOCUST_IMAGE_REPO: &str = "localhost/locust-k8s-operator/locust";

/// Port the HTTP target listens on by default (`-listen :8080`).
pub const TARGET_PORT: u16 = 8080;

/// Environment variable pointing at a built image set (what `build.sh` prints).
pub const IMAGES_DIR_ENV: &str = "LOCUST_IMAGES_DIR";

/// Marker file of a complete image set or entry.
const COMPLETE: &str = ".complete";
/// The image set's table: name, reference, manifest digest, archive, bytes.
const TABLE: &str = "images.tsv";

/// One of the four images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Image {
    /// The pod sandbox image.
    Pause,
    /// The HTTP server load tests aim at.
    Target,
    /// Locust (master and workers).
    Locust,
    /// The operator.
    Operator,
}

impl Image {
    /// Every image, in build order.
    pub const ALL: [Image; 4] = [Image::Pause, Image::Target, Image::Locust, Image::Operator];

    /// Short name: the cache entry prefix and the archive's file stem.
    pub fn name(self) -> &'static str {
        match self {
            Image::Pause => "pause",
            Image::Target => "target",
            Image::Locust => "locust",
            Image::Operator => "operator",
        }
    }

    /// The full image reference the archive is annotated with.
    pub fn reference(self) -> String {
        match self {
            Image::Pause => PAUSE_IMAGE.to_owned(),
            Image::Target => TARGET_IMAGE.to_owned(),
            Image::Locust => locust_image(),
            Image::Operator => operator_image(),
        }
    }

    /// File name of the archive in an image set (`<name>.tar`).
    pub fn archive_file_name(self) -> String {
        format!("{}.tar", self.name())
    }

    /// The image with that [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Image> {
        Image::ALL.into_iter().find(|i| i.name() == name)
    }
}

/// `localhost/locust-k8s-operator/locust:<pinned Locust version>`.
pub fn locust_image() -> String {
    format!("{LOCUST_IMAGE_REPO}:{}", crate::locust::locust_version())
}

/// The operator image of the generated bundle: `manifests-gen`'s
/// `OPERATOR_IMAGE_REPO:<highest declared release>` (the CSV's image).
pub fn operator_image() -> String {
    let opts = manifests_gen::Options::new(manifests_gen::workspace_root());
    let (_, version) = manifests_gen::resolve_releases(&opts)
        .expect("manifests-gen's release list is valid (its own tests check it)");
    format!("{}:{version}", manifests_gen::OPERATOR_IMAGE_REPO)
}

/// A container `securityContext` the restricted Pod Security Standard
/// admits (non-root, no privilege escalation, no capabilities, the runtime's
/// seccomp profile) with a read-only root file system: what these images run
/// under in the real-node tests.
pub fn restricted_security_context() -> serde_json::Value {
    serde_json::json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// `olm-tests/images/build.sh` of this source tree.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("images")
        .join("build.sh")
}

/// A built image set: one OCI archive per [`Image`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    dir: PathBuf,
    entries: BTreeMap<Image, Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    reference: String,
    digest: String,
}

impl Images {
    /// Uses `dir` (as `build.sh` prints it): it must be complete, list every
    /// image with the reference this crate expects, and hold every archive.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        ensure!(
            dir.join(COMPLETE).is_file(),
            "image set {} is incomplete (no {COMPLETE})",
            dir.display()
        );
        let table_path = dir.join(TABLE);
        let table = std::fs::read_to_string(&table_path)
            .with_context(|| format!("reading {}", table_path.display()))?;
        let entries = parse_table(&table).with_context(|| table_path.display().to_string())?;
        for image in Image::ALL {
            let entry = entries.get(&image).with_context(|| {
                format!("{} lists no {} image", table_path.display(), image.name())
            })?;
            let expected = image.reference();
            ensure!(
                entry.reference == expected,
                "{}: the {} image is {} but this source tree expects {expected} (rebuild with `bash {}`)",
                table_path.display(),
                image.name(),
                entry.reference,
                build_script().display()
            );
            let archive = dir.join(image.archive_file_name());
            ensure!(archive.is_file(), "missing archive {}", archive.display());
        }
        Ok(Self { dir, entries })
    }

    /// Finds an already built image set (see the module docs); never builds.
    pub fn locate() -> Result<Self> {
        locate_built(IMAGES_DIR_ENV, &build_script(), "images", Self::from_dir)
    }

    /// Builds the images if needed (`bash olm-tests/images/build.sh`, whose
    /// progress goes to this process's stderr) and uses the result. Always
    /// runs `cargo build` for the static operator binary (a no-op when it is
    /// fresh); a cold build of everything takes about 10 minutes on 2 cores.
    pub fn build() -> Result<Self> {
        build_with(IMAGES_DIR_ENV, &build_script(), Self::from_dir)
    }

    /// The image set's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every image with its reference and archive, in [`Image::ALL`] order:
    /// what a node needs to `ctr -n k8s.io images import`.
    pub fn archives(&self) -> impl Iterator<Item = (Image, &str, PathBuf)> + '_ {
        Image::ALL
            .into_iter()
            .map(|image| (image, self.reference(image), self.archive(image)))
    }

    /// Path of an image's OCI archive (for `ctr -n k8s.io images import`).
    pub fn archive(&self, image: Image) -> PathBuf {
        self.dir.join(image.archive_file_name())
    }

    /// The reference the archive is annotated with (equal to [`Image::reference`]).
    pub fn reference(&self, image: Image) -> &str {
        &self.entries[&image].reference
    }

    /// The image's manifest digest (`sha256:...`), as containerd will list it.
    pub fn manifest_digest(&self, image: Image) -> &str {
        &self.entries[&image].digest
    }

    /// Checks an archive's structure and every digest (see [`verify_archive`]).
    pub fn verify(&self, image: Image) -> Result<ArchiveSummary> {
        let path = self.archive(image);
        let summary = verify_archive(&path)?;
        ensure!(
            summary.reference == self.reference(image),
            "{}: annotated {} but the set lists {}",
            path.display(),
            summary.reference,
            self.reference(image)
        );
        ensure!(
            summary.manifest_digest == self.manifest_digest(image),
            "{}: manifest {} but the set lists {}",
            path.display(),
            summary.manifest_digest,
            self.manifest_digest(image)
        );
        Ok(summary)
    }
}

/// The image set for a test, or `None` (after printing a skip notice) when it
/// is not built and [`tools_required`] is false.
///
/// # Panics
/// When the images are missing and [`tools_required`] is true: the test fails.
pub fn images_or_skip(test: &str) -> Option<Images> {
    match Images::locate() {
        Ok(images) => Some(images),
        Err(error) if tools_required() => {
            panic!(
                "{test}: the node images are required (CI or {REQUIRE_TOOLS_ENV} is set) but unavailable: {error:#}"
            )
        }
        Err(error) => {
            eprintln!(
                "SKIPPED {test}: node images unavailable ({error:#}); set CI or {REQUIRE_TOOLS_ENV}=1 to make this a failure"
            );
            None
        }
    }
}

/// The toolset and the image set for a test, or `None` (after printing a
/// skip notice) when either is not built: see [`tools_or_skip`] and
/// [`images_or_skip`].
pub fn tools_and_images_or_skip(test: &str) -> Option<(Tools, Images)> {
    let tools = tools_or_skip(test)?;
    Some((tools, images_or_skip(test)?))
}

fn parse_table(text: &str) -> Result<BTreeMap<Image, Entry>> {
    let mut entries = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, reference, digest, archive, ..] = fields[..] else {
            bail!("malformed line {line:?}");
        };
        let image = Image::from_name(name).with_context(|| format!("unknown image {name:?}"))?;
        ensure!(
            archive == image.archive_file_name(),
            "{name}: archive {archive:?}, expected {:?}",
            image.archive_file_name()
        );
        ensure!(is_sha256_digest(digest), "{name}: bad digest {digest:?}");
        let entry = Entry {
            reference: reference.to_owned(),
            digest: digest.to_owned(),
        };
        ensure!(
            entries.insert(image, entry).is_none(),
            "{name} listed twice"
        );
    }
    Ok(entries)
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    use crate::tools::last_line;

    #[test]
    fn references_are_local_and_well_formed() {
        for image in [Image::Pause, Image::Target, Image::Locust] {
            let r = image.reference();
            assert!(r.starts_with("localhost/locust-k8s-operator/"), "{r}");
            let (repo, tag) = r.rsplit_once(':').unwrap();
            assert!(!tag.is_empty() && !tag.contains('/'), "{r}");
            assert_eq!(repo, repo.to_ascii_lowercase(), "{r}");
        }
        assert_eq!(
            Image::Locust.reference(),
            format!(
                "localhost/locust-k8s-operator/locust:{}",
                crate::locust::locust_version()
            )
        );
        for image in Image::ALL {
            assert_eq!(Image::from_name(image.name()), Some(image));
        }
        assert_eq!(Image::from_name("nope"), None);
    }

    #[test]
    fn operator_image_is_the_csv_image() {
        let csv_path = manifests_gen::workspace_root().join(manifests_gen::CSV_PATH);
        let csv: serde_json::Value =
            crate::yaml::from_str(&std::fs::read_to_string(&csv_path).unwrap()).unwrap();
        let deployed = &csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]
            ["containers"][0]["image"];
        assert_eq!(deployed.as_str(), Some(operator_image().as_str()));
        assert_eq!(
            csv["metadata"]["annotations"]["containerImage"].as_str(),
            Some(operator_image().as_str())
        );
        assert!(operator_image().starts_with(manifests_gen::OPERATOR_IMAGE_REPO));
    }

    /// build.sh reads the references from this file, the requirements and the
    /// CSV; they must be exactly the ones this module computes.
    #[test]
    fn build_script_uses_these_references() {
        let out = Command::new("bash")
            .arg(build_script())
            .arg("--print-refs")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let got: BTreeMap<String, String> = text
            .lines()
            .map(|l| {
                let (n, r) = l.split_once(' ').unwrap();
                (n.to_owned(), r.to_owned())
            })
            .collect();
        let expected: BTreeMap<String, String> = Image::ALL
            .iter()
            .map(|i| (i.name().to_owned(), i.reference()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn table_parsing() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let good = format!("# header\npause\tx/p:1\t{d}\tpause.tar\t10\n");
        let t = parse_table(&good).unwrap();
        assert_eq!(t[&Image::Pause].reference, "x/p:1");
        assert!(parse_table(&format!("pause\tx\t{d}\tother.tar\n")).is_err());
        assert!(parse_table("pause\tx\tsha256:zz\tpause.tar\n").is_err());
        assert!(parse_table(&format!("{good}{good}")).is_err());
        assert!(parse_table("nope\tx\ty\tz\n").is_err());
        assert!(parse_table("pause\tx\n").is_err());
    }

    #[test]
    fn last_non_empty_line_is_the_directory() {
        assert_eq!(
            last_line(b"log\n/cache/abc\n\n").unwrap(),
            PathBuf::from("/cache/abc")
        );
        assert!(last_line(b"\n").is_err());
    }

    #[test]
    fn from_dir_checks_the_set() {
        let dir = tempfile::tempdir().unwrap();
        let err = Images::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("incomplete"), "{err}");
        std::fs::write(dir.path().join(COMPLETE), "").unwrap();
        let d = format!("sha256:{}", "01".repeat(32));
        let mut table = String::new();
        for image in Image::ALL {
            table += &format!(
                "{}\t{}\t{d}\t{}\t1\n",
                image.name(),
                image.reference(),
                image.archive_file_name()
            );
        }
        std::fs::write(dir.path().join(TABLE), &table).unwrap();
        let err = Images::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("missing archive"), "{err}");
        for image in Image::ALL {
            std::fs::write(dir.path().join(image.archive_file_name()), "").unwrap();
        }
        let images = Images::from_dir(dir.path()).unwrap();
        assert_eq!(images.archive(Image::Locust), dir.path().join("locust.tar"));
        let listed: Vec<_> = images
            .archives()
            .map(|(i, r, _)| (i, r.to_owned()))
            .collect();
        assert_eq!(listed.len(), 4);
        assert_eq!(listed[0], (Image::Pause, PAUSE_IMAGE.to_owned()));
        assert_eq!(images.reference(Image::Pause), PAUSE_IMAGE);
        assert_eq!(images.manifest_digest(Image::Operator), d);

        // A set built with another reference is refused.
        let stale = table.replace(PAUSE_IMAGE, "localhost/other/pause:1");
        std::fs::write(dir.path().join(TABLE), stale).unwrap();
        let err = Images::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("expects"), "{err}");
    }

    /// The real archives, when they are built (skipped otherwise).
    #[test]
    fn built_archives_verify() {
        let Some(images) = images_or_skip("built_archives_verify") else {
            return;
        };
        for image in Image::ALL {
            let summary = images.verify(image).unwrap();
            let config = &summary.config["config"];
            let user = config["User"].as_str().unwrap();
            let uid: u32 = user.split(':').next().unwrap().parse().unwrap();
            assert_ne!(uid, 0, "{image:?} runs as root");
            let paths = &summary.layers[0].paths;
            match image {
                Image::Pause | Image::Target | Image::Operator => {
                    let entry = config["Entrypoint"][0].as_str().unwrap();
                    assert_eq!(paths.len(), 1, "{image:?}: {paths:?}");
                    assert_eq!(format!("/{}", paths[0]), entry);
                }
                Image::Locust => {
                    assert_eq!(config["Entrypoint"], serde_json::json!(["locust"]));
                    assert!(paths.iter().any(|p| p == "opt/venv/bin/locust"));
                    // /dev, /proc and /sys are empty directories for the runtime
                    for dir in ["dev/", "proc/", "sys/"] {
                        assert!(paths.iter().any(|p| p == dir), "{dir}");
                        assert!(
                            !paths.iter().any(|p| p.starts_with(dir) && p != dir),
                            "{dir}"
                        );
                    }
                    assert!(paths.iter().any(|p| p == "home/locust/"));
                }
            }
            if image == Image::Operator {
                let archive_bytes = std::fs::metadata(images.archive(image)).unwrap().len();
                assert!(archive_bytes <= 25_000_000, "{archive_bytes}");
            }
        }
    }
}
