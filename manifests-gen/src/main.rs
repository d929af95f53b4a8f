//! `manifests-gen`: writes or checks the OLM bundle and catalog. All logic
//! lives in the `manifests_gen` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use manifests_gen::{Options, parse_extra_release};
use semver::Version;

/// Generates the OLM bundle (bundle/, bundle.Dockerfile) and the File-Based
/// Catalog (catalog/) of the Locust Kubernetes Operator from its Rust types.
#[derive(Parser)]
#[command(name = "manifests-gen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write bundle/, catalog/ and bundle.Dockerfile (removing stray files in bundle/ and catalog/).
    Generate(Opts),
    /// Regenerate in memory; print a diff and exit 1 if the files on disk differ.
    Check(Opts),
    /// Build a release image (operator, bundle, catalog) or the opm image as
    /// an OCI image layout, deterministically and without a daemon; prints
    /// `<reference> <digest>` (push the layout with `crane push`).
    #[command(subcommand)]
    Image(ImageCommand),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// The operator image: one static binary per architecture (a multi-arch index when several).
    Operator {
        #[command(flatten)]
        out: ImageOut,
        /// ARCH=PATH of a static operator binary (amd64, arm64). Repeatable.
        #[arg(long = "binary", value_name = "ARCH=PATH", required = true)]
        binaries: Vec<String>,
        /// The release version the image is tagged with [default: the highest release].
        #[arg(long)]
        version: Option<Version>,
    },
    /// The bundle image of the generated bundle (the same options as `generate`).
    Bundle {
        #[command(flatten)]
        out: ImageOut,
        #[command(flatten)]
        opts: Opts,
    },
    /// The catalog image of the generated catalog, served by opm (the same options as `generate`).
    Catalog {
        #[command(flatten)]
        out: ImageOut,
        #[command(flatten)]
        opm: OpmArgs,
        #[command(flatten)]
        opts: Opts,
    },
    /// The opm image the local cluster uses as OLM's opm and util image (not published).
    Opm {
        #[command(flatten)]
        out: ImageOut,
        #[command(flatten)]
        opm: OpmArgs,
        /// Its reference in the layout.
        #[arg(long, default_value = "olm-tests/opm:latest")]
        reference: String,
    },
}

#[derive(Args)]
struct ImageOut {
    /// The OCI image layout directory to write (must not exist).
    #[arg(long = "layout", value_name = "DIR")]
    layout: PathBuf,
}

#[derive(Args)]
struct OpmArgs {
    /// Directory with the static opm, grpc_health_probe and cpb (the tools' image-bin/).
    #[arg(long, value_name = "DIR")]
    image_bin: PathBuf,
    /// A static busybox.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// What the opm layer's history says it holds.
    #[arg(long, default_value = "opm, grpc_health_probe, busybox")]
    description: String,
}

impl OpmArgs {
    fn load(&self) -> Result<manifests_gen::images::OpmInputs, manifests_gen::Error> {
        let read = |p: PathBuf| {
            std::fs::read(&p).map_err(|e| manifests_gen::Error::Io { path: p, source: e })
        };
        Ok(manifests_gen::images::OpmInputs {
            opm: read(self.image_bin.join("opm"))?,
            grpc_health_probe: read(self.image_bin.join("grpc_health_probe"))?,
            cpb: read(self.image_bin.join("cpb"))?,
            busybox: read(self.busybox.clone())?,
            description: self.description.clone(),
        })
    }
}

fn write_image(
    out: &ImageOut,
    images: &[manifests_gen::oci::Image],
    reference: &str,
) -> Result<bool, manifests_gen::Error> {
    if out.layout.exists() {
        return Err(manifests_gen::Error::InvalidOption(format!(
            "--layout {} exists",
            out.layout.display()
        )));
    }
    let digest = manifests_gen::oci::write_layout(&out.layout, images, reference)?;
    println!("{reference} {digest}");
    Ok(true)
}

