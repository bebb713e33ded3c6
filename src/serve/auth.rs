//! Who is asking, and may they: roles, API keys and the route policy.
//!
//! Why in the product rather than a proxy: the disclosure rules (`disclosure.rs`) depend
//! on the caller's role, so the server must know it; a partner can then be handed a URL
//! and a key, and the same URL without a key is the public map.
//!
//! - Roles, lowest first: `public` (anyone, no credentials), `partner` (councils, fire,
//!   health, road safety), `analyst` (force analysts: incident points, exact counts),
//!   `admin` (ingest, audit). A higher role may do everything a lower one may.
//! - Keys come from the config file as `[[keys]]` tables `{ name, role, sha256 }`: only the
//!   SHA-256 of a key is stored (`hotspot hash-key` prints it). A request presents its key
//!   as `Authorization: Bearer <key>` or `X-API-Key: <key>` (headers only: a key in a URL
//!   ends up in logs and browser history; MapLibre sends headers with `transformRequest`).
//!   The presented key is hashed and compared with every configured hash in constant time.
//! - Every route declares the lowest role that may use it in [`POLICY`] (collections in
//!   [`collection_role`]); a route missing there needs `admin` (fail closed), and a test
//!   checks every route the router serves has an entry.
//! - No credentials where more than public is needed: 401 with `WWW-Authenticate: Bearer`.
//!   Credentials that match no key: 403 on every route (a wrong key is never silently
//!   downgraded to public). A valid key with too low a role: 403.
//! - Responses to an authenticated caller, or of a route above public, are marked
//!   `Cache-Control: private`, and every response has `Vary: Authorization, X-API-Key`,
//!   so no cache hands one caller's view to another.

use std::fmt;
use std::str::FromStr;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::ogc::CollectionId;

/// A caller's role; ordered, so `role >= Role::Analyst` reads as "at least analyst".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Public,
    Partner,
    Analyst,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Public, Role::Partner, Role::Analyst, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Partner => "partner",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// Whether outputs for this role go through disclosure control (below analyst).
    pub fn disclosure_controlled(self) -> bool {
        self < Role::Analyst
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown role '{s}' (public, partner, analyst, admin)"))
    }
}

/// One configured key: who holds it, their role, and the key's SHA-256 (hex).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    pub sha256: String,
}

/// The hex SHA-256 of a key, as the config file stores it.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks configured keys at start-up: every hash is 64 hex digits, names are unique.
///
/// # Errors
/// A message naming the bad entry (never the hash).
pub fn validate_keys(keys: &[ApiKey]) -> Result<(), String> {
    for (i, k) in keys.iter().enumerate() {
        if k.name.trim().is_empty() {
            return Err(format!("keys[{i}]: empty name"));
        }
        if parse_hex32(&k.sha256).is_none() {
            return Err(format!(
                "keys[{i}] ('{}'): sha256 is not 64 hex digits",
                k.name
            ));
        }
        if keys[..i].iter().any(|o| o.name == k.name) {
            return Err(format!("keys[{i}]: name '{}' given twice", k.name));
        }
    }
    Ok(())
}

/// The caller, as the middleware resolved them (put in the request's extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name, or `anonymous`.
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            name: "anonymous".into(),
            role: Role::Public,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == "anonymous" && self.role == Role::Public
    }
}

/// What the request's headers say about the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    None,
    Valid(Principal),
    Invalid,
}

/// The presented key: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
fn presented(headers: &HeaderMap) -> Option<Result<String, ()>> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let token = v
            .to_str()
            .ok()
            .and_then(|s| {
                let (scheme, rest) = s.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        return Some(token.map(str::to_owned).ok_or(()));
    }
    headers.get("x-api-key").map(|v| {
        v.to_str()
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or(())
    })
}

