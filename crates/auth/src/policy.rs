//! Which scope each route needs, by method and matched route path (`/hsm/v2/State/Components/{xname}`).
//! One function covers all four APIs so the table-driven test can walk every route.

use http::Method;

use crate::Principal;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anonymous: what a booting node must reach, and health checks.
    Public,
    Need(Need),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Admin,
    /// Pushing discovery results: `write` or `edge`.
    Discovery,
    /// Reading what an edge agent also needs (image content): `read` or `edge`.
    ReadOrEdge,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "skyport/read",
            Need::Write => "skyport/write",
            Need::Admin => "skyport/admin",
            Need::Discovery => "skyport/write or skyport/edge",
            Need::ReadOrEdge => "skyport/read or skyport/edge",
        }
    }

    pub fn satisfied_by(self, p: &Principal) -> bool {
        if p.has("admin") {
            return true;
        }
        match self {
            // An edge token reads through its site's snapshot, never the whole inventory.
            Need::Read => p.has("read") || p.has("write"),
            Need::Write => p.has("write"),
            Need::Admin => false,
            Need::Discovery => p.has("write") || p.has("edge"),
            Need::ReadOrEdge => p.has("read") || p.has("write") || p.has("edge"),
        }
    }
}

fn by_method(method: &Method) -> Access {
    if method == Method::GET || method == Method::HEAD {
        Access::Need(Need::Read)
    } else {
        Access::Need(Need::Write)
    }
}

/// The requirement of a route. Unknown paths need `admin`, so a route added without a policy
/// is closed, not open.
pub fn access(method: &Method, route: &str) -> Access {
    let read_only = method == Method::GET || method == Method::HEAD;
    if route == "/oauth2/token" && *method == Method::POST {
        // The local server's client-credentials endpoint: the credentials are the request.
        return Access::Public;
    }
    if let Some(r) = route.strip_prefix("/hsm/v2") {
        if r.starts_with("/service/") && read_only {
            return Access::Public;
        }
        if r == "/Inventory/RedfishEndpoints" || r == "/Inventory/RedfishEndpoints/{xname}" {
            // Discovery pushes (Magellan POST, its --force-update PUT, the edge agent's PUT).
            if *method == Method::POST || *method == Method::PUT {
                return Access::Need(Need::Discovery);
            }
        }
        // Deleting a whole collection (every component, every interface) is an admin act.
        if *method == Method::DELETE && !r.contains('{') {
            return Access::Need(Need::Admin);
        }
        return by_method(method);
    }
    if let Some(r) = route.strip_prefix("/boot/v1") {
        return match r {
            // A node asking for its own script, and BSS's health routes.
            "/bootscript"
            | "/service/status"
            | "/service/version"
            | "/service/hsm"
            | "/service/storage/status"
            | "/service/status/all"
                if read_only =>
            {
                Access::Public
            }
            "/dumpstate" => Access::Need(Need::Admin),
            _ => by_method(method),
        };
    }
    if let Some(r) = route.strip_prefix("/cloud-init") {
        if r.starts_with("/admin/") {
            return Access::Need(Need::Admin);
        }
        // The asking node's own data, identified by its address.
        return if read_only {
            Access::Public
        } else {
            Access::Need(Need::Admin)
        };
    }
    if let Some(r) = route.strip_prefix("/edge/v1") {
        return match (r, read_only) {
            // A site's boot data includes cloud-init user data: only agents and writers copy it.
            ("/snapshot", true) => Access::Need(Need::Discovery),
            ("/reports", false) if *method == Method::POST => Access::Need(Need::Discovery),
            ("/candidates" | "/sites" | "/sites/{site}", true) => Access::Need(Need::Read),
            // Explicit assignment of xnames to a site.
            ("/sites/{site}/xnames/{xname}", false) => Access::Need(Need::Write),
            // Registering sites and handling their credentials.
            _ => Access::Need(Need::Admin),
        };
    }
    if let Some(r) = route.strip_prefix("/images/v1") {
        if r == "/blobs/{key}" {
            // Each URL carries its own short-lived signature, checked by the handler.
            return Access::Public;
        }
        if r == "/images/{id}/content" && read_only {
            // Images are one catalog shared by every site; edge agents cache them.
            return Access::Need(Need::ReadOrEdge);
        }
        return by_method(method);
    }
    Access::Need(Need::Admin)
}
