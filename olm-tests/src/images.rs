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
//! Neither builds anything; [`Images::build`] does.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::tools::{REQUIRE_TOOLS_ENV, tools_required};

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
/// JSON blobs larger than this are not read into memory by [`verify_archive`].
const MAX_JSON_BLOB: u64 = 4 << 20;

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
        if let Some(dir) = std::env::var_os(IMAGES_DIR_ENV).filter(|v| !v.is_empty()) {
            return Self::from_dir(PathBuf::from(&dir))
                .with_context(|| format!("{IMAGES_DIR_ENV}={}", Path::new(&dir).display()));
        }
        let script = build_script();
        let output = Command::new("bash")
            .arg(&script)
            .arg("--print-dir")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running bash {} --print-dir", script.display()))?;
        if !output.status.success() {
            bail!(
                "the images are not built (bash {} --print-dir exited with {}: {}); build them with `bash {}` or set {IMAGES_DIR_ENV}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim(),
                script.display()
            );
        }
        Self::from_dir(last_line(&output.stdout)?)
    }

    /// Builds the images if needed (`bash olm-tests/images/build.sh`, whose
    /// progress goes to this process's stderr) and uses the result. Always
    /// runs `cargo build` for the static operator binary (a no-op when it is
    /// fresh); a cold build of everything takes about 10 minutes on 2 cores.
    pub fn build() -> Result<Self> {
        if let Some(dir) = std::env::var_os(IMAGES_DIR_ENV).filter(|v| !v.is_empty()) {
            return Self::from_dir(PathBuf::from(dir));
        }
        let script = build_script();
        let output = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running bash {}", script.display()))?;
        if !output.status.success() {
            bail!("bash {} failed with {}", script.display(), output.status);
        }
        Self::from_dir(last_line(&output.stdout)?)
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

fn last_line(stdout: &[u8]) -> Result<PathBuf> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .context("build.sh printed no directory")?;
    Ok(PathBuf::from(line))
}

// --- archive verification -------------------------------------------------------

/// What [`verify_archive`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The `io.containerd.image.name` (= `org.opencontainers.image.ref.name`).
    pub reference: String,
    /// Digest of the image manifest.
    pub manifest_digest: String,
    /// Digest of the image config.
    pub config_digest: String,
    /// The image config (`User`, `Entrypoint`, ... under `config`).
    pub config: Value,
    /// The layers, bottom first.
    pub layers: Vec<LayerSummary>,
}

impl ArchiveSummary {
    /// Sum of the compressed layer sizes.
    pub fn compressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Sum of the uncompressed layer (tar) sizes.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.tar_size).sum()
    }
}

/// One verified layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSummary {
    /// Digest of the gzip blob.
    pub digest: String,
    /// Size of the gzip blob.
    pub size: u64,
    /// Digest of the uncompressed tar (the config's `diff_id`).
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// Paths in the layer (no leading `./` or `/`), in archive order.
    pub paths: Vec<String>,
}

/// A blob or file found in the outer archive.
struct Member {
    offset: u64,
    size: u64,
    sha256: String,
    /// Content, for small members (JSON).
    content: Option<Vec<u8>>,
}

/// Checks an OCI image archive as `ctr images import` reads it: `oci-layout`;
/// `index.json` with one linux/amd64 image manifest annotated with the same
/// full reference as `io.containerd.image.name` and
/// `org.opencontainers.image.ref.name`; every blob stored under its own
/// sha256 with the size its descriptor states; the config's `diff_ids` equal
/// to the sha256 of each gunzipped layer; layers that are plain tars without
/// whiteouts, absolute paths, `..` or device nodes. Needs `gzip` in `PATH`.
pub fn verify_archive(path: &Path) -> Result<ArchiveSummary> {
    let ctx = || format!("verifying {}", path.display());
    verify_archive_inner(path).with_context(ctx)
}