/// Resolves the caller against the configured keys. Every configured hash is compared
/// (in constant time each), so the time taken does not say which key, if any, matched.
pub fn resolve(headers: &HeaderMap, keys: &[ApiKey]) -> Credentials {
    let key = match presented(headers) {
        None => return Credentials::None,
        Some(Err(())) => return Credentials::Invalid,
        Some(Ok(k)) => k,
    };
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let mut found: Option<&ApiKey> = None;
    for k in keys {
        let stored = parse_hex32(&k.sha256).unwrap_or([0u8; 32]);
        let eq: bool = stored.ct_eq(&digest).into();
        if eq && found.is_none() {
            found = Some(k);
        }
    }
    match found {
        Some(k) => Credentials::Valid(Principal {
            name: k.name.clone(),
            role: k.role,
        }),
        None => Credentials::Invalid,
    }
}

/// The lowest role per route (axum's matched path). `/collections/{id}...` routes take
/// their collection's role from [`collection_role`] instead, when it is higher.
pub const POLICY: &[(&str, Role)] = &[
    ("/health", Role::Public),
    ("/", Role::Public),
    ("/conformance", Role::Public),
    ("/api", Role::Public),
    ("/collections", Role::Public),
    ("/collections/{id}", Role::Public),
    ("/collections/{id}/items", Role::Public),
    ("/collections/{id}/items/{fid}", Role::Public),
    ("/tiles/heatmap/{z}/{x}/{y}", Role::Public),
    ("/tiles/heatmap/legend", Role::Public),
    ("/tiles/heatmap.json", Role::Public),
    ("/tiles/cells/{z}/{x}/{y}", Role::Public),
    ("/tiles/cells.json", Role::Public),
    ("/tiles/boundaries/{z}/{x}/{y}", Role::Public),
    ("/tiles/boundaries.json", Role::Public),
    ("/admin/ingest", Role::Admin),
    // The web map (issue 5): its files, and its endpoints (disclosure-controlled below
    // analyst, as every other output).
    ("/map", Role::Public),
    ("/map/", Role::Public),
    ("/map/{*path}", Role::Public),
    ("/map/api/meta", Role::Public),
    ("/map/api/cells", Role::Public),
    ("/map/api/details", Role::Public),
];

/// The lowest role that may read a collection (its metadata, items and CSV alike).
/// Aggregates are open to all (with disclosure control below analyst); the patrol list
/// and emerging patterns are operational, for partners up; incident points for analysts.
pub fn collection_role(c: CollectionId) -> Role {
    match c {
        CollectionId::Incidents => Role::Analyst,
        CollectionId::Patrol | CollectionId::Emerging => Role::Partner,
        CollectionId::Districts
        | CollectionId::Lsoas
        | CollectionId::H3(_)
        | CollectionId::Hotspots => Role::Public,
    }
}

/// The role a request needs: the route's, raised by its collection's; `Admin` for a
/// route missing from [`POLICY`].
pub fn required_role(matched: Option<&str>, path: &str) -> Role {
    let Some(route) = matched else {
        return Role::Admin;
    };
    let Some(&(_, base)) = POLICY.iter().find(|(p, _)| *p == route) else {
        tracing::error!(route, "route has no access policy: admin only");
        return Role::Admin;
    };
    if route.starts_with("/collections/{id}") {
        let id = path.split('/').nth(2).unwrap_or("");
        if let Some(c) = CollectionId::parse(id) {
            return base.max(collection_role(c));
        }
    }
    base
}

/// A refusal as the JSON error body every other error has.
fn refuse(status: StatusCode, code: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({ "code": code, "description": description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hotspot\""),
        );
    }
    r
}

