//! The local OCI registry of a cluster with a real node: the CNCF
//! distribution `registry` (built by the tools), listening on
//! [`REGISTRY_HOST`] inside the cluster's network namespace, storing under
//! `<cluster dir>/registry/`, serving HTTPS with a certificate of the
//! cluster CA. The real node's containerd pulls `198.19.0.1:5000/...` from
//! it (trusting that CA) and, through hosts.toml mirrors, every
//! `ghcr.io/...` reference too (`cluster::node`), so the release's own image
//! names work unchanged. Clients on the host side (crane, operator-sdk) run
//! in the cluster's namespace with `SSL_CERT_FILE` set to the CA
//! ([`Registry::ca_file`]): no TLS check is skipped anywhere.
//!
//! Images are pushed with `crane push` from OCI image layouts
//! ([`manifests_gen::oci`]); [`Registry::publish_release`] pushes what a
//! release publishes (operator, bundle, catalog) plus the opm image OLM and
//! operator-sdk run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use semver::Version;
use serde_json::Value;

use crate::cluster::{
    ChildProcess, Cluster, ClusterNet, MIRRORED_REGISTRIES, NODE_IP, REGISTRY_HOST, REGISTRY_PORT,
    last_lines,
};
use crate::wait::wait_for;

/// The opm image (OLM's opm and util image, operator-sdk's index and
/// decompression image) in the local registry; its tag is opm's version.
pub fn opm_image(tools: &crate::Tools) -> Result<String> {
    Ok(format!(
        "{REGISTRY_HOST}/olm-tests/opm:{}",
        tools.version_of("image-bin/opm")?
    ))
}

/// `reference` as stored in the local registry: a mirrored registry's
/// host (`ghcr.io`) is replaced by [`REGISTRY_HOST`]; a reference already in
/// the local registry is returned as is.
pub fn local_reference(reference: &str) -> Result<String> {
    if reference.starts_with(&format!("{REGISTRY_HOST}/")) {
        return Ok(reference.to_owned());
    }
    let (host, rest) = reference
        .split_once('/')
        .with_context(|| format!("{reference}: no registry host"))?;
    ensure!(
        MIRRORED_REGISTRIES.contains(&host),
        "{reference}: {host} is not mirrored by the local registry (mirrors: {MIRRORED_REGISTRIES:?})"
    );
    Ok(format!("{REGISTRY_HOST}/{rest}"))
}

/// A running registry; stopped (process group killed) on drop.
#[derive(Debug)]
pub struct Registry {
    process: ChildProcess,
    dir: PathBuf,
    log: PathBuf,
    net: ClusterNet,
    crane: PathBuf,
    ca_file: PathBuf,
}

