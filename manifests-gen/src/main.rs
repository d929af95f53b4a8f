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