/// The access middleware (a `route_layer`, so it runs after routing and knows the route).
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let needed = required_role(matched.as_deref(), &path);
    let principal = match resolve(req.headers(), &state.settings().keys) {
        Credentials::Invalid => {
            super::audit::denied(&state, None, req.method().as_str(), &path, 403);
            return refuse(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the credentials given match no key",
            );
        }
        Credentials::None => Principal::anonymous(),
        Credentials::Valid(p) => p,
    };
    if principal.role < needed {
        let (status, code, msg) = if principal.is_anonymous() {
            (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                format!(
                    "this resource needs the {needed} role: send a key as Authorization: Bearer <key>"
                ),
            )
        } else {
            (
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("this resource needs the {needed} role"),
            )
        };
        if needed >= Role::Analyst {
            super::audit::denied(
                &state,
                Some(&principal),
                req.method().as_str(),
                &path,
                status.as_u16(),
            );
        }
        return refuse(status, code, &msg);
    }
    let private = !principal.is_anonymous() || needed > Role::Public;
    let audited = needed >= Role::Analyst || principal.role >= Role::Analyst;
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().map(str::to_owned);
    req.extensions_mut().insert(principal.clone());
    let mut resp = next.run(req).await;
    if audited {
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        super::audit::access(&state, &principal, &method, &target, resp.status().as_u16());
    }
    if private {
        let h = resp.headers_mut();
        let control = h
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "private".to_owned(), |v| v.replace("public", "private"));
        if let Ok(v) = HeaderValue::from_str(&control) {
            h.insert(header::CACHE_CONTROL, v);
        }
    }
    // Every answer depends on who asks (a public copy must never answer a keyed request,
    // in a browser's cache or a proxy's).
    resp.headers_mut().append(
        header::VARY,
        HeaderValue::from_static("Authorization, X-API-Key"),
    );
    resp
}

/// The caller of a handler (anonymous if the middleware did not run).
pub fn principal_of(p: Option<axum::Extension<Principal>>) -> Principal {
    p.map_or_else(Principal::anonymous, |axum::Extension(p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ApiKey> {
        vec![
            ApiKey {
                name: "council".into(),
                role: Role::Partner,
                sha256: hash_key("partner-secret"),
            },
            ApiKey {
                name: "ops".into(),
                role: Role::Admin,
                sha256: hash_key("admin-secret"),
            },
        ]
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn keys_resolve_by_hash_in_either_header() {
        let k = keys();
        assert_eq!(resolve(&HeaderMap::new(), &k), Credentials::None);
        let p = |role, name: &str| {
            Credentials::Valid(Principal {
                name: name.into(),
                role,
            })
        };
        assert_eq!(
            resolve(&headers("authorization", "Bearer partner-secret"), &k),
            p(Role::Partner, "council")
        );
        assert_eq!(
            resolve(&headers("authorization", "bearer  admin-secret "), &k),
            p(Role::Admin, "ops")
        );
        assert_eq!(
            resolve(&headers("x-api-key", "admin-secret"), &k),
            p(Role::Admin, "ops")
        );
        for (h, v) in [
            ("authorization", "Bearer wrong"),
            ("authorization", "Basic YWRtaW4tc2VjcmV0"),
            ("authorization", "Bearer"),
            ("x-api-key", ""),
            ("x-api-key", "partner-secret2"),
        ] {
            assert_eq!(
                resolve(&headers(h, v), &k),
                Credentials::Invalid,
                "{h}: {v}"
            );
        }
        // A key is never its own hash.
        let hash = hash_key("admin-secret");
        assert_eq!(
            resolve(&headers("x-api-key", &hash), &k),
            Credentials::Invalid
        );
    }

    #[test]
    fn config_checks_and_roles() {
        assert!(validate_keys(&keys()).is_ok());
        let mut bad = keys();
        bad[0].sha256 = "abc".into();
        assert!(validate_keys(&bad).is_err());
        let mut dup = keys();
        dup[1].name = "council".into();
        assert!(validate_keys(&dup).is_err());
        assert!(Role::Public < Role::Partner && Role::Analyst < Role::Admin);
        assert_eq!("Analyst".parse::<Role>(), Ok(Role::Analyst));
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn collections_raise_the_route_role_and_unknown_routes_are_admin() {
        let r = |m: &str, p: &str| required_role(Some(m), p);
        assert_eq!(
            r("/collections/{id}/items", "/collections/incidents/items"),
            Role::Analyst
        );
        assert_eq!(
            r(
                "/collections/{id}/items/{fid}",
                "/collections/incidents/items/3"
            ),
            Role::Analyst
        );
        assert_eq!(r("/collections/{id}", "/collections/patrol"), Role::Partner);
        assert_eq!(
            r("/collections/{id}/items", "/collections/h3-9/items"),
            Role::Public
        );
        assert_eq!(r("/admin/ingest", "/admin/ingest"), Role::Admin);
        assert_eq!(r("/not/declared", "/not/declared"), Role::Admin);
        assert_eq!(required_role(None, "/x"), Role::Admin);
    }
}
