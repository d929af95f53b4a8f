//! Deterministic OCI images, written without a daemon: file trees become
//! gzip layers (sorted entries, owner 0:0, mtime 0, fixed modes), image
//! configs and manifests are canonical JSON, and the result is an OCI image
//! layout directory that `crane push` (or any OCI tool) takes as it is.
//!
//! The same inputs give the same bytes, hence the same manifest digest, on
//! any machine with the same `Cargo.lock`: nothing reads a clock, a user
//! database or the file system's order. [`crate::images`] defines the
//! release's images (operator, bundle, catalog) with it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Error;

/// Media type of an OCI image index.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image manifest.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image config.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of a gzip-compressed layer.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation naming an image in a layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation for the same (what `ctr images import` names the image).
pub const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";
/// The one timestamp every image carries (configs, history, tar entries).
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

/// One entry of a layer's file tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory with its permission bits.
    Dir {
        /// Permission bits (e.g. `0o755`).
        mode: u32,
    },
    /// A regular file.
    File {
        /// Permission bits (e.g. `0o644`).
        mode: u32,
        /// Content.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Link target.
        target: String,
    },
}

/// A file tree: path (relative, `/`-separated, no leading `/`) → entry.
/// Parent directories are added (mode 0755) when the layer is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree(BTreeMap<String, Entry>);

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, path: &str, entry: Entry) -> Result<(), Error> {
        let clean = path.trim_start_matches('/').trim_end_matches('/');
        if clean.is_empty()
            || clean
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Image(format!("invalid path in an image: {path:?}")));
        }
        if self.0.insert(clean.to_owned(), entry).is_some() {
            return Err(Error::Image(format!("{clean} is in the image twice")));
        }
        Ok(())
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, Error> {
        self.insert(path, Entry::Dir { mode })?;
        Ok(self)
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<&mut Self, Error> {
        self.insert(path, Entry::File { mode, data })?;
        Ok(self)
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, Error> {
        self.insert(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        )?;
        Ok(self)
    }

    /// The entries with every missing parent directory added, in tar order
    /// (sorted by path, so a directory precedes its content).
    fn complete(&self) -> BTreeMap<String, Entry> {
        let mut all = self.0.clone();
        for path in self.0.keys() {
            let mut parent = path.as_str();
            while let Some((p, _)) = parent.rsplit_once('/') {
                all.entry(p.to_owned())
                    .or_insert(Entry::Dir { mode: 0o755 });
                parent = p;
            }
        }
        all
    }
}

/// A content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// The blob of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// An OCI descriptor of the blob.
    pub fn descriptor(&self, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": self.digest, "size": self.bytes.len()})
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A gzip layer and the digest of its uncompressed tar (the config's `diff_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The compressed layer.
    pub blob: Blob,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub tar_size: usize,
    /// What made the layer (the config's history entry).
    pub created_by: String,
}

/// Writes `tree` as a layer: a POSIX ustar archive, entries sorted, owner
/// 0:0, mtime 0, then gzip (level 6, no name, mtime 0).
pub fn layer(tree: &Tree, created_by: &str) -> Result<Layer, Error> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry) in tree.complete() {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
            .set_username("")
            .and_then(|()| header.set_groupname(""))
            .map_err(|e| Error::Image(format!("{path}: {e}")))?;
        let tar_error = |e: std::io::Error| Error::Image(format!("{path}: {e}"));
        match entry {
            Entry::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(mode);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{path}/"), std::io::empty())
                    .map_err(tar_error)?;
            }
            Entry::File { mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode);
                header.set_size(data.len() as u64);
                builder
                    .append_data(&mut header, &path, data.as_slice())
                    .map_err(tar_error)?;
            }
            Entry::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder
                    .append_link(&mut header, &path, &target)
                    .map_err(tar_error)?;
            }
        }
    }
    let tar = builder
        .into_inner()
        .map_err(|e| Error::Image(format!("tar: {e}")))?;
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(6));
    gz.write_all(&tar)
        .map_err(|e| Error::Image(format!("gzip: {e}")))?;
    let compressed = gz
        .finish()
        .map_err(|e| Error::Image(format!("gzip: {e}")))?;
    Ok(Layer {
        blob: Blob::new(compressed),
        diff_id: sha256_digest(&tar),
        tar_size: tar.len(),
        created_by: created_by.to_owned(),
    })
}