fn verify_archive_inner(path: &Path) -> Result<ArchiveSummary> {
    let file = File::open(path)?;
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    let mut reader = CountingReader::new(BufReader::new(file));
    walk_tar(&mut reader, |entry, data| {
        if entry.kind == EntryKind::Directory {
            return Ok(());
        }
        ensure!(
            entry.kind == EntryKind::File,
            "{}: not a regular file",
            entry.path
        );
        let offset = data.position();
        let mut hasher = Sha256Writer::default();
        let content = if entry.size <= MAX_JSON_BLOB {
            let mut buf = Vec::with_capacity(entry.size as usize);
            data.read_to_end(&mut buf)?;
            hasher.write_all(&buf)?;
            Some(buf)
        } else {
            io::copy(data, &mut hasher)?;
            None
        };
        members.insert(
            entry.path.clone(),
            Member {
                offset,
                size: entry.size,
                sha256: hasher.finish(),
                content,
            },
        );
        Ok(())
    })?;

    let json = |name: &str| -> Result<Value> {
        let m = members.get(name).with_context(|| format!("no {name}"))?;
        let bytes = m
            .content
            .as_ref()
            .with_context(|| format!("{name} is too large"))?;
        serde_json::from_slice(bytes).with_context(|| format!("{name} is not JSON"))
    };
    let blob = |digest: &str, size: u64, media: &str| -> Result<&Member> {
        ensure!(is_sha256_digest(digest), "bad digest {digest:?} ({media})");
        let name = format!("blobs/sha256/{}", &digest[7..]);
        let m = members
            .get(&name)
            .with_context(|| format!("missing blob {name} ({media})"))?;
        ensure!(
            m.sha256 == digest[7..],
            "{name}: content hashes to sha256:{}",
            m.sha256
        );
        ensure!(
            m.size == size,
            "{name}: {} bytes, descriptor says {size}",
            m.size
        );
        Ok(m)
    };
    for (name, m) in &members {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            ensure!(
                m.sha256 == hex,
                "{name}: content hashes to sha256:{}",
                m.sha256
            );
        } else {
            ensure!(
                name == "oci-layout" || name == "index.json",
                "unexpected member {name}"
            );
        }
    }

    let layout = json("oci-layout")?;
    ensure!(
        layout["imageLayoutVersion"] == "1.0.0",
        "oci-layout: {layout}"
    );
    let index = json("index.json")?;
    ensure!(index["schemaVersion"] == 2, "index.json: schemaVersion");
    let manifests = index["manifests"]
        .as_array()
        .context("index.json: no manifests")?;
    ensure!(
        manifests.len() == 1,
        "index.json: {} manifests, expected 1",
        manifests.len()
    );
    let desc = &manifests[0];
    ensure!(
        desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json",
        "index.json: manifest media type {}",
        desc["mediaType"]
    );
    ensure!(
        desc["platform"]["architecture"] == "amd64" && desc["platform"]["os"] == "linux",
        "index.json: platform {}",
        desc["platform"]
    );
    let reference = desc["annotations"]["io.containerd.image.name"]
        .as_str()
        .context("index.json: no io.containerd.image.name annotation")?
        .to_owned();
    ensure!(
        desc["annotations"]["org.opencontainers.image.ref.name"] == reference.as_str(),
        "index.json: org.opencontainers.image.ref.name differs from io.containerd.image.name"
    );
    ensure!(
        reference.split('/').count() >= 2 && reference.contains(':') && !reference.contains("://"),
        "index.json: {reference:?} is not a full reference"
    );
    let (manifest_digest, manifest_size) = descriptor(desc)?;
    let manifest_member = blob(&manifest_digest, manifest_size, "manifest")?;
    let manifest: Value = serde_json::from_slice(
        manifest_member
            .content
            .as_ref()
            .context("manifest is too large")?,
    )
    .context("manifest is not JSON")?;
    ensure!(manifest["schemaVersion"] == 2, "manifest: schemaVersion");
    ensure!(
        manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json",
        "manifest: config media type {}",
        manifest["config"]["mediaType"]
    );
    let (config_digest, config_size) = descriptor(&manifest["config"])?;
    let config_member = blob(&config_digest, config_size, "config")?;
    let config: Value = serde_json::from_slice(
        config_member
            .content
            .as_ref()
            .context("config is too large")?,
    )
    .context("config is not JSON")?;
    ensure!(
        config["architecture"] == "amd64" && config["os"] == "linux",
        "config: platform {}/{}",
        config["os"],
        config["architecture"]
    );
    ensure!(config["rootfs"]["type"] == "layers", "config: rootfs.type");
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("config: no diff_ids")?;
    let layer_descs = manifest["layers"]
        .as_array()
        .context("manifest: no layers")?;
    ensure!(
        diff_ids.len() == layer_descs.len() && !layer_descs.is_empty(),
        "{} layers but {} diff_ids",
        layer_descs.len(),
        diff_ids.len()
    );

    let mut layers = Vec::new();
    for (i, (layer_desc, diff_id)) in layer_descs.iter().zip(diff_ids).enumerate() {
        ensure!(
            layer_desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip",
            "layer {i}: media type {}",
            layer_desc["mediaType"]
        );
        let (digest, size) = descriptor(layer_desc)?;
        let member = blob(&digest, size, "layer")?;
        let (tar_sha, tar_size, paths) = gunzip_and_check_layer(path, member.offset, member.size)
            .with_context(|| format!("layer {digest}"))?;
        let diff_id = diff_id.as_str().context("diff_id is not a string")?;
        ensure!(
            diff_id == format!("sha256:{tar_sha}"),
            "layer {i}: diff_id {diff_id} but the tar hashes to sha256:{tar_sha}"
        );
        layers.push(LayerSummary {
            digest,
            size,
            diff_id: diff_id.to_owned(),
            tar_size,
            paths,
        });
    }
    Ok(ArchiveSummary {
        reference,
        manifest_digest,
        config_digest,
        config,
        layers,
    })
}

