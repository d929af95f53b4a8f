//! The CSV's long description (markdown, rendered from
//! `templates/description.md.hbs`) and its icon (`templates/icon.svg`).

use base64::Engine;
use handlebars::Handlebars;
use semver::Version;
use serde::Serialize;

use crate::Error;
use crate::releases::UpgradeGraph;

/// The description template (compiled in, so the binary is self-contained).
pub const TEMPLATE: &str = include_str!("../templates/description.md.hbs");
/// The icon: an original SVG of a leaping locust.
pub const ICON_SVG: &str = include_str!("../templates/icon.svg");
/// Media type of [`ICON_SVG`].
pub const ICON_MEDIATYPE: &str = "image/svg+xml";

/// The template's variables.
#[derive(Clone, Debug, Serialize)]
pub struct DescriptionVars {
    /// Bundle version.
    pub version: String,
    /// Default Locust image used in the example.
    pub locust_image: String,
    /// The package's channels, sorted.
    pub channels: Vec<String>,
    /// The package's default channel.
    pub default_channel: String,
    /// Source repository URL.
    pub repository: String,
}

/// Renders the markdown description. Strict mode: a missing variable is an
/// error; no HTML escaping (the output is markdown, not HTML).
pub fn render(vars: &DescriptionVars) -> Result<String, Error> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_template_string("description", TEMPLATE)
        .map_err(|e| Error::Template(e.to_string()))?;
    let text = hb
        .render("description", vars)
        .map_err(|e| Error::Template(e.to_string()))?;
    // Trailing spaces would force the YAML emitter out of a literal block.
    let mut out: String = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    Ok(out)
}

/// The package's description as of `version`, listing `graph`'s channels
/// with `default_channel` as the default.
pub fn render_for(
    version: &Version,
    graph: &UpgradeGraph,
    default_channel: &str,
) -> Result<String, Error> {
    render(&DescriptionVars {
        version: version.to_string(),
        locust_image: crate::DEFAULT_LOCUST_IMAGE.to_owned(),
        channels: graph.channels().keys().cloned().collect(),
        default_channel: default_channel.to_owned(),
        repository: crate::REPOSITORY.to_owned(),
    })
}

/// The icon, base64-encoded as the CSV and the catalog carry it.
pub fn icon_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(ICON_SVG.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> DescriptionVars {
        DescriptionVars {
            version: "2.0.0".to_owned(),
            locust_image: "locustio/locust:2.43.1".to_owned(),
            channels: vec!["alpha".to_owned(), "stable".to_owned()],
            default_channel: "stable".to_owned(),
            repository: crate::REPOSITORY.to_owned(),
        }
    }

    #[test]
    fn renders_variables() {
        let text = render(&vars()).unwrap();
        assert!(text.contains("image: locustio/locust:2.43.1"));
        assert!(text.contains("Channels: `alpha`, `stable` (default `stable`)"));
        assert!(text.contains("This is version 2.0.0"));
        assert!(text.contains(crate::REPOSITORY));
        assert!(!text.contains("{{"));
        assert!(text.lines().all(|l| !l.ends_with(' ')));
    }

    /// The text from the end of `start` to the next fence, unindented.
    fn block(text: &str, start: &str) -> String {
        let from = text.find(start).unwrap() + start.len();
        let to = from + text[from..].find("```").unwrap();
        text[from..to]
            .lines()
            .map(|l| l.strip_prefix("   ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_console_config_map_is_the_sample_the_example_mounts() {
        let text = render(&vars()).unwrap();
        let block = format!("apiVersion: v1\n{}", block(&text, "   apiVersion: v1\n"));
        let path = crate::workspace_root().join("operator/samples/demo-locustfile.yaml");
        let sample = std::fs::read_to_string(path).unwrap();
        assert_eq!(block.trim_end(), sample.trim_end());
    }

    #[test]
    fn quick_start_example_is_a_valid_v2_locusttest() {
        let text = render(&vars()).unwrap();
        let yaml = block(&text, "```yaml\n");
        let test: locust_operator::api::v2::LocustTest = crate::yaml::from_str(&yaml).unwrap();
        assert_eq!(test.spec.image, "locustio/locust:2.43.1");
        assert_eq!(test.spec.worker.replicas, 2);
    }

    #[test]
    fn icon_is_an_svg() {
        assert!(ICON_SVG.trim_start().starts_with("<svg"));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(icon_base64())
            .unwrap();
        assert_eq!(decoded, ICON_SVG.as_bytes());
    }
}