impl Registry {
    /// Starts the registry in `cluster`'s namespace and waits until `/v2/`
    /// answers (bounded: 30 s).
    pub async fn start(cluster: &Cluster, tools: &crate::Tools) -> Result<Self> {
        let dir = cluster.dir().join("registry");
        std::fs::create_dir_all(dir.join("storage"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {NODE_IP}:{REGISTRY_PORT}\n  tls:\n    certificate: {}\n    key: {}\n",
                dir.join("storage").display(),
                cluster.dir().join("pki/registry.crt").display(),
                cluster.dir().join("pki/registry.key").display(),
            ),
        )?;
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, cluster.ca_pem())?;
        let log = cluster.dir().join("logs/registry.log");
        let mut cmd = Command::new(tools.bin("registry"));
        cmd.arg("serve").arg(&config);
        let net = cluster.net();
        let child = net.spawn(cmd, &log).context("starting the registry")?;
        let mut registry = Self {
            process: ChildProcess::new("registry", child),
            dir,
            log,
            net,
            crane: tools.bin("crane"),
            ca_file,
        };
        let addr = std::net::SocketAddr::from((NODE_IP, REGISTRY_PORT));
        let net = registry.net.clone();
        let ca = cluster.ca_pem().to_owned();
        let up = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
            let (net, ca) = (net.clone(), ca.clone());
            async move {
                let r = crate::cluster::net_https_get(&net, &ca, addr, "/v2/").await;
                Ok(r.ok().filter(|(status, _)| *status == 200).map(drop))
            }
        })
        .await;
        if let Err(e) = up {
            registry.ensure_running()?;
            return Err(e.context(format!(
                "the registry never answered /v2/ on {addr}; log:\n{}",
                crate::cluster::log_tail(&registry.log, 20)
            )));
        }
        Ok(registry)
    }

    /// Fails (with its log) if the registry exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if !self.process.running() {
            bail!(
                "the registry exited; log:\n{}",
                crate::cluster::log_tail(&self.log, 20)
            );
        }
        Ok(())
    }

    /// The cluster CA (PEM file) that signed the registry's certificate:
    /// `SSL_CERT_FILE` for Go clients of the registry.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// Runs `command` in the cluster's namespace trusting the registry
    /// (`SSL_CERT_FILE`), to completion (bounded: `timeout`); its output.
    pub fn run(&self, mut command: Command, timeout: Duration) -> Result<String> {
        command.env("SSL_CERT_FILE", &self.ca_file);
        run_in(&self.net, command, &self.dir.join("runs"), timeout)
    }

    /// [`Registry::run`], returning the exit status with the output instead
    /// of failing on a non-zero one.
    pub fn run_capture(
        &self,
        mut command: Command,
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String)> {
        command.env("SSL_CERT_FILE", &self.ca_file);
        run_in_capture(&self.net, command, &self.dir.join("runs"), timeout)
    }

    /// Runs `crane ARGS` against the registry (bounded: `timeout`); its output.
    pub fn crane(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let mut cmd = Command::new(&self.crane);
        cmd.args(args);
        self.run(cmd, timeout)
            .with_context(|| format!("crane {}", args.join(" ")))
    }

    /// Pushes the OCI image layout `layout` (its one top-level image or
    /// image index) as `reference` (a mirrored or a local one; see
    /// [`local_reference`]). Returns the pushed digest as the registry
    /// reports it. (Not `crane push --index`: that would wrap the layout's
    /// index in another index, with another digest.)
    pub fn push(&self, layout: &Path, reference: &str) -> Result<String> {
        let target = local_reference(reference)?;
        let path = layout.to_string_lossy().into_owned();
        self.crane(
            &["push", path.as_str(), target.as_str()],
            Duration::from_secs(120),
        )?;
        self.digest(reference)
    }

    /// The digest of `reference` in the registry.
    pub fn digest(&self, reference: &str) -> Result<String> {
        let target = local_reference(reference)?;
        let out = self.crane(&["digest", &target], Duration::from_secs(30))?;
        let digest = out
            .lines()
            .map(str::trim)
            .rfind(|l| l.starts_with("sha256:"))
            .with_context(|| format!("crane digest {target} printed no digest: {out}"))?;
        Ok(digest.to_owned())
    }

    /// The image config of `reference` in the registry.
    pub fn config(&self, reference: &str) -> Result<Value> {
        let target = local_reference(reference)?;
        let out = self.crane(&["config", &target], Duration::from_secs(30))?;
        let line = out
            .lines()
            .rfind(|l| l.trim_start().starts_with('{'))
            .with_context(|| format!("crane config {target} printed no JSON: {out}"))?;
        serde_json::from_str(line).with_context(|| format!("crane config {target}: {line}"))
    }

    /// Pushes a single-image OCI archive (a tarred layout, as
    /// `olm-tests/images/build.sh` writes them) as `reference`.
    pub fn push_archive(&self, archive: &Path, reference: &str) -> Result<String> {
        let tmp = tempfile::tempdir_in(&self.dir)?;
        let status = Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(tmp.path())
            .status()
            .context("running tar")?;
        ensure!(status.success(), "tar -xf {} failed", archive.display());
        self.push(tmp.path(), reference)
    }

    /// Writes `images` as a layout named `reference` and pushes it.
    pub fn push_images(
        &self,
        images: &[manifests_gen::oci::Image],
        reference: &str,
    ) -> Result<String> {
        let tmp = tempfile::tempdir_in(&self.dir)?;
        let layout = tmp.path().join("layout");
        let written = manifests_gen::oci::write_layout(&layout, images, reference)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let pushed = self.push(&layout, reference)?;
        ensure!(
            pushed == written,
            "{reference}: the registry reports {pushed}, the layout holds {written}"
        );
        Ok(pushed)
    }
}

/// What [`Registry::publish_release`] pushed.
#[derive(Clone, Debug)]
pub struct Published {
    /// The catalog image's reference (the release name; mirrored).
    pub catalog: String,
    /// Bundle image reference → digest, one per release version.
    pub bundles: Vec<(String, String)>,
    /// The opm image (local reference).
    pub opm: String,
}

impl Published {
    /// How the catalog names `version`'s bundle: its repository at the
    /// digest pushed (what OLM's unpack Job pulls).
    pub fn bundle_by_digest(&self, version: &Version) -> Result<String> {
        let tag = manifests_gen::bundle::bundle_image(version);
        let (_, digest) = self
            .bundles
            .iter()
            .find(|(reference, _)| *reference == tag)
            .with_context(|| format!("{tag} was not published"))?;
        Ok(manifests_gen::bundle::bundle_image_by_digest(digest))
    }
}

