//! The site registry: one record per registered site (cluster), the machine credentials of its
//! edge agent, and the resolver that tells the auth layer which site an edge token speaks for.
//!
//! Credentials come from a [`Credentials`] backend: Cognito app clients in AWS (client
//! credentials, scope `skyport/edge`), or clients of the local server's own token endpoint
//! ([`crate::LocalCredentials`], `POST /oauth2/token`). Either way the store is the source of truth:
//! a client ID is valid for a site exactly while a [`SITE_CLIENTS`] record maps it there, so a
//! revoked client is refused on its next request even if its last token has not expired.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use skyport_store::{IndexKey, Record, Store, StoreError, Table, Write};

use crate::SITES;
use crate::credentials::{Credentials, NewClient};
use crate::error::{SiteError, encode};
use crate::ownership::{Assignment, SITE_KEY, SITE_XNAMES};
use crate::status::{EdgeStatus, status_id, status_site};

/// One record per live edge client, keyed by client ID.
pub const SITE_CLIENTS: Table = Table("SiteClients");

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Unix seconds.
    pub created: i64,
    /// Its live clients (several only during a rotation that kept the previous one).
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub client_id: String,
    pub created: i64,
    /// `local` or `cognito`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClientRecord {
    client_id: String,
    site: String,
    created: i64,
    kind: String,
    /// Local clients only: SHA-256 of the secret (the secret itself is shown once, at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_sha256: Option<String>,
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

pub use skyport_model::now;

/// Site names: what an admin types and what shows in xname listings and logs.
pub fn check_name(name: &str) -> Result<(), SiteError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(SiteError::BadName {
            name: name.to_string(),
        })
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    r: &Record,
    what: &'static str,
) -> Result<T, SiteError> {
    serde_json::from_str(&r.body).map_err(|source| SiteError::Corrupt {
        what,
        id: r.id.clone(),
        source,
    })
}

/// A site as `GET /edge/v1/sites` shows it: its record (if registered), its credentials (IDs
/// only), how many xname subtrees it owns, and what its agent last reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    pub name: String,
    /// False for a site that only ever reported (an agent of a lab with authentication off).
    pub registered: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
    /// Number of xname subtrees assigned to it.
    #[serde(default)]
    pub assigned: usize,
    /// The assignments themselves (`GET /edge/v1/sites/{site}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignments: Option<Vec<Assignment>>,
    #[serde(default)]
    pub status: Option<EdgeStatus>,
}