/// The runtime part of an image config (the OCI config's `config` member).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`, as `NAME=value`.
    pub env: Vec<String>,
    /// `User` (numeric: `uid[:gid]`), empty for root.
    pub user: String,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
}

impl RunConfig {
    fn to_json(&self) -> Value {
        let fields = [
            ("Entrypoint", json!(self.entrypoint)),
            ("Cmd", json!(self.cmd)),
            ("Env", json!(self.env)),
            ("User", json!(self.user)),
            ("WorkingDir", json!(self.working_dir)),
            ("Labels", json!(self.labels)),
        ];
        let set = |v: &Value| match v {
            Value::Array(a) => !a.is_empty(),
            Value::String(s) => !s.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        };
        Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| set(v))
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
}

/// A built single-platform image: its manifest, config and layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `linux/<arch>`'s arch (`amd64`, `arm64`).
    pub arch: String,
    /// The manifest blob (its digest is the image's digest).
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
}

impl Image {
    /// Builds the config and manifest of `layers` for `linux/<arch>`.
    pub fn new(arch: &str, layers: Vec<Layer>, run: &RunConfig) -> Result<Self, Error> {
        let config = json!({
            "architecture": arch,
            "config": run.to_json(),
            "created": EPOCH,
            "history": layers.iter().map(|l| json!({"created": EPOCH, "created_by": l.created_by})).collect::<Vec<_>>(),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        });
        let config = Blob::new(serde_json::to_vec(&config)?);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(MEDIA_CONFIG),
            "layers": layers.iter().map(|l| l.blob.descriptor(MEDIA_LAYER_GZIP)).collect::<Vec<_>>(),
        });
        Ok(Self {
            arch: arch.to_owned(),
            manifest: Blob::new(serde_json::to_vec(&manifest)?),
            config,
            layers,
        })
    }

    /// The image's digest (its manifest's).
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// The config's labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        serde_json::from_slice::<Value>(&self.config.bytes)
            .ok()
            .and_then(|c| c.pointer("/config/Labels").cloned())
            .and_then(|l| serde_json::from_value(l).ok())
            .unwrap_or_default()
    }

    fn descriptor(&self) -> Value {
        let mut d = self.manifest.descriptor(MEDIA_MANIFEST);
        d["platform"] = json!({"architecture": self.arch, "os": "linux"});
        d
    }
}

/// An image index over several platforms' images (a multi-arch image).
pub fn index(images: &[Image]) -> Result<Blob, Error> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": images.iter().map(Image::descriptor).collect::<Vec<_>>(),
    });
    Ok(Blob::new(serde_json::to_vec(&index)?))
}

