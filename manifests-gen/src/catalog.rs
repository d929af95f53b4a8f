//! The File-Based Catalog: one `olm.package`, one `olm.channel` per channel
//! and one `olm.bundle` per release, whose properties and related images are
//! exactly what `opm render` derives from that release's bundle directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine;
use semver::Version;
use serde_json::{Value, json};

use crate::bundle::{Inputs, Rendered, bundle_image};
use crate::csv::csv_name;
use crate::gojson::to_go_json;
use crate::releases::UpgradeGraph;
use crate::{Error, Options, yaml};

/// `olm.bundle` documents of the committed catalog, by bundle name.
pub type Frozen = BTreeMap<String, Value>;

/// Reads the `olm.bundle` documents of an existing catalog file (none if the file does not exist).
pub fn read_frozen(path: &Path) -> Result<Frozen, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Frozen::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Frozen::new();
    let docs = crate::yaml::documents(&text).map_err(|e| Error::Input {
        path: path.to_owned(),
        message: crate::yaml::describe(&e, &path.display().to_string()),
    })?;
    for value in docs {
        if value.get("schema").and_then(Value::as_str) == Some("olm.bundle")
            && let Some(name) = value.get("name").and_then(Value::as_str)
        {
            out.insert(name.to_owned(), value);
        }
    }
    Ok(out)
}

/// One property, as opm writes it.
fn property(kind: &str, value: Value) -> Value {
    json!({"type": kind, "value": value})
}

/// The `olm.bundle` properties `opm render` derives from a bundle: the
/// provided GVKs and the package (sorted by type, then by the value's JSON),
/// then one `olm.bundle.object` per manifest (sorted by value), each the
/// base64 of the manifest as Go's `encoding/json` writes it.
pub fn bundle_properties(
    version: &Version,
    csv: &Value,
    objects: &[Value],
) -> Result<Vec<Value>, Error> {
    let mut gvks = BTreeSet::new();
    for owned in csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = owned["name"].as_str().unwrap_or_default();
        let group = name.split_once('.').map(|(_, g)| g).unwrap_or(name);
        let gvk = json!({
            "group": group,
            "kind": owned["kind"].as_str().unwrap_or_default(),
            "version": owned["version"].as_str().unwrap_or_default(),
        });
        gvks.insert(to_go_json(&gvk));
    }
    let mut props: Vec<(String, String, Value)> = Vec::new();
    for gvk in gvks {
        let value: Value = serde_json::from_str(&gvk)?;
        props.push(("olm.gvk".to_owned(), gvk, value));
    }
    let package = json!({"packageName": crate::PACKAGE, "version": version.to_string()});
    props.push(("olm.package".to_owned(), to_go_json(&package), package));
    props.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

    let mut objs: Vec<(String, Value)> = objects
        .iter()
        .map(|o| {
            let data = base64::engine::general_purpose::STANDARD.encode(to_go_json(o));
            let value = json!({ "data": data });
            (to_go_json(&value), value)
        })
        .collect();
    objs.sort_by(|a, b| a.0.cmp(&b.0));

    let mut out: Vec<Value> = props.into_iter().map(|(t, _, v)| property(&t, v)).collect();
    out.extend(
        objs.into_iter()
            .map(|(_, v)| property("olm.bundle.object", v)),
    );
    Ok(out)
}

