//! The release's images, defined once and built by [`crate::oci`] without a
//! daemon — here and in the release workflow alike:
//!
//! * **operator** — the static `locust-k8s-operator` binary alone, run as
//!   65532:65532 (like `distroless/static:nonroot`), one image per
//!   architecture, pushed as a multi-arch index;
//! * **bundle** — the generated `bundle/` (`manifests/`, `metadata/`,
//!   `tests/scorecard/`) with `metadata/annotations.yaml` as its labels;
//! * **catalog** — the generated File-Based Catalog under `/configs`, served
//!   by `opm serve /configs`, on the **opm** layer (a static `opm`,
//!   `grpc_health_probe` — OLM's catalog pods probe with it — and a static
//!   busybox for `sh`).
//!
//! The **opm** image itself (that layer plus OLM's `cpb` and an empty
//! catalog) is not published: the local cluster uses it as OLM's opm and
//! util images and as operator-sdk's index image (an empty File-Based
//! Catalog: `run bundle` adds the bundle to it) and decompression image.

use std::collections::BTreeMap;

use semver::Version;
use serde_json::Value;

use crate::oci::{Image, Layer, RunConfig, Tree, layer};
use crate::{ANNOTATIONS_PATH, Error, Generated, REPOSITORY};

/// The operator binary's path in its image.
pub const OPERATOR_BINARY: &str = "locust-k8s-operator";
/// The operator image's user (as distroless `nonroot`).
pub const OPERATOR_USER: &str = "65532:65532";
/// Where the catalog image keeps the File-Based Catalog.
pub const CATALOG_CONFIGS_DIR: &str = "/configs";
/// The label that tells `opm` (and OLM tooling) where the catalog is.
pub const CATALOG_CONFIGS_LABEL: &str = "operators.operatorframework.io.index.configs.v1";
/// The opm and catalog images' user (as upstream's opm image).
pub const OPM_USER: &str = "1001";
/// Busybox applets the opm image links: what OLM's and operator-sdk's pods
/// run besides opm (`sh -c`, `cp`, `gzip -d`, `cat`, `tar xzf`) and a few
/// for debugging.
pub const BUSYBOX_APPLETS: [&str; 10] = [
    "cat", "cp", "gzip", "ls", "mkdir", "mv", "rm", "sh", "sleep", "tar",
];
const PATH_ENV: &str = "PATH=/bin";

/// The catalog image of the release `version` (the newest it lists).
pub fn catalog_image(version: &Version) -> String {
    format!("{}:v{version}", crate::CATALOG_IMAGE_REPO)
}