fn descriptor(v: &Value) -> Result<(String, u64)> {
    let digest = v["digest"].as_str().context("descriptor without digest")?;
    let size = v["size"].as_u64().context("descriptor without size")?;
    Ok((digest.to_owned(), size))
}

/// Streams `size` bytes at `offset` of `archive` through `gzip -dc`, walks the
/// tar that comes out, and returns its sha256, size and paths.
fn gunzip_and_check_layer(
    archive: &Path,
    offset: u64,
    size: u64,
) -> Result<(String, u64, Vec<String>)> {
    let mut file = File::open(archive)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running gzip -dc")?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let feeder = std::thread::spawn(move || -> io::Result<u64> {
        let copied = io::copy(&mut file.take(size), &mut stdin);
        drop(stdin);
        copied
    });
    let stdout = child.stdout.take().context("gzip stdout")?;
    let mut reader = CountingReader::new(HashingReader::new(BufReader::new(stdout)));
    let mut paths = Vec::new();
    let walked = walk_tar(&mut reader, |entry, _| {
        let p = entry.path.trim_start_matches("./");
        ensure!(!p.starts_with('/'), "absolute path {p}");
        ensure!(!p.split('/').any(|c| c == ".."), "path with '..': {p}");
        let base = p.trim_end_matches('/').rsplit('/').next().unwrap_or(p);
        ensure!(!base.starts_with(".wh."), "whiteout {p}");
        ensure!(
            !matches!(entry.kind, EntryKind::Device | EntryKind::Other(_)),
            "{p}: unsupported entry type {:?}",
            entry.kind
        );
        if !p.is_empty() {
            paths.push(p.to_owned());
        }
        Ok(())
    });
    // Hash what follows the end-of-archive blocks too: the diff_id covers all of it.
    if let Err(error) = walked.and_then(|()| Ok(io::copy(&mut reader, &mut io::sink())?)) {
        // Unblock gzip and the feeder before waiting for them.
        drop(reader);
        let _ = child.kill();
        let _ = feeder.join();
        let _ = child.wait();
        return Err(error);
    }
    let fed = feeder
        .join()
        .map_err(|_| anyhow::anyhow!("gzip feeder panicked"))?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "gzip -dc failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    ensure!(fed? == size, "short read of the layer blob");
    let tar_size = reader.position();
    Ok((reader.into_inner().finish(), tar_size, paths))
}

// --- a minimal tar reader ------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryKind {
    File,
    Directory,
    Symlink,
    HardLink,
    Device,
    Fifo,
    Other(u8),
}

#[derive(Clone, Debug)]
struct TarEntry {
    path: String,
    size: u64,
    kind: EntryKind,
}

