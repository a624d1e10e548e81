//! Channel-name patterns of the configuration: `*` matches any run of
//! characters, `{sub}` the session's user. Used by the authorization rules
//! and by the engine's per-channel history overrides.

/// Glob match with `*` (any run of characters) and `{sub}` (the user).
/// `{sub}` never matches for anonymous sessions.
pub(crate) fn pattern_matches(pattern: &str, channel: &str, user: &str) -> bool {
    if pattern.contains("{sub}") {
        if user.is_empty() || user.contains('*') {
            return false;
        }
        return glob(&pattern.replace("{sub}", user), channel);
    }
    glob(pattern, channel)
}

fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    // Iterative matcher with backtracking to the last `*`: linear-ish, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("private.*", "private.a"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(!glob("private.*", "public.a"));
        assert!(glob("exact", "exact"));
        assert!(pattern_matches("inbox.{sub}", "inbox.alice", "alice"));
        assert!(!pattern_matches("inbox.{sub}", "inbox.bob", "alice"));
        assert!(!pattern_matches("inbox.{sub}", "inbox.", ""));
    }
}
