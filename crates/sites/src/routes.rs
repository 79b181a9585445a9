//! The site registry's routes under `/edge/v1/sites`: register, list, show, rotate and revoke
//! credentials, delete, and assign or unassign xname subtrees (admin scope; see
//! [`access`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use skyport_http::access::{Access, Need, is_read};
use skyport_http::{ApiError, ApiJson, json};
use skyport_store::Store;

use crate::SiteError;
use crate::credentials::Credentials;
use crate::registry::Registry;

/// Where the edge routes live (the registry's and `skyport-sync`'s).
pub const BASE: &str = "/edge/v1";

type Res = Result<Response, ApiError>;

/// The one place the sites' errors become HTTP answers (here and for the inventory and edge
/// sync, which call ownership and the registry): bad names 400; a site's change touching another
/// site's records 403 (blind, [`crate::REFUSED`]); unknown sites, clients and assignments 404; a
/// second registration 409; a reassignment that kept losing its race, like any contention, and
/// a credentials backend failing 503 (retry); the store's errors as every service maps them.
impl From<SiteError> for ApiError {
    fn from(e: SiteError) -> Self {
        match e {
            SiteError::Store(e) => e.into(),
            SiteError::BadName { .. } | SiteError::BadDescription | SiteError::BadXname { .. } => {
                ApiError::bad_request(e.to_string())
            }
            SiteError::Refused { .. } | SiteError::Unassigned { .. } => {
                ApiError::Forbidden(e.to_string())
            }
            SiteError::NoSuchSite { .. }
            | SiteError::NoSuchClient { .. }
            | SiteError::NotAssigned { .. }
            | SiteError::AssignedElsewhere { .. } => ApiError::not_found(e.to_string()),
            SiteError::AlreadyRegistered { .. } => ApiError::conflict(e.to_string()),
            SiteError::ReassignedConcurrently { .. } | SiteError::Credentials { .. } => {
                ApiError::Unavailable(e.to_string())
            }
            SiteError::Encode { .. }
            | SiteError::EncodeAssignment { .. }
            | SiteError::Corrupt { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

/// Who may call each route of [`router`] and of the local token endpoint: anyone may present
/// client credentials for a token; sites are readable, xname assignment is a writer's, and
/// registering sites and handling their credentials is an admin's.
pub fn access(method: &axum::http::Method, route: &str) -> Option<Access> {
    if route == "/oauth2/token" && *method == axum::http::Method::POST {
        return Some(Access::Public);
    }
    let r = route.strip_prefix(BASE)?;
    if !r.starts_with("/sites") {
        return None;
    }
    Some(match (r, is_read(method)) {
        ("/sites" | "/sites/{site}", true) => Access::Need(Need::Read),
        ("/sites/{site}/xnames/{xname}", false) => Access::Need(Need::Write),
        _ => Access::Need(Need::Admin),
    })
}

/// `/edge/v1/sites` over the registry in `store`, with credentials from `creds`.
pub fn router(store: Arc<dyn Store>, creds: Arc<dyn Credentials>) -> Router {
    Router::new()
        .route(&format!("{BASE}/sites"), get(sites).post(register))
        .route(
            &format!("{BASE}/sites/{{site}}"),
            get(site).delete(delete_site),
        )
        .route(&format!("{BASE}/sites/{{site}}/rotate"), post(rotate))
        .route(&format!("{BASE}/sites/{{site}}/revoke"), post(revoke))
        .route(
            &format!("{BASE}/sites/{{site}}/xnames/{{xname}}"),
            put(assign).delete(unassign),
        )
        .with_state(Registry::new(store, creds))
}

async fn sites(State(e): State<Registry>) -> Res {
    Ok(json(StatusCode::OK, &e.list().await?))
}

async fn site(State(e): State<Registry>, Path(name): Path<String>) -> Res {
    Ok(json(StatusCode::OK, &e.get(&name).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSite {
    name: String,
    #[serde(default)]
    description: String,
}

async fn register(State(e): State<Registry>, ApiJson(n): ApiJson<NewSite>) -> Res {
    let c = e.register(&n.name, &n.description).await?;
    let mut r = json(
        StatusCode::CREATED,
        &serde_json::json!({"site": n.name, "client_id": c.client_id,
            "client_secret": c.client_secret, "token_url": c.token_url}),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE}/sites/{}", n.name)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    keep_previous: bool,
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: Default + serde::de::DeserializeOwned>(b: &Bytes) -> Result<T, ApiError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        skyport_http::parse_json(b)
    }
}

async fn rotate(State(e): State<Registry>, Path(name): Path<String>, body: Bytes) -> Res {
    let keep = optional_body::<RotateBody>(&body)?.keep_previous;
    let (c, revoked) = e.rotate(&name, keep).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"site": name, "client_id": c.client_id,
            "client_secret": c.client_secret, "token_url": c.token_url, "revoked": revoked}),
    ))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    client_id: Option<String>,
}

async fn revoke(State(e): State<Registry>, Path(name): Path<String>, body: Bytes) -> Res {
    let id = optional_body::<RevokeBody>(&body)?.client_id;
    let revoked = e.revoke(&name, id.as_deref()).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"site": name, "revoked": revoked}),
    ))
}