/// Calls `f` for every entry of a ustar/pax/GNU tar with a reader limited to
/// the entry's data (which `f` may leave unread), and stops at the
/// end-of-archive marker (leaving whatever follows it unread).
fn walk_tar<R: Read>(
    reader: &mut CountingReader<R>,
    mut f: impl FnMut(&TarEntry, &mut CountingReader<io::Take<&mut CountingReader<R>>>) -> Result<()>,
) -> Result<()> {
    let mut header = [0u8; 512];
    let mut next_path: Option<String> = None;
    let mut next_size: Option<u64> = None;
    loop {
        let at = reader.position();
        reader
            .read_exact(&mut header)
            .with_context(|| format!("truncated tar: no header at byte {at}"))?;
        if header.iter().all(|&b| b == 0) {
            // end of archive: a second zero block follows
            reader
                .read_exact(&mut header)
                .context("truncated end of tar")?;
            ensure!(
                header.iter().all(|&b| b == 0),
                "garbage after a zero block at byte {at}"
            );
            return Ok(());
        }
        verify_checksum(&header).with_context(|| format!("tar header at byte {at}"))?;
        let size = match next_size.take() {
            Some(s) => s,
            None => {
                parse_number(&header[124..136]).with_context(|| format!("size at byte {at}"))?
            }
        };
        let typeflag = header[156];
        let padded = size.div_ceil(512) * 512;
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
            {
                ensure!(size <= 1 << 20, "extended header of {size} bytes");
                let mut data = vec![0u8; padded as usize];
                reader.read_exact(&mut data)?;
                data.truncate(size as usize);
                if typeflag == b'x' {
                    for (key, value) in parse_pax(&data)? {
                        match key.as_str() {
                            "path" => next_path = Some(value),
                            "size" => next_size = Some(value.parse().context("pax size")?),
                            _ => {}
                        }
                    }
                } else if typeflag == b'L' {
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    next_path = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                }
            }
            continue;
        }
        let path = match next_path.take() {
            Some(p) => p,
            None => {
                let name = c_string(&header[0..100]);
                let prefix = if &header[257..262] == b"ustar" {
                    c_string(&header[345..500])
                } else {
                    String::new()
                };
                if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                }
            }
        };
        let kind = match typeflag {
            b'0' | 0 | b'7' => EntryKind::File,
            b'5' => EntryKind::Directory,
            b'2' => EntryKind::Symlink,
            b'1' => EntryKind::HardLink,
            b'3' | b'4' => EntryKind::Device,
            b'6' => EntryKind::Fifo,
            other => EntryKind::Other(other),
        };
        // Only regular files carry data (a hard link's size is 0 in practice).
        let data_size = if kind == EntryKind::File { size } else { 0 };
        let entry = TarEntry {
            path,
            size: data_size,
            kind,
        };
        let start = reader.position();
        {
            let mut data = CountingReader::at((&mut *reader).take(data_size), start);
            f(&entry, &mut data)?;
            io::copy(&mut data, &mut io::sink())?;
        }
        let pad = data_size.div_ceil(512) * 512 - data_size;
        io::copy(&mut (&mut *reader).take(pad), &mut io::sink())?;
        ensure!(
            reader.position() == start + data_size + pad,
            "truncated tar entry {}",
            entry.path
        );
    }
}

fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

fn parse_number(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        // GNU base-256
        ensure!(field[0] == 0x80, "negative or huge base-256 number");
        return Ok(field[1..]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b)));
    }
    let text = c_string(field);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).with_context(|| format!("bad octal {text:?}"))
}

fn verify_checksum(header: &[u8; 512]) -> Result<()> {
    let stored = parse_number(&header[148..156])?;
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    ensure!(sum == stored, "checksum {stored} != {sum}");
    Ok(())
}

/// Records of a pax extended header: `"<len> <key>=<value>\n"`.
fn parse_pax(mut data: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .context("pax record without length")?;
        let len: usize = std::str::from_utf8(&data[..space])?
            .parse()
            .context("pax record length")?;
        ensure!(
            len > space + 1 && len <= data.len(),
            "bad pax record length {len}"
        );
        let record = &data[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .context("pax record without newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .context("pax record without '='")?;
        out.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
        ));
        data = &data[len..];
    }
    Ok(out)
}

