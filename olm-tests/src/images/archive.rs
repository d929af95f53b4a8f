//! Verification of an OCI image archive: the index, manifest, config and
//! layers, every digest and size, and what the layers hold.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::is_sha256_digest;
use super::tar::{CountingReader, EntryKind, HashingReader, Sha256Writer, walk_tar};

/// JSON blobs larger than this are not read into memory by [`verify_archive`].
const MAX_JSON_BLOB: u64 = 4 << 20;

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

impl Member {
    /// The member's content as JSON; `name` names it in errors.
    fn json(&self, name: &str) -> Result<Value> {
        let bytes = self
            .content
            .as_ref()
            .with_context(|| format!("{name} is too large"))?;
        serde_json::from_slice(bytes).with_context(|| format!("{name} is not JSON"))
    }
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
        m.json(name)
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
    let manifest = manifest_member.json("manifest")?;
    ensure!(manifest["schemaVersion"] == 2, "manifest: schemaVersion");
    ensure!(
        manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json",
        "manifest: config media type {}",
        manifest["config"]["mediaType"]
    );
    let (config_digest, config_size) = descriptor(&manifest["config"])?;
    let config_member = blob(&config_digest, config_size, "config")?;
    let config = config_member.json("config")?;
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

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
}