fn oci_labels(description: &str, version: &str) -> BTreeMap<String, String> {
    [
        ("org.opencontainers.image.description", description),
        ("org.opencontainers.image.licenses", "Apache-2.0"),
        ("org.opencontainers.image.source", REPOSITORY),
        ("org.opencontainers.image.version", version),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The operator image of `version`, one per `(arch, static binary)`.
pub fn operator(binaries: &[(String, Vec<u8>)], version: &Version) -> Result<Vec<Image>, Error> {
    if binaries.is_empty() {
        return Err(Error::Image("no operator binary".to_owned()));
    }
    let run = RunConfig {
        entrypoint: vec![format!("/{OPERATOR_BINARY}")],
        env: vec![PATH_ENV.to_owned()],
        user: OPERATOR_USER.to_owned(),
        labels: oci_labels(
            "Kubernetes operator for distributed Locust load tests",
            &version.to_string(),
        ),
        ..RunConfig::default()
    };
    binaries
        .iter()
        .map(|(arch, binary)| {
            if !binary.starts_with(b"\x7fELF") {
                return Err(Error::Image(format!(
                    "the {arch} operator binary is not an ELF file"
                )));
            }
            let mut tree = Tree::new();
            tree.file(OPERATOR_BINARY, 0o755, binary.clone())?;
            let l = layer(&tree, &format!("manifests-gen image operator ({arch})"))?;
            Image::new(arch, vec![l], &run)
        })
        .collect()
}

/// `metadata/annotations.yaml`'s annotations from generated files.
pub fn bundle_annotations(generated: &Generated) -> Result<BTreeMap<String, String>, Error> {
    let text = generated
        .text(ANNOTATIONS_PATH)
        .ok_or_else(|| Error::Image(format!("{ANNOTATIONS_PATH} was not generated")))?;
    let doc: Value = crate::yaml::from_str(text).map_err(|e| Error::Input {
        path: ANNOTATIONS_PATH.into(),
        message: crate::yaml::describe(&e, ANNOTATIONS_PATH),
    })?;
    serde_json::from_value(doc.get("annotations").cloned().unwrap_or(Value::Null)).map_err(|e| {
        Error::Input {
            path: ANNOTATIONS_PATH.into(),
            message: format!("annotations: {e}"),
        }
    })
}

/// The bundle image of the generated bundle: every generated file under
/// `bundle/` at the image's root, labelled with its annotations (what
/// `bundle.Dockerfile` describes).
pub fn bundle(generated: &Generated) -> Result<Image, Error> {
    let mut tree = Tree::new();
    for (path, content) in &generated.files {
        if let Some(rel) = path.strip_prefix("bundle/") {
            tree.file(rel, 0o644, content.clone())?;
        }
    }
    let labels = bundle_annotations(generated)?;
    let l = layer(&tree, "manifests-gen image bundle")?;
    Image::new(
        "amd64",
        vec![l],
        &RunConfig {
            labels,
            ..RunConfig::default()
        },
    )
}

/// The static programs of the opm layer.
#[derive(Clone, Debug)]
pub struct OpmInputs {
    /// A static `opm` (`CGO_ENABLED=0`).
    pub opm: Vec<u8>,
    /// A static `grpc_health_probe`.
    pub grpc_health_probe: Vec<u8>,
    /// A static busybox.
    pub busybox: Vec<u8>,
    /// OLM's static `cpb` (only in the opm image, not in the catalog).
    pub cpb: Vec<u8>,
    /// What the layer's history says it holds (versions).
    pub description: String,
}

/// `/bin/busybox` and its [`BUSYBOX_APPLETS`] as links to it.
pub fn add_busybox(tree: &mut Tree, busybox: Vec<u8>) -> Result<(), Error> {
    tree.file("bin/busybox", 0o755, busybox)?;
    for applet in BUSYBOX_APPLETS {
        tree.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    Ok(())
}

/// The opm layer: `/bin/{opm,grpc_health_probe,busybox}`, busybox's
/// applets as links, a world-writable `/tmp` (opm's cache) and a passwd
/// with the opm user.
pub fn opm_layer(inputs: &OpmInputs) -> Result<Layer, Error> {
    let mut tree = Tree::new();
    tree.file("bin/opm", 0o755, inputs.opm.clone())?
        .file(
            "bin/grpc_health_probe",
            0o755,
            inputs.grpc_health_probe.clone(),
        )?
        .file(
            "etc/passwd",
            0o644,
            format!("root:x:0:0:root:/:/bin/sh\nopm:x:{OPM_USER}:{OPM_USER}:opm:/tmp:/bin/sh\n")
                .into_bytes(),
        )?
        .file(
            "etc/group",
            0o644,
            format!("root:x:0:\nopm:x:{OPM_USER}:\n").into_bytes(),
        )?
        .dir("tmp", 0o1777)?;
    add_busybox(&mut tree, inputs.busybox.clone())?;
    layer(
        &tree,
        &format!("manifests-gen image opm: {}", inputs.description),
    )
}

/// The opm image: the opm layer plus `/bin/cpb` and an empty catalog
/// directory, labelled as a File-Based Catalog (what operator-sdk requires
/// of an index image).
pub fn opm(inputs: &OpmInputs) -> Result<Image, Error> {
    let mut util = Tree::new();
    util.file("bin/cpb", 0o755, inputs.cpb.clone())?
        .dir(CATALOG_CONFIGS_DIR, 0o755)?;
    let layers = vec![
        opm_layer(inputs)?,
        layer(
            &util,
            "manifests-gen image opm: OLM's cpb, an empty catalog",
        )?,
    ];
    Image::new("amd64", layers, &opm_serve(BTreeMap::new()))
}

/// How the opm and catalog images run: `opm serve /configs` as
/// [`OPM_USER`], labelled (besides `labels`) as a File-Based Catalog.
fn opm_serve(mut labels: BTreeMap<String, String>) -> RunConfig {
    labels.insert(
        CATALOG_CONFIGS_LABEL.to_owned(),
        CATALOG_CONFIGS_DIR.to_owned(),
    );
    RunConfig {
        entrypoint: vec!["/bin/opm".to_owned()],
        cmd: vec!["serve".to_owned(), CATALOG_CONFIGS_DIR.to_owned()],
        env: vec![PATH_ENV.to_owned()],
        user: OPM_USER.to_owned(),
        labels,
        ..RunConfig::default()
    }
}

/// The catalog image: the opm layer plus the generated `catalog/` under
/// [`CATALOG_CONFIGS_DIR`], served by `opm serve /configs`. (No pre-built
/// cache: opm's cache files differ from build to build, which would make the
/// image irreproducible; opm builds it in `/tmp` at start, a few hundred
/// milliseconds for this catalog.)
pub fn catalog(
    inputs: &OpmInputs,
    generated: &Generated,
    version: &Version,
) -> Result<Image, Error> {
    let mut configs = Tree::new();
    let dir = CATALOG_CONFIGS_DIR.trim_start_matches('/');
    for (path, content) in &generated.files {
        if let Some(rel) = path.strip_prefix("catalog/") {
            configs.file(&format!("{dir}/{rel}"), 0o644, content.clone())?;
        }
    }
    let layers = vec![
        opm_layer(inputs)?,
        layer(&configs, "manifests-gen image catalog")?,
    ];
    let labels = oci_labels(
        "OLM catalog of the Locust Kubernetes Operator",
        &version.to_string(),
    );
    Image::new("amd64", layers, &opm_serve(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, generate, workspace_root};

    fn generated() -> Generated {
        let root = workspace_root();
        let mut opts = Options::new(&root);
        opts.out_dir = root;
        generate(&opts).unwrap()
    }

    fn opm_inputs() -> OpmInputs {
        OpmInputs {
            opm: b"\x7fELFopm".to_vec(),
            grpc_health_probe: b"\x7fELFprobe".to_vec(),
            busybox: b"\x7fELFbusybox".to_vec(),
            cpb: b"\x7fELFcpb".to_vec(),
            description: "test".to_owned(),
        }
    }

    #[test]
    fn bundle_labels_are_the_annotations_and_builds_repeat() {
        let g = generated();
        let a = bundle(&g).unwrap();
        assert_eq!(a, bundle(&generated()).unwrap());
        let labels = a.labels();
        assert_eq!(labels, bundle_annotations(&g).unwrap());
        assert_eq!(
            labels
                .get("operators.operatorframework.io.bundle.package.v1")
                .map(String::as_str),
            Some(crate::PACKAGE)
        );
        assert_eq!(
            labels
                .get("operators.operatorframework.io.bundle.manifests.v1")
                .map(String::as_str),
            Some("manifests/")
        );
    }

    #[test]
    fn catalog_shares_the_opm_layer_and_labels_its_configs() {
        let g = generated();
        let v = Version::new(2, 0, 0);
        let c = catalog(&opm_inputs(), &g, &v).unwrap();
        let o = opm(&opm_inputs()).unwrap();
        assert_eq!(c.layers[0], o.layers[0]);
        assert_eq!(c.layers.len(), 2);
        assert_eq!(
            c.labels().get(CATALOG_CONFIGS_LABEL).map(String::as_str),
            Some("/configs")
        );
        assert_eq!(c, catalog(&opm_inputs(), &g, &v).unwrap());
        assert_eq!(
            catalog_image(&v),
            format!("{}:v2.0.0", crate::CATALOG_IMAGE_REPO)
        );
    }

    #[test]
    fn operator_images_per_arch() {
        let v = Version::new(2, 0, 0);
        let images = operator(
            &[
                ("amd64".to_owned(), b"\x7fELFa".to_vec()),
                ("arm64".to_owned(), b"\x7fELFb".to_vec()),
            ],
            &v,
        )
        .unwrap();
        assert_eq!(images.len(), 2);
        assert_ne!(images[0].digest(), images[1].digest());
        let config: Value = serde_json::from_slice(&images[0].config.bytes).unwrap();
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], "/locust-k8s-operator");
        assert!(operator(&[("amd64".to_owned(), b"#!/bin/sh".to_vec())], &v).is_err());
        assert!(operator(&[], &v).is_err());
    }
}