/// The related images `opm render` lists: the CSV's `relatedImages`, the
/// bundle image (unnamed) and every deployment container image not already
/// listed (unnamed), sorted by image.
pub fn related_images(csv: &Value, bundle_image: Option<&str>) -> Vec<Value> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for ri in csv["spec"]["relatedImages"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let image = ri["image"].as_str().unwrap_or_default().to_owned();
        seen.insert(image.clone());
        out.push((ri["name"].as_str().unwrap_or_default().to_owned(), image));
    }
    if let Some(b) = bundle_image
        && seen.insert(b.to_owned())
    {
        out.push((String::new(), b.to_owned()));
    }
    for d in csv["spec"]["install"]["spec"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let pod = &d["spec"]["template"]["spec"];
        for c in pod["containers"]
            .as_array()
            .into_iter()
            .chain(pod["initContainers"].as_array())
            .flatten()
        {
            let image = c["image"].as_str().unwrap_or_default().to_owned();
            if seen.insert(image.clone()) {
                out.push((String::new(), image));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.into_iter()
        .map(|(name, image)| json!({"name": name, "image": image}))
        .collect()
}

/// The `olm.bundle` document of a rendered bundle.
pub fn bundle_document(rendered: &Rendered, inline: bool) -> Result<Value, Error> {
    let image = (!inline).then(|| bundle_image(&rendered.version));
    Ok(json!({
        "schema": "olm.bundle",
        "name": csv_name(&rendered.version),
        "package": crate::PACKAGE,
        "image": image.clone().unwrap_or_default(),
        "properties": bundle_properties(&rendered.version, &rendered.csv, &rendered.objects)?,
        "relatedImages": related_images(&rendered.csv, image.as_deref()),
    }))
}

/// A committed `olm.bundle`, adjusted to the inline mode.
fn frozen_document(doc: &Value, inline: bool) -> Value {
    let mut doc = doc.clone();
    if inline && let Some(image) = doc.get("image").and_then(Value::as_str).map(str::to_owned) {
        doc["image"] = json!("");
        if let Some(list) = doc.get_mut("relatedImages").and_then(Value::as_array_mut) {
            list.retain(|ri| ri["image"] != image.as_str() || ri["name"] != "");
        }
    }
    doc
}

/// Names a bundle by digest in its `olm.bundle`: `image` and the unnamed
/// related image that repeats it become `BUNDLE_IMAGE_REPO@<digest>`
/// (related images stay sorted by image, as opm sorts them). An inline
/// bundle (no image) is left alone.
pub fn pin_bundle(doc: &mut Value, digest: &str) {
    let Some(old) = doc
        .get("image")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return;
    };
    let pinned = crate::bundle::bundle_image_by_digest(digest);
    doc["image"] = json!(pinned);
    if let Some(list) = doc.get_mut("relatedImages").and_then(Value::as_array_mut) {
        for ri in list.iter_mut() {
            if ri["image"] == old.as_str() && ri["name"] == "" {
                ri["image"] = json!(pinned);
            }
        }
        list.sort_by(|a, b| a["image"].as_str().cmp(&b["image"].as_str()));
    }
}

/// The catalog as a YAML stream.
pub fn render(
    inputs: &Inputs,
    graph: &UpgradeGraph,
    current_version: &Version,
    current: &Rendered,
    frozen: &Frozen,
    opts: &Options,
) -> Result<String, Error> {
    let head = graph.head(&opts.default_channel).unwrap_or(current_version);
    // The package is described as of the default channel's head.
    let description = crate::description::render_for(head, graph, &opts.default_channel)?;
    let mut docs = vec![json!({
        "schema": "olm.package",
        "name": crate::PACKAGE,
        "defaultChannel": opts.default_channel,
        "icon": {
            "base64data": crate::description::icon_base64(),
            "mediatype": crate::description::ICON_MEDIATYPE,
        },
        "description": description,
    })];
    for (name, entries) in graph.channels() {
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut entry = json!({"name": csv_name(&e.version), "skipRange": e.skip_range});
                if let Some(r) = &e.replaces {
                    entry["replaces"] = json!(csv_name(r));
                }
                if !e.skips.is_empty() {
                    entry["skips"] = json!(e.skips.iter().map(csv_name).collect::<Vec<_>>());
                }
                entry
            })
            .collect();
        docs.push(json!({
            "schema": "olm.channel",
            "name": name,
            "package": crate::PACKAGE,
            "entries": entries,
        }));
    }
    for release in graph.releases() {
        let name = csv_name(&release.version);
        let mut doc = if &release.version == current_version {
            bundle_document(current, opts.inline_catalog)?
        } else if let Some(doc) = frozen.get(&name) {
            frozen_document(doc, opts.inline_catalog)
        } else {
            let rendered = crate::bundle::render(inputs, graph, &release.version, opts)?;
            bundle_document(&rendered, opts.inline_catalog)?
        };
        if let Some(digest) = opts.bundle_digests.get(&release.version) {
            pin_bundle(&mut doc, digest);
        }
        docs.push(doc);
    }
    let docs: Vec<Value> = docs.into_iter().map(crate::csv::sort_keys).collect();
    Ok(yaml::to_yaml_stream(&docs))
}