impl Registry {
    /// Pushes what the release of `generate`'s options (plus
    /// `extra_versions`, hypothetical releases declared in
    /// `opts.extra_releases`) publishes: the operator image built here (as
    /// every version's tag: the same build), each version's bundle image,
    /// the catalog image listing them all (bundles by the digest just
    /// pushed, as a release pins them: `--bundle-digest`), and the opm image.
    pub fn publish_release(
        &self,
        tools: &crate::Tools,
        images: &crate::images::Images,
        opts: &manifests_gen::Options,
        versions: &[Version],
    ) -> Result<Published> {
        let start = Instant::now();
        let opm_inputs = opm_inputs(tools)?;
        let opm = opm_image(tools)?;
        self.push_images(
            &[manifests_gen::images::opm(&opm_inputs).map_err(|e| anyhow::anyhow!("{e}"))?],
            &opm,
        )?;
        let operator = images.archive(crate::images::Image::Operator);
        let mut bundles = Vec::new();
        let mut bundle_digests = std::collections::BTreeMap::new();
        for version in versions {
            self.push_archive(&operator, &manifests_gen::bundle::operator_image(version))?;
            let mut o = opts.clone();
            o.version = Some(version.clone());
            let generated = manifests_gen::generate(&o).map_err(|e| anyhow::anyhow!("{e}"))?;
            let bundle =
                manifests_gen::images::bundle(&generated).map_err(|e| anyhow::anyhow!("{e}"))?;
            let reference = manifests_gen::bundle::bundle_image(version);
            let digest = self.push_images(&[bundle], &reference)?;
            bundle_digests.insert(version.clone(), digest.clone());
            bundles.push((reference, digest));
        }
        let newest = versions.iter().max().context("no version to publish")?;
        let mut o = opts.clone();
        o.version = Some(newest.clone());
        o.bundle_digests = bundle_digests;
        let generated = manifests_gen::generate(&o).map_err(|e| anyhow::anyhow!("{e}"))?;
        let catalog = manifests_gen::images::catalog(&opm_inputs, &generated, newest)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let catalog_ref = manifests_gen::images::catalog_image(newest);
        self.push_images(&[catalog], &catalog_ref)?;
        eprintln!(
            "published {} release image(s), the catalog and the opm image to the local registry in {:.1} s",
            2 * versions.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(Published {
            catalog: catalog_ref,
            bundles,
            opm,
        })
    }
}

/// The decompression (init) image of the registry pod `operator-sdk run
/// bundle-upgrade` creates: v1.34.1 has no flag for it there (`run bundle`
/// has `--decompression-image`) and always uses `fbcutil.DefaultInitImage`.
pub const SDK_UPGRADE_INIT_IMAGE: &str = "docker.io/library/busybox:1.36.0";

/// A static busybox image (Debian's busybox-static, the applets of
/// [`manifests_gen::images::BUSYBOX_APPLETS`]), no entrypoint, `sh` as its
/// command: a stand-in for the busybox images operator-sdk's pods run.
pub fn busybox_image() -> Result<manifests_gen::oci::Image> {
    use manifests_gen::oci::{Image, RunConfig, Tree, layer};
    let busybox = std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}"))?;
    let mut tree = Tree::new();
    manifests_gen::images::add_busybox(&mut tree, busybox).map_err(|e| anyhow::anyhow!("{e}"))?;
    let l = layer(
        &tree,
        &format!("olm-tests: busybox-static {}", busybox_version()?),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Image::new(
        "amd64",
        vec![l],
        &RunConfig {
            cmd: vec!["sh".to_owned()],
            env: vec!["PATH=/bin".to_owned()],
            ..RunConfig::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The local busybox image (see [`busybox_image`]).
pub const BUSYBOX_IMAGE: &str = "198.19.0.1:5000/olm-tests/busybox:latest";

/// The scorecard's test image, as the bundle's scorecard configuration
/// names it (`quay.io/operator-framework/scorecard-test:<operator-sdk
/// version>`): here built from the same operator-sdk module version (the
/// tools' `image-bin/scorecard-test`) and served through the quay.io mirror.
pub fn scorecard_test_image(tools: &crate::Tools) -> Result<(String, manifests_gen::oci::Image)> {
    use manifests_gen::oci::{Image, RunConfig, Tree, layer};
    let version = tools.version_of("image-bin/scorecard-test")?;
    let path = tools.dir().join("image-bin/scorecard-test");
    let binary = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut tree = Tree::new();
    let e = |e: manifests_gen::Error| anyhow::anyhow!("{e}");
    tree.file("usr/local/bin/scorecard-test", 0o755, binary)
        .map_err(e)?
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/:/sbin/nologin\nscorecard-test:x:1001:0:scorecard-test user:/opt/scorecard-test:/sbin/nologin\n".to_vec(),
        )
        .map_err(e)?
        .dir("opt/scorecard-test", 0o775)
        .map_err(e)?
        .dir("tmp", 0o1777)
        .map_err(e)?;
    let l = layer(&tree, &format!("olm-tests: scorecard-test {version}")).map_err(e)?;
    let image = Image::new(
        "amd64",
        vec![l],
        &RunConfig {
            entrypoint: vec!["/usr/local/bin/scorecard-test".to_owned()],
            env: vec![
                "HOME=/opt/scorecard-test".to_owned(),
                "PATH=/usr/local/bin:/usr/bin:/bin".to_owned(),
            ],
            user: "1001".to_owned(),
            working_dir: "/opt/scorecard-test".to_owned(),
            ..RunConfig::default()
        },
    )
    .map_err(e)?;
    Ok((manifests_gen::bundle::scorecard_image(&version), image))
}

impl Registry {
    /// Pushes the images operator-sdk's commands run besides the bundle's:
    /// [`BUSYBOX_IMAGE`], the same busybox as [`SDK_UPGRADE_INIT_IMAGE`]
    /// (Docker Hub is out of reach; the node mirrors docker.io here) and the
    /// scorecard's test image ([`scorecard_test_image`]).
    pub fn push_operator_sdk_images(&self, tools: &crate::Tools) -> Result<()> {
        let busybox = busybox_image()?;
        self.push_images(std::slice::from_ref(&busybox), BUSYBOX_IMAGE)?;
        self.push_images(&[busybox], SDK_UPGRADE_INIT_IMAGE)?;
        let (reference, image) = scorecard_test_image(tools)?;
        self.push_images(&[image], &reference)?;
        Ok(())
    }
}

/// The static programs of the opm image, from the tools (busybox from the
/// host's busybox-static).
pub fn opm_inputs(tools: &crate::Tools) -> Result<manifests_gen::images::OpmInputs> {
    let bin = tools.dir().join("image-bin");
    let read = |p: PathBuf| std::fs::read(&p).with_context(|| format!("reading {}", p.display()));
    Ok(manifests_gen::images::OpmInputs {
        opm: read(bin.join("opm"))?,
        grpc_health_probe: read(bin.join("grpc_health_probe"))?,
        cpb: read(bin.join("cpb"))?,
        busybox: read(PathBuf::from(BUSYBOX))?,
        description: format!(
            "opm {}, grpc_health_probe {}, busybox {}",
            tools.version_of("image-bin/opm")?,
            tools.version_of("image-bin/grpc_health_probe")?,
            busybox_version()?
        ),
    })
}

/// Debian's busybox-static (olm-tests/tools/host-packages.sh installs it).
pub const BUSYBOX: &str = "/bin/busybox";

fn busybox_version() -> Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "busybox-static"])
        .output()
        .context("running dpkg-query")?;
    ensure!(out.status.success(), "busybox-static is not installed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `command` in `net` to completion (bounded: `timeout`, then its
/// process group is killed); its combined output (logged under `log_dir`).
/// Fails when it exits non-zero.
pub fn run_in(
    net: &ClusterNet,
    command: Command,
    log_dir: &Path,
    timeout: Duration,
) -> Result<String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let (status, output) = run_in_capture(net, command, log_dir, timeout)?;
    ensure!(
        status.success(),
        "{program} failed ({status}); output:\n{}",
        last_lines(&output, 30)
    );
    Ok(output)
}

/// [`run_in`], returning the exit status with the output instead of failing
/// on a non-zero one.
pub fn run_in_capture(
    net: &ClusterNet,
    command: Command,
    log_dir: &Path,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, String)> {
    std::fs::create_dir_all(log_dir)?;
    let log = tempfile::Builder::new()
        .prefix("run-")
        .suffix(".log")
        .tempfile_in(log_dir)?
        .into_temp_path()
        .keep()?;
    let program = command.get_program().to_string_lossy().into_owned();
    let mut process = ChildProcess::new(&program, net.spawn(command, &log)?);
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = process.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            drop(process);
            bail!(
                "{program} did not finish in {timeout:?}; output:\n{}",
                crate::cluster::log_tail(&log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log)
        .with_context(|| format!("reading the output of {program} ({})", log.display()))?;
    Ok((status, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_references_map_to_the_local_registry() {
        assert_eq!(
            local_reference("ghcr.io/abdelrhmanhamouda/locust-k8s-operator:2.0.0").unwrap(),
            "198.19.0.1:5000/abdelrhmanhamouda/locust-k8s-operator:2.0.0"
        );
        assert_eq!(
            local_reference("198.19.0.1:5000/x/y:1").unwrap(),
            "198.19.0.1:5000/x/y:1"
        );
        assert_eq!(
            local_reference(SDK_UPGRADE_INIT_IMAGE).unwrap(),
            "198.19.0.1:5000/library/busybox:1.36.0"
        );
        assert!(local_reference("registry.k8s.io/pause:3.10").is_err());
        assert!(local_reference("busybox").is_err());
    }
}
