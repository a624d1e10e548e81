//! The handlebars registries for the HTML site and the Markdown copy, with
//! the templates embedded from `templates/` and the few helpers they use.

use handlebars::{handlebars_helper, no_escape, Handlebars};

use crate::spec;

/// Templates shared by name between the two flavours: `(name, html, md)`.
const PAGES: &[(&str, &str, &str)] = &[
    (
        "index",
        include_str!("../templates/html/index.hbs"),
        include_str!("../templates/md/index.hbs"),
    ),
    (
        "message",
        include_str!("../templates/html/message.hbs"),
        include_str!("../templates/md/message.hbs"),
    ),
    (
        "types",
        include_str!("../templates/html/types.hbs"),
        include_str!("../templates/md/types.hbs"),
    ),
    (
        "close_codes",
        include_str!("../templates/html/close_codes.hbs"),
        include_str!("../templates/md/close_codes.hbs"),
    ),
    (
        "requirements",
        include_str!("../templates/html/requirements.hbs"),
        include_str!("../templates/md/requirements.hbs"),
    ),
    (
        "conformance",
        include_str!("../templates/html/conformance.hbs"),
        include_str!("../templates/md/conformance.hbs"),
    ),
    (
        "history",
        include_str!("../templates/html/history.hbs"),
        include_str!("../templates/md/history.hbs"),
    ),
    (
        "transcripts",
        include_str!("../templates/html/transcripts.hbs"),
        include_str!("../templates/md/transcripts.hbs"),
    ),
    (
        "fields",
        include_str!("../templates/html/fields.hbs"),
        include_str!("../templates/md/fields.hbs"),
    ),
];

/// Static files copied into the site as they are.
pub const ASSETS: &[(&str, &str)] = &[
    (
        "assets/style.css",
        include_str!("../templates/assets/style.css"),
    ),
    (
        "assets/search.js",
        include_str!("../templates/assets/search.js"),
    ),
];

handlebars_helper!(md_inline: |s: str| spec::inline_html(s));
handlebars_helper!(md_block: |s: str| spec::to_html(s));
// A Markdown table cell: no raw newlines, no column separators.
handlebars_helper!(md_cell: |s: str| spec::unlink_outside(s).replace('|', "\\|").replace("\n\n", "<br><br>").replace('\n', " "));

/// The registry for the HTML site (HTML-escaping). Templates test optional
/// fields with `{{#if}}`, so strict mode stays off; the snapshot and link
/// tests catch a misspelt field.
pub fn html() -> Result<Handlebars<'static>, handlebars::TemplateError> {
    let mut hb = Handlebars::new();
    hb.register_helper("md", Box::new(md_inline));
    hb.register_helper("mdblock", Box::new(md_block));
    hb.register_partial("layout", include_str!("../templates/html/layout.hbs"))?;
    hb.register_template_string("spec", include_str!("../templates/html/spec.hbs"))?;
    for (name, html, _) in PAGES {
        if *name == "fields" {
            hb.register_partial(name, *html)?;
        } else {
            hb.register_template_string(name, *html)?;
        }
    }
    Ok(hb)
}

/// The registry for the Markdown copy (no escaping: the output is Markdown).
pub fn markdown() -> Result<Handlebars<'static>, handlebars::TemplateError> {
    let mut hb = Handlebars::new();
    hb.register_escape_fn(no_escape);
    hb.register_helper("cell", Box::new(md_cell));
    for (name, _, md) in PAGES {
        if *name == "fields" {
            hb.register_partial(name, *md)?;
        } else {
            hb.register_template_string(name, *md)?;
        }
    }
    Ok(hb)
}