/// Writes `images` as an OCI image layout in `dir` (created; must not
/// exist or be empty). `index.json` lists the image under `ref_name`; with
/// more than one image it lists their [`index`] instead. `crane push DIR REF`
/// pushes that one entry as it is (`--index` would wrap `index.json` itself
/// in another index, with another digest). Returns the digest to pull: the
/// single image's, or the index's.
pub fn write_layout(dir: &Path, images: &[Image], ref_name: &str) -> Result<String, Error> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
    let put = |blob: &Blob| -> Result<(), Error> {
        let hex = blob.digest.trim_start_matches("sha256:");
        let path = blobs.join(hex);
        std::fs::write(&path, &blob.bytes).map_err(|e| Error::io(&path, e))
    };
    let annotations =
        json!({ REF_NAME_ANNOTATION: ref_name, CONTAINERD_NAME_ANNOTATION: ref_name });
    let (top, digest) = match images {
        [] => return Err(Error::Image("no image to write".to_owned())),
        [one] => {
            let mut d = one.descriptor();
            d["annotations"] = annotations;
            (d, one.digest().to_owned())
        }
        many => {
            let idx = index(many)?;
            put(&idx)?;
            let mut d = idx.descriptor(MEDIA_INDEX);
            d["annotations"] = annotations;
            (d, idx.digest.clone())
        }
    };
    for image in images {
        put(&image.config)?;
        put(&image.manifest)?;
        for l in &image.layers {
            put(&l.blob)?;
        }
    }
    let write = |name: &str, value: Value| -> Result<(), Error> {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_vec(&value)?).map_err(|e| Error::io(&path, e))
    };
    write("oci-layout", json!({"imageLayoutVersion": "1.0.0"}))?;
    write(
        "index.json",
        json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [top]}),
    )?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.file("bin/tool", 0o755, b"#!tool".to_vec()).unwrap();
        t.symlink("bin/sh", "tool").unwrap();
        t.dir("tmp", 0o1777).unwrap();
        t.file("etc/a/b.txt", 0o644, b"hello".to_vec()).unwrap();
        t
    }

    #[test]
    fn layers_are_deterministic_sorted_and_owned_by_root() {
        let a = layer(&sample(), "x").unwrap();
        let b = layer(&sample(), "x").unwrap();
        assert_eq!(a, b);
        let mut gz = flate2::read::GzDecoder::new(a.blob.bytes.as_slice());
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut gz, &mut tar).unwrap();
        assert_eq!(sha256_digest(&tar), a.diff_id);
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, u32, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin/",
                "bin/sh",
                "bin/tool",
                "etc/",
                "etc/a/",
                "etc/a/b.txt",
                "tmp/"
            ]
        );
        assert!(entries.iter().all(|e| e.2 == 0 && e.3 == 0));
        assert_eq!(entries[6].1, 0o1777);
        assert_eq!(entries[2].1, 0o755);
    }

    #[test]
    fn any_change_changes_the_digest() {
        let run = RunConfig {
            entrypoint: vec!["/bin/tool".into()],
            ..RunConfig::default()
        };
        let base = Image::new("amd64", vec![layer(&sample(), "x").unwrap()], &run).unwrap();
        let mut t = sample();
        t.file("extra", 0o644, Vec::new()).unwrap();
        let other_tree = Image::new("amd64", vec![layer(&t, "x").unwrap()], &run).unwrap();
        let other_arch = Image::new("arm64", vec![layer(&sample(), "x").unwrap()], &run).unwrap();
        let mut labelled = run.clone();
        labelled.labels.insert("k".into(), "v".into());
        let other_label =
            Image::new("amd64", vec![layer(&sample(), "x").unwrap()], &labelled).unwrap();
        let digests = [
            base.digest(),
            other_tree.digest(),
            other_arch.digest(),
            other_label.digest(),
        ];
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(other_label.labels().get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn paths_are_checked() {
        let mut t = Tree::new();
        assert!(t.file("../x", 0o644, vec![]).is_err());
        assert!(t.file("a//b", 0o644, vec![]).is_err());
        t.file("/a", 0o644, vec![]).unwrap();
        assert!(t.file("a", 0o644, vec![]).is_err(), "duplicate");
    }

    #[test]
    fn layouts_name_the_image_or_the_index() {
        let run = RunConfig::default();
        let amd = Image::new("amd64", vec![layer(&sample(), "x").unwrap()], &run).unwrap();
        let arm = Image::new("arm64", vec![layer(&sample(), "x").unwrap()], &run).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let one = write_layout(&dir.path().join("one"), std::slice::from_ref(&amd), "r:1").unwrap();
        assert_eq!(one, amd.digest());
        let idx: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("one/index.json")).unwrap())
                .unwrap();
        assert_eq!(idx["manifests"][0]["digest"], json!(amd.digest()));
        assert_eq!(
            idx["manifests"][0]["annotations"][REF_NAME_ANNOTATION],
            json!("r:1")
        );
        let two = write_layout(&dir.path().join("two"), &[amd.clone(), arm], "r:1").unwrap();
        let blob = std::fs::read(
            dir.path()
                .join("two/blobs/sha256")
                .join(two.trim_start_matches("sha256:")),
        )
        .unwrap();
        assert_eq!(sha256_digest(&blob), two);
        let index: Value = serde_json::from_slice(&blob).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
        for d in ["config", "manifest"] {
            let digest = if d == "config" {
                &amd.config.digest
            } else {
                &amd.manifest.digest
            };
            assert!(
                dir.path()
                    .join("two/blobs/sha256")
                    .join(digest.trim_start_matches("sha256:"))
                    .is_file()
            );
        }
    }
}