/// The registry over a store and a credentials backend.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    creds: Arc<dyn Credentials>,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, creds: Arc<dyn Credentials>) -> Self {
        Self { store, creds }
    }

    async fn site(&self, name: &str) -> Result<(Record, Site), SiteError> {
        check_name(name)?;
        let r = self
            .store
            .get(SITES, name)
            .await?
            .ok_or_else(|| SiteError::NoSuchSite {
                name: name.to_string(),
            })?;
        let s = decode(&r, "site")?;
        Ok((r, s))
    }

    async fn issue(&self, site: &str) -> Result<NewClient, SiteError> {
        let mut c = self
            .creds
            .create(site)
            .await
            .map_err(|source| SiteError::Credentials {
                site: site.to_string(),
                source,
            })?;
        c.kind = self.creds.kind().to_string();
        Ok(c)
    }

    /// Undoes credentials created for a batch that was not written.
    async fn discard(&self, c: &NewClient) {
        if let Err(e) = self.creds.delete(&c.client_id).await {
            tracing::error!(client_id = %c.client_id, error = %e,
                "an edge client created for a failed registration could not be deleted; delete it by hand");
        }
    }

    fn client_ops(
        &self,
        site: &str,
        c: &NewClient,
        at: i64,
    ) -> Result<(ClientInfo, Write), SiteError> {
        let info = ClientInfo {
            client_id: c.client_id.clone(),
            created: at,
            kind: c.kind.clone(),
        };
        let rec = ClientRecord {
            client_id: c.client_id.clone(),
            site: site.to_string(),
            created: at,
            kind: c.kind.clone(),
            secret_sha256: (c.kind == "local").then(|| sha256_hex(&c.client_secret)),
        };
        Ok((
            info,
            Write::Put {
                table: SITE_CLIENTS,
                record: Record::new(&c.client_id, encode("client", &c.client_id, &rec)?),
                prev: None,
            },
        ))
    }

    /// Registers `name` and issues its first credentials.
    pub async fn register(&self, name: &str, description: &str) -> Result<NewClient, SiteError> {
        check_name(name)?;
        if description.len() > 500 || description.chars().any(char::is_control) {
            return Err(SiteError::BadDescription);
        }
        let registered = || SiteError::AlreadyRegistered {
            name: name.to_string(),
        };
        if self.store.get(SITES, name).await?.is_some() {
            return Err(registered());
        }
        let c = self.issue(name).await?;
        let at = now();
        let write = async {
            let (info, client_op) = self.client_ops(name, &c, at)?;
            let site = Site {
                name: name.to_string(),
                description: description.to_string(),
                created: at,
                clients: vec![info],
            };
            self.store
                .write(vec![
                    Write::Put {
                        table: SITES,
                        record: Record::new(name, encode("site", name, &site)?),
                        prev: None,
                    },
                    client_op,
                ])
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => registered(),
                    other => other.into(),
                })
        };
        if let Err(e) = write.await {
            self.discard(&c).await;
            return Err(e);
        }
        tracing::info!(site = name, client_id = %c.client_id, "site registered");
        Ok(c)
    }

    /// Issues new credentials; the previous ones stop working unless `keep_previous` (for a
    /// hand-over: configure the agent, then revoke the old client).
    pub async fn rotate(
        &self,
        name: &str,
        keep_previous: bool,
    ) -> Result<(NewClient, Vec<String>), SiteError> {
        let (prev, mut site) = self.site(name).await?;
        let c = self.issue(name).await?;
        let at = now();
        let revoked: Vec<ClientInfo> = if keep_previous {
            Vec::new()
        } else {
            std::mem::take(&mut site.clients)
        };
        let write = async {
            let (info, client_op) = self.client_ops(name, &c, at)?;
            site.clients.push(info);
            let mut ops = vec![
                Write::Put {
                    table: SITES,
                    record: Record::new(name, encode("site", name, &site)?),
                    prev: Some(prev),
                },
                client_op,
            ];
            ops.extend(self.delete_client_ops(&revoked).await?);
            self.store.write(ops).await.map_err(SiteError::from)
        };
        if let Err(e) = write.await {
            self.discard(&c).await;
            return Err(e);
        }
        let ids = self.delete_upstream(&revoked).await;
        tracing::info!(site = name, client_id = %c.client_id, revoked = ids.len(), "site credentials rotated");
        Ok((c, ids))
    }

    async fn delete_client_ops(&self, clients: &[ClientInfo]) -> Result<Vec<Write>, SiteError> {
        let ids: Vec<String> = clients.iter().map(|c| c.client_id.clone()).collect();
        Ok(self
            .store
            .get_many(SITE_CLIENTS, &ids)
            .await?
            .into_iter()
            .map(|prev| Write::Delete {
                table: SITE_CLIENTS,
                prev,
            })
            .collect())
    }

    /// Deletes revoked clients upstream (Cognito). They are already refused, since the store no
    /// longer maps them to a site; a failure here only leaves an unusable client behind.
    async fn delete_upstream(&self, clients: &[ClientInfo]) -> Vec<String> {
        let mut ids = Vec::new();
        for c in clients {
            if let Err(e) = self.creds.delete(&c.client_id).await {
                tracing::warn!(client_id = %c.client_id, error = %e,
                    "revoked client could not be deleted upstream (it is refused regardless)");
            }
            ids.push(c.client_id.clone());
        }
        ids
    }

    /// Revokes one client of the site, or all of them.
    pub async fn revoke(
        &self,
        name: &str,
        client_id: Option<&str>,
    ) -> Result<Vec<String>, SiteError> {
        let (prev, mut site) = self.site(name).await?;
        let revoked: Vec<ClientInfo> = match client_id {
            Some(id) => {
                let Some(i) = site.clients.iter().position(|c| c.client_id == id) else {
                    return Err(SiteError::NoSuchClient {
                        site: name.to_string(),
                        client_id: id.to_string(),
                    });
                };
                vec![site.clients.remove(i)]
            }
            None => std::mem::take(&mut site.clients),
        };
        let mut ops = vec![Write::Put {
            table: SITES,
            record: Record::new(name, encode("site", name, &site)?),
            prev: Some(prev),
        }];
        ops.extend(self.delete_client_ops(&revoked).await?);
        self.store.write(ops).await?;
        let ids = self.delete_upstream(&revoked).await;
        tracing::info!(site = name, revoked = ids.len(), "site credentials revoked");
        Ok(ids)
    }

    /// Deletes a site: its credentials, its assignments and its last status. The inventory
    /// records themselves stay (they become unassigned).
    pub async fn delete(&self, name: &str) -> Result<usize, SiteError> {
        let (prev, site) = match self.site(name).await {
            Ok(found) => found,
            // A deletion interrupted after the site record went: finish it.
            Err(missing @ SiteError::NoSuchSite { .. }) => {
                let n = self.drop_assignments(name).await?;
                return if n > 0 { Ok(n) } else { Err(missing) };
            }
            Err(e) => return Err(e),
        };
        // Credentials first, with the site record: from then on its agent can claim nothing.
        let mut ops = vec![Write::Delete { table: SITES, prev }];
        ops.extend(self.delete_client_ops(&site.clients).await?);
        if let Some(st) = self.store.get(SITES, &status_id(name)).await? {
            ops.push(Write::Delete {
                table: SITES,
                prev: st,
            });
        }
        self.store.write(ops).await?;
        self.delete_upstream(&site.clients).await;
        let n = self.drop_assignments(name).await?;
        tracing::info!(site = name, unassigned = n, "site deleted");
        Ok(n)
    }

    /// Removes every assignment to `name`, in batches (idempotent: a failure half-way is
    /// finished by deleting the site again, or by `unassign`).
    async fn drop_assignments(&self, name: &str) -> Result<usize, SiteError> {
        let by = IndexKey::new(SITE_KEY, name);
        let assigned = self.store.list_all(SITE_XNAMES, Some(&by)).await?;
        for chunk in assigned.chunks(25) {
            self.store
                .write(
                    chunk
                        .iter()
                        .cloned()
                        .map(|prev| Write::Delete {
                            table: SITE_XNAMES,
                            prev,
                        })
                        .collect(),
                )
                .await?;
        }
        Ok(assigned.len())
    }

    /// Every site: registered ones and any that only reported a status.
    pub async fn list(&self) -> Result<Vec<SiteView>, SiteError> {
        let mut views: BTreeMap<String, SiteView> = BTreeMap::new();
        let mut statuses = Vec::new();
        for r in self.store.list_all(SITES, None).await? {
            if let Some(site) = status_site(&r.id) {
                statuses.push((site.to_string(), decode::<EdgeStatus>(&r, "site status")?));
                continue;
            }
            let s: Site = decode(&r, "site")?;
            views.insert(s.name.clone(), view(s));
        }
        for (site, st) in statuses {
            views
                .entry(site.clone())
                .or_insert_with(|| SiteView {
                    name: site,
                    registered: false,
                    description: String::new(),
                    created: 0,
                    clients: Vec::new(),
                    assigned: 0,
                    assignments: None,
                    status: None,
                })
                .status = Some(st);
        }
        for r in self.store.list_all(SITE_XNAMES, None).await? {
            let a = Assignment::decode(&r)?;
            if let Some(v) = views.get_mut(&a.site) {
                v.assigned += 1;
            }
        }
        Ok(views.into_values().collect())
    }

    pub async fn get(&self, name: &str) -> Result<SiteView, SiteError> {
        let (_, s) = self.site(name).await?;
        let mut v = view(s);
        let by = IndexKey::new(SITE_KEY, name);
        let mut list = Vec::new();
        for r in self.store.list_all(SITE_XNAMES, Some(&by)).await? {
            list.push(Assignment::decode(&r)?);
        }
        v.assigned = list.len();
        v.assignments = Some(list);
        v.status = crate::status::status(self.store.as_ref(), name).await?;
        Ok(v)
    }

    /// Assigns the subtree under `xname` to `site` (replacing another site's claim on exactly
    /// that xname; more specific assignments below it keep their site).
    pub async fn assign(&self, name: &str, xname: &str) -> Result<Assignment, SiteError> {
        self.site(name).await?;
        let x = parse_xname(xname)?;
        let a = Assignment {
            xname: x.to_string(),
            site: name.to_string(),
            source: "admin".into(),
            assigned_at: now(),
        };
        for _ in 0..5 {
            let prev = self.store.get(SITE_XNAMES, &a.xname).await?;
            let op = Write::Put {
                table: SITE_XNAMES,
                record: a.record()?,
                prev,
            };
            match self.store.write(vec![op]).await {
                Ok(()) => {
                    tracing::info!(site = name, xname = %a.xname, "xname subtree assigned");
                    return Ok(a);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SiteError::ReassignedConcurrently { xname: a.xname })
    }

    /// Removes `site`'s assignment of exactly `xname` (also for a site already deleted, so a
    /// leftover can always be cleared).
    pub async fn unassign(&self, name: &str, xname: &str) -> Result<(), SiteError> {
        check_name(name)?;
        let id = parse_xname(xname)?.to_string();
        let Some(prev) = self.store.get(SITE_XNAMES, &id).await? else {
            return Err(SiteError::NotAssigned { xname: id });
        };
        let a = Assignment::decode(&prev)?;
        if a.site != name {
            return Err(SiteError::AssignedElsewhere {
                xname: id,
                owner: a.site,
                site: name.to_string(),
            });
        }
        self.store
            .write(vec![Write::Delete {
                table: SITE_XNAMES,
                prev,
            }])
            .await?;
        Ok(())
    }
}

/// An xname from a request path.
fn parse_xname(xname: &str) -> Result<skyport_model::Xname, SiteError> {
    skyport_model::Xname::parse(xname).map_err(|source| SiteError::BadXname {
        xname: xname.to_string(),
        source,
    })
}

fn view(s: Site) -> SiteView {
    SiteView {
        name: s.name,
        registered: true,
        description: s.description,
        created: s.created,
        clients: s.clients,
        assigned: 0,
        assignments: None,
        status: None,
    }
}

/// The auth layer's view of the registry: client ID → site, read on every edge request.
pub struct StoreSites(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl skyport_auth::SiteResolver for StoreSites {
    async fn site_of(
        &self,
        client_id: &str,
    ) -> Result<Option<String>, skyport_auth::SiteLookupError> {
        use skyport_auth::SiteLookupError;
        if client_id.is_empty() || client_id.len() > 128 {
            return Ok(None);
        }
        match self.0.get(SITE_CLIENTS, client_id).await {
            Ok(Some(r)) => serde_json::from_str::<ClientRecord>(&r.body)
                .map(|c| Some(c.site))
                .map_err(|e| {
                    SiteLookupError::new(format!("stored client {client_id} is unreadable"), e)
                }),
            Ok(None) => Ok(None),
            Err(e) => Err(SiteLookupError::new(
                format!("reading edge client {client_id}"),
                e,
            )),
        }
    }
}

/// Checks local client credentials; the site they belong to, or `None`.
pub async fn check_local_secret(
    store: &dyn Store,
    client_id: &str,
    secret: &str,
) -> Result<Option<String>, SiteError> {
    if client_id.is_empty() || client_id.len() > 128 {
        return Ok(None);
    }
    let Some(r) = store.get(SITE_CLIENTS, client_id).await? else {
        return Ok(None);
    };
    let c: ClientRecord = decode(&r, "client")?;
    let ok = c
        .secret_sha256
        .is_some_and(|h| h.as_bytes() == sha256_hex(secret).as_bytes());
    Ok(ok.then_some(c.site))
}
