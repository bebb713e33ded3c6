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
//!   as `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic with the key as
//!   the password and any user name (what QGIS's and ArcGIS's "Basic" authentication
//!   send; no `Basic` challenge is offered, so a browser never pops a login box) (headers only: a key in a URL
//!   ends up in logs and browser history; MapLibre sends headers with `transformRequest`).
//!   The presented key is hashed and compared with every configured hash in constant time.
//! - Every route declares who may use it where it is built ([`Routes::route`] with an
//!   [`Access`]): a role, or the role of the resource a path parameter names (the OGC
//!   collections). The decision is made on axum's matched route and the *decoded* path
//!   parameter, through the same parse the handler uses, never on raw path text, so
//!   `/collections/%70atrol` needs what `/collections/patrol` needs. A route without a
//!   declared access needs `admin` (fail closed), and a test checks every route has one.
//! - Every refusal (401, 403, from this middleware or a handler) is an audit line
//!   (`audit::denied`, rate-limited per client).
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

/// The presented key: `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic
/// with the key as the password and any user name (`Authorization: Basic
/// base64(user:key)`), which is what QGIS's and ArcGIS's "Basic" authentication send.
fn presented(headers: &HeaderMap) -> Option<Result<String, ()>> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let token = v
            .to_str()
            .ok()
            .and_then(|s| {
                let (scheme, rest) = s.trim().split_once(' ')?;
                let rest = rest.trim();
                if scheme.eq_ignore_ascii_case("bearer") {
                    Some(rest.to_owned())
                } else if scheme.eq_ignore_ascii_case("basic") {
                    basic_password(rest)
                } else {
                    None
                }
            })
            .filter(|t| !t.is_empty());
        return Some(token.ok_or(()));
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

/// The password of HTTP Basic credentials (RFC 7617: base64 of `user:password`; the user
/// name is ignored), or None when they do not decode.
fn basic_password(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.trim().to_owned())
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

/// Who may use a route, declared where the route is built (`Routes::route`).
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// This role and up.
    Role(Role),
    /// The role of the resource the route's path parameter `param` names (after axum has
    /// percent-decoded it, exactly as the handler's `Path` extractor sees it), and at
    /// least `base`. `role_of` is the same parse the handler uses; `None` (no such
    /// resource) leaves `base`, and the handler answers 404.
    Resource {
        base: Role,
        param: &'static str,
        role_of: fn(&str) -> Option<Role>,
    },
}