#[derive(Args)]
struct Opts {
    /// Bundle version [default: the highest release in releases.rs].
    #[arg(long, value_name = "VERSION")]
    version: Option<Version>,
    /// Operator image of the bundle [default: ghcr.io/abdelrhmanhamouda/locust-k8s-operator:<version>].
    #[arg(long)]
    image: Option<String>,
    /// Channels of the bundle's release, comma-separated (overrides releases.rs; required for an undeclared version).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<String>>,
    /// Default channel of the package.
    #[arg(long, default_value = manifests_gen::DEFAULT_CHANNEL)]
    default_channel: String,
    /// Where bundle/, catalog/ and bundle.Dockerfile go [default: the workspace root].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Workspace root, for operator/samples/ and the tools' go.mod [default: this crate's parent].
    #[arg(long)]
    root: Option<PathBuf>,
    /// A hypothetical release added to releases.rs: VERSION:CHANNEL[,CHANNEL...][:REPLACES]. Repeatable.
    #[arg(long = "extra-release", value_name = "SPEC")]
    extra_releases: Vec<String>,
    /// Catalog bundles without an image: OLM then installs from the inline
    /// olm.bundle.object properties instead of unpacking a bundle image.
    #[arg(long)]
    inline_catalog: bool,
    /// The published digest of a release's bundle image, VERSION=sha256:HEX:
    /// the catalog names that bundle by digest. Repeatable.
    #[arg(long = "bundle-digest", value_name = "VERSION=DIGEST")]
    bundle_digests: Vec<String>,
}

impl Opts {
    fn into_options(self) -> Result<Options, manifests_gen::Error> {
        let root = self.root.unwrap_or_else(manifests_gen::workspace_root);
        let mut opts = Options::new(root);
        if let Some(out) = self.out_dir {
            opts.out_dir = out;
        }
        opts.version = self.version;
        opts.image = self.image;
        opts.channels = self.channels;
        opts.default_channel = self.default_channel;
        opts.inline_catalog = self.inline_catalog;
        opts.bundle_digests = self
            .bundle_digests
            .iter()
            .map(|s| manifests_gen::parse_bundle_digest(s))
            .collect::<Result<_, _>>()?;
        opts.extra_releases = self
            .extra_releases
            .iter()
            .map(|s| parse_extra_release(s))
            .collect::<Result<_, _>>()?;
        Ok(opts)
    }
}

fn run(cli: Cli) -> Result<bool, manifests_gen::Error> {
    match cli.command {
        Command::Generate(o) => {
            let opts = o.into_options()?;
            let generated = manifests_gen::generate(&opts)?;
            let removed = manifests_gen::write(&generated, &opts.out_dir)?;
            for r in removed {
                eprintln!("removed stray file {r}");
            }
            eprintln!(
                "wrote {} files under {}",
                generated.files.len(),
                opts.out_dir.display()
            );
            Ok(true)
        }
        Command::Check(o) => {
            let opts = o.into_options()?;
            let generated = manifests_gen::generate(&opts)?;
            let report = manifests_gen::check(&generated, &opts.out_dir)?;
            print!("{report}");
            Ok(report.is_clean())
        }
        Command::Image(image) => build_image(image),
    }
}

fn build_image(command: ImageCommand) -> Result<bool, manifests_gen::Error> {
    use manifests_gen::images;
    match command {
        ImageCommand::Operator {
            out,
            binaries,
            version,
        } => {
            let version = match version {
                Some(v) => v,
                None => {
                    manifests_gen::resolve_releases(&Options::new(manifests_gen::workspace_root()))?
                        .1
                }
            };
            let mut loaded = Vec::new();
            for spec in binaries {
                let Some((arch, path)) = spec.split_once('=') else {
                    return Err(manifests_gen::Error::InvalidOption(format!(
                        "--binary {spec:?}: expected ARCH=PATH"
                    )));
                };
                let bytes = std::fs::read(path).map_err(|e| manifests_gen::Error::Io {
                    path: path.into(),
                    source: e,
                })?;
                loaded.push((arch.to_owned(), bytes));
            }
            let built = images::operator(&loaded, &version)?;
            write_image(
                &out,
                &built,
                &manifests_gen::bundle::operator_image(&version),
            )
        }
        ImageCommand::Bundle { out, opts } => {
            let opts = opts.into_options()?;
            let version = manifests_gen::resolve_releases(&opts)?.1;
            let generated = manifests_gen::generate(&opts)?;
            let image = images::bundle(&generated)?;
            write_image(
                &out,
                &[image],
                &manifests_gen::bundle::bundle_image(&version),
            )
        }
        ImageCommand::Catalog { out, opm, opts } => {
            let opts = opts.into_options()?;
            let version = manifests_gen::resolve_releases(&opts)?.1;
            let generated = manifests_gen::generate(&opts)?;
            let image = images::catalog(&opm.load()?, &generated, &version)?;
            write_image(&out, &[image], &images::catalog_image(&version))
        }
        ImageCommand::Opm {
            out,
            opm,
            reference,
        } => {
            let image = images::opm(&opm.load()?)?;
            write_image(&out, &[image], &reference)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("manifests-gen: {e} ({})", e.reason());
            ExitCode::from(2)
        }
    }
}
