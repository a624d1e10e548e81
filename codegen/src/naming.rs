//! Rust names and paths for proto items, computed the way prost-build does,
//! so attributes we add refer to the items prost generates.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Mirrors prost-build's keyword handling (`ident.rs`).
fn sanitize(ident: String) -> String {
    match ident.as_str() {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_numeric()) => format!("_{ident}"),
        _ => ident,
    }
}

/// A proto field name as prost's Rust field identifier.
pub fn field_ident(name: &str) -> String {
    sanitize(name.to_snake_case())
}

/// A proto message, enum or oneof name as prost's Rust type identifier.
pub fn type_ident(name: &str) -> String {
    sanitize(name.to_upper_camel_case())
}

/// A proto message name as the Rust module prost nests its inner items in.
pub fn module_ident(name: &str) -> String {
    sanitize(name.to_snake_case())
}

/// Where an item lives: its package and the chain of enclosing messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Proto package, e.g. `courier.v2`.
    pub package: String,
    /// Enclosing message names, outermost first.
    pub messages: Vec<String>,
}

impl Scope {
    /// Splits a fully-qualified proto name (`.pkg.Outer.Inner`) into the
    /// scope it lives in and its own name, given the packages known.
    pub fn split(fq: &str, packages: &[String]) -> (Scope, String) {
        let fq = fq.trim_start_matches('.');
        let package = packages
            .iter()
            .filter(|p| fq.starts_with(p.as_str()) && fq[p.len()..].starts_with('.'))
            .max_by_key(|p| p.len())
            .cloned()
            .unwrap_or_default();
        let rest = if package.is_empty() {
            fq
        } else {
            &fq[package.len() + 1..]
        };
        let mut parts: Vec<String> = rest.split('.').map(str::to_string).collect();
        let name = parts.pop().unwrap_or_default();
        (
            Scope {
                package,
                messages: parts,
            },
            name,
        )
    }

    /// The fully-qualified proto name of an item named `name` in this scope.
    pub fn fq(&self, name: &str) -> String {
        let mut s = format!(".{}", self.package);
        for m in &self.messages {
            s.push('.');
            s.push_str(m);
        }
        s.push('.');
        s.push_str(name);
        s
    }

    fn module_path(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .package
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        out.extend(self.messages.iter().map(|m| module_ident(m)));
        out
    }
}

/// The Rust path from code in module `from` to the type `name` in `to`,
/// relative like prost's (`super::`), or absolute through an extern path.
pub fn rust_path(from: &Scope, to: &Scope, name: &str, externs: &[(String, String)]) -> String {
    let fq = to.fq(name);
    if let Some((proto, rust)) = externs
        .iter()
        .filter(|(p, _)| fq.starts_with(p.as_str()) && fq[p.len()..].starts_with('.'))
        .max_by_key(|(p, _)| p.len())
    {
        let rest = &fq[proto.len() + 1..];
        let mut parts: Vec<&str> = rest.split('.').collect();
        let last = type_ident(parts.pop().unwrap_or_default());
        let mut path = rust.clone();
        for p in parts {
            path.push_str("::");
            path.push_str(&module_ident(p));
        }
        return format!("{path}::{last}");
    }
    let a = from.module_path();
    let b = to.module_path();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut path = String::new();
    for _ in common..a.len() {
        path.push_str("super::");
    }
    for seg in &b[common..] {
        path.push_str(seg);
        path.push_str("::");
    }
    path.push_str(&type_ident(name));
    path
}