/// The declared access of every route, by axum's route template (its `MatchedPath`).
#[derive(Debug, Clone, Default)]
pub struct Policy(Vec<(&'static str, Access)>);

impl Policy {
    /// Every route template with its access.
    pub fn entries(&self) -> &[(&'static str, Access)] {
        &self.0
    }

    /// The role a request needs: its matched route's, raised by the resource its decoded
    /// path parameter names; `Admin` for no matched route, a route without a declared
    /// access, or a resource parameter that could not be decoded (fail closed).
    pub fn required(&self, matched: Option<&str>, params: &[(String, String)]) -> Role {
        let Some(route) = matched else {
            return Role::Admin;
        };
        let Some(&(_, access)) = self.0.iter().find(|(p, _)| *p == route) else {
            tracing::error!(route, "route has no access policy: admin only");
            return Role::Admin;
        };
        match access {
            Access::Role(r) => r,
            Access::Resource {
                base,
                param,
                role_of,
            } => match params.iter().find(|(k, _)| k == param) {
                Some((_, v)) => role_of(v).map_or(base, |r| base.max(r)),
                None => Role::Admin,
            },
        }
    }
}

/// A router whose every route declares who may use it: modules build their routes with
/// this, so the access of a route sits next to the route, and [`Policy`] knows no
/// module's types.
pub struct Routes<S = super::AppState> {
    router: axum::Router<S>,
    policy: Vec<(&'static str, Access)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes {
            router: axum::Router::new(),
            policy: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route and its access.
    #[must_use]
    pub fn route(
        mut self,
        path: &'static str,
        access: Access,
        method: axum::routing::MethodRouter<S>,
    ) -> Self {
        self.router = self.router.route(path, method);
        self.policy.push((path, access));
        self
    }

    /// Both sets of routes.
    #[must_use]
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.policy.extend(other.policy);
        self
    }

    /// The router and the policy of its routes.
    pub fn into_parts(self) -> (axum::Router<S>, Policy) {
        (self.router, Policy(self.policy))
    }
}

/// What the access middleware needs: the server state and the declared policy.
#[derive(Clone)]
pub struct Gate {
    pub state: AppState,
    pub policy: std::sync::Arc<Policy>,
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

/// The client a refusal is counted against in the audit log: the peer address (an IPv6
/// address by its /64), or `unknown` without one.
fn client_of(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || "unknown".to_owned(),
            |c| match super::limits::rate::Client::addr(c.0.ip()) {
                super::limits::rate::Client::Addr(ip) => ip.to_string(),
                super::limits::rate::Client::Key(_) => "unknown".to_owned(),
            },
        )
}

/// The path parameters of the matched route, percent-decoded as the handlers' `Path`
/// extractors see them (empty when they cannot be decoded).
async fn decoded_params(req: Request) -> (Request, Vec<(String, String)>) {
    use axum::extract::FromRequestParts as _;
    let (mut parts, body) = req.into_parts();
    let params = axum::extract::RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    (Request::from_parts(parts, body), params)
}

/// The access middleware (a `route_layer`, so it runs after routing and knows the route).
pub async fn middleware(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let state = &gate.state;
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let (mut req, params) = decoded_params(req).await;
    let presented_now =
        super::limits::api_key(req.headers()).and_then(|k| std::str::from_utf8(k).ok());
    // A key pasted into the path is redacted from the refusal lines too.
    let path = state
        .redactor()
        .target(req.uri().path(), None, presented_now);
    let method = req.method().as_str().to_owned();
    let client = client_of(&req);
    let needed = gate.policy.required(matched.as_deref(), &params);
    let principal = match resolve(req.headers(), &state.settings().keys) {
        Credentials::Invalid => {
            super::audit::denied(state, &client, None, &method, &path, 403);
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
        let who = (principal.name.as_str(), principal.role.name());
        super::audit::denied(state, &client, Some(who), &method, &path, status.as_u16());
        return refuse(status, code, &msg);
    }
    let private = !principal.is_anonymous() || needed > Role::Public;
    let audited = needed >= Role::Analyst || principal.role >= Role::Analyst;
    let query = req.uri().query().map(str::to_owned);
    let presented = super::limits::api_key(req.headers())
        .and_then(|k| std::str::from_utf8(k).ok())
        .map(str::to_owned);
    req.extensions_mut().insert(principal.clone());
    let mut resp = next.run(req).await;
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // A refusal by the handler (a sensitive category asked for too finely).
        let who = (principal.name.as_str(), principal.role.name());
        super::audit::denied(state, &client, Some(who), &method, &path, status.as_u16());
    } else if audited {
        let target = state
            .redactor()
            .target(&path, query.as_deref(), presented.as_deref());
        super::audit::access(
            state,
            (principal.name.as_str(), principal.role.name()),
            &method,
            &target,
            status.as_u16(),
        );
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
        // HTTP Basic: the key is the password, the user name anything (QGIS, ArcGIS).
        // "qgis:admin-secret" and ":partner-secret".
        assert_eq!(
            resolve(
                &headers("authorization", "Basic cWdpczphZG1pbi1zZWNyZXQ="),
                &k
            ),
            p(Role::Admin, "ops")
        );
        assert_eq!(
            resolve(&headers("authorization", "basic OnBhcnRuZXItc2VjcmV0"), &k),
            p(Role::Partner, "council")
        );
        for (h, v) in [
            ("authorization", "Bearer wrong"),
            // base64("admin-secret"): no colon, so no password.
            ("authorization", "Basic YWRtaW4tc2VjcmV0"),
            // base64("admin-secret:x"): the key as the user name is not the password.
            ("authorization", "Basic YWRtaW4tc2VjcmV0Ong="),
            ("authorization", "Basic !!!"),
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
    fn resources_raise_the_route_role_and_unknown_routes_are_admin() {
        fn role_of(id: &str) -> Option<Role> {
            match id {
                "open" => Some(Role::Public),
                "ops" => Some(Role::Partner),
                "points" => Some(Role::Analyst),
                _ => None,
            }
        }
        let (_, policy) = Routes::<()>::new()
            .route(
                "/c/{id}",
                Access::Resource {
                    base: Role::Public,
                    param: "id",
                    role_of,
                },
                axum::routing::get(|| async {}),
            )
            .route(
                "/admin",
                Access::Role(Role::Admin),
                axum::routing::get(|| async {}),
            )
            .into_parts();
        let id = |v: &str| vec![("id".to_owned(), v.to_owned())];
        let r = |m: &str, p: &[(String, String)]| policy.required(Some(m), p);
        assert_eq!(r("/c/{id}", &id("points")), Role::Analyst);
        assert_eq!(r("/c/{id}", &id("ops")), Role::Partner);
        assert_eq!(r("/c/{id}", &id("open")), Role::Public);
        // No such resource: the route's base (the handler answers 404).
        assert_eq!(r("/c/{id}", &id("%70oints")), Role::Public);
        // The parameter could not be decoded: fail closed.
        assert_eq!(r("/c/{id}", &[]), Role::Admin);
        assert_eq!(r("/admin", &[]), Role::Admin);
        assert_eq!(r("/not/declared", &[]), Role::Admin);
        assert_eq!(policy.required(None, &[]), Role::Admin);
    }
}
