//! The routing table: one list of (method, path pattern, handler), and the matching of a request
//! path against it after the optional `/vX.Y` version prefix is taken off.
//!
//! Patterns are `/`-separated segments: a literal, `{name}` for one segment, or `{name*}` for one
//! or more segments (image names contain slashes: `/images/registry:5000/app/json`). A pattern has
//! at most one `{name*}`; the literal segments after it anchor the end of the path.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use hyper::Method;

use crate::http::{Reply, RequestContext};
use crate::{ApiError, Backend};

/// What a route runs: the backend and the request in, a reply out.
pub(crate) type Handler<B> =
    fn(Arc<B>, RequestContext) -> BoxFuture<'static, Result<Reply, ApiError>>;

/// One row of the table.
pub(crate) struct Route<B> {
    pub method: Method,
    pub pattern: &'static str,
    pub handler: Handler<B>,
}

/// The captured `{name}` segments of a matched path, percent-decoded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathParams(HashMap<&'static str, String>);

impl PathParams {
    /// The segment captured as `name`; patterns and handlers are written together, so a missing
    /// name is a programming error reported as a 500 rather than a panic.
    pub fn get(&self, name: &str) -> Result<&str, ApiError> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::Internal(format!("route has no path parameter {name:?}")))
    }
}

/// Matches `path` (without version prefix or query) against `pattern`.
pub(crate) fn match_pattern(pattern: &'static str, path: &str) -> Option<PathParams> {
    let pat: Vec<&'static str> = pattern.split('/').skip(1).collect();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let mut params = HashMap::new();
    let capture = |p: &'static str| p.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
    let greedy = pat.iter().position(|p| p.ends_with("*}"));
    let (head, tail_len) = match greedy {
        Some(g) => {
            let tail_len = pat.len() - g - 1;
            // The greedy capture takes at least one segment.
            if segs.len() < pat.len() {
                return None;
            }
            (g, tail_len)
        }
        None => {
            if segs.len() != pat.len() {
                return None;
            }
            (pat.len(), 0)
        }
    };
    let bind =
        |p: &'static str, s: &str, params: &mut HashMap<&'static str, String>| match capture(p) {
            Some(name) if !s.is_empty() => {
                params.insert(name.trim_end_matches('*'), percent_decode_path(s));
                true
            }
            Some(_) => false,
            None => p == s,
        };
    for i in 0..head {
        if !bind(pat[i], segs[i], &mut params) {
            return None;
        }
    }
    if let Some(g) = greedy {
        for i in 0..tail_len {
            let (p, s) = (pat[g + 1 + i], segs[segs.len() - tail_len + i]);
            if !bind(p, s, &mut params) {
                return None;
            }
        }
        let middle = &segs[g..segs.len() - tail_len];
        if middle.iter().any(|s| s.is_empty()) {
            return None;
        }
        let name = capture(pat[g])?.trim_end_matches('*');
        params.insert(name, percent_decode_path(&middle.join("/")));
    }
    Some(PathParams(params))
}

fn percent_decode_path(s: &str) -> String {
    // Paths use %XX but not '+' for spaces; an invalid escape is kept as sent.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `/v1.47/containers/json` into `("1.47", "/containers/json")`; paths without a
/// version prefix come back whole. As dockerd's router, a prefix is `v` and digits and dots.
pub(crate) fn split_version(path: &str) -> (Option<&str>, &str) {
    let rest = &path[1.min(path.len())..];
    let (first, remainder) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    match first.strip_prefix('v') {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            (Some(v), remainder)
        }
        _ => (None, path),
    }
}

/// The result of looking a request up in the table.
pub(crate) enum Lookup<B> {
    /// A route matched.
    Found(Handler<B>, PathParams),
    /// No route: 404 "page not found", as dockerd answers.
    NotFound,
}

/// Finds the route for `method` and `path`; the first matching row wins. `HEAD` falls back to
/// the `GET` route, as Go's router serves it.
pub(crate) fn lookup<B: Backend>(table: &[Route<B>], method: &Method, path: &str) -> Lookup<B> {
    let find = |m: &Method| {
        table
            .iter()
            .filter(|r| r.method == *m)
            .find_map(|r| match_pattern(r.pattern, path).map(|p| (r.handler, p)))
    };
    let found = find(method).or_else(|| {
        if *method == Method::HEAD {
            find(&Method::GET)
        } else {
            None
        }
    });
    match found {
        Some((h, p)) => Lookup::Found(h, p),
        None => Lookup::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = match_pattern("/containers/{id}/json", "/containers/abc/json").expect("match");
        assert_eq!(p.get("id").expect("id"), "abc");
        assert!(match_pattern("/containers/{id}/json", "/containers//json").is_none());
        assert!(match_pattern("/containers/{id}/json", "/containers/abc/json/x").is_none());
        let p = match_pattern("/images/{name*}/json", "/images/reg:5000/a/b/json").expect("greedy");
        assert_eq!(p.get("name").expect("name"), "reg:5000/a/b");
        let p = match_pattern("/images/{name*}", "/images/busybox%3Alatest").expect("tail greedy");
        assert_eq!(p.get("name").expect("name"), "busybox:latest");
        assert!(match_pattern("/images/{name*}/json", "/images/json").is_none());
    }

    #[test]
    fn version_prefix() {
        assert_eq!(
            split_version("/v1.47/containers/json"),
            (Some("1.47"), "/containers/json")
        );
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(split_version("/v1.99"), (Some("1.99"), ""));
    }
}