async fn delete_site(State(e): State<Registry>, Path(name): Path<String>) -> Res {
    let n = e.delete(&name).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"message": format!("deleted site {name} ({n} assignments removed)")}),
    ))
}

async fn assign(State(e): State<Registry>, Path((name, xname)): Path<(String, String)>) -> Res {
    Ok(json(StatusCode::OK, &e.assign(&name, &xname).await?))
}

async fn unassign(State(e): State<Registry>, Path((name, xname)): Path<(String, String)>) -> Res {
    e.unassign(&name, &xname).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    //! Every [`SiteError`] answers with the status and the `detail` text the sites gave before
    //! they had their own error type (clients, scripts and the edge agent match on them); a
    //! refusal says [`crate::REFUSED`] and nothing about the other site.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use skyport_model::Xname;
    use skyport_store::StoreError;

    use super::*;
    use crate::CredentialsError;

    fn answer(e: SiteError) -> (u16, String) {
        let a = ApiError::from(e);
        (a.status().as_u16(), a.to_string())
    }

    #[test]
    fn site_errors_keep_their_status_and_detail() {
        let bad_xname = Xname::parse("x1000q").unwrap_err();
        let unreadable = serde_json::from_str::<crate::ownership::Assignment>("{").unwrap_err();
        let cases = [
            (
                SiteError::BadName {
                    name: "East".into(),
                },
                400,
                "site name \"East\": use 1-63 lowercase letters, digits and inner hyphens".into(),
            ),
            (
                SiteError::BadDescription,
                400,
                "description: at most 500 printable characters".into(),
            ),
            (
                SiteError::BadXname {
                    xname: "x1000q".into(),
                    source: bad_xname.clone(),
                },
                400,
                format!("x1000q: {bad_xname}"),
            ),
            (
                SiteError::Refused {
                    site: "east".into(),
                },
                403,
                crate::REFUSED.into(),
            ),
            (
                SiteError::Unassigned {
                    site: "east".into(),
                    xname: Xname::parse("x1000c0s0b0").unwrap(),
                },
                403,
                "x1000c0s0b0 is in the inventory but assigned to no site; an admin assigns it \
                 (skyport site assign east x1000c0s0b0) before this site's agent may update it"
                    .into(),
            ),
            (
                SiteError::NoSuchSite {
                    name: "east".into(),
                },
                404,
                "no such site: east".into(),
            ),
            (
                SiteError::NoSuchClient {
                    site: "east".into(),
                    client_id: "skyport-1".into(),
                },
                404,
                "site east has no client skyport-1".into(),
            ),
            (
                SiteError::NotAssigned {
                    xname: "x1000c0".into(),
                },
                404,
                "x1000c0 is not assigned".into(),
            ),
            (
                SiteError::AssignedElsewhere {
                    xname: "x1000c0".into(),
                    owner: "west".into(),
                    site: "east".into(),
                },
                404,
                "x1000c0 is assigned to site west, not east".into(),
            ),
            (
                SiteError::AlreadyRegistered {
                    name: "east".into(),
                },
                409,
                "site east is already registered".into(),
            ),
            (
                SiteError::ReassignedConcurrently {
                    xname: "x1000c0".into(),
                },
                503,
                "x1000c0 is being reassigned concurrently; try again".into(),
            ),
            (
                SiteError::Credentials {
                    site: "east".into(),
                    source: CredentialsError::new("no token endpoint here"),
                },
                503,
                "creating credentials for site east: no token endpoint here".into(),
            ),
            (
                SiteError::Corrupt {
                    what: "site assignment",
                    id: "x1000c0".into(),
                    source: serde_json::from_str::<crate::ownership::Assignment>("{").unwrap_err(),
                },
                500,
                format!("stored site assignment x1000c0 is unreadable: {unreadable}"),
            ),
            (
                SiteError::Store(StoreError::Unavailable("timed out".into())),
                503,
                "storage unavailable: timed out".into(),
            ),
        ];
        for (e, status, detail) in cases {
            assert_eq!(answer(e), (status, detail));
        }
    }
}
