//! Who may call a route, declared by each service beside its router (`skyport_boot::access`,
//! `skyport_inventory::access`, …) and enforced by `skyport_auth::auth_layer` over the list of
//! the services an app mounts. The edge agent mounts only what these declarations call
//! [`Access::Public`], and a test holds `infra/template.yaml`'s anonymous routes to them.

use http::Method;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anonymous: what a booting node must reach, and health checks.
    Public,
    Need(Need),
}

/// The scope a protected route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Admin,
    /// Pushing discovery results, and an agent's snapshot and reports: `write` or `edge`.
    Discovery,
    /// Reading what an edge agent also needs (image content): `read` or `edge`.
    ReadOrEdge,
    /// What only a site's agent does (taking its site's jobs, reporting their results): `edge`
    /// (or `admin`). A `write` token does not speak for an agent.
    Edge,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "skyport/read",
            Need::Write => "skyport/write",
            Need::Admin => "skyport/admin",
            Need::Discovery => "skyport/write or skyport/edge",
            Need::ReadOrEdge => "skyport/read or skyport/edge",
            Need::Edge => "skyport/edge",
        }
    }

    /// Whether a caller holding the scopes `has` answers yes to (`read`, `write`, `admin`,
    /// `edge`) may call the route.
    pub fn satisfied_by(self, has: impl Fn(&str) -> bool) -> bool {
        if has("admin") {
            return true;
        }
        match self {
            // An edge token reads through its site's snapshot, never the whole inventory.
            Need::Read => has("read") || has("write"),
            Need::Write => has("write"),
            Need::Admin => false,
            Need::Discovery => has("write") || has("edge"),
            Need::ReadOrEdge => has("read") || has("write") || has("edge"),
            Need::Edge => has("edge"),
        }
    }
}

/// A service's declaration: the access of `route` (a matched route pattern such as
/// `/hsm/v2/State/Components/{xname}`) for `method`, or `None` when the route is not the
/// service's.
pub type Declared = fn(&Method, &str) -> Option<Access>;

/// The access of `route` under the declarations of the services mounted together. A route no
/// service declares needs `admin`, so a route added without a declaration is closed, not open.
pub fn decide(services: &[Declared], method: &Method, route: &str) -> Access {
    services
        .iter()
        .find_map(|declared| declared(method, route))
        .unwrap_or(Access::Need(Need::Admin))
}

/// GET and HEAD.
pub fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// `read` for GET and HEAD, `write` for anything else: most routes' rule.
pub fn by_method(method: &Method) -> Access {
    if is_read(method) {
        Access::Need(Need::Read)
    } else {
        Access::Need(Need::Write)
    }
}