/// A reader that counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    position: u64,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        Self::at(inner, 0)
    }
    fn at(inner: R, position: u64) -> Self {
        Self { inner, position }
    }
    fn position(&self) -> u64 {
        self.position
    }
    fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// A reader that hashes (SHA-256) everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256Writer::default(),
        }
    }
    fn finish(self) -> String {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.0.update(&buf[..n]);
        Ok(n)
    }
}

/// SHA-256 as an `io::Write` sink.
struct Sha256Writer(ring::digest::Context);

impl Default for Sha256Writer {
    fn default() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }
}

impl Sha256Writer {
    /// Lower-case hex digest.
    fn finish(self) -> String {
        let mut hex = String::with_capacity(64);
        for b in self.0.finish().as_ref() {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

impl Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        let mut h = Sha256Writer::default();
        h.write_all(data).unwrap();
        h.finish()
    }

    fn run(cmd: &mut Command) {
        let status = cmd.status().unwrap();
        assert!(status.success(), "{cmd:?}: {status}");
    }

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
        let csv: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&csv_path).unwrap()).unwrap();
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

    #[test]
    fn tar_reader_reads_gnu_tar_pax_archives() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let long = "d".repeat(120);
        std::fs::create_dir_all(src.join(&long)).unwrap();
        std::fs::write(src.join(&long).join("f"), vec![7u8; 1000]).unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        std::os::unix::fs::symlink("empty", src.join("link")).unwrap();
        let tar = dir.path().join("t.tar");
        run(Command::new("tar")
            .args(["--format=posix", "--sort=name", "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(&tar)
            .args([long.as_str(), "empty", "link"]));
        let bytes = std::fs::read(&tar).unwrap();
        let mut reader = CountingReader::new(&bytes[..]);
        let mut seen = Vec::new();
        walk_tar(&mut reader, |e, data| {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)?;
            seen.push((e.path.clone(), e.kind, buf.len() as u64, e.size));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (format!("{long}/"), EntryKind::Directory, 0, 0),
                (format!("{long}/f"), EntryKind::File, 1000, 1000),
                ("empty".to_owned(), EntryKind::File, 0, 0),
                ("link".to_owned(), EntryKind::Symlink, 0, 0),
            ]
        );
        // Truncated archives are errors, not silent ends.
        let mut short = CountingReader::new(&bytes[..1024]);
        assert!(walk_tar(&mut short, |_, _| Ok(())).is_err());
    }

    /// Writes an OCI archive the way build.sh does (GNU tar, gzip -n), with
    /// hooks to break it, and returns its path.
    fn synthetic_archive(
        dir: &Path,
        layer_files: &[&str],
        tweak_manifest: impl FnOnce(&mut Value),
        tweak_index: impl FnOnce(&mut Value),
    ) -> PathBuf {
        let root = dir.join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        for f in layer_files {
            std::fs::write(root.join(f), f.as_bytes()).unwrap();
        }
        let layer_tar = dir.join("layer.tar");
        run(Command::new("tar")
            .args([
                "--format=posix",
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "-C",
            ])
            .arg(&root)
            .arg("-cf")
            .arg(&layer_tar)
            .args(layer_files));
        let tar_bytes = std::fs::read(&layer_tar).unwrap();
        let gz = Command::new("gzip")
            .args(["-n", "-c"])
            .arg(&layer_tar)
            .output()
            .unwrap()
            .stdout;
        let oci = dir.join("oci");
        let blobs = oci.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            let hex = sha256_hex(data);
            std::fs::write(blobs.join(&hex), data).unwrap();
            (format!("sha256:{hex}"), data.len())
        };
        let (layer_digest, layer_size) = put(&gz);
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": "65532:65532", "Entrypoint": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar_bytes))]},
        });
        let (config_digest, config_size) = put(config.to_string().as_bytes());
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
        });
        tweak_manifest(&mut manifest);
        let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
        let mut index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {
                    "io.containerd.image.name": "localhost/x/y:1",
                    "org.opencontainers.image.ref.name": "localhost/x/y:1",
                },
                "platform": {"architecture": "amd64", "os": "linux"},
            }],
        });
        tweak_index(&mut index);
        std::fs::write(oci.join("index.json"), index.to_string()).unwrap();
        std::fs::write(oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let archive = dir.join("image.tar");
        run(Command::new("tar")
            .args(["--format=posix", "--sort=name", "-C"])
            .arg(&oci)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"]));
        archive
    }

    #[test]
    fn verify_accepts_a_valid_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = synthetic_archive(dir.path(), &["x", "y"], |_| {}, |_| {});
        let summary = verify_archive(&archive).unwrap();
        assert_eq!(summary.reference, "localhost/x/y:1");
        assert_eq!(summary.config["config"]["User"], "65532:65532");
        assert_eq!(summary.layers.len(), 1);
        assert_eq!(summary.layers[0].paths, ["x", "y"]);
        assert_eq!(summary.uncompressed_bytes() % 512, 0);
        assert!(summary.compressed_bytes() > 0);
    }

    #[test]
    fn verify_rejects_broken_archives() {
        type MakeArchive = Box<dyn Fn(&Path) -> PathBuf>;
        let cases: Vec<(&str, MakeArchive)> = vec![
            (
                "whiteout",
                Box::new(|d| synthetic_archive(d, &["x", ".wh.y"], |_| {}, |_| {})),
            ),
            (
                "bytes, descriptor says",
                Box::new(|d| {
                    synthetic_archive(d, &["x"], |m| m["layers"][0]["size"] = 1.into(), |_| {})
                }),
            ),
            (
                "missing blob",
                Box::new(|d| {
                    synthetic_archive(
                        d,
                        &["x"],
                        |m| m["config"]["digest"] = format!("sha256:{}", "0".repeat(64)).into(),
                        |_| {},
                    )
                }),
            ),
            (
                "ref.name differs",
                Box::new(|d| {
                    synthetic_archive(
                        d,
                        &["x"],
                        |_| {},
                        |i| {
                            i["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] =
                                "1".into()
                        },
                    )
                }),
            ),
            (
                "platform",
                Box::new(|d| {
                    synthetic_archive(
                        d,
                        &["x"],
                        |_| {},
                        |i| i["manifests"][0]["platform"]["architecture"] = "arm64".into(),
                    )
                }),
            ),
        ];
        for (expected, make) in cases {
            let dir = tempfile::tempdir().unwrap();
            let archive = make(dir.path());
            let err = format!("{:#}", verify_archive(&archive).unwrap_err());
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn verify_rejects_a_wrong_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let archive = synthetic_archive(dir.path(), &["x"], |_| {}, |_| {});
        // Re-point the config at a different diff_id: rebuild the archive by hand.
        let oci = dir.path().join("oci");
        let index: Value =
            serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
        let blob = |d: &str| oci.join("blobs/sha256").join(&d[7..]);
        let mdigest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let mut manifest: Value =
            serde_json::from_slice(&std::fs::read(blob(&mdigest)).unwrap()).unwrap();
        let cdigest = manifest["config"]["digest"].as_str().unwrap().to_owned();
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(blob(&cdigest)).unwrap()).unwrap();
        config["rootfs"]["diff_ids"][0] = format!("sha256:{}", "1".repeat(64)).into();
        let config_bytes = config.to_string();
        let new_c = format!("sha256:{}", sha256_hex(config_bytes.as_bytes()));
        std::fs::write(blob(&new_c), &config_bytes).unwrap();
        manifest["config"]["digest"] = new_c.clone().into();
        manifest["config"]["size"] = config_bytes.len().into();
        let manifest_bytes = manifest.to_string();
        let new_m = format!("sha256:{}", sha256_hex(manifest_bytes.as_bytes()));
        std::fs::write(blob(&new_m), &manifest_bytes).unwrap();
        let mut index = index;
        index["manifests"][0]["digest"] = new_m.into();
        index["manifests"][0]["size"] = manifest_bytes.len().into();
        std::fs::write(oci.join("index.json"), index.to_string()).unwrap();
        std::fs::remove_file(&archive).unwrap();
        run(Command::new("tar")
            .args(["--format=posix", "-C"])
            .arg(&oci)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"]));
        let err = format!("{:#}", verify_archive(&archive).unwrap_err());
        assert!(err.contains("diff_id"), "{err}");
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
